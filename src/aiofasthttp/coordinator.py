"""The retry coordinator: runs a request's attempts, replaying only when it is safe.

One attempt: take a connection from the origin's pool (an idle one without an
await when there is one), write the pre-encoded request, await the head (and
in buffered mode the whole body). A failed attempt is replayed when the
policy says it may be: a stale-connection failure at once on a freshly dialled
connection, other failures after a backoff that never runs past the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from .connection import Connection, Exchange
from .errors import ConnectionClosedError, HTTPError, RequestTimeout
from .response import BodyDecoder, Response, decoder_for
from .retry import STALE, RetryPolicy
from .trace import Tracer

if TYPE_CHECKING:
    from .pool import Pool
    from .request import Request


class Attempt:
    """What a single attempt needs from the client's settings."""

    __slots__ = ("decompress", "max_body_size", "read_timeout")

    def __init__(
        self, read_timeout: float | None, max_body_size: int | None, decompress: bool
    ) -> None:
        self.read_timeout = read_timeout
        self.max_body_size = max_body_size
        self.decompress = decompress


class RetryCoordinator:
    def __init__(
        self,
        pool_for: Callable[[Request], Pool],
        policy: RetryPolicy,
        settings: Attempt,
        loop_time: Callable[[], float],
        tracer: Tracer | None = None,
    ) -> None:
        self._pool_for = pool_for
        self.policy = policy
        self._settings = settings
        self._time = loop_time
        self._tracer = tracer

    async def run(
        self, request: Request, deadline: float | None, streaming: bool
    ) -> tuple[Response, Connection | None, Exchange | None]:
        policy = self.policy
        errors: list[BaseException] = []
        fresh = False
        attempt = 1
        budget = self._pool_for(request).retry_budget
        budget.record_request(self._time())
        while True:
            try:
                resp, conn, ex = await self._attempt(request, deadline, streaming, fresh)
            except HTTPError as exc:
                errors.append(exc)
                reason = policy.replay_reason(request, exc, attempt)
                if reason is not None and not budget.try_retry(self._time()):
                    exc.args = (
                        (
                            f"{exc.args[0]} [not replayed: the retry budget for "
                            f"{request.origin} is spent]",
                            *exc.args[1:],
                        )
                        if exc.args
                        else exc.args
                    )
                    reason = None
                if reason is None:
                    if self._tracer is not None:
                        self._tracer(
                            "gave_up",
                            method=request.method,
                            url=request.url,
                            attempt=attempt,
                            error=str(exc),
                        )
                    raise _final(exc, errors, attempt, policy, request) from None
                pool = self._pool_for(request)
                pool.stats.retries += 1
                if isinstance(exc, ConnectionClosedError) and exc.reused:
                    pool.drop_idle_since(exc.idle_time)
                fresh = reason == STALE
                delay = 0.0 if fresh else policy.backoff(attempt)
                if self._tracer is not None:
                    self._tracer(
                        "retry_scheduled",
                        method=request.method,
                        url=request.url,
                        attempt=attempt,
                        reason=reason,
                        delay=delay,
                        error=str(exc),
                    )
                if delay:
                    await self._sleep(delay, deadline, errors, request)
                attempt += 1
                continue
            if (
                not policy.retry_status(resp.status, attempt)
                or not request.replayable
                or not budget.try_retry(self._time())
            ):
                return resp, conn, ex
            asked = policy.retry_after(resp.headers.get("retry-after"))
            wait = asked if asked is not None else policy.backoff(attempt)
            if ex is not None and conn is not None:
                conn.abandon(ex, "retrying a status")
            self._pool_for(request).stats.retries += 1
            if self._tracer is not None:
                self._tracer(
                    "retry_scheduled",
                    method=request.method,
                    url=request.url,
                    attempt=attempt,
                    reason=f"status {resp.status}",
                    delay=wait,
                    error="",
                )
            await self._sleep(wait, deadline, errors, request)
            attempt += 1

    async def _sleep(
        self, delay: float, deadline: float | None, errors: list[BaseException], request: Request
    ) -> None:
        if deadline is not None and self._time() + delay >= deadline:
            last = errors[-1] if errors else None
            raise RequestTimeout(
                f"{request.method} {request.url}: the request's timeout leaves no time "
                f"for another attempt after {len(errors)} failed: {last}"
            ) from last
        await asyncio.sleep(delay)

    async def _attempt(
        self, request: Request, deadline: float | None, streaming: bool, fresh: bool
    ) -> tuple[Response, Connection | None, Exchange | None]:
        pool = self._pool_for(request)
        conn = None if fresh else pool.acquire_nowait()
        reused = conn is not None
        if conn is None:
            if fresh:
                conn = await pool.dial_fresh(deadline)
            else:
                conn, reused = await pool.acquire(deadline)
        body = request.body
        ex = conn.send(
            request.method,
            request.url,
            request.head,
            body.data,
            streaming=streaming,
            read_timeout=self._settings.read_timeout,
            deadline=deadline,
            max_body_size=self._settings.max_body_size,
            reused=reused,
        )
        tracer = self._tracer
        try:
            if body.make_stream is not None:
                await conn.write_chunked(ex, body.make_stream())
            if tracer is not None:
                tracer(
                    "request_written",
                    method=request.method,
                    url=request.url,
                    connection_id=conn.id,
                    bytes_written=ex.bytes_written,
                )
            head = await ex.waiter
        except BaseException:
            conn.abandon(ex, "request cancelled or failed while in flight")
            raise
        if tracer is not None:
            tracer("head_received", method=request.method, url=request.url, status=head.status)
        resp = Response(
            request.method, request.url, head.status, head.reason, head.version, head.headers
        )
        settings = self._settings
        decoder = decoder_for(head.headers, settings.max_body_size) if settings.decompress else None
        if streaming:
            resp._stream = lambda: _stream_body(conn, ex, decoder)
            return resp, conn, ex
        chunks = ex.chunks
        content = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if decoder is not None:
            content = decoder.decode(content) + decoder.flush()
        resp._content = content
        return resp, None, None


async def _stream_body(
    conn: Connection, ex: Exchange, decoder: BodyDecoder | None
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


def _final(
    exc: HTTPError, errors: list[BaseException], attempt: int, policy: RetryPolicy, request: Request
) -> HTTPError:
    """The last error, told which attempt it was, with every attempt's error attached."""
    exc.errors = list(errors)  # type: ignore[attr-defined]
    note = f" [attempt {attempt} of {policy.attempts}"
    processed = isinstance(exc, ConnectionClosedError) and exc.may_have_been_processed
    if processed and policy.replay_reason(request, exc, 0) is None:
        note += (
            "; not replayed: the server may have processed the request"
            if request.replayable
            else "; not replayed: its body is a one-shot iterable"
        )
    note += "]"
    if len(errors) > 1:
        note += " earlier attempts: " + " | ".join(str(e) for e in errors[:-1])
    if exc.args:
        exc.args = (f"{exc.args[0]}{note}", *exc.args[1:])
    return exc
