"""The pool's bookkeeping: what it keeps on each connection, and everything it does
without ``await``.

Theory of operation
-------------------
Every request passes through two pool methods: ``acquire_nowait`` hands out an idle
connection, ``connection_idle`` takes one back. Both are plain code, as is all the
rest of the bookkeeping: handing idle connections and free slots to waiters
(``_hand_over``), expiry, retiring, and learning from the server's closes. pool.py's
``Pool`` adds what awaits (dialling, waiting for a connection) and its generic type.

Idle connections wait in a deque, reused last-in first-out (the warmest socket, and
the cold ones age out) or first-in first-out. A connection leaves the deque the
moment the server closes it (``connection_closed`` from its ``eof_received``), or
when it expires on the client's clock. Its expiry time is computed once, when it
goes idle: the client's ``max_idle_conn_duration`` and ``max_conn_duration``, the
server's ``Keep-Alive: timeout=`` hint, and what the pool has *learned*: the idle
time after which this server was seen closing connections. Each limit is applied a
safety margin early, so the client retires a connection before the server does. One
timer per pool reaps expired idle connections, sleeping until the earliest expiry.

Before handing out a connection idle more than a few milliseconds, the pool polls
its socket once: a FIN that arrived while the loop was busy is caught there, not by
the request. A request that is replayed if its connection dies (a GET) skips that
poll where the server's closing rules are not expected to have closed the
connection (see ``acquire_nowait``); one that is not replayed (a POST) is always
polled.

Compiled
--------
setup.py compiles this module with poolcore.pxd. ``PooledState`` (the fields the
pool keeps on a connection; the engine's ``Connection`` and the unit tests' fakes
extend it), ``PoolStats`` and ``PoolCore`` are then extension types. The two
per-request methods read them, and the pool's ``ServerMemory`` (compiled too), as C
structs, times as doubles: 800 instructions a request, against about 3,400 as Python.
(Compiled code that reads *untyped* objects is slower than the interpreter: see
docs/design.md.) The ``.py`` stays the source, and runs as written where no compiler
was at hand.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import reasons
from .._compiled import read_as_slots
from ..errors import ClientClosedError
from ..h1.url import Origin, Proxy, Route
from ..policy.learning import CLOSE_AFTER_RESPONSE, ServerMemory
from ..policy.retry import RetryBudget
from .clock import loop_clock
from .trace import Tracer

if TYPE_CHECKING:
    from .cap import ConnectionCap

# A connection idle for less than this is not checked with poll() before reuse:
# a FIN that arrived so recently would mostly still be in flight anyway.
QUIET_CHECK_AFTER = 0.005
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
_INF = float("inf")


@dataclass
class PoolLimits:
    max_conns: int = 512
    max_idle_duration: float | None = DEFAULT_MAX_IDLE
    max_conn_duration: float | None = None
    max_requests_per_conn: int | None = None
    max_wait: float | None = None
    lifo: bool = True


class PoolStats:
    """Counters of one origin's pool, as ``client.stats()`` shows them."""

    def __init__(self) -> None:
        self.created = 0
        self.reused = 0
        self.closed_by_server_idle = 0
        self.expired = 0
        self.retries = 0
        self.learned_idle_timeout: float | None = None
        self.learned_max_requests: int | None = None
        # A connection died silently under its request after this many: until that is
        # learned as the server's limit or disproved, no connection that has served as
        # many carries a request that is not replayed.
        self.suspected_max_requests: int | None = None
        self.close_reasons: dict[str, int] = {}
        # Idle connections a request that is not replayed passed over (kept for
        # others), by why.
        self.passed_over: dict[str, int] = {}


