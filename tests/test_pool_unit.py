"""The pool's rules against fake connections, through the pool's own interface.

The pool is generic over its connections, which extend
:class:`~aiofasthttp.engine.poolcore.PooledState`; these are plain ones that keep
the facts the pool reads and tell it when they close, as a real connection does.
No sockets: the rules (reuse, expiry, request limits, hand-over to waiters,
learning, closing) are what is tested; tests/test_pool.py tests them again through
Client against real servers.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiofasthttp import ClientClosedError, PoolTimeout, reasons
from aiofasthttp.engine.interfaces import IdleConnection
from aiofasthttp.engine.pool import Pool
from aiofasthttp.engine.poolcore import PooledState, PoolLimits
from aiofasthttp.h1.url import Origin, Route
from aiofasthttp.policy.learning import TTL
from testkit import new_loop

ORIGIN = Origin("http", "pool.test", 80)
_ids = itertools.count(1)


class FakeConnection(PooledState):
    """A connection as the pool sees it; ``serve()`` plays one request on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(next(_ids), loop.time())
        self.loop = loop
        self.quiet = True  # what a poll() of its socket would say
        self.closed_with: str | None = None
        self.via: str | None = None

    @property
    def server_memory(self) -> Any:
        return None if self.listener is None else self.listener.memory

    @property
    def is_closed(self) -> bool:
        return self.closed_with is not None

    def socket_is_quiet(self) -> bool:
        return self.quiet

    def close(self, reason: str = reasons.CLIENT_CLOSED) -> None:
        if self.closed_with is None:
            self.closed_with = reason
            self.listener.connection_closed(self, reason)

    def serve(self, idle_before: float = 0.0) -> None:
        """One request served; then the connection goes idle, as a real one reports."""
        self.requests_served += 1
        self.last_idle = idle_before
        self.idle_since = self.loop.time()
        self.listener.connection_idle(self)


def _check(conn: FakeConnection) -> IdleConnection:
    return conn  # the type checker verifies a pooled connection is what the cap reads


class Harness:
    def __init__(self, loop: asyncio.AbstractEventLoop, **limits: Any) -> None:
        self.loop = loop
        self.dialled: list[FakeConnection] = []
        self.pool: Pool[FakeConnection] = Pool(ORIGIN, PoolLimits(**limits), self.dial, loop)

    async def dial(self, route: Route) -> FakeConnection:
        assert route == Route(ORIGIN)
        conn = FakeConnection(self.loop)
        self.dialled.append(conn)
        return conn


def run(main: Callable[[asyncio.AbstractEventLoop], Awaitable[None]]) -> None:
    loop = new_loop("asyncio")
    try:
        loop.run_until_complete(asyncio.wait_for(main(loop), 10))
    finally:
        loop.close()


def test_an_idle_connection_is_reused_and_a_busy_pool_dials() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        assert h.pool.acquire_nowait() is None
        conn, reused = await h.pool.acquire()
        assert not reused and h.dialled == [conn] and conn.listener is h.pool
        assert h.pool.counts["active"] == 1
        conn.serve()
        assert h.pool.counts == {"open": 1, "idle": 1, "active": 0, "dialling": 0, "waiting": 0}
        assert h.pool.acquire_nowait() is conn
        assert h.pool.stats.created == 1 and h.pool.stats.reused == 1

    run(main)


def test_lifo_hands_out_the_most_recently_idle_and_fifo_the_oldest() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        for lifo in (True, False):
            h = Harness(loop, lifo=lifo)
            a, _ = await h.pool.acquire()
            b, _ = await h.pool.acquire()
            a.serve()
            b.serve()
            assert h.pool.acquire_nowait() is (b if lifo else a)

    run(main)


