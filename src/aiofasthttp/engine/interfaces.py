"""The small interfaces engine modules know each other by, instead of concrete classes.

Explain needs only a connection's facts; typing it against :class:`Connection`
tied explain, connection, pool and dial into one import cycle.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..policy.learning import ServerMemory


class ConnectionFacts(Protocol):
    """What a connection can say about itself when an exchange on it fails."""

    id: int
    loop: asyncio.AbstractEventLoop
    created_at: float
    requests_served: int
    keep_alive_timeout: int | None  # the server's Keep-Alive hint
    keep_alive_max: int | None
    via: str | None  # the proxy it goes through, if any

    @property
    def server_memory(self) -> ServerMemory | None:
        """How its server was seen closing connections (its pool's), once a pool has it."""


class DialedConnection(Protocol):
    """What a Dialer makes and hands over: an asyncio protocol it can say the proxy of,
    and drop before anyone adopted it. (The engine's Connection has this without
    subclassing dial.DialedProtocol: compiled, it is an extension type.)"""

    via: str | None

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...

    def data_received(self, data: bytes | memoryview) -> None: ...

    def eof_received(self) -> bool | None: ...

    def discard(self) -> None: ...


class IdleConnection(Protocol):
    """What the cap reads of a pool's idle connection: when it went idle, to close
    the one idle longest across pools. (What a pool itself keeps on its connections
    is poolcore.PooledState, a class: compiled, the pool reads it as a C struct.)"""

    idle_since: float  # loop time it last went idle

    def close(self, reason: str = ...) -> None: ...
