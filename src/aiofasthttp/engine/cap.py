"""``max_conns``: one cap on the connections of every origin together.

Theory of operation
-------------------
Each origin's pool counts its own connections against ``max_conns_per_host``.
A pool about to dial first takes a slot here, and gives it back when that
connection closes (or its dial fails), so the cap counts connections open and
dialling across origins. Reused connections never come here: the cap costs a
dial, never a request.

When no slot is free, the dial queues, first come first served, and the cap
makes room if it can: it closes the connection that has been idle longest in
any *other* origin's pool (the requesting pool would have reused its own). The
close frees a slot, which goes to the first in the queue. A queued dial that
waits past ``max_conn_wait_timeout`` (or its request's deadline) fails with
PoolTimeout.

Why 512 by default: it is the per-host default too, so a client never holds
more sockets than one origin alone may have; it stays under the usual soft limit
of 1,024 file descriptors with half left for the rest of the process (a
gateway's own inbound sockets); and it sits above every benchmark cell
(concurrency up to 256). A per-host limit set higher raises the default cap with
it, so raising ``max_conns_per_host`` alone is never silently undone.
(httpx and aiohttp use 100 across hosts, which caps a single busy origin at 100.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from .. import reasons
from ..errors import ClientClosedError, PoolTimeout
from .interfaces import IdleConnection


class IdleHolder(Protocol):
    """What the cap needs of a pool: its loop, and its longest-idle connection, to
    close for room."""

    loop: asyncio.AbstractEventLoop

    def longest_idle(self) -> IdleConnection | None: ...


DEFAULT_MAX_CONNS = 512


class ConnectionCap:
    """Slots for connections across all of a client's pools; FIFO waiters."""

    def __init__(self, limit: int, pools: Callable[[], Iterable[IdleHolder]]) -> None:
        if limit < 1:
            raise ValueError("max_conns must be at least 1")
        self.limit = limit
        self.used = 0
        self.evicted = 0  # idle connections closed to make room
        self._pools = pools
        # Dials waiting for a slot, and the pool of each (its own idle ones are not evicted).
        self.waiters: deque[tuple[asyncio.Future[None], IdleHolder]] = deque()
        self._closed = False

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody queues for it (no await on the common path)."""
        if self.used < self.limit and not self.waiters and not self._closed:
            self.used += 1
            return True
        return False

    async def take(self, pool: IdleHolder, timeout: float | None) -> None:
        """A slot for one new connection of ``pool``; waits (FIFO) when none is free."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self.try_take():
            return
        waiter: asyncio.Future[None] = pool.loop.create_future()
        entry = (waiter, pool)
        self.waiters.append(entry)
        self._make_room(pool)
        timer = None
        if timeout is not None:
            timer = pool.loop.call_later(max(0.0, timeout), _expire, waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # the slot came just as the dial was cancelled
            raise
        except PoolTimeout:
            raise PoolTimeout(
                f"no connection slot became free within {timeout:g} s "
                f"(max_conns={self.limit} across origins, all busy, none idle elsewhere); "
                "raise max_conns or max_conn_wait_timeout"
            ) from None
        finally:
            if timer is not None:
                timer.cancel()
            if entry in self.waiters:
                self.waiters.remove(entry)

    def give_back(self) -> None:
        """A connection closed (or a dial failed): its slot goes to the first waiter."""
        waiters = self.waiters
        while waiters:
            waiter, _ = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes over, still counted
                return
        self.used -= 1

    def make_room(self) -> None:
        """A connection went idle while dials wait: let the first waiter's dial have room."""
        for waiter, pool in self.waiters:
            if not waiter.done():
                self._make_room(pool)
                return

    def _make_room(self, asking: IdleHolder) -> None:
        """Close the longest-idle connection of another origin, if there is one."""
        oldest: IdleConnection | None = None
        for pool in self._pools():
            if pool is asking:
                continue
            conn = pool.longest_idle()
            if conn is not None and (oldest is None or conn.idle_since < oldest.idle_since):
                oldest = conn
        if oldest is not None:
            self.evicted += 1
            oldest.close(reasons.EVICTED_FOR_MAX_CONNS)

    def close(self) -> None:
        self._closed = True
        waiters = list(self.waiters)
        self.waiters.clear()  # in place: the pools hold this deque
        for waiter, _ in waiters:
            if not waiter.done():
                waiter.set_exception(ClientClosedError("the client was closed"))


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout("slot wait timed out"))
