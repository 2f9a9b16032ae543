"""The connection pool of one origin.

Theory of operation
-------------------
The pool counts every connection of its origin against ``max_conns_per_host``:
the ones dialling, idle and active. Idle connections wait in a deque, reused
last-in first-out (the warmest socket, and the cold ones age out) or
first-in first-out. Requests that find neither an idle connection nor a free
slot queue as waiters, served first come first served.

All bookkeeping is plain code without ``await``: ``_hand_over()`` pairs waiters
with idle connections or free slots. The only awaits are the dial and a waiter's
wait.

A connection leaves the idle deque the moment the server closes it
(``connection_closed`` from its ``eof_received``), or when it expires on the
client's clock. Its expiry time is computed once, when it goes idle: the
client's ``max_idle_conn_duration`` and ``max_conn_duration``, the server's
``Keep-Alive: timeout=`` hint, and what the pool has *learned*: the idle time
after which this server was seen closing connections. Each limit is applied a
safety margin early, so the client retires a connection before the server
does. One timer per pool reaps expired idle connections, sleeping until the
earliest expiry.

Before handing out an idle connection that has been idle more than a few
milliseconds, the pool polls its socket once: a FIN that arrived while the
loop was busy is caught there, not by the request.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from .connection import QUIET_CHECK_AFTER, Connection
from .dial import Default
from .errors import ClientClosedError, ConnectError, PoolTimeout
from .exchange import Attempt
from .learning import ServerMemory
from .request import Origin, Proxy, Route
from .retry import RetryBudget
from .trace import Tracer

# Retire a connection this long before the server's stated or learned idle timeout,
# or this fraction of it, whichever is larger: the FIN may already be in flight.
EXPIRY_MARGIN = 0.25
EXPIRY_MARGIN_FRACTION = 0.1
# Lifetimes and request counts are cut by up to this fraction, at random, per connection,
# so connections opened together do not all expire together.
JITTER = 0.1


@dataclass
class PoolLimits:
    max_conns: int = 512
    max_idle_duration: float | None = 10.0
    max_conn_duration: float | None = None
    max_requests_per_conn: int | None = None
    max_wait: float | None = None
    lifo: bool = True


@dataclass
class PoolStats:
    """Counters of one origin's pool, as ``client.stats()`` shows them."""

    created: int = 0
    reused: int = 0
    closed_by_server_idle: int = 0
    expired: int = 0
    retries: int = 0
    learned_idle_timeout: float | None = None
    learned_max_requests: int | None = None
    close_reasons: dict[str, int] = field(default_factory=dict)


class Dialer(Protocol):
    """Dials a connection along a route, within a connect timeout (its own by default)."""

    def __call__(
        self, route: Route, connect_timeout: float | Default | None = ..., /
    ) -> Coroutine[Any, Any, Connection]: ...


