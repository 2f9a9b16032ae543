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
loop was busy is caught there, not by the request. A request that is replayed
if its connection dies (a GET) skips that poll where the server's closing rules
are not expected to have closed the connection (see ``acquire_nowait``); one that
is not replayed (a POST) is always polled.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Collection, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .. import reasons
from ..errors import ClientClosedError, ConnectError, PoolTimeout
from ..h1.url import Origin, Proxy, Route
from ..policy.learning import CLOSE_AFTER_RESPONSE, ServerMemory
from ..policy.retry import RetryBudget
from .connection import QUIET_CHECK_AFTER
from .dial import Default
from .exchange import AttemptSettings
from .interfaces import PooledConnection
from .trace import Tracer

if TYPE_CHECKING:
    from .cap import ConnectionCap

# Retire a connection this long before the server's stated or learned idle timeout,
# or this fraction of it, whichever is larger: the FIN may already be in flight.
EXPIRY_MARGIN = 0.25
EXPIRY_MARGIN_FRACTION = 0.1
# A request that is not replayed (a POST) does not take a connection idle this share
# of the shortest idle time after which the server was seen closing one.
NEAR_IDLE_CLOSE_SHARE = 0.8
# Idle spells longer than this, and longer than any after which a connection to the
# server was seen answering, are untried: a request not replayed does not go first.
UNTRIED_IDLE_FLOOR = 0.05
# Why a connection is passed over (kept for replayable requests), not retired.
_PASS_OVER = (reasons.SUSPECTED_REQUEST_LIMIT, reasons.UNTRIED_IDLE)
# A suspicion neither learned nor disproved lapses after this long: a workload of
# requests that are never replayed cannot disprove it (they keep off those connections).
SUSPICION_TTL = 10.0
# Lifetimes and request counts are cut by up to this fraction, at random, per connection,
# so connections opened together do not all expire together.
JITTER = 0.1


# The Client's max_idle_conn_duration unless told otherwise (the doctor measures against it).
DEFAULT_MAX_IDLE = 10.0


@dataclass
class PoolLimits:
    max_conns: int = 512
    max_idle_duration: float | None = DEFAULT_MAX_IDLE
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
    # A connection died silently under its request after this many: until that is
    # learned as the server's limit or disproved, no connection that has served as
    # many carries a request that is not replayed.
    suspected_max_requests: int | None = None
    close_reasons: dict[str, int] = field(default_factory=dict)
    # Idle connections a request that is not replayed passed over (kept for others), by why.
    passed_over: dict[str, int] = field(default_factory=dict)


ConnT = TypeVar("ConnT", bound=PooledConnection)
ConnT_co = TypeVar("ConnT_co", bound=PooledConnection, covariant=True)


class Dial(Protocol[ConnT_co]):
    """How a pool makes a connection for its route, within a connect timeout (the
    dialer's own by default)."""

    def __call__(
        self, route: Route, connect_timeout: float | Default | None = ..., /
    ) -> Coroutine[Any, Any, ConnT_co]: ...


