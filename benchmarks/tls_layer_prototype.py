"""A measurement prototype, not used by the client: TLS done by a lean layer of our own
over a plain asyncio transport, to count what asyncio's ``sslproto`` costs beyond the
``ssl`` module itself (benchmarks/README.md, "where HTTPS /small's time goes").

    python -m benchmarks.tls_layer_prototype --tls --separate-server --loop asyncio

counts as ``python -m benchmarks.instructions`` does (same arguments), with every
``create_connection(..., ssl=context)`` of the process answered by :class:`_Layer`:
one ``MemoryBIO`` pair and ``SSLObject``, a read loop that asks ``pending`` before
reading again (as uvloop's ``SSLProtocol`` does, so no ``SSLWantReadError`` per read),
and a write that encrypts and sends in one step. It does only what the workload needs:
no close_notify on close, no handshake timeout of its own, no renegotiation beyond
what ``SSLObject`` does by itself. A client feature would need all of that.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from asyncio import base_events
from collections.abc import Callable
from typing import Any

from . import instructions

_BUFFER = memoryview(bytearray(1 << 18))


class _AppTransport(asyncio.Transport):
    """What the client's connection sees: writes encrypted and sent at once."""

    def __init__(self, layer: _Layer) -> None:
        super().__init__()
        self._layer = layer
        self._closing = False

    def write(self, data: Any) -> None:
        layer = self._layer
        layer.sslobj.write(data)
        layer.transport.write(layer.outgoing.read())

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def is_closing(self) -> bool:
        return self._closing or self._layer.transport.is_closing()

    def close(self) -> None:
        self._closing = True
        self._layer.transport.close()

    def abort(self) -> None:
        self._closing = True
        self._layer.transport.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._layer.sslobj
        return self._layer.transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._layer.transport.pause_reading()

    def resume_reading(self) -> None:
        self._layer.transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return int(self._layer.transport.get_write_buffer_size())


class _Layer(asyncio.BufferedProtocol):
    """The plain transport's protocol: decrypts into the connection's own buffers."""

    def __init__(
        self, app: Any, context: ssl.SSLContext, hostname: str | None, waiter: asyncio.Future[None]
    ) -> None:
        self.app = app
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_hostname=hostname)
        self.waiter = waiter
        self.wrapped = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._handshake()

    def _handshake(self) -> None:
        try:
            self.sslobj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except Exception as exc:
            self.transport.abort()
            if not self.waiter.done():
                self.waiter.set_exception(exc)
            return
        else:
            self.wrapped = True
            self.app_transport = _AppTransport(self)
            self.app.connection_made(self.app_transport)
            if not self.waiter.done():
                self.waiter.set_result(None)
        if self.outgoing.pending:
            self.transport.write(self.outgoing.read())

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.incoming.write(_BUFFER[:nbytes])
        if not self.wrapped:
            self._handshake()
            if not self.wrapped:
                return
        try:
            self._read()
        except ssl.SSLError as exc:
            self.transport.abort()
            self.app.connection_lost(exc)
            return
        if self.outgoing.pending:  # a key update's answer, say
            self.transport.write(self.outgoing.read())

    def _read(self) -> None:
        sslobj, incoming, app = self.sslobj, self.incoming, self.app
        while incoming.pending or sslobj.pending():
            try:
                buffer = app.get_buffer(-1)
                count = sslobj.read(len(buffer), buffer)
            except ssl.SSLWantReadError:  # only part of a record so far
                return
            if not count:  # close_notify
                app.eof_received()
                self.transport.close()
                return
            app.buffer_updated(count)

    def eof_received(self) -> bool | None:
        return self.app.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.wrapped:
            self.app.connection_lost(exc)
        elif not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("closed in the handshake"))

    def pause_writing(self) -> None:
        self.app.pause_writing()

    def resume_writing(self) -> None:
        self.app.resume_writing()


def _wrap(original: Any) -> Any:
    async def create_connection(
        self: Any, factory: Any, host: Any = None, port: Any = None, **kw: Any
    ) -> Any:
        context = kw.pop("ssl", None)
        hostname = kw.pop("server_hostname", None)
        if not context:
            return await original(self, factory, host, port, **kw)
        waiter = self.create_future()
        app = factory()
        transport, layer = await original(
            self, lambda: _Layer(app, context, hostname or host, waiter), host, port, **kw
        )
        try:
            await waiter
        except BaseException:
            transport.abort()
            raise
        return layer.app_transport, app

    return create_connection


def install() -> Callable[[], None]:
    """Answer every ``create_connection(..., ssl=...)`` of this process with the layer;
    returns what undoes it."""
    kinds: list[Any] = [base_events.BaseEventLoop]
    try:
        import uvloop

        kinds.append(uvloop.Loop)  # a Python subclass: its Cython base keeps the original
    except ImportError:
        pass
    own = [(kind, kind.__dict__.get("create_connection")) for kind in kinds]
    for kind in kinds:
        kind.create_connection = _wrap(kind.create_connection)

    def undo() -> None:
        for kind, original in own:
            if original is None:
                del kind.create_connection
            else:
                kind.create_connection = original

    return undo


def main() -> None:
    args = sys.argv[1:]
    if "--run" in args:
        install()
        instructions.main()
        return
    workload = [sys.executable, "-m", "benchmarks.tls_layer_prototype", *args]
    subprocess.run([*workload, "--run", "64"], check=True)  # compile bytecode first
    many, few = instructions._count(workload, 12800), instructions._count(workload, 6400)
    print(f"{' '.join(args)}, the prototype layer: {(many - few) / 6400:,.0f} per request")


if __name__ == "__main__":
    main()
