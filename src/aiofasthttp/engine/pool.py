"""The connection pool of one origin: handing out connections, dialling, waiting.

The pool counts every connection of its origin against ``max_conns_per_host``:
the ones dialling, idle and active. Requests that find neither an idle connection
nor a free slot queue as waiters, served first come first served.

All bookkeeping is plain code without ``await``, in poolcore.py's ``PoolCore``
(compiled): reuse, expiry, learning, and ``_hand_over()``, which pairs waiters with
idle connections or free slots. What is here awaits: the dial and a waiter's wait.
``Pool`` also gives the core its type: generic over its connections, which extend
``PooledState``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .. import reasons
from ..errors import ClientClosedError, ConnectError, PoolTimeout
from ..h1.url import Origin, Proxy, Route
from .dial import Default
from .exchange import AttemptSettings
from .poolcore import PoolCore, PooledState, PoolLimits
from .trace import Tracer

if TYPE_CHECKING:
    from .cap import ConnectionCap

ConnT = TypeVar("ConnT", bound=PooledState)
ConnT_co = TypeVar("ConnT_co", bound=PooledState, covariant=True)


class Dial(Protocol[ConnT_co]):
    """How a pool makes a connection for its route, within a connect timeout (the
    dialer's own by default)."""

    def __call__(
        self, route: Route, connect_timeout: float | Default | None = ..., /
    ) -> Coroutine[Any, Any, ConnT_co]: ...


class Pool(PoolCore, Generic[ConnT]):
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
        super().__init__(origin, limits, loop, tracer, via, cap)
        self._dial = dial

    if TYPE_CHECKING:
        # The core's, typed: the connections it hands out are this pool's.
        def acquire_nowait(
            self, unreplayable: bool = False, now: float | None = None
        ) -> ConnT | None: ...

        def longest_idle(self) -> ConnT | None: ...

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
            self._found_closed(got, self._clock())
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
        self.adopt(conn)
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
            left = deadline - self._clock()
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


def _expire_waiter(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout("pool wait timed out"))
