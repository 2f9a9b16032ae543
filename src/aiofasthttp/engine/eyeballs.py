"""Happy Eyeballs (RFC 8305): race a host's addresses, and remember how each attempt went.

The race itself is aiohappyeyeballs's (the library aiohttp dials with): attempts
start ``happy_eyeballs_delay`` apart, address families interleaved, the first
socket to connect wins and the others are closed. It works on any loop through
``loop.sock_connect``, where uvloop's ``create_connection`` has no such delay at all.

What the library does not keep is which address failed how, after how long: its
error folds them into one string. So each attempt's socket here is an
:class:`_Attempt` that notes its own outcome: the error of a ``connect`` that
failed at once, the ``SO_ERROR`` the loop reads when a pending connect ends, and
the moment it was closed. That feeds the trace events and the error messages.

A host with one address (an IP literal, most names inside a data centre) has
nothing to race: it is dialled by the loop's own ``create_connection``, which on
uvloop connects in C, at about half the instructions of the race's path.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as ssllib
from collections.abc import Callable
from typing import Any, TypeVar

import aiohappyeyeballs

from .resolve import AddrInfo

P = TypeVar("P", bound=asyncio.BaseProtocol)


class _Record:
    """What became of one address: when its attempt started and ended, and why it failed."""

    __slots__ = ("address", "ended", "error", "started")

    def __init__(self, info: AddrInfo, started: float) -> None:
        self.address = _show(info[4])
        self.started = started
        self.ended: float | None = None
        self.error: str | None = None

    def failed(self, why: str, now: float) -> None:
        if self.error is None:
            self.error = why
            self.ended = now


class _Attempt(socket.socket):
    """One raced attempt's socket: it keeps its record up to date."""

    def __init__(self, info: AddrInfo, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(info[0], info[1], info[2])
        self.loop = loop
        self.record = _Record(info, loop.time())

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            self.record.failed(describe_os_error(exc), self.loop.time())
            raise

    def getsockopt(self, *args: Any) -> Any:
        value = super().getsockopt(*args)
        if args[:2] == (socket.SOL_SOCKET, socket.SO_ERROR) and value:
            self.record.failed(os.strerror(value), self.loop.time())
        return value

    def close(self) -> None:
        if self.record.ended is None:
            self.record.ended = self.loop.time()
        super().close()


class Race:
    """The attempts of one dial, for its trace events and its error message."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.records: list[_Record] = []
        self.winner: _Record | None = None
        self.finished: float | None = None

    async def connect(
        self,
        infos: list[AddrInfo],
        delay: float | None,
        factory: Callable[[], P],
        tls: ssllib.SSLContext | None,
        hostname: str | None,
    ) -> tuple[asyncio.Transport, P]:
        """A transport to the first address that answers, TLS done if asked."""
        if len(infos) == 1:
            return await self._connect_one(infos[0], factory, tls, hostname)
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
        self.winner = sock.record
        plain = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        transport, protocol = await self.loop.create_connection(
            factory, sock=plain, ssl=tls, server_hostname=hostname
        )
        return transport, protocol

    async def _connect_one(
        self,
        info: AddrInfo,
        factory: Callable[[], P],
        tls: ssllib.SSLContext | None,
        hostname: str | None,
    ) -> tuple[asyncio.Transport, P]:
        record = _Record(info, self.loop.time())
        self.records.append(record)
        host, port = info[4][0], info[4][1]
        try:
            transport, protocol = await self.loop.create_connection(
                factory, host, port, ssl=tls, server_hostname=hostname
            )
        except OSError as exc:
            if not isinstance(exc, ssllib.SSLError):  # TLS failed after the connect
                record.failed(describe_os_error(exc), self.loop.time())
            raise
        finally:
            self.finished = self.loop.time()
        self.winner = record
        return transport, protocol

    def _socket(self, info: Any) -> socket.socket:
        attempt = _Attempt(info, self.loop)
        self.records.append(attempt.record)
        return attempt

    def outcomes(self) -> list[tuple[str, str, float, str | None]]:
        """Per attempt: address, ``connected`` | ``failed`` | ``abandoned``, seconds, error."""
        now = self.finished if self.finished is not None else self.loop.time()
        out = []
        for record in self.records:
            ended = record.ended if record.ended is not None else now
            if record.error is not None:
                kind = "failed"
            elif record is self.winner:
                kind, ended = "connected", now
            else:
                kind = "abandoned"  # given up: another won, or the dial timed out
            out.append((record.address, kind, ended - record.started, record.error))
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


def describe_os_error(exc: OSError) -> str:
    """ "Connection refused", not asyncio's "Connect call failed (addr)" (the address is named)."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


def _show(sockaddr: tuple[Any, ...]) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
