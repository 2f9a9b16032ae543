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
from collections import deque
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from ..errors import (
    ClientClosedError,
    ConnectionClosedError,
    HTTPError,
    ProtocolError,
    ReadTimeout,
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
from ..policy.retry import RetryPolicy, coerce_policy
from .dial import DialedProtocol, Dialer, ReadsIntoLentBuffers, lends_buffers
from .trace import logger

_ids = itertools.count(1)


class _Pending:
    """A request written on a pipelined connection, waiting for its response."""

    __slots__ = ("chunks", "future", "head", "request", "response_bytes")

    def __init__(self, request: Request, future: asyncio.Future[Response]) -> None:
        self.request = request
        self.future = future
        self.head: ResponseHead | None = None
        self.chunks: list[bytes] = []
        self.response_bytes = 0


class PipelineConnection(DialedProtocol):
    """One connection carrying a queue of requests whose responses arrive in order."""

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop, read_timeout: float | None):
        self.id = next(_ids)
        self.origin = origin
        self.loop = loop
        self.pending: deque[_Pending] = deque()
        self.is_closed = False
        self.served = 0
        self.transport: asyncio.Transport | None = None
        self._parser = ResponseParser(self)
        self._read_timeout = read_timeout
        self._last_read = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self.on_settled: Any = None  # the client's callback when a slot frees up

    # -- sending -------------------------------------------------------------------

    def send(self, request: Request) -> asyncio.Future[Response]:
        future: asyncio.Future[Response] = self.loop.create_future()
        if self.is_closed or self.transport is None:
            future.set_exception(self._closed_error(_Pending(request, future), written=False))
            return future
        if not self.pending:
            self._last_read = self.loop.time()
        self.pending.append(_Pending(request, future))
        self._parser.expect(request.method)
        body = request.body.data
        self.transport.write(request.head + body if body else request.head)
        if self._read_timeout is not None and self._timer is None:
            self._timer = self.loop.call_later(self._read_timeout, self._check_timeout)
        return future

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes | memoryview) -> None:
        self._last_read = self.loop.time()
        try:
            self._parser.feed(data)
        except ProtocolError as exc:
            self._fail_all(exc)
            return
        except UnaskedBytes:
            logger.debug(
                "pipelined connection #%d to %s: the server sent bytes no request asked "
                "for; closing it",
                self.id,
                self.origin,
            )
            self._fail_all(None)
            return
        if self.pending and self._parser.in_message:
            # The front request's answer has begun. One read can hold the end of one
            # response and the start of the next, so the count is "at least one".
            self.pending[0].response_bytes = max(1, self.pending[0].response_bytes)

    def eof_received(self) -> bool:
        if self.pending:
            with contextlib.suppress(ProtocolError):
                self._parser.feed_eof()  # may complete a close-delimited body
        self._fail_all(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all(exc)
        super().connection_lost(exc)  # a lent receive buffer goes back

    # -- parser sink ------------------------------------------------------------------

    # With nothing pending, the bytes came unasked (see data_received).

    def on_head(self, head: ResponseHead) -> None:
        if not self.pending:
            raise UnaskedBytes
        self.pending[0].head = head

    def on_body(self, chunk: bytes) -> None:
        if not self.pending:
            raise UnaskedBytes
        self.pending[0].chunks.append(chunk)

    def on_complete(self) -> None:
        if not self.pending:
            raise UnaskedBytes
        done = self.pending[0]
        head = done.head
        if head is None:
            raise UnaskedBytes
        self.pending.popleft()
        self.served += 1
        resp = Response(done.request.method, done.request.url, head)
        resp._content = b"".join(done.chunks)
        if not done.future.done():
            done.future.set_result(resp)
        if not head.keep_alive:
            self._fail_all(None)
        elif self.on_settled is not None:
            self.on_settled(self)

    # -- failing --------------------------------------------------------------------

    def discard(self) -> None:
        """Drop a connection whose dial was abandoned."""
        self._fail_all(None)

    def _check_timeout(self) -> None:
        self._timer = None
        if self.is_closed or not self.pending or self._read_timeout is None:
            return
        quiet = self.loop.time() - self._last_read
        if quiet >= self._read_timeout:
            first = self.pending[0].request
            self._fail_all(
                ReadTimeout(
                    f"{first.method} {first.url}: no response byte for "
                    f"read_timeout={self._read_timeout:g} s on pipelined connection #{self.id}"
                )
            )
        else:
            self._timer = self.loop.call_later(self._read_timeout - quiet, self._check_timeout)

    def _fail_all(self, cause: BaseException | None) -> None:
        """Close; the request being answered fails as processed, the rest as unanswered."""
        if not self.is_closed:
            self.is_closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self.transport is not None:
                self.transport.abort()
        pending, self.pending = self.pending, deque()
        for item in pending:
            if item.future.done():
                continue
            if isinstance(cause, HTTPError):
                error: BaseException = cause
            else:
                error = self._closed_error(item, written=True)
                error.__cause__ = cause
            item.future.set_exception(error)
        if self.on_settled is not None:
            self.on_settled(self)

    def _closed_error(self, item: _Pending, *, written: bool) -> ConnectionClosedError:
        what = (
            "the connection closed after part of the response"
            if item.response_bytes
            else "the connection closed before this pipelined request was answered"
        )
        return ConnectionClosedError(
            f"{item.request.method} {item.request.url}: {what} "
            f"(pipelined connection #{self.id}, {self.served} responses before)",
            reused=self.served > 0,
            request_written=written,
            response_bytes=item.response_bytes,
            requests_served=self.served,
            connection_id=self.id,
        )


class BufferedPipelineConnection(PipelineConnection, ReadsIntoLentBuffers):
    """A PipelineConnection that reads into lent buffers (asyncio's own loops)."""


class PipelineClient:
    """Pipelined requests to one origin over up to ``max_conns`` connections.

    ::

        async with PipelineClient("http://127.0.0.1:8080", max_pending_requests=64) as pc:
            responses = await asyncio.gather(*(pc.get(f"/item/{i}") for i in range(1000)))
    """

    def __init__(
        self,
        base_url: str,
        *,
        max_conns: int = 1,
        max_pending_requests: int = 128,
        read_timeout: float | None = 60.0,
        connect_timeout: float | None = 10.0,
        retry: RetryPolicy | int | bool | None = None,
        headers: HeadersLike | None = None,
    ) -> None:
        target = resolve_url(base_url)
        if target.origin.scheme != "http":
            raise ValueError("PipelineClient speaks plain http:// only")
        self.base_url = base_url
        self.origin = target.origin
        self.max_conns = max_conns
        self.max_pending = max_pending_requests
        self._read_timeout = read_timeout
        self._policy = coerce_policy(retry)
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
            )(origin, loop, self._read_timeout),
        )
        self.replays = 0

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
    ) -> Response:
        request = self._build(method, url, headers, content)
        attempt = 1
        while True:
            conn = await self._connection()
            try:
                return await conn.send(request)
            except HTTPError as exc:
                if self._policy.replay_reason(request, exc, attempt) is None:
                    raise
                self.replays += 1
                attempt += 1

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
            # A connection leaves _conns when it closes (see _settled), or here if it
            # closed before it was told whom to tell.
            best = min(self._conns, key=_in_flight, default=None)
            if best is not None and best.is_closed:
                self._conns.remove(best)
                continue
            if (
                best is not None
                and (not best.pending or len(self._conns) + self._dialling >= self.max_conns)
                and len(best.pending) < self.max_pending
            ):
                return best
            if len(self._conns) + self._dialling < self.max_conns:
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
        conn.on_settled = self._settled
        self._conns.append(conn)
        return conn

    def _settled(self, conn: PipelineConnection) -> None:
        """A response came, or the connection closed: a waiter may go on."""
        if conn.is_closed and conn in self._conns:
            self._conns.remove(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._conns):  # a closing connection leaves _conns (_settled)
            conn._fail_all(ClientClosedError("the pipeline client was closed"))
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(ClientClosedError("the pipeline client was closed"))
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


def _in_flight(conn: PipelineConnection) -> int:
    return len(conn.pending)
