"""Tracing: what happens to connections and attempts, as callbacks and as DEBUG logs.

Pass ``Client(trace=obj)``; ``obj`` may define any of the methods of
:class:`Trace` (the others are skipped). The same events are logged at DEBUG
under the ``aiofasthttp`` logger. When no trace is given and DEBUG is off,
no event is built at all: every call site checks ``if tracer is not None``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

logger = logging.getLogger("aiofasthttp")

EVENTS = (
    "connection_dialled",
    "connection_reused",
    "connection_closed_idle",
    "connection_expired",
    "connection_closed",
    "request_head",
    "request_written",
    "head_received",
    "retry_scheduled",
    "gave_up",
    "dns_resolved",
    "dns_failed",
    "connect_attempt",
    "proxy_handshake",
)


class Trace(Protocol):
    """The hooks; each receives keyword arguments describing the event."""

    def connection_dialled(self, *, origin: str, connection_id: int) -> None: ...
    def connection_reused(
        self, *, origin: str, connection_id: int, idle_time: float, requests_served: int
    ) -> None: ...
    def connection_closed_idle(
        self, *, origin: str, connection_id: int, idle_time: float, requests_served: int
    ) -> None: ...
    def connection_expired(self, *, origin: str, connection_id: int, why: str) -> None: ...
    def connection_closed(
        self, *, origin: str, connection_id: int, why: str, requests_served: int, age: float
    ) -> None: ...
    def request_head(self, *, method: str, url: str, connection_id: int, head: bytes) -> None:
        """The request head exactly as written (before request_written, after the body)."""

    def request_written(
        self, *, method: str, url: str, connection_id: int, bytes_written: int, reused: bool
    ) -> None: ...
    def head_received(self, *, method: str, url: str, status: int, connection_id: int) -> None: ...
    def retry_scheduled(
        self, *, method: str, url: str, attempt: int, reason: str, delay: float, error: str
    ) -> None: ...
    def gave_up(self, *, method: str, url: str, attempt: int, error: str) -> None: ...
    def dns_resolved(self, *, host: str, port: int, addresses: list[str], seconds: float) -> None:
        """A lookup (not a cache hit) answered."""

    def dns_failed(self, *, host: str, port: int, error: str, seconds: float) -> None: ...
    def connect_attempt(
        self, *, origin: str, address: str, outcome: str, seconds: float, error: str | None
    ) -> None:
        """One address of a Happy Eyeballs race: ``connected``, ``failed`` or ``abandoned``."""

    def proxy_handshake(
        self, *, proxy: str, origin: str, seconds: float, error: str | None
    ) -> None:
        """A CONNECT or SOCKS handshake with a proxy towards ``origin``; error None if it worked."""


class Tracer:
    """Sends each event to every listener's hooks and to the log."""

    __slots__ = ("_hooks", "_log", "listeners")

    def __init__(self, trace: Any | None, log: bool, extra: tuple[Any, ...] = ()) -> None:
        # The user's trace object first, then instrumentation's listeners.
        self.listeners = (() if trace is None else (trace,)) + extra
        hooks: dict[str, list[Any]] = {}
        for listener in self.listeners:
            for name in EVENTS:
                if hasattr(listener, name):
                    hooks.setdefault(name, []).append(getattr(listener, name))
        self._hooks = {name: tuple(found) for name, found in hooks.items()}
        self._log = log

    def __call__(self, event: str, **facts: Any) -> None:
        if self._log:
            # A request head may carry credentials (Authorization, Cookie): the log
            # gets its size, only a trace object the user passed gets its bytes.
            detail = " ".join(
                f"{k}=<{len(v)} bytes>" if k == "head" else f"{k}={v!r}" for k, v in facts.items()
            )
            logger.debug("%s %s", event, detail)
        hooks = self._hooks.get(event)
        if hooks is not None:
            for hook in hooks:
                hook(**facts)


def make_tracer(trace: Any | None, extra: tuple[Any, ...] = ()) -> Tracer | None:
    """A tracer, or None when nothing would listen (the zero-cost case).

    ``extra``: listeners added by instrumentation, besides the user's ``trace``.
    """
    log = logger.isEnabledFor(logging.DEBUG)
    if trace is None and not extra and not log:
        return None
    return Tracer(trace, log, extra)