class Pool:
    """Connections to one origin. ``acquire_nowait`` / ``acquire`` hand them out."""

    def __init__(
        self,
        origin: Origin,
        limits: PoolLimits,
        dial: Dialer,
        loop: asyncio.AbstractEventLoop,
        tracer: Tracer | None = None,
        via: Proxy | None = None,
    ) -> None:
        self.origin = origin
        self.via = via  # the proxy this pool's connections are tunnelled through
        self.route = Route(origin, via)
        self.limits = limits
        idle = limits.max_idle_duration
        self._max_idle = idle if idle is not None else float("inf")
        self.loop = loop
        self.stats = PoolStats()
        self.memory = ServerMemory()
        self.retry_budget = RetryBudget()
        self.tracer = tracer
        self._dial = dial
        self._idle: deque[Connection] = deque()
        self._total = 0  # connections dialling, idle or active, and slots promised to waiters
        self._dialling = 0
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._handing_over = False
        self._reaper: asyncio.TimerHandle | None = None
        self._reaper_at = float("inf")
        self._closed = False
        self._conns: set[Connection] = set()

    # -- handing out ------------------------------------------------------------

    def acquire_nowait(self) -> Connection | None:
        """An idle connection fit for reuse, or None. Never awaits."""
        idle = self._idle
        while idle:
            conn = idle.pop() if self.limits.lifo else idle.popleft()
            now = self.loop.time()
            if now >= conn.expires_at:
                self._retire(conn, "expired")
                continue
            if now - conn.idle_since > QUIET_CHECK_AFTER and not conn.socket_is_quiet():
                # The server closed it (or wrote to it) while the loop was busy.
                self._note_server_close(conn, now, exact=False)
                conn.close("found_closed_before_reuse")
                continue
            self.stats.reused += 1
            if self.tracer is not None:
                self.tracer(
                    "connection_reused",
                    origin=str(self.origin),
                    connection_id=conn.id,
                    idle_time=now - conn.idle_since,
                    requests_served=conn.requests_served,
                )
            return conn
        return None

    async def acquire(
        self, deadline: float | None = None, attempt: Attempt | None = None
    ) -> tuple[Connection, bool]:
        """A connection for one request, and whether it is a reused one.

        ``attempt``, when given, holds the request's own connect and pool timeouts.
        """
        while True:
            self._check_open()
            conn = self.acquire_nowait()
            if conn is not None:
                return conn, True
            if self._total < self.limits.max_conns:
                self._total += 1
                return await self._dial_new(attempt), False
            got = await self._wait(deadline, attempt)
            if got is None:
                return await self._dial_new(attempt), False
            if not got.is_closed:
                return got, True
            # Handed over, then closed by the server before this request could use it.

    async def dial_fresh(
        self, deadline: float | None = None, attempt: Attempt | None = None
    ) -> Connection:
        """A newly dialled connection, never an idle one (for replays)."""
        while True:
            self._check_open()
            if self._total < self.limits.max_conns:
                self._total += 1
                return await self._dial_new(attempt)
            got = await self._wait(deadline, attempt)
            if got is None:
                return await self._dial_new(attempt)  # the slot promised to this waiter
            if not got.is_closed:
                self._total += 1  # keep its slot when it closes
                got.close("making room for a fresh connection")
                return await self._dial_new(attempt)
            # Handed over but closed meanwhile: its slot went to the pool; wait again.

    async def _dial_new(self, attempt: Attempt | None) -> Connection:
        """Dial into a slot already counted in ``_total``."""
        self._dialling += 1
        try:
            if attempt is None:
                conn = await self._dial(self.route)
            else:
                conn = await self._dial(self.route, attempt.connect_timeout)
        except BaseException:
            self._total -= 1
            self._hand_over()
            raise
        finally:
            self._dialling -= 1
        if conn.is_closed:
            self._total -= 1
            self._hand_over()
            raise ConnectError(f"{self.origin} closed the connection as soon as it was made")
        conn.listener = self
        self.stats.created += 1
        if self.tracer is not None:
            self.tracer("connection_dialled", origin=str(self.origin), connection_id=conn.id)
        self._conns.add(conn)
        jitter = 1.0 - random.random() * JITTER
        lifetime = self.limits.max_conn_duration
        if lifetime:
            conn.retire_at = conn.expires_at = conn.created_at + lifetime * jitter
        max_requests = self.limits.max_requests_per_conn
        if max_requests:
            conn.request_limit = max(1, round(max_requests * jitter))
        return conn

    async def _wait(self, deadline: float | None, attempt: Attempt | None) -> Connection | None:
        """Queue for an idle connection (returned) or a free slot (None)."""
        waiter: asyncio.Future[Connection | None] = self.loop.create_future()
        self._waiters.append(waiter)
        timeout = self.limits.max_wait if attempt is None else attempt.pool_timeout
        if deadline is not None:
            left = deadline - self.loop.time()
            timeout = left if timeout is None else min(timeout, left)
        timer = None
        if timeout is not None:
            timer = self.loop.call_later(max(0.0, timeout), _expire_waiter, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            self._give_back(waiter)
            raise
        except PoolTimeout:
            raise PoolTimeout(
                f"no connection to {self.origin} became free within {timeout:g} s "
                f"(max_conns_per_host={self.limits.max_conns}, all busy); raise "
                "max_conns_per_host or max_conn_wait_timeout"
            ) from None
        finally:
            if timer is not None:
                timer.cancel()
            if waiter.done() and waiter in self._waiters:
                self._waiters.remove(waiter)  # timed out or cancelled: not served

    def _give_back(self, waiter: asyncio.Future[Connection | None]) -> None:
        """A cancelled waiter may already hold a connection or a slot: return it."""
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            conn = waiter.result()
            if conn is None:
                self._total -= 1
            else:
                self._to_idle(conn)
            self._hand_over()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(f"the client is closed; no new requests to {self.origin}")

    # -- what connections tell the pool ------------------------------------------------

    def connection_idle(self, conn: Connection) -> None:
        """A connection finished a request and may be reused: make it idle, or retire it.

        Runs once per request, so the common case (no limit known but the client's
        own idle duration) costs one call; the limits are looked at only if any exist.
        """
        if self._closed:
            conn.close("client_closed")
            return
        now = conn.idle_since  # the connection went idle just now
        memory = self.memory
        memory.survived(now, conn.requests_served, conn.last_idle)
        if (
            memory.learned
            or conn.request_limit is not None
            or conn.keep_alive_max is not None
            or conn.keep_alive_timeout is not None
        ):
            expires = self._limited_expiry(conn, now)
            if expires is None:
                return
        else:
            expires = now + self._max_idle
        if conn.retire_at < expires:
            expires = conn.retire_at
        conn.expires_at = expires
        self._idle.append(conn)
        if expires < self._reaper_at:
            self._schedule_reaper(expires)
        if self._waiters:
            self._hand_over()

    def _limited_expiry(self, conn: Connection, now: float) -> float | None:
        """When an idle connection expires under the known limits; None if it is retired.

        Limits: the client's max_requests_per_conn (jittered per connection), the
        server's Keep-Alive hint, and what the pool learned from the server's closes.
        The idle ones are applied a margin early (see ``_early``).
        """
        served = conn.requests_served
        learned = self.stats.learned_max_requests = self.memory.max_requests(now)
        for limit in (learned, conn.request_limit, conn.keep_alive_max):
            if limit is not None and served >= limit:
                self._retire(conn, "max_requests")
                return None
        longest = self._max_idle
        if conn.keep_alive_timeout is not None:
            longest = min(longest, _early(float(conn.keep_alive_timeout)))
        idle_timeout = self.stats.learned_idle_timeout = self.memory.idle_timeout(now)
        if idle_timeout is not None:
            longest = min(longest, _early(idle_timeout))
        return now + longest

    def connection_closed(self, conn: Connection, why: str) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
        if why == "server_closed_idle":
            # Idle in the deque, or handed to a waiter that has not used it yet.
            self._note_server_close(conn, self.loop.time())
        self._total -= 1
        self._conns.discard(conn)
        reasons = self.stats.close_reasons
        reasons[why] = reasons.get(why, 0) + 1
        if self.tracer is not None:
            self.tracer(
                "connection_closed",
                origin=str(self.origin),
                connection_id=conn.id,
                why=why,
                requests_served=conn.requests_served,
                age=self.loop.time() - conn.created_at,
            )
        self._hand_over()

    # -- bookkeeping, no awaits ------------------------------------------------------------

    def _hand_over(self) -> None:
        """Pair waiting requests with idle connections, then with free slots."""
        if self._handing_over:
            return  # re-entered through a connection closing below; the outer loop goes on
        self._handing_over = True
        try:
            waiters = self._waiters
            while waiters:
                if waiters[0].done():
                    waiters.popleft()
                    continue
                conn = self.acquire_nowait()
                if conn is not None:
                    waiters.popleft().set_result(conn)
                elif self._total < self.limits.max_conns:
                    self._total += 1  # the slot is promised to this waiter
                    waiters.popleft().set_result(None)
                else:
                    return
        finally:
            self._handing_over = False

    def _to_idle(self, conn: Connection) -> None:
        if conn.is_closed:
            return
        self._idle.append(conn)
        if conn.expires_at < self._reaper_at:
            self._schedule_reaper(conn.expires_at)

    def _note_server_close(self, conn: Connection, now: float, *, exact: bool = True) -> None:
        """Count a server's close of an idle connection, and learn from it when exact.

        A close found by poll() before reuse happened some time while the loop was
        busy: its idle time is an upper bound, so nothing is learned from it.
        """
        stats = self.stats
        stats.closed_by_server_idle += 1
        idle_for = now - conn.idle_since
        if self.tracer is not None:
            self.tracer(
                "connection_closed_idle",
                origin=str(self.origin),
                connection_id=conn.id,
                idle_time=idle_for,
                requests_served=conn.requests_served,
            )
        if exact:
            self._learn(now, idle_for, conn.requests_served)

    def note_stale_failure(self, idle_time: float, requests_served: int) -> None:
        """A reused connection died under a request with no answer: learn as from an idle close.

        Under load a connection is often handed to the next request before the
        server's FIN is read, so a server's request limit shows up here, as a
        failure right after the Nth response, rather than as an idle close.
        """
        self._learn(self.loop.time(), idle_time, requests_served)

    def _learn(self, now: float, idle_time: float, requests_served: int) -> None:
        self.memory.observe(now, idle_time, requests_served)
        self.stats.learned_idle_timeout = self.memory.idle_timeout(now)
        self.stats.learned_max_requests = self.memory.max_requests(now)

    def drop_idle_since(self, idle_time: float) -> None:
        """One connection idle this long was found dead: so are those idle longer."""
        now = self.loop.time()
        for conn in [c for c in self._idle if now - c.idle_since >= idle_time > 0]:
            conn.close("dropped_with_dead_peer")

    def _retire(self, conn: Connection, why: str) -> None:
        if why == "expired":
            self.stats.expired += 1
        if self.tracer is not None:
            self.tracer(
                "connection_expired", origin=str(self.origin), connection_id=conn.id, why=why
            )
        conn.close(why)

    def _schedule_reaper(self, when: float) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        self._reaper_at = when
        self._reaper = self.loop.call_at(when, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        self._reaper_at = float("inf")
        now = self.loop.time()
        for conn in [c for c in self._idle if c.expires_at <= now]:
            self._idle.remove(conn)
            self._retire(conn, "expired")
        if self._idle:
            self._schedule_reaper(min(c.expires_at for c in self._idle))

    # -- shutting down ---------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection, fail every waiter and every request in flight."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(
                    ClientClosedError(f"the client was closed while waiting for {self.origin}")
                )
        for conn in list(self._conns):
            conn.close("client_closed")

    @property
    def counts(self) -> dict[str, int]:
        return {
            "open": self._total,
            "idle": len(self._idle),
            "active": self._total - len(self._idle) - self._dialling,
            "dialling": self._dialling,
            "waiting": len(self._waiters),
        }

    def __repr__(self) -> str:
        c = self.counts
        return (
            f"<Pool {self.origin} open={c['open']} idle={c['idle']} active={c['active']} "
            f"dialling={c['dialling']} "
            f"waiting={c['waiting']} created={self.stats.created} reused={self.stats.reused}>"
        )


def _early(timeout: float) -> float:
    """A server's idle timeout, minus the safety margin.

    The margin is a tenth of the timeout, but at least 0.25 s, and for short
    timeouts never more than half: a server that closes after 0.2 s idle still
    gets its connections reused for 0.1 s.
    """
    margin = max(timeout * EXPIRY_MARGIN_FRACTION, min(EXPIRY_MARGIN, timeout / 2))
    return timeout - margin


def _expire_waiter(waiter: asyncio.Future[Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout("pool wait timed out"))