class Pool(Generic[ConnT]):
    """Connections to one origin. ``acquire_nowait`` / ``acquire`` hand them out."""

    def __init__(
        self,
        origin: Origin,
        limits: PoolLimits,
        dial: Dial[ConnT],
        loop: asyncio.AbstractEventLoop,
        tracer: Tracer | None = None,
        via: Proxy | None = None,
        cap: ConnectionCap | None = None,
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
        self._idle: deque[ConnT] = deque()
        self._total = 0  # connections dialling, idle or active, and slots promised to waiters
        self._dialling = 0
        self._waiters: deque[asyncio.Future[ConnT | None]] = deque()
        self._handing_over = False
        self._reaper: asyncio.TimerHandle | None = None
        self._reaper_at = float("inf")
        self._closed = False
        self._conns: set[ConnT] = set()
        self._suspect_after: int | None = None  # see PoolStats.suspected_max_requests
        self._suspect_until = 0.0
        # max_conns across origins: a slot per connection; dials of other origins waiting.
        self.cap = cap
        self._cap_waiters: Collection[object] = () if cap is None else cap.waiters

    # -- handing out ------------------------------------------------------------

    def acquire_nowait(self, unreplayable: bool = False, now: float | None = None) -> ConnT | None:
        """An idle connection fit for reuse, or None. Never awaits.

        ``unreplayable``: the request will not be replayed if the connection dies
        under it (a POST), so the check is stricter (see ``_unfit_for_unreplayable``).
        ``now``: the loop's time, if the caller has just read it (one read less).
        """
        idle = self._idle
        if unreplayable and idle:
            return self._acquire_for_unreplayable()
        if now is None:
            now = self.loop.time()
        memory = self.memory
        while idle:
            conn = idle.pop() if self.limits.lifo else idle.popleft()
            if now >= conn.expires_at:
                self._retire(conn, reasons.EXPIRED)
                continue
            # The poll() before reuse, for a replayable request: only after QUIET_CHECK_AFTER
            # idle, and only where the server's closing rules may have closed the connection
            # (memory.expects_no_close(), inline: an idle spell not well within those recently
            # answered after, or near an idle close seen; a count a close came after). Else
            # only a close by no rule (a restart) can be waiting, and the poll finds it only
            # if its FIN came during the current loop iteration. What a GET risks unpolled:
            # written to a connection closed that recently, it fails with no response byte
            # and is replayed at once on a new connection (reasons.STALE), as it is when
            # reused within QUIET_CHECK_AFTER. The poll is a syscall with the GIL let go; at
            # 1,024 connections a loop iteration outlasts QUIET_CHECK_AFTER, and most reuses
            # paid it (about 6% of the rate), on spells nearly all well within those answered.
            idle_for = now - conn.idle_since
            if (
                idle_for > QUIET_CHECK_AFTER
                and (
                    idle_for > memory.no_close_idle
                    or conn.requests_served >= memory.no_close_served
                    or now > memory.no_close_until
                )
                and not conn.socket_is_quiet()
            ):
                self._found_closed(conn, now)
                continue
            # self._reuse(conn, now), inline: a call is 2% of a request's instructions.
            self.stats.reused += 1
            if self.tracer is not None:
                _trace_reuse(self.tracer, self.origin, conn, now)
            return conn
        return None

    def _acquire_for_unreplayable(self) -> ConnT | None:
        """``acquire_nowait`` for a request that is not replayed if its connection dies.

        The socket is polled even right after the last response: a server that
        closes after its Nth response sends the FIN just behind it, and it is
        usually in the kernel before the next request would be written. Connections
        under suspicion, or idle longer than any spell the server was seen to survive,
        are passed over (left for replayable requests); those idle about as long as
        the server was seen closing idle ones are retired.
        """
        idle = self._idle
        passed_over: list[ConnT] | None = None  # made only when one is passed over
        try:
            while idle:
                conn = idle.pop() if self.limits.lifo else idle.popleft()
                now = self.loop.time()
                if now >= conn.expires_at:
                    self._retire(conn, reasons.EXPIRED)
                    continue
                if not conn.socket_is_quiet():
                    self._found_closed(conn, now)
                    continue
                unfit = self._unfit_for_unreplayable(conn, now)
                if unfit in _PASS_OVER:
                    if passed_over is None:
                        passed_over = []
                    passed_over.append(conn)
                    counts = self.stats.passed_over
                    counts[unfit] = counts.get(unfit, 0) + 1
                    continue
                if unfit is not None:
                    self._retire(conn, unfit)
                    continue
                return self._reuse(conn, now)
            return None
        finally:
            if passed_over:
                if self.limits.lifo:
                    passed_over.reverse()
                    idle.extend(passed_over)
                else:
                    idle.extendleft(passed_over)

    def _unfit_for_unreplayable(self, conn: ConnT, now: float) -> str | None:
        """Why ``conn`` should not carry a request that is not replayed, or None."""
        suspect = self._suspect_after
        if suspect is not None and conn.requests_served >= suspect:
            if now < self._suspect_until:
                return reasons.SUSPECTED_REQUEST_LIMIT
            self._suspect(None)  # neither learned nor disproved in time: let it go
        idle = now - conn.idle_since
        memory = self.memory
        shortest = memory.shortest_idle_close(now)
        if shortest is not None and idle >= shortest * NEAR_IDLE_CLOSE_SHARE:
            return reasons.NEAR_IDLE_CLOSE
        if idle > UNTRIED_IDLE_FLOOR and idle > memory.longest_idle_survived(now):
            # No connection to this server has been seen to answer after such an idle
            # spell: its idle timeout may be just this long (the first pause of a poller
            # meets it before any close has been seen). A replayable request finds out.
            return reasons.UNTRIED_IDLE
        return None

    def _found_closed(self, conn: ConnT, now: float) -> None:
        """poll() found the idle ``conn`` readable: the server closed it (or wrote to it)
        while the loop was busy."""
        self._note_server_close(conn, now, exact=False)
        conn.close(reasons.FOUND_CLOSED_BEFORE_REUSE)

    def _reuse(self, conn: ConnT, now: float) -> ConnT:
        self.stats.reused += 1
        if self.tracer is not None:
            _trace_reuse(self.tracer, self.origin, conn, now)
        return conn

    async def acquire(
        self,
        deadline: float | None = None,
        unreplayable: bool = False,
        attempt: AttemptSettings | None = None,
    ) -> tuple[ConnT, bool]:
        """A connection for one request, and whether it is a reused one.

        ``attempt``, when given, holds the request's own connect and pool timeouts.
        """
        while True:
            self._check_open()
            conn = self.acquire_nowait(unreplayable)
            if conn is not None:
                return conn, True
            if self._total < self.limits.max_conns:
                self._total += 1
                return await self._dial_new(deadline, attempt), False
            if unreplayable and self._idle:
                # Every idle connection was passed over (kept for replayable requests)
                # and the pool is full: waiting would wait for nothing. The longest idle
                # gives way to a fresh one.
                oldest = self._idle.popleft() if self.limits.lifo else self._idle.pop()
                self._total += 1  # keep its slot when it closes, for this request
                oldest.close(reasons.MAKING_ROOM)
                return await self._dial_new(deadline, attempt), False
            got = await self._wait(deadline, attempt)
            if got is None:
                return await self._dial_new(deadline, attempt), False
            if got.is_closed:
                continue  # handed over, then closed by the server before it was used
            if not unreplayable or got.socket_is_quiet():
                return got, True
            # Handed over right after its last response, with the server's FIN behind it.
            self._total += 1  # keep its slot when it closes, for this request
            self._found_closed(got, self.loop.time())
            return await self._dial_new(deadline, attempt), False

    async def dial_fresh(
        self, deadline: float | None = None, attempt: AttemptSettings | None = None
    ) -> ConnT:
        """A newly dialled connection, never an idle one (for replays)."""
        while True:
            self._check_open()
            if self._total < self.limits.max_conns:
                self._total += 1
                return await self._dial_new(deadline, attempt)
            got = await self._wait(deadline, attempt)
            if got is None:
                return await self._dial_new(deadline, attempt)  # the slot promised to this waiter
            if not got.is_closed:
                self._total += 1  # keep its slot when it closes
                got.close(reasons.MAKING_ROOM)
                return await self._dial_new(deadline, attempt)
            # Handed over but closed meanwhile: its slot went to the pool; wait again.

    async def _dial_new(
        self, deadline: float | None = None, attempt: AttemptSettings | None = None
    ) -> ConnT:
        """Dial into a slot already counted in ``_total`` (and take one of max_conns)."""
        self._dialling += 1
        cap = self.cap
        try:
            if cap is not None and not cap.try_take():
                await cap.take(self, self._wait_timeout(deadline, attempt))
            try:
                if attempt is None:
                    conn = await self._dial(self.route)
                else:
                    conn = await self._dial(self.route, attempt.connect_timeout)
            except BaseException:
                if cap is not None:
                    cap.give_back()
                raise
        except BaseException:
            self._total -= 1
            self._hand_over()
            raise
        finally:
            self._dialling -= 1
        if conn.is_closed or self._closed:
            if cap is not None:
                cap.give_back()
            self._total -= 1
            if self._closed:
                # close() ran while this dial was in flight: the connection was not yet
                # among those it closed, so it is closed here (not yet adopted: no pool
                # event), and never used.
                conn.close(reasons.CLIENT_CLOSED)
                raise ClientClosedError(f"the client was closed while dialling {self.origin}")
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

    async def _wait(
        self, deadline: float | None, attempt: AttemptSettings | None = None
    ) -> ConnT | None:
        """Queue for an idle connection (returned) or a free slot (None)."""
        waiter: asyncio.Future[ConnT | None] = self.loop.create_future()
        self._waiters.append(waiter)
        timeout = self._wait_timeout(deadline, attempt)
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

    def _wait_timeout(
        self, deadline: float | None, attempt: AttemptSettings | None = None
    ) -> float | None:
        """How long a request may wait for a connection: max_conn_wait_timeout (or the
        request's own pool_timeout), or less if its deadline comes first."""
        timeout = self.limits.max_wait if attempt is None else attempt.pool_timeout
        if deadline is not None:
            left = deadline - self.loop.time()
            timeout = left if timeout is None else min(timeout, left)
        return timeout

    def _give_back(self, waiter: asyncio.Future[ConnT | None]) -> None:
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

    def connection_idle(self, conn: ConnT) -> None:
        """A connection finished a request and may be reused: make it idle, or retire it.

        Runs once per request, so the common case (no limit known but the client's
        own idle duration) costs one call; the limits are looked at only if any exist.
        """
        if self._closed:
            conn.close(reasons.CLIENT_CLOSED)
            return
        now = conn.idle_since  # the connection went idle just now
        memory = self.memory
        served = conn.requests_served
        # memory.has_news(...), inline: most responses beat no record, and cost no call.
        if (
            served > memory.served_record
            or conn.last_idle > memory.idle_record
            or now > memory.renew_at
        ):
            memory.survived(now, served, conn.last_idle)
        if self._suspect_after is not None and served > self._suspect_after:
            self._suspect(None)  # disproved: a connection answered beyond it
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
        elif self._cap_waiters:  # dials to other origins wait for room under max_conns
            assert self.cap is not None
            self.cap.make_room()

    def _limited_expiry(self, conn: ConnT, now: float) -> float | None:
        """When an idle connection expires under the known limits; None if it is retired.

        Limits: the client's max_requests_per_conn (jittered per connection), the
        server's Keep-Alive hint, and what the pool learned from the server's closes.
        The idle ones are applied a margin early (see ``_early``).
        """
        served = conn.requests_served
        learned = self.stats.learned_max_requests = self.memory.max_requests(now)
        for limit in (learned, conn.request_limit, conn.keep_alive_max):
            if limit is not None and served >= limit:
                self._retire(conn, reasons.MAX_REQUESTS)
                return None
        longest = self._max_idle
        if conn.keep_alive_timeout is not None:
            longest = min(longest, _early(float(conn.keep_alive_timeout)))
        idle_timeout = self.stats.learned_idle_timeout = self.memory.idle_timeout(now)
        if idle_timeout is not None:
            longest = min(longest, _early(idle_timeout))
        return now + longest

    def connection_closed(self, conn: ConnT, why: str) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
        if why == reasons.SERVER_CLOSED_IDLE:
            # Idle in the deque, or handed to a waiter that has not used it yet.
            self._note_server_close(conn, self.loop.time())
        self._total -= 1
        self._conns.discard(conn)
        if self.cap is not None:
            self.cap.give_back()
        counts = self.stats.close_reasons
        counts[why] = counts.get(why, 0) + 1
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

    def _to_idle(self, conn: ConnT) -> None:
        if conn.is_closed:
            return
        self._idle.append(conn)
        if conn.expires_at < self._reaper_at:
            self._schedule_reaper(conn.expires_at)

    def _note_server_close(self, conn: ConnT, now: float, *, exact: bool = True) -> None:
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
        if exact or idle_for < CLOSE_AFTER_RESPONSE:
            # Found by poll(), the idle time is only an upper bound; but a close this
            # soon after a response still tells the request count it came after.
            self._learn(now, idle_for, conn.requests_served, conn.created_at)

    def note_stale_failure(
        self, idle_time: float, requests_served: int, age: float | None = None
    ) -> None:
        """A reused connection died under a request with no answer: learn as from an idle close.

        Under load a connection is often handed to the next request before the
        server's FIN is read, so a server's request limit shows up here, as a
        failure right after the Nth response, rather than as an idle close.
        """
        now = self.loop.time()
        # Right after a response, the death looks like a request limit (an idle close
        # would have come after some idle time): suspect it until learned or disproved.
        if (
            requests_served
            and idle_time < CLOSE_AFTER_RESPONSE
            and (self._suspect_after is None or requests_served < self._suspect_after)
        ):
            self._suspect(requests_served, now + SUSPICION_TTL)
        self._learn(now, idle_time, requests_served, None if age is None else now - age)

    def _suspect(self, requests_served: int | None, until: float = 0.0) -> None:
        self._suspect_after = self.stats.suspected_max_requests = requests_served
        self._suspect_until = until

    def _learn(
        self, now: float, idle_time: float, requests_served: int, born: float | None = None
    ) -> None:
        memory = self.memory
        memory.observe(now, idle_time, requests_served, born)
        self.stats.learned_idle_timeout = memory.idle_timeout(now)
        learned = self.stats.learned_max_requests = memory.max_requests(now)
        if learned is not None:
            self._suspect(None)  # confirmed: the learned limit retires them now
            # It applies at once, also to connections already idle.
            for conn in [c for c in self._idle if c.requests_served >= learned]:
                self._retire(conn, reasons.MAX_REQUESTS)

    def longest_idle(self) -> ConnT | None:
        """The idle connection idle longest (the deque's oldest end), if any."""
        return self._idle[0] if self._idle else None

    def drop_idle_since(self, idle_time: float) -> None:
        """One connection idle this long was found dead: so are those idle longer."""
        now = self.loop.time()
        for conn in [c for c in self._idle if now - c.idle_since >= idle_time > 0]:
            conn.close(reasons.DROPPED_WITH_DEAD_PEER)

    def _retire(self, conn: ConnT, why: str) -> None:
        if why == reasons.EXPIRED:
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
            self._retire(conn, reasons.EXPIRED)
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
            conn.close(reasons.CLIENT_CLOSED)

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


def _trace_reuse(tracer: Tracer, origin: Origin, conn: PooledConnection, now: float) -> None:
    tracer(
        "connection_reused",
        origin=str(origin),
        connection_id=conn.id,
        idle_time=now - conn.idle_since,
        requests_served=conn.requests_served,
    )


def _early(timeout: float) -> float:
    """A server's idle timeout, minus the safety margin.

    The margin is a tenth of the timeout, but at least 0.25 s, and for short
    timeouts never more than half: a server that closes after 0.2 s idle still
    gets its connections reused for 0.1 s.
    """
    margin = max(timeout * EXPIRY_MARGIN_FRACTION, min(EXPIRY_MARGIN, timeout / 2))
    return timeout - margin


def _expire_waiter(waiter: asyncio.Future[ConnT | None]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout("pool wait timed out"))
