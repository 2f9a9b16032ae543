"""Dialling: opening a connection for a pool, directly, over a Unix socket, or via a proxy.

Every OS, DNS, TLS and proxy failure is translated here into the client's own
errors (ConnectError, ConnectTimeout, TLSError). A connection is handed to
the pool only once fully made: if the dial is cancelled or times out after
the transport came up, the half-made connection is discarded here, without
touching the pool's counts.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import ssl as ssllib
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from .errors import ConnectError, ConnectTimeout, ProtocolError, ProxyError, TLSError
from .parser import ResponseHead, ResponseParser

if TYPE_CHECKING:
    from .request import Origin, Proxy, Route


class DialedProtocol(asyncio.Protocol):
    """What a Dialer makes: a protocol that can be dropped before anyone adopted it."""

    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes arrived; a memoryview is valid only until this returns."""
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


# Lent receive buffers: a transport reads into one lent from this small stock, and
# the protocol's data_received() sees the bytes as a memoryview of it, valid only
# during the call (the parsers copy what they keep). asyncio's loops lend, fill and
# hand over in one step, so one buffer serves every connection; a loop that left a
# read pending would hold its buffer while others get theirs from the stock. A
# buffer lent for a read that brought nothing (EOF, or TLS with no whole record yet)
# stays with its connection for the next read, and goes back when it is lost. On
# asyncio's own loops this spares a fresh 256 KiB allocation per read, whose page
# faults cost more than the parsing (bodies of 64 KiB: 1.6x the rate). uvloop reads
# into a buffer of its own and hands over bytes of the size read: there the extra
# protocol call per read would cost about 6%, so its connections read plainly.
READ_BUFFER_SIZE = 1 << 18
_KEEP_SPARE = 4
_spare: list[memoryview] = []


def _lend() -> memoryview:
    try:
        return _spare.pop()
    except IndexError:  # none spare (or another thread's loop took the last one)
        return memoryview(bytearray(READ_BUFFER_SIZE))


def _give_back(view: memoryview) -> None:
    if len(_spare) < _KEEP_SPARE:
        _spare.append(view)


class ReadsIntoLentBuffers(asyncio.BufferedProtocol):
    """A mixin, listed after a DialedProtocol: read into lent buffers (see above).

    After, because asyncio.BufferedProtocol has an ``eof_received`` of its own that
    must not shadow the connection's. The connection's ``connection_lost`` must
    call ``super().connection_lost()``, which reaches the one here.
    """

    _lent: memoryview | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self._lent
        if view is None:
            view = self._lent = _lend()
        return view

    def buffer_updated(self, nbytes: int) -> None:
        view = self._lent
        assert view is not None
        self._lent = None
        try:
            cast(DialedProtocol, self).data_received(view[:nbytes])
        finally:
            _give_back(view)

    def connection_lost(self, exc: Exception | None) -> None:
        view, self._lent = self._lent, None
        if view is not None:
            _give_back(view)
        super().connection_lost(exc)


