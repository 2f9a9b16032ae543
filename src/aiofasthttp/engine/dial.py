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
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

from ..errors import (
    ConnectError,
    ConnectTimeout,
    NameResolutionError,
    ProtocolError,
    ProxyError,
    TLSError,
)
from ..h1.parser import ResponseHead, ResponseParser
from .eyeballs import Race, describe_os_error
from .interfaces import DialedConnection
from .proxies import is_socks, socks_tunnel
from .resolve import DNSCache
from .trace import Tracer

if TYPE_CHECKING:
    from ..h1.url import Origin, Proxy, Route


class DialedProtocol(asyncio.BaseProtocol):
    """A base for what a Dialer makes (interfaces.DialedConnection), with its defaults:
    a protocol that can be dropped before anyone adopted it. The pipelining connection
    is one; the engine's compiled Connection has the same methods without the base.

    A BaseProtocol with a data_received, not an asyncio.Protocol: uvloop reads into
    lent buffers only for a protocol with get_buffer that is *not* an asyncio.Protocol
    (asyncio asks for a BufferedProtocol), so ReadsIntoLentBuffers works on both loops.
    """

    via: str | None = None  # the proxy it goes through (named in its errors), if any

    def data_received(self, data: bytes | memoryview) -> None:
        """Bytes arrived; a memoryview is valid only until this returns."""
        raise NotImplementedError

    def eof_received(self) -> bool | None:
        """The peer closed its side (asyncio.Protocol's; False or None: close ours too)."""
        return None

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
# faults cost more than the parsing (bodies of 64 KiB: 1.6x the rate). uvloop lends
# over TLS: its SSL layer otherwise decrypts each read into a fresh 256 KiB bytes
# object (callgrind, HTTPS /small at concurrency 64: 121,600 and 127,600 instructions
# per request plainly in two counts, 115,600 and 111,900 lent; in a fresh process each
# such read also page-faults until glibc's mmap threshold adapts). Over plain TCP
# uvloop reads into a buffer of its own and hands over bytes of the size read;
# lending there costs two protocol calls per read instead of one, even compiled
# (callgrind, GET /small at c=64 against Go's server: 30,800 instructions per request
# lent, 28,450 plain). For 64 KiB bodies it counts fewer (96,800 against 161,000:
# the kernel writes the body where it belongs) but takes as much CPU time (about
# 20 us a request either way, getrusage), so its connections read plainly.
# (Until 2026-12 DialedProtocol was an asyncio.Protocol, which uvloop never lends
# to, whatever its get_buffer: earlier "lent" counts on uvloop over plain TCP
# measured the plain path.) benchmarks/instructions.py measures these.
READ_BUFFER_SIZE = 1 << 18
KEEP_SPARE = 4
# The stock, shared by every lending connection: the engine's Connection (compiled,
# its own twin of the methods below) and the pipelining one (this mixin).
spare_buffers: list[memoryview] = []


class ReadsIntoLentBuffers(asyncio.BufferedProtocol):
    """A mixin, listed after a DialedProtocol: read into lent buffers (see above).
    The pipelining connection's. The engine's compiled Connection has its own
    (lend_buffer, lent_buffer_filled), a Python frame less per read, which also reads
    a gathered body straight into the parser's bytes.

    After, because asyncio.BufferedProtocol has an ``eof_received`` of its own that
    must not shadow the connection's. The connection's ``connection_lost`` must
    call ``super().connection_lost()``, which reaches the one here. The stock's pop
    and push are inline: these two methods run for every read.
    """

    _lent: memoryview | None = None

    if TYPE_CHECKING:

        def data_received(self, data: bytes | memoryview) -> None: ...

    def get_buffer(self, sizehint: int) -> memoryview:
        view = self._lent
        if view is None:
            try:
                view = spare_buffers.pop()
            except IndexError:  # none spare (or another thread's loop took the last one)
                view = memoryview(bytearray(READ_BUFFER_SIZE))
            self._lent = view
        return view

    def buffer_updated(self, nbytes: int) -> None:
        view = self._lent
        assert view is not None
        self._lent = None
        try:
            self.data_received(view[:nbytes])
        finally:
            if len(spare_buffers) < KEEP_SPARE:
                spare_buffers.append(view)

    def connection_lost(self, exc: Exception | None) -> None:
        view, self._lent = self._lent, None
        if view is not None and len(spare_buffers) < KEEP_SPARE:
            spare_buffers.append(view)
        super().connection_lost(exc)


