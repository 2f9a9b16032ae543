"""The retry coordinator: runs a request's attempts, replaying only when it is safe.

One attempt: take a connection from the origin's pool (an idle one without an
await when there is one), write the pre-encoded request, await the head (and
in buffered mode the whole body). A failed attempt is replayed when the
policy says it may be: a stale-connection failure at once on a freshly dialled
connection, other failures after a backoff that never runs past the deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from .. import reasons
from ..errors import ConnectionClosedError, HTTPError
from ..h1.decoding import Decoder, decoder_for
from ..h1.parser import ResponseHead
from ..h1.response import Response, buffered_response
from ..policy.retry import RetryPolicy
from .attempts import Tries as _Tries
from .attempts import budgeted_replay_reason, final_error, wait_before_retry
from .connection import Connection
from .exchange import AttemptSettings, Exchange
from .trace import Tracer

if TYPE_CHECKING:
    from ..h1.request import Request
    from .pool import Pool


Outcome = tuple[Response, Connection | None, Exchange | None]
# Called with a request's URL and its response's header fields, when they set cookies.
SetCookieHandler = Callable[[str, list[tuple[bytes, bytes]]], None]


class RetryCoordinator:
    def __init__(
        self,
        pool_for: Callable[[Request], Pool[Connection]],
        policy: RetryPolicy,
        settings: AttemptSettings,
        loop_time: Callable[[], float],
        tracer: Tracer | None = None,
    ) -> None:
        self._pool_for = pool_for
        self.policy = policy
        self.settings = settings
        self._time = loop_time
        self.tracer = tracer
        # Told of every response head with Set-Cookie fields (the client's cookie jar
        # keeps them): plain, streamed, retried, redirect and auth-round responses
        # alike. None (no jar): nothing is looked at. The parser's flag makes it one
        # test per response; the header list is built only for the heads that set some.
        self.on_set_cookie: SetCookieHandler | None = None

    async def fetch(
        self,
        request: Request,
        pool: Pool[Connection] | None,
        timeout: float | None = None,
        settings: AttemptSettings | None = None,
        *,
        deadline: float | None = None,
        streaming: bool = False,
    ) -> Response:
        """A request, within ``timeout`` seconds from now or by ``deadline``: its
        attempts, each replayed only as the policy allows. The one implementation
        of an attempt, for buffered and streamed requests, traced or not.

        With an idle connection at hand, an attempt runs inline: no pool await, no
        extra coroutine frame. ``pool`` is the request's, when the caller knows it
        (a kept request carries it); otherwise it is looked up. Streamed, the
        response holds its connection and exchange (``_held``) until it is read.
        ``settings``: the request's own timeouts, if it has any (the client's otherwise).
        """
        if settings is None:
            settings = self.settings
        if pool is None:
            pool = self._pool_for(request)
        now = pool.loop.time()
        if timeout is not None:
            deadline = now + timeout
        budget = pool.retry_budget  # RetryBudget.record_request(), inline: per request
        if now >= budget.tick_at:
            budget.tick(now)
        budget.requests += 1
        tracer = self.tracer
        tries: _Tries | None = None  # made at the first failure: most requests have none
        # Not replayed if its connection dies under it: the pool checks harder.
        unreplayable = not request.idempotent
        while True:
            # The first attempt's clock read above serves the pool and the exchange too:
            # nothing awaits in between. A later attempt, or one that waited for its
            # connection, reads the clock again.
            if tries is not None:
                now = pool.loop.time()
            conn = (
                pool.acquire_nowait(unreplayable, now) if tries is None or not tries.fresh else None
            )
            reused = True
            if conn is None:
                try:
                    conn, reused = await self._connection(
                        pool, deadline, tries, unreplayable, settings
                    )
                except HTTPError as exc:  # a failed dial, or no connection in time
                    if tries is None:
                        tries = _Tries()
                    await self._after_error(request, deadline, tries, exc)
                    continue
                now = pool.loop.time()
            ex = conn.send(request, settings, deadline, streaming, reused, now)
            try:
                body = request.body
                if body.make_stream is not None:
                    await conn.write_chunked(ex, body.make_stream(), body.chunked)
                if tracer is not None:
                    # The head as encoded and written (Host, User-Agent and all): the
                    # command line's -v prints it. Traced here, with request_written,
                    # so an untraced request pays no second test.
                    self._trace("request_head", request, connection_id=conn.id, head=request.head)
                    self._trace(
                        "request_written",
                        request,
                        connection_id=conn.id,
                        bytes_written=ex.bytes_written,
                        reused=reused,
                    )
                head = await ex.waiter
            except HTTPError as exc:
                conn.abandon(ex, reasons.ABANDONED)
                if tries is None:
                    tries = _Tries()
                await self._after_error(request, deadline, tries, exc)
                continue
            except BaseException:
                conn.abandon(ex, reasons.CANCELLED)
                raise
            if streaming or tracer is not None or head.has_set_cookie or head.has_content_encoding:
                resp = self._finish(request, conn, ex, head, streaming, settings)
            else:
                # _finish's plain case, inline (its call and the tuple it returned were
                # 1,900 of a request's 53,000 instructions): the whole body as it
                # came, no cookies to keep, nobody tracing.
                content = ex.content  # the body whole, as it mostly comes
                resp = buffered_response(
                    request.method,
                    request.url,
                    head,
                    content if content is not None else ex.joined(),
                    ex.head_at - ex.sent_at,
                )
            if resp.status not in self.policy.statuses:
                return resp
            if tries is None:
                tries = _Tries()
            if not await self._after_status(request, deadline, tries, resp, streaming):
                return resp

    async def run(
        self,
        request: Request,
        deadline: float | None,
        streaming: bool,
        settings: AttemptSettings | None = None,
    ) -> Outcome:
        resp = await self.fetch(
            request, None, None, settings, deadline=deadline, streaming=streaming
        )
        if not streaming:
            return resp, None, None
        conn, ex = resp._held
        return resp, conn, ex

    async def _connection(
        self,
        pool: Pool[Connection],
        deadline: float | None,
        tries: _Tries | None,
        unreplayable: bool,
        settings: AttemptSettings,
    ) -> tuple[Connection, bool]:
        """A connection when none was idle at hand (or a fresh one was asked for)."""
        if tries is not None and tries.fresh:
            return await pool.dial_fresh(deadline, settings), False
        return await pool.acquire(deadline, unreplayable, settings)

    async def _after_error(
        self, request: Request, deadline: float | None, tries: _Tries, exc: HTTPError
    ) -> None:
        """Raise the final error, or get ready for (and wait before) the next attempt."""
        tries.errors.append(exc)
        pool = self._pool_for(request)
        if isinstance(exc, ConnectionClosedError) and exc.reused and not exc.response_bytes:
            # The server closed it while it sat idle: learn from that as from an idle
            # close, and drop the idle connections that waited at least as long.
            pool.note_stale_failure(exc.idle_time, exc.requests_served, exc.connection_age)
            pool.drop_idle_since(exc.idle_time)
        reason = budgeted_replay_reason(
            self.policy, pool.retry_budget, request, exc, tries.number, self._time()
        )
        if reason is None:
            self._trace("gave_up", request, attempt=tries.number, error=str(exc))
            raise final_error(exc, tries, self.policy, request) from None
        pool.stats.retries += 1
        # A stale connection is replayed at once on a new one; other failures back off.
        tries.fresh = reason == reasons.STALE
        delay = 0.0 if tries.fresh else self.policy.backoff(tries.number)
        self._trace(
            "retry_scheduled",
            request,
            attempt=tries.number,
            reason=reason,
            delay=delay,
            error=str(exc),
        )
        if delay:
            await self._sleep(delay, deadline, tries, request)
        tries.number += 1

    async def _after_status(
        self,
        request: Request,
        deadline: float | None,
        tries: _Tries,
        resp: Response,
        streaming: bool,
    ) -> bool:
        """Whether to retry because of the status; if so, wait as asked or backed off."""
        pool = self._pool_for(request)
        if (
            not self.policy.retry_status(resp.status, tries.number)
            or not request.replayable
            or not pool.retry_budget.try_retry(self._time())
        ):
            return False
        asked = self.policy.retry_after(resp.headers.get("retry-after"))
        wait = asked if asked is not None else self.policy.backoff(tries.number)
        if streaming:  # the body unread: its connection goes
            conn, ex = resp._held
            conn.abandon(ex, reasons.RETRYING_STATUS)
        pool.stats.retries += 1
        self._trace(
            "retry_scheduled",
            request,
            attempt=tries.number,
            reason=reasons.STATUS,
            delay=wait,
            error=f"HTTP {resp.status}",
        )
        await self._sleep(wait, deadline, tries, request)
        tries.fresh = False
        tries.number += 1
        return True

    async def _sleep(
        self, delay: float, deadline: float | None, tries: _Tries, request: Request
    ) -> None:
        await wait_before_retry(delay, deadline, self._time(), tries, request)

    def _finish(
        self,
        request: Request,
        conn: Connection,
        ex: Exchange,
        head: ResponseHead,
        streaming: bool,
        settings: AttemptSettings,
    ) -> Response:
        """The Response: the body joined and decoded, or a stream over the exchange
        (``resp._held``: the connection and exchange it holds until read)."""
        if self.tracer is not None:
            self._trace("head_received", request, status=head.status, connection_id=conn.id)
        if head.has_set_cookie and self.on_set_cookie is not None:
            self.on_set_cookie(request.url, head.headers)
        resp = Response(request.method, request.url, head)
        resp._elapsed = ex.head_at - ex.sent_at
        decoder = None
        if settings.decompress and head.has_content_encoding:
            decoder = decoder_for(head.headers, settings.max_body_size)
        if streaming:
            resp._stream = lambda: _stream_body(conn, ex, decoder)
            resp._held = (conn, ex)
            return resp
        content = ex.joined()
        if decoder is not None:
            content = decoder.decode(content) + decoder.flush()
        resp._content = content
        return resp

    def _trace(self, event: str, request: Request, **facts: object) -> None:
        if self.tracer is not None:
            self.tracer(event, method=request.method, url=request.url, **facts)


async def _stream_body(
    conn: Connection, ex: Exchange, decoder: Decoder | None
) -> AsyncIterator[bytes]:
    while True:
        chunk = await conn.read_body_chunk(ex)
        if chunk is None:
            break
        if decoder is not None:
            chunk = decoder.decode(chunk)
        if chunk:
            yield chunk
    if decoder is not None:
        tail = decoder.flush()
        if tail:
            yield tail