class PooledState:
    """What a pool keeps on each of its connections, and what it asks of them.

    The engine's ``Connection`` extends it, and so do the unit tests' fake
    connections: the pool's rules are tested without sockets. A subclass says
    whether it is closed, polls its socket, and closes.
    """

    def __init__(self, conn_id: int, now: float) -> None:
        self.id = conn_id
        self.created_at = now
        self.idle_since = now  # loop time it last went idle
        self.last_idle = 0.0  # how long it sat idle before its latest request
        self.requests_served = 0
        self.expires_at = _INF  # set by the pool each time it goes idle
        self.retire_at = _INF  # the end of its lifetime (max_conn_duration)
        self.request_limit: int | None = None  # its max_requests_per_conn (jittered)
        self.keep_alive_timeout: int | None = None  # the server's Keep-Alive hint
        self.keep_alive_max: int | None = None
        self.listener: Any = None  # the pool, once the pool has adopted it

    @property
    def is_closed(self) -> bool:
        raise NotImplementedError

    def socket_is_quiet(self) -> bool:
        """True if nothing (no FIN, no RST, no byte) is waiting unread on its socket."""
        raise NotImplementedError

    def close(self, reason: str = reasons.CLIENT_CLOSED) -> None:
        raise NotImplementedError


class PoolCore:
    """One route's connections: everything but dialling and waiting (see pool.Pool)."""

    def __init__(
        self,
        origin: Origin,
        limits: PoolLimits,
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
        self._max_idle = idle if idle is not None else _INF
        self.loop = loop
        self._clock = loop_clock(loop)  # bound once: read on every reuse
        self.stats = PoolStats()
        self.memory = ServerMemory()
        self.retry_budget = RetryBudget()
        self.tracer = tracer
        self._idle: deque[PooledState] = deque()
        # Bound once: compiled, a method looked up on the deque per call costs more
        # than the call.
        self._take_idle = self._idle.pop if limits.lifo else self._idle.popleft
        self._put_idle = self._idle.append
        self._total = 0  # connections dialling, idle or active, and slots promised to waiters
        self._dialling = 0
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._handing_over = False
        self._reaper: asyncio.TimerHandle | None = None
        self._reaper_at = _INF
        self._closed = False
        self._conns: set[PooledState] = set()
        self._suspect_after: int | None = None  # see PoolStats.suspected_max_requests
        self._suspect_until = 0.0
        # max_conns across origins: a slot per connection; dials of other origins waiting.
        self.cap = cap
        self._cap_waiters: Collection[object] = () if cap is None else cap.waiters

    # -- handing out ------------------------------------------------------------

    def acquire_nowait(
        self, unreplayable: bool = False, now: float | None = None
    ) -> PooledState | None:
        """An idle connection fit for reuse, or None. Never awaits.

        ``unreplayable``: the request will not be replayed if the connection dies
        under it (a POST), so the check is stricter (see ``_unfit_for_unreplayable``).
        ``now``: the loop's time, if the caller has just read it (one read less).
        """
        idle = self._idle
        if unreplayable and idle:
            return self._acquire_for_unreplayable()
        # The time as a C double (``now`` may be None, so it stays an object), and the
        # memory and the connection typed: compiled, their fields are struct reads.
        t: float = self._clock() if now is None else now
        memory: ServerMemory = self.memory
        conn: PooledState
        while idle:
            conn = self._take_idle()
            if t >= conn.expires_at:
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
            idle_for: float = t - conn.idle_since
            if (
                idle_for > QUIET_CHECK_AFTER
                and (
                    idle_for > memory.no_close_idle
                    or conn.requests_served >= memory.no_close_served
                    or t > memory.no_close_until
                )
                and not conn.socket_is_quiet()
            ):
                self._found_closed(conn, t)
                continue
            # self._reuse(conn, t), inline: compiled, a method call through self costs
            # more than what it does.
            self.stats.reused += 1
            if self.tracer is not None:
                _trace_reuse(self.tracer, self.origin, conn, t)
            return conn
        return None

    def _acquire_for_unreplayable(self) -> PooledState | None:
        """``acquire_nowait`` for a request that is not replayed if its connection dies.

        The socket is polled even right after the last response: a server that
        closes after its Nth response sends the FIN just behind it, and it is
        usually in the kernel before the next request would be written. Connections
        under suspicion, or idle longer than any spell the server was seen to survive,
        are passed over (left for replayable requests); those idle about as long as
        the server was seen closing idle ones are retired.
        """
        idle = self._idle
        passed_over: list[PooledState] | None = None  # made only when one is passed over
        conn: PooledState
        try:
            while idle:
                conn = self._take_idle()
                now = self._clock()
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

    def _unfit_for_unreplayable(self, conn: PooledState, now: float) -> str | None:
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

    def _found_closed(self, conn: PooledState, now: float) -> None:
        """poll() found the idle ``conn`` readable: the server closed it (or wrote to it)
        while the loop was busy."""
        self._note_server_close(conn, now, exact=False)
        conn.close(reasons.FOUND_CLOSED_BEFORE_REUSE)

    def _reuse(self, conn: PooledState, now: float) -> PooledState:
        self.stats.reused += 1
        if self.tracer is not None:
            _trace_reuse(self.tracer, self.origin, conn, now)
        return conn

    def adopt(self, conn: PooledState) -> None:
        """A newly dialled connection joins the pool (its slot already counted)."""
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

    # -- what connections tell the pool ------------------------------------------------

    def connection_idle(self, conn: PooledState) -> None:
        """A connection finished a request and may be reused: make it idle, or retire it.

        Runs once per request, so the common case (no limit known but the client's
        own idle duration) costs one call; the limits are looked at only if any exist.
        """
        if self._closed:
            conn.close(reasons.CLIENT_CLOSED)
            return
        now: float = conn.idle_since  # the connection went idle just now
        memory: ServerMemory = self.memory
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
        expires: float
        if (
            memory.learned
            or conn.request_limit is not None
            or conn.keep_alive_max is not None
            or conn.keep_alive_timeout is not None
        ):
            limited = self._limited_expiry(conn, now)
            if limited is None:
                return
            expires = limited
        else:
            expires = now + self._max_idle
        if conn.retire_at < expires:
            expires = conn.retire_at
        conn.expires_at = expires
        self._put_idle(conn)
        if expires < self._reaper_at:
            self._schedule_reaper(expires)
        if self._waiters:
            self._hand_over()
        elif self._cap_waiters:  # dials to other origins wait for room under max_conns
            assert self.cap is not None
            self.cap.make_room()

    def _limited_expiry(self, conn: PooledState, now: float) -> float | None:
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

    def connection_closed(self, conn: PooledState, why: str) -> None:
        if conn in self._idle:
            self._idle.remove(conn)
        if why == reasons.SERVER_CLOSED_IDLE:
            # Idle in the deque, or handed to a waiter that has not used it yet.
            self._note_server_close(conn, self._clock())
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
                age=self._clock() - conn.created_at,
            )
        self._hand_over()

    # -- bookkeeping ---------------------------------------------------------------------

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

    def _to_idle(self, conn: PooledState) -> None:
        if conn.is_closed:
            return
        self._idle.append(conn)
        if conn.expires_at < self._reaper_at:
            self._schedule_reaper(conn.expires_at)

    def _note_server_close(self, conn: PooledState, now: float, *, exact: bool = True) -> None:
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
        now = self._clock()
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

    def longest_idle(self) -> PooledState | None:
        """The idle connection idle longest (the deque's oldest end), if any."""
        return self._idle[0] if self._idle else None

    def drop_idle_since(self, idle_time: float) -> None:
        """One connection idle this long was found dead: so are those idle longer."""
        now = self._clock()
        for conn in [c for c in self._idle if now - c.idle_since >= idle_time > 0]:
            conn.close(reasons.DROPPED_WITH_DEAD_PEER)

    def _retire(self, conn: PooledState, why: str) -> None:
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
        self._reaper_at = _INF
        now = self._clock()
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


def _trace_reuse(tracer: Tracer, origin: Origin, conn: PooledState, now: float) -> None:
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


# Compiled, the pool's own Python code (pool.Pool) and the engine's read these as
# slots; as Python this does nothing.
read_as_slots(
    PooledState, ["id", "keep_alive_max", "keep_alive_timeout", "listener", "request_limit"]
)
read_as_slots(
    PoolCore,
    [
        "cap",
        "limits",
        "loop",
        "memory",
        "origin",
        "retry_budget",
        "route",
        "stats",
        "tracer",
        "via",
        "_conns",
        "_idle",
        "_waiters",
    ],
)
