"""The small interfaces engine modules know each other by, instead of concrete classes.

Explain needs only a connection's facts; typing it against :class:`Connection`
tied explain, connection, pool and dial into one import cycle.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class ConnectionFacts(Protocol):
    """What a connection can say about itself when an exchange on it fails."""

    id: int
    loop: asyncio.AbstractEventLoop
    created_at: float
    requests_served: int
    keep_alive_timeout: int | None  # the server's Keep-Alive hint
    keep_alive_max: int | None