def test_an_expired_idle_connection_is_retired_not_reused() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, max_idle_duration=10.0)
        conn, _ = await h.pool.acquire()
        conn.serve()
        conn.expires_at = loop.time() - 1  # as if its 10 s had passed
        assert h.pool.acquire_nowait() is None
        assert conn.closed_with == reasons.EXPIRED
        assert h.pool.stats.expired == 1
        assert h.pool.stats.close_reasons == {reasons.EXPIRED: 1}
        assert h.pool.counts["open"] == 0

    run(main)


def test_a_connection_at_its_request_limit_is_retired_when_it_goes_idle() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, max_requests_per_conn=3)
        conn, _ = await h.pool.acquire()
        limit = conn.request_limit
        assert limit is not None and 2 <= limit <= 3  # jittered by up to 10%
        for served in range(1, limit + 1):
            conn.serve()
            if served < limit:
                assert h.pool.acquire_nowait() is conn
        assert conn.closed_with == reasons.MAX_REQUESTS
        assert h.pool.acquire_nowait() is None

    run(main)


def test_the_servers_keep_alive_max_retires_a_connection() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn, _ = await h.pool.acquire()
        conn.keep_alive_max = 1
        conn.serve()
        assert conn.closed_with == reasons.MAX_REQUESTS

    run(main)


def test_a_close_found_before_reuse_is_counted_and_the_next_is_dialled() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn, _ = await h.pool.acquire()
        conn.serve()
        conn.idle_since -= 1.0  # idle long enough to be looked at before reuse
        conn.quiet = False  # and its socket has a FIN (or bytes) waiting
        assert h.pool.acquire_nowait() is None
        assert conn.closed_with == reasons.FOUND_CLOSED_BEFORE_REUSE
        assert h.pool.stats.closed_by_server_idle == 1
        fresh, reused = await h.pool.acquire()
        assert fresh is not conn and not reused

    run(main)


def test_a_waiter_gets_the_connection_that_goes_idle() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, max_conns=1)
        conn, _ = await h.pool.acquire()
        waiting = asyncio.ensure_future(h.pool.acquire())
        await asyncio.sleep(0)
        assert h.pool.counts["waiting"] == 1 and not waiting.done()
        conn.serve()
        assert await waiting == (conn, True)
        assert len(h.dialled) == 1

    run(main)


def test_a_waiter_gives_up_at_its_deadline() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, max_conns=1, max_wait=0.05)
        await h.pool.acquire()
        with pytest.raises(PoolTimeout):
            await h.pool.acquire()
        assert h.pool.counts["waiting"] == 0

    run(main)


def test_a_server_close_while_idle_is_counted_and_leaves_the_idle_set() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conns = [(await h.pool.acquire())[0] for _ in range(3)]
        for conn in conns:
            conn.serve()
        for conn in conns:  # each closed by the server after about 2 s idle
            conn.idle_since = loop.time() - 2.0
            conn.closed_with = reasons.SERVER_CLOSED_IDLE
            h.pool.connection_closed(conn, reasons.SERVER_CLOSED_IDLE)
        assert h.pool.counts["idle"] == 0
        assert h.pool.stats.close_reasons == {reasons.SERVER_CLOSED_IDLE: 3}
        assert h.pool.stats.closed_by_server_idle == 3
        # One burst of closes is one observation: nothing is learned from it alone
        # (tests/test_learning.py has the learning rules).
        assert h.pool.stats.learned_idle_timeout is None
        assert (await h.pool.acquire())[1] is False  # the next request dials

    run(main)


def test_closing_the_pool_closes_its_connections_and_fails_its_waiters() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, max_conns=2)
        a, _ = await h.pool.acquire()
        b, _ = await h.pool.acquire()
        waiting = asyncio.ensure_future(h.pool.acquire())
        await asyncio.sleep(0)
        assert h.pool.counts["waiting"] == 1
        h.pool.close()
        assert a.closed_with == b.closed_with == reasons.CLIENT_CLOSED
        with pytest.raises(ClientClosedError):
            await waiting
        with pytest.raises(ClientClosedError):
            await h.pool.acquire()

    run(main)


# -- requests that are not replayed (a POST): the pool checks harder -----------------------


