"""The embedded HTTP/1.1 server the suite measures clients against.

Run in its own process (``python -m benchmarks.server``): uvloop and httptools,
keep-alive, responses pre-encoded and written in request order, so pipelined
requests are answered correctly. It binds 127.0.0.1 on a free port and prints
``PORT <n>`` on its first stdout line. With ``--tls-dir DIR`` (a directory holding
``server.pem``, the certificate chain, and ``server.key``; see :mod:`benchmarks.tls`)
it also serves the same routes over TLS on a second port: ``PORT <n> <tls port>``.

The stale scenario starts it with ``--idle-close`` (close a connection idle that
long) and ``--max-requests`` (close a connection after that many responses);
either close is silent: no ``Connection: close`` warns the client, as with a
load balancer or a server that retires connections on its own clock.

The parent holds a :class:`ServerProcess` and stops the server by that handle.
The server also exits by itself when its parent dies or after ``--lifetime``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from testkit import ServerProcess as ChildServer

from .routes import BIG_BODY, CHUNK, CHUNK_COUNT, POST_BODY, SMALL_BODY
from .tls import server_context

ROOT = Path(__file__).resolve().parent.parent


def _response(body: bytes, extra: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n" + extra
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _chunked(chunk: bytes, count: int) -> bytes:
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    head = b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n"
    return head + b"Transfer-Encoding: chunked\r\n\r\n" + piece * count + b"0\r\n\r\n"


GET_RESPONSES = {
    b"/small": _response(SMALL_BODY),
    b"/64k": _response(BIG_BODY, b"Content-Type: application/octet-stream\r\n"),
    b"/chunked": _chunked(CHUNK, CHUNK_COUNT),
}
POST_OK = _response(SMALL_BODY)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nServer: bench\r\nContent-Length: 0\r\n\r\n"
BAD_BODY = b"HTTP/1.1 400 Bad Request\r\nServer: bench\r\nContent-Length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class ServerConfig:
    __slots__ = ("idle_close", "max_requests")

    def __init__(self, idle_close: float | None, max_requests: int | None) -> None:
        self.idle_close = idle_close
        self.max_requests = max_requests


class HttpServerProtocol(asyncio.Protocol):
    """One connection: httptools parses requests, each answered as it completes."""

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        import httptools

        self._parser = httptools.HttpRequestParser(self)
        self._parser_error = httptools.HttpParserError
        self._config = config
        self._loop = loop
        self._transport: Any = None
        self._url = b""
        self._body_len = 0
        self._served = 0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._closing = False

    # -- transport events -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._arm_idle()

    def data_received(self, data: bytes | memoryview) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        try:
            self._parser.feed_data(data)
        except self._parser_error:
            self._write(BAD_REQUEST)
            self._close()
            return
        self._arm_idle()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closing = True
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._body_len = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body_len += len(body)

    def on_message_complete(self) -> None:
        if self._closing:  # pipelined after a close we decided: never answered
            return
        self._write(self._answer(self._parser.get_method()))
        self._served += 1
        limit = self._config.max_requests
        if not self._parser.should_keep_alive() or (limit and self._served >= limit):
            self._close()

    # -- helpers ----------------------------------------------------------------------------

    def _answer(self, method: bytes) -> bytes:
        path = self._url.split(b"?", 1)[0]
        if method == b"POST":
            if path != b"/post":
                return NOT_FOUND
            return POST_OK if self._body_len == len(POST_BODY) else BAD_BODY
        return GET_RESPONSES.get(path, NOT_FOUND)

    def _write(self, data: bytes) -> None:
        if not self._closing:
            self._transport.write(data)

    def _close(self) -> None:
        self._closing = True
        self._transport.close()

    def _arm_idle(self) -> None:
        idle = self._config.idle_close
        if idle and not self._closing:
            self._idle_handle = self._loop.call_later(idle, self._close)


class BufferedHttpServerProtocol(HttpServerProtocol, asyncio.BufferedProtocol):
    """The TLS listener's protocol: the SSL layer decrypts into one shared buffer.

    Given a plain protocol, both loops' SSL layers read each record into a fresh
    256 KiB bytes object: a large allocation per read whose cost (page faults while
    glibc's mmap threshold has not adapted) would be the server's, not the client's.
    """

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_READ_BUFFER[:nbytes])  # httptools copies what it keeps


_READ_BUFFER = memoryview(bytearray(1 << 18))


# -- the server process -----------------------------------------------------------------


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    config = ServerConfig(args.idle_close, args.max_requests)
    server = await loop.create_server(
        lambda: HttpServerProtocol(config, loop), args.host, args.port, backlog=2048
    )
    ports = [server.sockets[0].getsockname()[1]]
    servers = [server]
    if args.tls_dir:
        context = server_context(Path(args.tls_dir))
        tls = await loop.create_server(
            lambda: BufferedHttpServerProtocol(config, loop),
            args.host,
            0,
            backlog=2048,
            ssl=context,
        )
        servers.append(tls)
        ports.append(tls.sockets[0].getsockname()[1])
    print("PORT " + " ".join(map(str, ports)), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    deadline = time.monotonic() + args.lifetime
    while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
    for each in servers:
        each.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--idle-close", type=float, default=None, help="seconds")
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    parser.add_argument("--tls-dir", default=None, help="also serve TLS with DIR's server.pem")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--lifetime", type=float, default=3 * 3600.0, help="exit after (s)")
    args = parser.parse_args(argv)
    _pin(args.cpu)
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_serve(args))
    finally:
        loop.close()


# -- the parent's handle ----------------------------------------------------------------


class ServerProcess(ChildServer):
    """Start the server in a subprocess; stop it by its own handle, never by name."""

    def __init__(
        self,
        *,
        idle_close: float | None = None,
        max_requests: int | None = None,
        cpu: int | None = None,
        loop: str = "uvloop",
        tls_dir: Path | None = None,
    ) -> None:
        argv = [sys.executable, "-m", "benchmarks.server", "--loop", loop]
        if tls_dir is not None:
            argv += ["--tls-dir", str(tls_dir)]
        if idle_close:
            argv += ["--idle-close", str(idle_close)]
        if max_requests:
            argv += ["--max-requests", str(max_requests)]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        super().__init__(argv, ready="PORT")

    @property
    def tls_url(self) -> str | None:
        """The TLS listener's base URL, when the server was started with a certificate."""
        return f"https://127.0.0.1:{self.ports[1]}" if len(self.ports) > 1 else None


if __name__ == "__main__":
    main()
