"""The small interfaces engine modules know each other by, instead of concrete classes.

Explain needs only a connection's facts; typing it against :class:`Connection`
tied explain, connection, pool and dial into one import cycle.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

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


class PooledConnection(ConnectionFacts, Protocol):
    """What the pool needs of a connection: its facts, the bookkeeping the pool keeps
    on it, whether it is still open, and how to close it. The pool is generic over
    it, so its rules can be tested with connections that are not sockets."""

    idle_since: float  # loop time it last went idle
    last_idle: float  # how long it sat idle before its latest request
    expires_at: float  # set by the pool each time it goes idle
    retire_at: float  # the end of its lifetime (max_conn_duration)
    request_limit: int | None  # its max_requests_per_conn (jittered)
    listener: Any  # the pool, once the pool has adopted it

    @property
    def is_closed(self) -> bool: ...

    def socket_is_quiet(self) -> bool: ...

    def close(self, reason: str = ...) -> None: ...
