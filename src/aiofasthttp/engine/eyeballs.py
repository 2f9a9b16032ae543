"""Happy Eyeballs (RFC 8305): race a host's addresses, and remember how each attempt went.

The race itself is aiohappyeyeballs's (the library aiohttp dials with): attempts
start ``happy_eyeballs_delay`` apart, address families interleaved, the first
socket to connect wins and the others are closed. It works on any loop through
``loop.sock_connect``, where uvloop's ``create_connection`` has no such delay at all.

What the library does not keep is which address failed how, after how long: its
error folds them into one string. So each attempt's socket here is a
:class:`_Attempt` that notes its own outcome: the error of a ``connect`` that
failed at once, the ``SO_ERROR`` the loop reads when a pending connect ends, and
the moment it was closed. That feeds the trace events and the error messages.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import aiohappyeyeballs

from .resolve import AddrInfo


class _Attempt(socket.socket):
    """One attempt's socket: it records its address, start, end and error."""

    def __init__(self, info: AddrInfo, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(info[0], info[1], info[2])
        self.loop = loop
        self.address = _show(info[4])
        self.started = loop.time()
        self.ended: float | None = None
        self.error: str | None = None

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            self._failed(exc.strerror or str(exc))
            raise

    def getsockopt(self, *args: Any) -> Any:
        value = super().getsockopt(*args)
        if args[:2] == (socket.SOL_SOCKET, socket.SO_ERROR) and value:
            self._failed(os.strerror(value))
        return value

    def close(self) -> None:
        if self.ended is None:
            self.ended = self.loop.time()
        super().close()

    def _failed(self, why: str) -> None:
        if self.error is None:
            self.error = why
            self.ended = self.loop.time()

    def outcome(self, now: float) -> tuple[str, float, str | None]:
        """(``connected`` | ``failed`` | ``abandoned``, seconds, error)."""
        if self.error is not None:
            return "failed", (self.ended or now) - self.started, self.error
        if self.ended is None or self.fileno() != -1:
            return "connected", now - self.started, None
        return "abandoned", self.ended - self.started, None


class Race:
    """The attempts of one dial, for its trace events and its error message."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.attempts: list[_Attempt] = []
        self.winner: str | None = None
        self.finished: float | None = None

    def _socket(self, info: Any) -> socket.socket:
        attempt = _Attempt(info, self.loop)
        self.attempts.append(attempt)
        return attempt

    async def connect(self, infos: list[AddrInfo], delay: float | None) -> socket.socket:
        """A connected socket to the first address that answers (a plain socket.socket)."""
        try:
            sock = await aiohappyeyeballs.start_connection(
                infos,
                happy_eyeballs_delay=delay,
                interleave=1,
                loop=self.loop,
                socket_factory=self._socket,
            )
        finally:
            self.finished = self.loop.time()
        assert isinstance(sock, _Attempt)
        self.winner = sock.address
        sock.ended = self.finished
        plain = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        return plain

    def outcomes(self) -> list[tuple[str, str, float, str | None]]:
        """Per attempt: address, outcome, seconds, error."""
        now = self.finished if self.finished is not None else self.loop.time()
        out = []
        for attempt in self.attempts:
            kind, seconds, error = attempt.outcome(now)
            if attempt.address == self.winner and kind != "failed":
                kind = "connected"
            elif kind == "connected":  # still open when the dial ended: it was given up
                kind = "abandoned"
            out.append((attempt.address, kind, seconds, error))
        return out

    def summary(self) -> str:
        """Each address tried and what became of it, for an error message."""
        parts = []
        for address, kind, seconds, error in self.outcomes():
            if kind == "failed":
                parts.append(f"{address}: {error} after {seconds:.3f} s")
            else:
                parts.append(f"{address}: no answer in {seconds:.3f} s")
        return "; ".join(parts)


def _show(sockaddr: tuple[Any, ...]) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