def lends_buffers(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether connections on ``loop`` should read into lent buffers: not on uvloop."""
    return type(loop).__module__.partition(".")[0] != "uvloop"


ConnT = TypeVar("ConnT", bound=DialedProtocol)


class Default(enum.Enum):
    """The type of DEFAULT: "the dialer's own setting", distinct from None ("no limit")."""

    DEFAULT = enum.auto()


DEFAULT = Default.DEFAULT


class Dialer(Generic[ConnT]):
    def __init__(
        self,
        *,
        connect_timeout: float | None,
        tls_context: Callable[[], ssllib.SSLContext],
        make_connection: Callable[[Origin, asyncio.AbstractEventLoop], ConnT],
        uds: str | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._tls_context = tls_context
        self._make_connection = make_connection
        self._uds = uds

    async def dial(self, route: Route, connect_timeout: float | Default | None = DEFAULT) -> ConnT:
        """A connection along ``route``, within ``connect_timeout`` (the dialer's by default)."""
        timeout = self._connect_timeout if connect_timeout is DEFAULT else connect_timeout
        origin = route.origin
        loop = asyncio.get_running_loop()
        made: list[ConnT] = []

        def factory() -> ConnT:
            conn = self._make_connection(origin, loop)
            made.append(conn)
            return conn

        try:
            if route.via is not None:
                coro = self._tunnel(loop, origin, route.via, factory)
            else:
                coro = self._direct(loop, origin, factory)
            return await asyncio.wait_for(coro, timeout)
        except BaseException as exc:
            for orphan in made:  # connected, but the dial was cancelled or timed out
                orphan.discard()
            error = self._error(exc, origin, timeout)
            if error is exc:
                raise
            raise error from exc

    async def _direct(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, factory: Callable[[], ConnT]
    ) -> ConnT:
        tls = self._tls_context() if origin.scheme == "https" else None
        hostname = origin.host if tls else None
        if self._uds is not None:
            _, conn = await loop.create_unix_connection(
                factory, self._uds, ssl=tls, server_hostname=hostname
            )
        else:
            _, conn = await loop.create_connection(
                factory, origin.host, origin.port, ssl=tls, server_hostname=hostname
            )
        return conn

    async def _tunnel(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        proxy: Proxy,
        factory: Callable[[], ConnT],
    ) -> ConnT:
        """CONNECT through the proxy, then TLS to the origin inside the tunnel."""
        transport, opener = await loop.create_connection(
            lambda: _TunnelOpener(loop), proxy.origin.host, proxy.origin.port
        )
        try:
            authority = (
                f"[{origin.host}]:{origin.port}"
                if ":" in origin.host
                else (f"{origin.host}:{origin.port}")
            )
            lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
            if proxy.authorization:
                lines.append(f"Proxy-Authorization: {proxy.authorization}")
            transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            head = await opener.answer
            if not 200 <= head.status < 300:
                raise ProxyError(
                    f"the proxy {proxy.origin} refused to tunnel to {origin}: "
                    f"{head.status} {head.reason.decode('latin-1')}"
                    + ("; check the proxy's credentials" if head.status == 407 else "")
                )
            conn = factory()
            tls = self._tls_context() if origin.scheme == "https" else None
            if tls is None:
                transport.set_protocol(conn)
                conn.connection_made(transport)
                return conn
            tls_transport = await loop.start_tls(transport, conn, tls, server_hostname=origin.host)
            assert tls_transport is not None
            conn.connection_made(tls_transport)
            return conn
        except BaseException:
            transport.abort()
            raise

    def _error(self, exc: BaseException, origin: Origin, timeout: float | None) -> BaseException:
        """The typed error for a failed dial; anything else (a cancellation) as it is."""
        if isinstance(exc, asyncio.TimeoutError):
            return ConnectTimeout(
                f"connecting to {origin} took longer than connect_timeout={timeout:g} s"
            )
        if isinstance(exc, ssllib.SSLCertVerificationError):
            return TLSError(
                f"the TLS certificate of {origin} did not verify: {exc.verify_message}; "
                "pass ssl= a context that trusts it (ssl=False skips verification)"
            )
        if isinstance(exc, ssllib.SSLError):
            return TLSError(f"TLS handshake with {origin} failed: {exc}")
        if isinstance(exc, socket.gaierror):
            return ConnectError(f"cannot resolve host {origin.host!r} of {origin}: {exc}")
        if isinstance(exc, OSError):
            return ConnectError(f"cannot connect to {origin}: {exc.strerror or exc}")
        return exc


class _TunnelOpener(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT; nothing else crosses it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.answer: asyncio.Future[ResponseHead] = loop.create_future()
        self._parser = ResponseParser(self)
        self._parser.expect(b"CONNECT")

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
        except ProtocolError as exc:
            self._settle(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle(ConnectError(f"the proxy closed the connection before answering: {exc}"))

    def on_head(self, head: ResponseHead) -> None:
        if not self.answer.done():
            self.answer.set_result(head)

    def on_body(self, chunk: bytes) -> None:
        pass

    def on_complete(self) -> None:
        pass

    def _settle(self, exc: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)