async def _two_idle(h: Harness) -> tuple[FakeConnection, FakeConnection]:
    """Two idle connections that have served 5 requests each."""
    a, _ = await h.pool.acquire()
    b, _ = await h.pool.acquire()
    for conn in (a, b):
        conn.requests_served = 4
        conn.serve()
    return a, b


async def _idle_within_answered(
    h: Harness, loop: asyncio.AbstractEventLoop, ago: float = 0.0
) -> FakeConnection:
    """A connection that served 1 request and sat idle 1 s, with a FIN waiting unread,
    where another answered after 2 s idle (``ago`` s ago)."""
    conn, _ = await h.pool.acquire()
    conn.serve()
    h.pool.memory.survived(loop.time() - ago, 1, 2.0)
    conn.idle_since -= 1.0  # past QUIET_CHECK_AFTER
    conn.quiet = False
    return conn


def test_a_get_skips_the_poll_where_no_close_is_expected() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn = await _idle_within_answered(h, loop)
        # Neither the server's idle timeout (over 2 s) nor a request limit (no close seen
        # after any count) can have closed it: a GET takes it unpolled, replayed if need be.
        assert h.pool.acquire_nowait() is conn
        assert conn.closed_with is None

    run(main)


@pytest.mark.parametrize("why", ["idle_longer", "idle_close_near", "count_closed", "lapsed"])
def test_a_get_polls_where_a_close_may_be_waiting(why: str) -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        # "lapsed": the answer is older than TTL, and no longer vouches for anything.
        conn = await _idle_within_answered(h, loop, ago=TTL + 1 if why == "lapsed" else 0.0)
        if why == "idle_longer":
            conn.idle_since -= 1.5  # idle 2.5 s: no connection was seen answering after that
        elif why == "idle_close_near":
            h.pool.memory.observe(loop.time(), 1.2, 1)  # a close after 1.2 s idle: 1 s is near
        elif why == "count_closed":
            h.pool.memory.observe(loop.time(), 0.001, 1)  # one closed right after its 1st answer
        assert h.pool.acquire_nowait() is None
        assert conn.closed_with == reasons.FOUND_CLOSED_BEFORE_REUSE

    run(main)


def test_a_post_polls_where_no_close_is_expected_too() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn = await _idle_within_answered(h, loop)
        assert h.pool.acquire_nowait(unreplayable=True) is None
        assert conn.closed_with == reasons.FOUND_CLOSED_BEFORE_REUSE

    run(main)


def test_an_unreplayable_request_polls_even_right_after_a_response() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn, _ = await h.pool.acquire()
        conn.serve()  # idle for no time at all: a GET does not poll it...
        conn.quiet = False  # ...though the server's FIN is already behind the response
        assert h.pool.acquire_nowait() is conn
        conn.serve()
        assert h.pool.acquire_nowait(unreplayable=True) is None  # a POST's check sees it
        assert conn.closed_with == reasons.FOUND_CLOSED_BEFORE_REUSE

    run(main)


def test_a_silent_death_keeps_unreplayable_requests_off_connections_as_old() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        a, b = await _two_idle(h)
        # A third connection served 5 and died under its 6th, right after the 5th answer.
        h.pool.note_stale_failure(idle_time=0.0004, requests_served=5, age=1.0)
        assert h.pool.stats.suspected_max_requests == 5
        assert h.pool.acquire_nowait(unreplayable=True) is None  # both passed over...
        assert a.closed_with is None and b.closed_with is None  # ...not closed
        assert h.pool.stats.passed_over == {reasons.SUSPECTED_REQUEST_LIMIT: 2}
        assert h.pool.counts["idle"] == 2
        got = h.pool.acquire_nowait()  # a GET still takes one (replayed if it dies)
        assert got in (a, b)
        got.serve()  # and it answered its 6th: the suspicion is disproved
        assert h.pool.stats.suspected_max_requests is None
        assert h.pool.acquire_nowait(unreplayable=True) in (a, b)

    run(main)


