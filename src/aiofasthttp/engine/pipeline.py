"""HTTP/1.1 pipelining, as fasthttp's PipelineClient: many requests in flight per connection.

Opt-in, for servers known to answer pipelined requests in order. Requests go
out as soon as they are made, up to ``max_pending_requests`` per connection
before their responses arrive; the responses come back in request order and
the parser is told each request's method so HEAD is framed right.

When a connection fails mid-pipeline, the request whose response had begun
fails as the server may have processed it; every request behind it was not
answered, and is replayed on a fresh connection when the retry rules allow
(an idempotent method, or an Idempotency-Key).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from .. import reasons
from ..errors import (
    ClientClosedError,
    ConnectionClosedError,
    HTTPError,
    ProtocolError,
    ReadTimeout,
    RequestTimeout,
    ResponseTooLarge,
    UnaskedBytes,
)
from ..h1.headers import HeadersLike
from ..h1.parser import ResponseHead, ResponseParser
from ..h1.request import (
    Content,
    KeptHeads,
    Request,
    build_request,
    check_method,
    encode_body,
    header_items,
)
from ..h1.response import Response
from ..h1.url import Origin, Route, join_url, resolve_url
from ..policy.learning import ServerMemory
from ..policy.retry import RetryBudget, RetryPolicy, coerce_policy
from .attempts import Tries, budgeted_replay_reason, final_error, wait_before_retry
from .dial import DialedProtocol, Dialer, ReadsIntoLentBuffers, lends_buffers
from .explain import describe, facts, prose
from .trace import Tracer, logger, make_tracer

_ids = itertools.count(1)


class _Pending:
    """A request written on a pipelined connection, waiting for its response.

    It carries the facts explain.describe() reads of an exchange (ExchangeFacts)."""

    __slots__ = (
        "body_size",
        "bytes_written",
        "chunks",
        "future",
        "head",
        "idle_before",
        "method",
        "request",
        "request_written",
        "response_bytes",
        "reused",
        "url",
    )

    def __init__(
        self, request: Request, future: asyncio.Future[Response], reused: bool, idle: float
    ) -> None:
        self.request = request
        self.future = future
        self.method = request.method
        self.url = request.url
        self.reused = reused  # the connection carried a request before this one
        self.idle_before = idle  # how long the connection had nothing in flight before
        self.request_written = False
        self.bytes_written = 0
        self.head: ResponseHead | None = None
        self.chunks: list[bytes] = []
        self.body_size = 0
        self.response_bytes = 0


class PipelineConnection(DialedProtocol):
    """One connection carrying a queue of requests whose responses arrive in order.

    It provides the ConnectionFacts (engine/interfaces.py) that explain.describe()
    words an error from: age, requests served, the server's Keep-Alive hint.
    """

    via: str | None = None  # pipelining goes straight to the origin

    def __init__(
        self,
        origin: Origin,
        loop: asyncio.AbstractEventLoop,
        read_timeout: float | None,
        max_body_size: int | None = None,
    ):
        self.id = next(_ids)
        self.origin = origin
        self.loop = loop
        self.created_at = loop.time()
        self.idle_since = self.created_at  # when it last had nothing in flight
        self.pending: deque[_Pending] = deque()
        self.is_closed = False
        self.close_reason: str | None = None
        self.requests_sent = 0
        self.requests_served = 0
        self.keep_alive_timeout: int | None = None  # the server's Keep-Alive hint
        self.keep_alive_max: int | None = None
        self.transport: asyncio.Transport | None = None
        self._last_sent = False  # a request said "Connection: close": none may follow
        self._parser = ResponseParser(self)
        self._read_timeout = read_timeout
        self._max_body_size = max_body_size
        self._last_read = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        # The client's callback when a slot frees up or the connection closes.
        self.on_settled: Callable[[PipelineConnection], None] | None = None

    @property
    def server_memory(self) -> ServerMemory | None:
        return None  # a pipeline learns nothing of its server's closes

    @property
    def accepts_requests(self) -> bool:
        """Open, and no request on it said it would be the last (RFC 9112 9.6)."""
        return not self.is_closed and not self._last_sent

    # -- sending -------------------------------------------------------------------

    def send(self, request: Request) -> tuple[asyncio.Future[Response], _Pending]:
        """Write ``request``; the future gives its response, in its turn."""
        future: asyncio.Future[Response] = self.loop.create_future()
        now = self.loop.time()
        idle = now - self.idle_since if not self.pending else 0.0
        item = _Pending(request, future, self.requests_sent > 0, idle)
        if not self.accepts_requests or self.transport is None:
            why = self.close_reason or reasons.ALREADY_CLOSED
            future.set_exception(self._closed_error(item, why))
            return future, item
        if not self.pending:
            self._last_read = now
        self.pending.append(item)
        self.requests_sent += 1
        if request.closes_connection:
            self._last_sent = True
        self._parser.expect(request.method)
        body = request.body.data
        data = request.head + body if body else request.head
        self.transport.write(data)
        item.request_written = True
        item.bytes_written = len(data)
        if self._read_timeout is not None and self._timer is None:
            self._timer = self.loop.call_later(self._read_timeout, self._check_timeout)
        return future, item

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.idle_since = self.loop.time()

    def data_received(self, data: bytes | memoryview) -> None:
        self._last_read = self.loop.time()
        try:
            self._parser.feed(data)
        except ProtocolError as exc:
            self._close(reasons.PROTOCOL_ERROR, exc)
            return
        except ResponseTooLarge as exc:  # raised from on_body
            self._close(reasons.RESPONSE_TOO_LARGE, exc)
            return
        except UnaskedBytes:
            logger.debug(
                "pipelined connection #%d to %s: the server sent bytes no request asked "
                "for; closing it",
                self.id,
                self.origin,
            )
            self._close(reasons.UNSOLICITED_RESPONSE)
            return
        if self.pending and self._parser.in_message:
            # The front request's answer has begun. One read can hold the end of one
            # response and the start of the next, so the count is "at least one".
            self.pending[0].response_bytes = max(1, self.pending[0].response_bytes)

    def eof_received(self) -> bool:
        if self.pending:
            with contextlib.suppress(ProtocolError):
                self._parser.feed_eof()  # may complete a close-delimited body
        self._close(reasons.SERVER_CLOSED if self.pending else reasons.SERVER_CLOSED_IDLE)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._close(reasons.CONNECTION_RESET, cause=exc)
        else:
            self._close(reasons.SERVER_CLOSED if self.pending else reasons.CONNECTION_LOST)
        super().connection_lost(exc)  # a lent receive buffer goes back

    # -- parser sink ------------------------------------------------------------------

    # With nothing pending, the bytes came unasked (see data_received).

    def on_head(self, head: ResponseHead) -> None:
        if not self.pending:
            raise UnaskedBytes
        self.pending[0].head = head
        self.keep_alive_timeout = head.keep_alive_timeout
        self.keep_alive_max = head.keep_alive_max

    def on_body(self, chunk: bytes) -> None:
        if not self.pending:
            raise UnaskedBytes
        front = self.pending[0]
        front.body_size += len(chunk)
        limit = self._max_body_size
        if limit is not None and front.body_size > limit:
            raise ResponseTooLarge(
                f"{front.method} {front.url}: response body larger than "
                f"max_response_body_size={limit} bytes (pipelined connection #{self.id})"
            )
        front.chunks.append(chunk)

    def on_complete(self) -> None:
        if not self.pending:
            raise UnaskedBytes
        done = self.pending[0]
        head = done.head
        if head is None:
            raise UnaskedBytes
        self.pending.popleft()
        self.requests_served += 1
        if not self.pending:
            self.idle_since = self.loop.time()
        resp = Response(done.method, done.url, head)
        resp._content = b"".join(done.chunks)
        if not done.future.done():  # a request past its deadline no longer waits
            done.future.set_result(resp)
        if not head.keep_alive:
            self._close(reasons.RESPONSE_CLOSE)
        elif self._last_sent and not self.pending:
            self._close(reasons.REQUEST_CLOSE)  # the request said it was the last
        elif self.on_settled is not None:
            self.on_settled(self)

    # -- failing --------------------------------------------------------------------

    def close(self, reason: str = reasons.CLIENT_CLOSED, error: HTTPError | None = None) -> None:
        """Close now; every request still waiting fails with ``error``, or as unanswered."""
        self._close(reason, error, every=error is not None)

    def discard(self) -> None:
        """Drop a connection whose dial was abandoned."""
        self._close(reasons.DIAL_ABANDONED)

    def _check_timeout(self) -> None:
        self._timer = None
        if self.is_closed or not self.pending or self._read_timeout is None:
            return
        quiet = self.loop.time() - self._last_read
        if quiet >= self._read_timeout:
            what = f"no response byte for read_timeout={self._read_timeout:g} s"
            error = ReadTimeout(describe(self, self.pending[0], what, explain=False))
            self._close(reasons.READ_TIMEOUT, error)
        else:
            self._timer = self.loop.call_later(self._read_timeout - quiet, self._check_timeout)

    def _close(
        self,
        why: str,
        error: HTTPError | None = None,
        *,
        every: bool = False,
        cause: BaseException | None = None,
    ) -> None:
        """Close. The request being answered fails with ``error`` (every request, with
        ``every``); the others as unanswered, so the retry rules may replay them."""
        if not self.is_closed:
            self.is_closed = True
            self.close_reason = why
            if self._timer is not None:
                self._timer.cancel()
            if self.transport is not None:
                self.transport.abort()
        pending, self.pending = self.pending, deque()
        for i, item in enumerate(pending):
            if item.future.done():
                continue
            if error is not None and (every or i == 0):
                item.future.set_exception(error)
                continue
            closed = self._closed_error(item, why)
            closed.__cause__ = cause
            item.future.set_exception(closed)
        if self.on_settled is not None:
            self.on_settled(self)

    def _closed_error(self, item: _Pending, why: str) -> ConnectionClosedError:
        what = (
            f"{prose(why)} after part of the response to this pipelined request"
            if item.response_bytes
            else f"{prose(why)} before this pipelined request was answered"
        )
        return ConnectionClosedError(describe(self, item, what), **facts(self, item))

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else f"in_flight={len(self.pending)}"
        return (
            f"<PipelineConnection #{self.id} {self.origin} {state} served={self.requests_served}>"
        )


class BufferedPipelineConnection(PipelineConnection, ReadsIntoLentBuffers):
    """A PipelineConnection that reads into lent buffers (asyncio's own loops)."""


class PipelineClient:
    """Pipelined requests to one origin over up to ``max_conns`` connections.

    ::

        async with PipelineClient("http://127.0.0.1:8080", max_pending_requests=64) as pc:
            responses = await asyncio.gather(*(pc.get(f"/item/{i}") for i in range(1000)))

    As Client: ``retry`` (a RetryPolicy) within the origin's retry budget, with
    backoff; ``timeout`` bounds a whole request, its replays included;
    ``max_response_body_size``; ``trace``; ``stats()``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_conns: int = 1,
        max_pending_requests: int = 128,
        read_timeout: float | None = 60.0,
        connect_timeout: float | None = 10.0,
        timeout: float | None = None,
        retry: RetryPolicy | int | bool | None = None,
        max_response_body_size: int | None = None,
        headers: HeadersLike | None = None,
        trace: Any = None,
    ) -> None:
        target = resolve_url(base_url)
        if target.origin.scheme != "http":
            raise ValueError("PipelineClient speaks plain http:// only")
        self.base_url = base_url
        self.origin = target.origin
        self.max_conns = max_conns
        self.max_pending = max_pending_requests
        self.timeout = timeout
        self._read_timeout = read_timeout
        self._max_body_size = max_response_body_size
        self._policy = coerce_policy(retry)
        self._budget = RetryBudget()
        self._tracer: Tracer | None = make_tracer(trace)
        self._headers = [("User-Agent", "aiofasthttp-pipeline"), *header_items(headers)]
        self._conns: list[PipelineConnection] = []
        self._kept_heads: KeptHeads[None] = KeptHeads()
        self._dialling = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._dialer: Dialer[PipelineConnection] = Dialer(
            connect_timeout=connect_timeout,
            tls_context=ssl.create_default_context,  # never asked for: plain http only
            make_connection=lambda origin, loop: (
                BufferedPipelineConnection if lends_buffers(loop) else PipelineConnection
            )(origin, loop, self._read_timeout, self._max_body_size),
            tracer=self._tracer,
        )
        self.replays = 0
        self._created = 0
        self._reused = 0
        self._closed_idle = 0
        self._close_reasons: Counter[str] = Counter()

    def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
        return self.request("POST", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersLike | None = None,
        content: Content | None = None,
        timeout: float | None = None,
        connection_close: bool = False,
    ) -> Response:
        """``timeout`` (the client's when None) bounds the request, replays included;
        ``connection_close``: the request is the last one sent on its connection."""
        if connection_close:
            headers = [*header_items(headers), ("Connection", "close")]
        request = self._build(method, url, headers, content)
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._budget.record_request(now)
        if timeout is None:
            timeout = self.timeout
        deadline = None if timeout is None else now + timeout
        tries: Tries | None = None  # made at the first failure: most requests have none
        while True:
            try:
                if deadline is None:
                    return await self._attempt(request)
                return await self._attempt_by(request, deadline, tries)
            except HTTPError as exc:
                if tries is None:
                    tries = Tries()
                await self._after_error(request, deadline, tries, exc)

    async def _attempt(self, request: Request) -> Response:
        conn = await self._connection()
        future, item = conn.send(request)
        if item.reused:
            self._reused += 1
        if self._tracer is not None:
            self._trace(
                "request_written",
                request,
                connection_id=conn.id,
                bytes_written=item.bytes_written,
                reused=item.reused,
            )
        resp = await future
        if self._tracer is not None:
            self._trace("head_received", request, status=resp.status, connection_id=conn.id)
        return resp

    async def _attempt_by(self, request: Request, deadline: float, tries: Tries | None) -> Response:
        """An attempt that must end by ``deadline``. A pipelined request past it is let
        go: its response, when it comes, is read and dropped, so the connection stays
        in step for the requests behind it."""
        left = deadline - asyncio.get_running_loop().time()
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            return await asyncio.wait_for(self._attempt(request), left)
        except asyncio.TimeoutError:
            errors = [] if tries is None else tries.errors
            attempt = 1 if tries is None else tries.number
            timeout = RequestTimeout(
                f"{request.method} {request.url}: the request took longer than its timeout "
                f"(attempt {attempt} of {self._policy.attempts})"
            )
            timeout.errors = [*errors, timeout]
            if errors:
                raise timeout from errors[-1]
            raise timeout from None

    async def _after_error(
        self, request: Request, deadline: float | None, tries: Tries, exc: HTTPError
    ) -> None:
        """Raise the final error, or wait (backed off, within the deadline) to replay."""
        tries.errors.append(exc)
        loop = asyncio.get_running_loop()
        reason = budgeted_replay_reason(
            self._policy, self._budget, request, exc, tries.number, loop.time()
        )
        if reason is None:
            self._trace("gave_up", request, attempt=tries.number, error=str(exc))
            raise final_error(exc, tries, self._policy, request) from None
        self.replays += 1
        # A request a reused connection left unanswered goes again at once (on another
        # connection: the failed one has closed); other failures back off.
        delay = 0.0 if reason == reasons.STALE else self._policy.backoff(tries.number)
        self._trace(
            "retry_scheduled",
            request,
            attempt=tries.number,
            reason=reason,
            delay=delay,
            error=str(exc),
        )
        if delay:
            await wait_before_retry(delay, deadline, loop.time(), tries, request)
        tries.number += 1

    def _build(
        self, method: str, url: str, headers: HeadersLike | None, content: Content | None
    ) -> Request:
        if self._closed:
            raise ClientClosedError("the pipeline client is closed")
        body = encode_body(content, None, None)
        if body.make_stream is not None:
            raise TypeError("pipelined requests take bytes bodies, not streams")
        # As in Client: a request without headers of its own is encoded once and kept.
        key = None
        if headers is None:
            key = (method, url, body.content_type, len(body.data or b""))
            kept = self._kept_heads.get(key)
            if kept is not None:
                return kept[0] if body.data is None else kept[0].with_body(body)
        method = check_method(method)
        full = join_url(self.base_url, url)
        target = resolve_url(full)
        if target.origin != self.origin:
            raise ValueError(f"{full} is not on this pipeline's origin {self.origin}")
        request = build_request(method, full, target, self._headers, header_items(headers), body)
        if key is not None:
            self._kept_heads.keep(key, request, None)
        return request

    async def _connection(self) -> PipelineConnection:
        """The least loaded open connection with room, dialling or waiting as needed."""
        while True:
            if self._closed:
                raise ClientClosedError("the pipeline client is closed")
            # A connection leaves _conns when it closes (see _settled); one that sent
            # a request saying Connection: close takes no more, but counts until closed.
            open_ = [c for c in self._conns if c.accepts_requests]
            best = min(open_, key=_in_flight, default=None)
            room = len(self._conns) + self._dialling < self.max_conns
            if (
                best is not None
                and (not best.pending or not room)
                and len(best.pending) < self.max_pending
            ):
                return best
            if room:
                return await self._dial()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def _dial(self) -> PipelineConnection:
        self._dialling += 1
        try:
            conn = await self._dialer.dial(Route(self.origin))
        finally:
            self._dialling -= 1
            # Everyone waiting re-evaluates: there is a new connection, or room to dial.
            waiters, self._waiters = self._waiters, deque()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        self._created += 1
        if self._tracer is not None:
            self._tracer("connection_dialled", origin=str(self.origin), connection_id=conn.id)
        conn.on_settled = self._settled
        if conn.is_closed:  # closed between its dial and now: it is done with
            self._forget(conn)
        else:
            self._conns.append(conn)
        return conn

    def _settled(self, conn: PipelineConnection) -> None:
        """A response came, or the connection closed: a waiter may go on."""
        if conn.is_closed and conn in self._conns:
            self._conns.remove(conn)
            self._forget(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget(self, conn: PipelineConnection) -> None:
        """Count a closed connection's reason (once: it has left _conns)."""
        why = conn.close_reason or reasons.CONNECTION_LOST
        self._close_reasons[why] += 1
        if why == reasons.SERVER_CLOSED_IDLE:
            self._closed_idle += 1
        tracer = self._tracer
        if tracer is not None:
            age = conn.loop.time() - conn.created_at
            origin = str(self.origin)
            if why == reasons.SERVER_CLOSED_IDLE:
                tracer(
                    "connection_closed_idle",
                    origin=origin,
                    connection_id=conn.id,
                    idle_time=conn.loop.time() - conn.idle_since,
                    requests_served=conn.requests_served,
                )
            tracer(
                "connection_closed",
                origin=origin,
                connection_id=conn.id,
                why=why,
                requests_served=conn.requests_served,
                age=age,
            )

    def _trace(self, event: str, request: Request, **facts: object) -> None:
        if self._tracer is not None:
            self._tracer(event, method=request.method, url=request.url, **facts)

    def stats(self) -> dict[str, dict[str, Any]]:
        """As Client.stats(), for the one origin: the counts that apply to a pipeline,
        and ``in_flight``, the requests written and not yet answered."""
        conns = self._conns
        busy = sum(1 for c in conns if c.pending)
        return {
            str(Route(self.origin)): {
                "open": len(conns),
                "idle": len(conns) - busy,
                "active": busy,
                "dialling": self._dialling,
                "waiting": len(self._waiters),
                "in_flight": sum(len(c.pending) for c in conns),
                "created": self._created,
                "reused": self._reused,
                "closed_by_server_idle": self._closed_idle,
                "retries": self.replays,
                "close_reasons": dict(self._close_reasons),
            }
        }

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close every connection and fail every request in flight or waiting."""
        self._closed = True
        for conn in list(self._conns):  # a closing connection leaves _conns (_settled)
            conn.close(reasons.CLIENT_CLOSED, ClientClosedError("the pipeline client was closed"))
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ClientClosedError("the pipeline client was closed"))
        # Let the transports run their connection_lost callbacks before returning.
        await asyncio.sleep(0)

    async def __aenter__(self) -> PipelineClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<PipelineClient {self.origin} closed={self._closed} conns={self._conns}>"


def _in_flight(conn: PipelineConnection) -> int:
    return len(conn.pending)
