"""The ceiling client: what Python asyncio can do at best, with no client around it.

One bare protocol per connection (on asyncio's own loops an
``asyncio.BufferedProtocol`` reading into a shared buffer) writes a pre-encoded
request and parses the response with httptools; the body is counted, never
joined. No pool logic beyond a stack of open connections (one per worker at
most), no timeouts, no retries: a connection the server closed fails its request.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httptools

from .routes import Route


class CeilingProtocol(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self._transport: Any = None
        self._waiter: asyncio.Future[tuple[int, int]] | None = None
        self._status = 0
        self._length = 0
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def data_received(self, data: bytes | memoryview) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)
            self._transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._length += len(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._status, self._length))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, int]]:
        self._length = 0
        self._waiter = waiter = self._loop.create_future()
        self._transport.write(data)
        return waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


# On asyncio's own loops a plain Protocol makes the loop allocate 256 KiB per read,
# which halves what those loops can do: there every connection reads into this one
# buffer instead (the loop reads, fills and hands over in one step). uvloop reads into
# a buffer of its own; there the extra protocol call per read would only cost. Over
# TLS on uvloop the ceiling is given this class too, but uvloop never lends to an
# asyncio.Protocol (which CeilingProtocol is), whatever its get_buffer: it decrypts
# into a bytes per read, the copying path. For small responses that path counts
# fewer instructions (TLS adds 25,800 to the ceiling, 31,600 to aiofasthttp's lent
# reads); for large ones it costs page faults. The row is kept as it was measured.
_READ_BUFFER = memoryview(bytearray(1 << 18))


class BufferedCeilingProtocol(CeilingProtocol, asyncio.BufferedProtocol):
    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_READ_BUFFER[:nbytes])


def _protocol_for(loop: asyncio.AbstractEventLoop, tls: bool) -> type[CeilingProtocol]:
    uvloop = type(loop).__module__.partition(".")[0] == "uvloop"
    return CeilingProtocol if uvloop and not tls else BufferedCeilingProtocol


def encode_request(route: Route, host: str) -> bytes:
    head = f"{route.method} {route.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ceiling\r\n"
    if route.body is None:
        return (head + "\r\n").encode()
    return (head + f"Content-Length: {len(route.body)}\r\n\r\n").encode() + route.body


class CeilingClient:
    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self._host = host
        self._port = port
        self._tls = tls  # HTTPS: the loop's own SSL transport, nothing more
        self._idle: list[CeilingProtocol] = []
        self._all: list[CeilingProtocol] = []

    async def _connect(self) -> CeilingProtocol:
        loop = asyncio.get_running_loop()
        kind = _protocol_for(loop, self._tls is not None)
        _, proto = await loop.create_connection(
            lambda: kind(loop), self._host, self._port, ssl=self._tls
        )
        self._all.append(proto)
        return proto

    async def send(self, data: bytes) -> tuple[int, int]:
        idle = self._idle
        proto = idle.pop() if idle else None
        while proto is not None and proto.closed:
            proto = idle.pop() if idle else None
        if proto is None:
            proto = await self._connect()
        result = await proto.request(data)
        idle.append(proto)
        return result

    async def aclose(self) -> None:
        for proto in self._all:
            proto.close()
        self._all.clear()
        self._idle.clear()
        await asyncio.sleep(0)