def test_a_death_after_idle_time_is_no_request_limit_suspicion() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        await _two_idle(h)
        h.pool.note_stale_failure(idle_time=0.2, requests_served=5, age=1.0)  # an idle close
        assert h.pool.stats.suspected_max_requests is None
        assert h.pool.acquire_nowait(unreplayable=True) is not None

    run(main)


def test_a_suspicion_lapses_unless_learned_or_disproved() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        await _two_idle(h)
        h.pool.note_stale_failure(idle_time=0.0, requests_served=5, age=1.0)
        assert h.pool.acquire_nowait(unreplayable=True) is None
        h.pool._suspect_until = loop.time() - 1  # as if SUSPICION_TTL had passed
        assert h.pool.acquire_nowait(unreplayable=True) is not None
        assert h.pool.stats.suspected_max_requests is None

    run(main)


def test_an_unreplayable_request_retires_a_connection_near_an_observed_idle_close() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn, _ = await h.pool.acquire()
        conn.serve()
        h.pool.memory.observe(loop.time(), 0.2, 3)  # the server closed one idle 0.2 s
        conn.idle_since = loop.time() - 0.19  # this one has been idle 0.19 s
        assert h.pool.acquire_nowait() is conn  # a GET takes it (it is replayed if need be)
        conn.serve()
        conn.idle_since = loop.time() - 0.19
        assert h.pool.acquire_nowait(unreplayable=True) is None
        assert conn.closed_with == reasons.NEAR_IDLE_CLOSE

    run(main)


def test_a_request_limit_met_in_waves_is_learned_from_the_second_generation() -> None:
    """At full speed the connections that replaced the first to die meet the limit
    within SEPARATE seconds: being newer than the first close, theirs is a second event."""

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        now = loop.time()
        h.pool.note_stale_failure(idle_time=0.0, requests_served=50, age=0.5)
        assert h.pool.stats.learned_max_requests is None
        h.pool.note_stale_failure(idle_time=0.0, requests_served=50, age=0.5)  # same generation
        assert h.pool.stats.learned_max_requests is None
        born_after = loop.time() - now  # made after the first close
        assert h.pool.memory._served  # the first close is on record
        h.pool.note_stale_failure(idle_time=0.0, requests_served=50, age=born_after / 2)
        assert h.pool.stats.learned_max_requests == 50

    run(main)


def test_an_unreplayable_request_does_not_go_first_after_an_untried_idle_spell() -> None:
    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop)
        conn, _ = await h.pool.acquire()
        conn.serve()
        conn.idle_since = loop.time() - 0.2  # idle longer than any spell survived so far
        assert h.pool.acquire_nowait(unreplayable=True) is None  # passed over, kept
        assert conn.closed_with is None and h.pool.counts["idle"] == 1
        assert h.pool.stats.passed_over == {reasons.UNTRIED_IDLE: 1}
        assert h.pool.acquire_nowait() is conn  # a GET takes it...
        conn.serve(idle_before=0.2)  # ...and it answered after 0.2 s idle
        conn.idle_since = loop.time() - 0.19
        assert h.pool.acquire_nowait(unreplayable=True) is conn  # tried now

    run(main)


def test_a_full_pool_makes_room_when_every_idle_connection_was_passed_over() -> None:
    """Passed-over connections stay idle for replayable requests; when they fill the pool,
    a request that is not replayed must not wait for one to free up (none would): the
    longest idle gives way to a fresh connection."""

    async def main(loop: asyncio.AbstractEventLoop) -> None:
        h = Harness(loop, max_conns=1)
        old, _ = await h.pool.acquire()
        old.serve()
        old.idle_since = loop.time() - 0.2  # untried: passed over for a POST
        conn, reused = await asyncio.wait_for(h.pool.acquire(unreplayable=True), 1.0)
        assert not reused and conn is not old and h.dialled == [old, conn]
        assert old.closed_with == reasons.MAKING_ROOM
        assert h.pool.counts["open"] == 1

    run(main)