def lends_buffers(loop: asyncio.AbstractEventLoop, tls: bool = False) -> bool:
    """Whether connections on ``loop`` should read into lent buffers: on asyncio's own
    loops always, on uvloop over TLS only (see above)."""
    return tls or type(loop).__module__.partition(".")[0] != "uvloop"


ConnT = TypeVar("ConnT", bound=DialedConnection)


def _for_asyncio(factory: Callable[[], ConnT]) -> Callable[[], asyncio.BaseProtocol]:
    """``factory`` as asyncio's signatures want it. What it makes has every method
    asyncio calls, not always the BaseProtocol base: see interfaces.DialedConnection."""
    return cast("Callable[[], asyncio.BaseProtocol]", factory)


P = TypeVar("P", bound=asyncio.BaseProtocol)


class InMemoryNetwork(Protocol):
    """What stands in for the network when a client is given ``transport=``
    (``aiofasthttp.testing.MockTransport``): it gives a connection the Dialer made
    an asyncio transport of its own (``conn.connection_made(...)``), so everything
    above the dial (pool, coordinator, Connection, parser) runs as on a socket."""

    async def connect(self, conn: DialedConnection, route: Route) -> None: ...


class _Dial:
    """One dial in progress: where it has got to, for its error message and trace."""

    __slots__ = ("proxy", "race", "stage", "started")

    def __init__(self, proxy: Proxy | None, started: float) -> None:
        self.proxy = proxy  # the proxy this connection goes through, if any
        self.race: Race | None = None  # the latest Happy Eyeballs race
        self.stage = "origin"  # "proxy" while connecting to or shaking hands with it
        self.started = started


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
        names: DNSCache | None = None,
        happy_eyeballs_delay: float | None = 0.25,
        proxy_tls_context: Callable[[], ssllib.SSLContext] | None = None,
        proxies: Callable[[], Collection[Proxy]] | None = None,
        tracer: Tracer | None = None,
        network: InMemoryNetwork | None = None,
    ) -> None:
        self._network = network  # set: every dial is made in memory (a test double)
        self._connect_timeout = connect_timeout
        self._tls_context = tls_context
        self._make_connection = make_connection
        self._uds = uds
        self.names = names if names is not None else DNSCache()
        self._delay = happy_eyeballs_delay
        self._proxy_tls_context = proxy_tls_context or ssllib.create_default_context
        self._proxies = proxies  # the client's proxies: an origin among them is a proxy
        self._tracer = tracer

    async def dial(self, route: Route, connect_timeout: float | Default | None = DEFAULT) -> ConnT:
        """A connection along ``route``, within ``connect_timeout`` (the dialer's by default)."""
        timeout = self._connect_timeout if connect_timeout is DEFAULT else connect_timeout
        origin = route.origin
        loop = asyncio.get_running_loop()
        made: list[ConnT] = []
        state = _Dial(route.via or self._forwarding_proxy(origin), loop.time())
        through = str(state.proxy.origin) if state.proxy is not None else None

        def factory() -> ConnT:
            conn = self._make_connection(origin, loop)
            conn.via = through
            made.append(conn)
            return conn

        try:
            if self._network is not None:
                coro = self._in_memory(self._network, route, factory)
            elif route.via is not None:
                coro = self._tunnel(loop, origin, route.via, factory, state)
            else:
                coro = self._direct(loop, origin, factory, state)
            return await asyncio.wait_for(coro, timeout)
        except BaseException as exc:
            for orphan in made:  # connected, but the dial was cancelled or timed out
                orphan.discard()
            error = dial_error(exc, origin, timeout, state)
            if error is exc:
                raise
            raise error from exc

    async def _in_memory(
        self, network: InMemoryNetwork, route: Route, factory: Callable[[], ConnT]
    ) -> ConnT:
        conn = factory()
        await network.connect(conn, route)
        return conn

    def _forwarding_proxy(self, origin: Origin) -> Proxy | None:
        """The proxy whose own origin this is (plain-http requests sent to it in absolute form)."""
        if self._proxies is None:
            return None
        for proxy in self._proxies():
            if proxy.origin == origin:
                return proxy
        return None

    async def _direct(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        factory: Callable[[], ConnT],
        state: _Dial,
    ) -> ConnT:
        if state.proxy is not None:  # an http(s) proxy taking absolute-form requests
            state.stage = "proxy"
            tls = self._proxy_tls_context() if origin.scheme == "https" else None
        else:
            tls = self._tls_context() if origin.scheme == "https" else None
        hostname = origin.host if tls else None
        if self._uds is not None:
            _, conn = await loop.create_unix_connection(
                _for_asyncio(factory), self._uds, ssl=tls, server_hostname=hostname
            )
            return cast(ConnT, conn)
        _, conn = await self._connect(loop, origin, _for_asyncio(factory), tls, hostname, state)
        return cast(ConnT, conn)

    async def _connect(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        factory: Callable[[], P],
        tls: ssllib.SSLContext | None,
        hostname: str | None,
        state: _Dial,
    ) -> tuple[asyncio.Transport, P]:
        """Resolve (cached), race the addresses (Happy Eyeballs), then TLS if asked."""
        names = self.names
        infos = names.known(origin.host, origin.port) or await names.resolve(
            origin.host, origin.port
        )
        race = state.race = Race(loop)
        try:
            return await race.connect(infos, self._delay, factory, tls, hostname)
        finally:
            if self._tracer is not None:
                for address, outcome, seconds, error in race.outcomes():
                    self._tracer(
                        "connect_attempt",
                        origin=str(origin),
                        address=address,
                        outcome=outcome,
                        seconds=seconds,
                        error=error,
                    )

    async def _tunnel(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        proxy: Proxy,
        factory: Callable[[], ConnT],
        state: _Dial,
    ) -> ConnT:
        """Through the proxy (CONNECT, or SOCKS), then TLS to the origin inside the tunnel."""
        state.stage = "proxy"
        started = loop.time()
        try:
            if is_socks(proxy):
                sock = await socks_tunnel(proxy, origin, self.names)
                transport = None
            else:
                transport = await self._connect_tunnel(loop, origin, proxy, state)
        except BaseException as exc:
            self._trace_handshake(proxy, origin, started, exc)
            raise
        self._trace_handshake(proxy, origin, started, None)
        state.stage = "origin"
        tls = self._tls_context() if origin.scheme == "https" else None
        if transport is None:
            _, made = await loop.create_connection(
                _for_asyncio(factory),
                sock=sock,
                ssl=tls,
                server_hostname=origin.host if tls else None,
            )
            return cast(ConnT, made)
        try:
            conn = factory()
            if tls is None:
                transport.set_protocol(cast(asyncio.BaseProtocol, conn))
                conn.connection_made(transport)
                return conn
            try:
                tls_transport = await loop.start_tls(
                    transport, cast(asyncio.BaseProtocol, conn), tls, server_hostname=origin.host
                )
            except TypeError as exc:  # asyncio before 3.11: no TLS over a TLS transport
                raise ProxyError(
                    f"cannot start TLS to {origin} inside the TLS connection to the proxy "
                    f"{proxy.origin} on this Python and loop ({exc}); use Python 3.11+",
                    proxy=str(proxy.origin),
                ) from exc
            assert tls_transport is not None
            conn.connection_made(tls_transport)
            return conn
        except BaseException:
            transport.abort()
            raise

    async def _connect_tunnel(
        self, loop: asyncio.AbstractEventLoop, origin: Origin, proxy: Proxy, state: _Dial
    ) -> asyncio.Transport:
        """A transport to the proxy (TLS to it for https://) on which CONNECT succeeded."""
        tls = self._proxy_tls_context() if proxy.origin.scheme == "https" else None
        hostname = proxy.origin.host if tls else None
        transport, opener = await self._connect(
            loop, proxy.origin, lambda: _TunnelOpener(loop), tls, hostname, state
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
                    + ("; check the proxy's credentials" if head.status == 407 else ""),
                    proxy=str(proxy.origin),
                    refused=400 <= head.status < 500,
                )
            return transport
        except BaseException:
            transport.abort()
            raise

    def _trace_handshake(
        self, proxy: Proxy, origin: Origin, started: float, exc: BaseException | None
    ) -> None:
        if self._tracer is not None:
            self._tracer(
                "proxy_handshake",
                proxy=str(proxy.origin),
                origin=str(origin),
                seconds=asyncio.get_running_loop().time() - started,
                error=None if exc is None else repr(exc),
            )


