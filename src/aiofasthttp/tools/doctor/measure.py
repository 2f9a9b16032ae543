"""What the server does: keep-alive at all, the idle timeout it really applies
(bracketed by probes held idle), how many requests it serves on a connection, and
how long it lets one busy connection live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...errors import (
    ConnectionClosedError,
    ReadTimeout,
)
from .probe import _PeerClosed, _Probe, _Site
from .report import (
    ANNOUNCED,
    SILENT,
    DoctorOptions,
    IdleTimeout,
    KeepAliveCheck,
    Lifetime,
    RequestLimit,
)

# How long to wait for the server to close a connection it said it would close.
CLOSE_WAIT = 2.0
# The idle timeout is measured to within this fraction of it, or this many seconds.
TOLERANCE_FRACTION = 0.1
TOLERANCE_SECONDS = 0.25
# The first round's shortest gap; and a bound on the bisection rounds.
SHORTEST_GAP = 0.25
MAX_ROUNDS = 6
# A busy connection's pause between requests: well under the shortest idle timeout
# the idle probes resolve, so only a lifetime limit (or the request limit) ends it.
LIFETIME_GAP = 0.1


# -- 1. keep-alive at all ----------------------------------------------------------


async def check_keep_alive(site: _Site, options: DoctorOptions, http10: bool) -> KeepAliveCheck:
    """Whether a second request is served on the connection of a first one."""
    check = KeepAliveCheck("HTTP/1.0 with Connection: keep-alive" if http10 else "HTTP/1.1")
    probe = _Probe(site, options, http10)
    try:
        await probe.open()
        try:
            reply = await probe.exchange()
        except _PeerClosed as exc:
            raise ConnectionClosedError(
                f"{site.host}:{site.port} closed the connection ({exc.kind}) before a "
                f"complete response to {check.request} {site.method}"
            ) from None
        head = reply.head
        check.status = head.status
        check.response_version = f"HTTP/{head.version[0]}.{head.version[1]}"
        check.says_keep_alive = reply.keep_alive
        check.connection_header = reply.header(b"connection")
        check.keep_alive_header = reply.header(b"keep-alive")
        check.keep_alive_timeout = head.keep_alive_timeout
        check.server = reply.header(b"server")
        if reply.keep_alive:
            try:
                await probe.exchange()
                check.second_request_served = True
            except _PeerClosed:
                check.close = await _close_after(site, options, http10, 1)
        else:
            closed = await probe.watch(CLOSE_WAIT)
            check.close = closed.kind if closed is not None else None
    finally:
        probe.close()
    return check


# -- 2. the idle timeout -----------------------------------------------------------


@dataclass
class _Outcome:
    gap: float
    kind: str  # "served", "closed" (seen while idle), "failed" (the request after), "error"
    idle: float  # the idle time at which the outcome was seen
    close: str | None = None
    sent: bytes = b""
    error: str | None = None


async def _idle_probe(site: _Site, options: DoctorOptions, http10: bool, gap: float) -> _Outcome:
    """Hold a connection idle for ``gap`` seconds (watching it), then send a request.

    The outcome's idle time is a bound on the server's idle clock, whatever the
    delays on the way: the server went idle after the first request was sent and
    before its response was read. A request served after ``idle`` is counted from
    the response (a lower bound on the server's timeout); a close is counted from
    the request (an upper bound), so a response read late under load cannot make
    a close look sooner than the server made it.
    """
    probe = _Probe(site, options, http10)
    try:
        await probe.open()
        reply = await probe.exchange()
        if not reply.keep_alive:
            return _Outcome(gap, "error", 0.0, error="the response did not keep the connection")
        start, sent = reply.done_at, reply.sent_at
        closed = await probe.watch(gap - (probe.loop.time() - start))
        if closed is not None:
            return _Outcome(gap, "closed", closed.at - sent, closed.kind, closed.sent)
        idle = probe.loop.time() - start
        try:
            await probe.exchange()
        except _PeerClosed as exc:
            # The close came before the request arrived, so before the failure was seen.
            return _Outcome(gap, "failed", probe.loop.time() - sent, exc.kind)
        except ReadTimeout:
            # Nothing came back: whatever dropped it had done so before it was sent.
            return _Outcome(gap, "failed", probe.sent_at - sent, "no answer")
        return _Outcome(gap, "served", idle)
    except Exception as exc:  # a connection that failed to set up tells nothing of idleness
        return _Outcome(gap, "error", 0.0, error=str(exc) or type(exc).__name__)
    finally:
        probe.close()


def tolerance(seconds: float) -> float:
    return max(TOLERANCE_SECONDS, TOLERANCE_FRACTION * seconds)


def first_gaps(max_idle: float) -> list[float]:
    """``max_idle``, its half, its quarter, ... down to SHORTEST_GAP, shortest first."""
    gaps = [max_idle]
    while gaps[-1] / 2 >= SHORTEST_GAP:
        gaps.append(gaps[-1] / 2)
    return sorted(gaps)


class Bracket:
    """What the idle probes found: the longest idle still served, the shortest closed."""

    def __init__(self, max_idle: float) -> None:
        self.max_idle = float(max_idle)
        self.served_after = 0.0
        self.closed_after: float | None = None
        self.seen_close: _Outcome | None = None  # the earliest close seen while idle
        self.failed: _Outcome | None = None  # the earliest request that failed after a gap
        self.errors: list[str] = []

    def add(self, outcomes: Iterable[_Outcome]) -> None:
        for o in outcomes:
            if o.kind == "served":
                self.served_after = max(self.served_after, o.idle)
            elif o.kind == "error":
                self.errors.append(o.error or "error")
            else:
                if self.closed_after is None or o.idle < self.closed_after:
                    self.closed_after = o.idle
                if o.kind == "closed":
                    if self.seen_close is None or o.idle < self.seen_close.idle:
                        self.seen_close = o
                elif self.failed is None or o.idle < self.failed.idle:
                    self.failed = o

    @property
    def consistent(self) -> bool:
        return self.closed_after is None or self.served_after < self.closed_after

    @property
    def closed_while_watched(self) -> bool:
        """The upper bound is a close seen as it happened, not a request that failed."""
        seen = self.seen_close
        return seen is not None and seen.idle == self.closed_after

    def next_gaps(self, parallel: int) -> list[float]:
        """The gaps of the next round; none when the bracket is tight (or cannot be)."""
        hi, lo = self.closed_after, self.served_after
        if hi is None or not self.consistent or hi - lo <= tolerance(hi):
            return []
        # A close seen as it came puts the timeout just below it: confirm that much.
        low = max(lo, hi - tolerance(hi)) if self.closed_while_watched else lo
        return [low + (hi - low) * k / (parallel + 1) for k in range(1, parallel + 1)]

    def result(self, rounds: int, connections: int) -> IdleTimeout:
        hi, lo = self.closed_after, self.served_after
        if hi is None:
            seconds = None
        elif not self.consistent or self.closed_while_watched:
            seconds = hi
        else:
            seconds = (lo + hi) / 2
        close = self.seen_close.close if self.seen_close is not None else None
        if close is None and self.failed is not None:
            close = SILENT
        sent = self.seen_close.sent if self.seen_close is not None else b""
        error = None
        if hi is None and lo < self.max_idle and self.errors:
            error = f"idle probes failed: {self.errors[0]}"
        return IdleTimeout(
            seconds=_r(seconds),
            served_after=round(lo, 3),
            closed_after=_r(hi),
            close=close,
            sent_before_close=_first_line(sent),
            max_idle=self.max_idle,
            consistent=self.consistent,
            rounds=rounds,
            connections=connections,
            error=error,
        )


async def _idle_round(
    site: _Site, options: DoctorOptions, http10: bool, gaps: Sequence[float]
) -> list[_Outcome]:
    """Probe every gap in parallel; a gap past an idle already seen to close is dropped."""
    tasks = {asyncio.ensure_future(_idle_probe(site, options, http10, g)): g for g in gaps}
    outcomes: list[_Outcome] = []
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            outcomes += [t.result() for t in done]
            bound = min((o.idle for o in outcomes if o.kind in ("closed", "failed")), default=None)
            if bound is not None:
                moot = {t for t in pending if tasks[t] > bound}
                for task in moot:
                    task.cancel()
                pending -= moot
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes


async def measure_idle_timeout(site: _Site, options: DoctorOptions, http10: bool) -> IdleTimeout:
    bracket = Bracket(options.max_idle)
    gaps = first_gaps(options.max_idle)
    rounds = connections = 0
    while gaps and rounds < MAX_ROUNDS:
        rounds += 1
        connections += len(gaps)
        bracket.add(await _idle_round(site, options, http10, gaps))
        gaps = bracket.next_gaps(max(1, options.parallel))
    return bracket.result(rounds, connections)


# -- 3. requests per connection ---------------------------------------------------------


async def count_requests(site: _Site, options: DoctorOptions, http10: bool) -> RequestLimit:
    """Requests one after another on one connection, until the server closes it."""
    bound = options.max_requests
    probe = _Probe(site, options, http10)
    served = 0
    try:
        await probe.open()
        while served < bound:
            try:
                reply = await probe.exchange()
            except _PeerClosed:
                close = await _close_after(site, options, http10, served)
                return RequestLimit(served, bound, announced=False, close=close)
            served += 1
            if not reply.keep_alive:
                closed = await probe.watch(CLOSE_WAIT)
                kind = closed.kind if closed is not None else None
                return RequestLimit(served, bound, announced=True, close=kind)
    finally:
        probe.close()
    return RequestLimit(None, bound)


async def _close_after(
    site: _Site, options: DoctorOptions, http10: bool, served: int
) -> str | None:
    """Replay ``served`` requests on a new connection and watch how the server closes it.

    The connection that found the close cannot tell: its next request may have
    crossed the FIN, and the server's kernel answers such data with an RST.
    """
    if served == 0:
        return None
    probe = _Probe(site, options, http10)
    try:
        await probe.open()
        for _ in range(served):
            await probe.exchange()
        closed = await probe.watch(CLOSE_WAIT)
        return closed.kind if closed is not None else None
    except (_PeerClosed, OSError):
        return None
    finally:
        probe.close()


# -- 4. the connection's lifetime ---------------------------------------------------------


def lifetime_gap(bound: float, request_limit: int | None) -> float:
    """The pause between requests: LIFETIME_GAP, or longer (up to half the shortest
    idle gap) so that a request limit is not reached before ``bound``."""
    if request_limit is None or request_limit < 2:
        return LIFETIME_GAP
    return min(SHORTEST_GAP / 2, max(LIFETIME_GAP, bound / (request_limit - 1)))


async def measure_lifetime(
    site: _Site, options: DoctorOptions, http10: bool, request_limit: int | None
) -> Lifetime:
    """Keep one connection busy until the server closes it, or for ``max_lifetime``.

    Ages are bounds on the server's own clock, whatever the delays: a request kept
    is counted from the first response (the server had accepted by then), a close
    from before the dial (it cannot have accepted sooner).
    """
    bound = options.lifetime_bound
    gap = lifetime_gap(bound, request_limit)
    probe = _Probe(site, options, http10)
    loop = probe.loop
    dialled = loop.time()
    found = Lifetime(None, 0.0, None, None, bound=round(bound, 3), gap=round(gap, 3))
    try:
        await probe.open()
        first = await probe.exchange()
        found.requests = 1
        accepted = first.done_at  # the server had accepted before it answered
        if first.keep_alive:
            await _keep_busy(probe, found, accepted, dialled)
        else:
            found.closed_at, found.close = first.done_at - dialled, ANNOUNCED
    except Exception as exc:
        found.error = str(exc) or type(exc).__name__
    finally:
        probe.close()
    if found.closed_at is not None:
        if request_limit is not None and found.requests >= request_limit:
            found.request_limit = True  # that close was the request limit's
        else:
            found.seconds = round((found.kept_until + found.closed_at) / 2, 3)
        found.closed_at = round(found.closed_at, 3)
    found.kept_until = round(found.kept_until, 3)
    return found


async def _keep_busy(probe: _Probe, found: Lifetime, accepted: float, dialled: float) -> None:
    """A request every ``found.gap`` s until the server closes or ``found.bound`` passes."""
    loop = probe.loop
    while loop.time() - dialled < found.bound:
        closed = await probe.watch(found.gap)
        if closed is not None:  # closed while idle: a load balancer's age limit, say
            found.closed_at, found.close = closed.at - dialled, closed.kind
            return
        try:
            reply = await probe.exchange()
        except _PeerClosed as exc:
            found.closed_at, found.close = loop.time() - dialled, exc.kind
            return
        except ReadTimeout:
            found.closed_at, found.close = probe.sent_at - dialled, SILENT
            return
        found.requests += 1
        if not reply.keep_alive:  # the server decided while answering it
            found.closed_at, found.close = reply.done_at - dialled, ANNOUNCED
            return
        found.kept_until = max(found.kept_until, probe.sent_at - accepted)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _first_line(data: bytes) -> str | None:
    if not data:
        return None
    return data.split(b"\r\n", 1)[0][:200].decode("latin-1")