def dial_error(
    exc: BaseException,
    origin: Origin,
    connect_timeout: float | None,
    state: _Dial | None = None,
) -> BaseException:
    """The typed error for a failed dial; anything else (a cancellation) as it is.

    ``state`` (a Dialer's dial in progress) adds the proxy, the address race and the
    time taken; without it (the doctor's own probes), the words are the same.
    """
    proxy = state.proxy if state is not None else None
    at_proxy = proxy is not None and state is not None and state.stage == "proxy"
    where = f"the proxy {proxy.origin}" if at_proxy and proxy is not None else str(origin)
    via = f" through the proxy {proxy.origin}" if proxy is not None and not at_proxy else ""
    race = state.race if state is not None else None
    connected = race is not None and race.winner is not None
    tried = f" (tried {race.summary()})" if race is not None and not connected else ""
    if isinstance(exc, ConnectError):
        if at_proxy and proxy is not None and not isinstance(exc, ProxyError):
            return ProxyError(f"{exc}, dialling {origin} via {where}", proxy=str(proxy.origin))
        if isinstance(exc, NameResolutionError):
            return NameResolutionError(f"{exc}, dialling {origin}{via}")
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        took = (
            f" ({asyncio.get_running_loop().time() - state.started:.3f} s)"
            if state is not None
            else ""
        )
        return ConnectTimeout(
            f"connecting to {where}{via} took longer than connect_timeout="
            f"{connect_timeout:g} s{took}{tried}"
        )
    if isinstance(exc, ssllib.SSLCertVerificationError):
        option = "proxy_ssl=" if at_proxy else "ssl="
        return TLSError(
            f"the TLS certificate of {where} did not verify: {exc.verify_message}; "
            f"pass {option} a context that trusts it"
            + ("" if at_proxy else " (ssl=False skips verification)")
        )
    if isinstance(exc, ssllib.SSLError):
        return TLSError(f"TLS handshake with {where}{via} failed: {exc}")
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"cannot resolve host {origin.host!r} of {origin}: {exc}")
    if isinstance(exc, OSError):
        why = describe_os_error(exc)
        if connected:  # the TCP connection was made; what followed (TLS, a tunnel) failed
            text = f"the connection to {where}{via} failed once made: {why}"
        else:
            text = f"cannot connect to {where}{via}: {why}{tried}"
        if at_proxy and proxy is not None:
            return ProxyError(text, proxy=str(proxy.origin))
        return ConnectError(text)
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
