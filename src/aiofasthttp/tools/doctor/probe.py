"""One raw connection to the server: send a request, parse the response with the
package's parser, and watch the socket for the server's close (FIN or RST)."""

from __future__ import annotations

import asyncio
import ssl as ssllib
from dataclasses import dataclass

from ..._version import __version__
from ...engine.dial import dial_error
from ...errors import (
    IncompleteResponse,
    ReadTimeout,
)
from ...h1.parser import ResponseHead, ResponseParser
from ...h1.request import EMPTY_BODY, check_method, encode_head, header_items
from ...h1.url import Origin, resolve_url
from .report import FIN, RST, DoctorOptions

# -- probing one connection ------------------------------------------------------------


@dataclass(frozen=True)
class _Site:
    host: str
    port: int
    tls: ssllib.SSLContext | None
    request11: bytes
    request10: bytes
    method: str
    origin: Origin

    @classmethod
    def parse(cls, url: str, options: DoctorOptions) -> _Site:
        """The requests to probe with, encoded and checked as the Client's are."""
        target = resolve_url(url)
        origin = target.origin
        method = check_method(options.method)
        defaults = [("User-Agent", f"aiofasthttp-doctor/{__version__}"), ("Accept", "*/*")]
        request11 = encode_head(
            method, target, defaults, header_items(options.headers), EMPTY_BODY, False
        )
        # The same as HTTP/1.0, asking for keep-alive as a 1.0 client must.
        line_end = request11.index(b"\r\n")
        request10 = (
            request11[: line_end - 1]
            + b"0"
            + request11[line_end:-2]
            + b"Connection: keep-alive\r\n\r\n"
        )
        tls = None
        if origin.scheme == "https":
            tls = options.ssl
            if tls is None:
                tls = ssllib.create_default_context()
                if options.insecure:
                    tls.check_hostname = False
                    tls.verify_mode = ssllib.CERT_NONE
        return cls(
            origin.host,
            origin.port,
            tls,
            request11,
            request10,
            method,
            origin,
        )


@dataclass
class _Reply:
    head: ResponseHead
    done_at: float  # loop time the response was complete
    sent_at: float  # loop time the request was written: before the server went idle
    keep_alive: bool  # the response's version, headers and framing leave the connection open

    def header(self, name: bytes) -> str | None:
        values = [v for k, v in self.head.headers if k.lower() == name]
        return b", ".join(values).decode("latin-1") if values else None


@dataclass
class _Close:
    kind: str  # FIN or RST
    at: float  # loop time it was seen
    sent: bytes = b""  # bytes that came while the connection was idle


class _PeerClosed(Exception):
    """The server closed the connection before a complete response."""

    def __init__(self, kind: str, response_bytes: int) -> None:
        super().__init__(f"closed with {kind} after {response_bytes} response bytes")
        self.kind = kind
        self.response_bytes = response_bytes


class _Sink:
    __slots__ = ("done", "head")

    def __init__(self) -> None:
        self.head: ResponseHead | None = None
        self.done = False

    def on_head(self, head: ResponseHead) -> None:
        self.head = head

    def on_body(self, chunk: bytes) -> None:
        pass

    def on_complete(self) -> None:
        self.done = True

    def on_informational(self, head: ResponseHead) -> None:
        pass


class _Probe:
    """One raw connection: send the request, parse the response, watch for the close."""

    def __init__(self, site: _Site, options: DoctorOptions, http10: bool) -> None:
        self.site = site
        self.timeout = options.timeout
        self.request = site.request10 if http10 else site.request11
        self.loop = asyncio.get_running_loop()
        self.sink = _Sink()
        self.parser = ResponseParser(self.sink)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.sent_at = 0.0  # loop time the latest request was written

    async def open(self) -> None:
        site = self.site
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(
                    site.host,
                    site.port,
                    ssl=site.tls,
                    server_hostname=site.host if site.tls else None,
                ),
                self.timeout,
            )
        except BaseException as exc:
            error = dial_error(exc, site.origin, self.timeout)  # the Client's words for it
            if error is exc:
                raise
            raise error from None

    async def exchange(self) -> _Reply:
        """One request and its whole response. Raises _PeerClosed or ProtocolError."""
        assert self.writer is not None
        if self.site.method != "GET":
            self.parser.expect(self.site.method)
        self.sink.done = False
        self.sink.head = None
        self.sent_at = self.loop.time()
        self.writer.write(self.request)
        try:
            return await asyncio.wait_for(self._read_response(), self.timeout)
        except asyncio.TimeoutError:
            raise ReadTimeout(
                f"no complete response from {self.site.host}:{self.site.port} "
                f"within {self.timeout:g} s"
            ) from None

    async def _read_response(self) -> _Reply:
        assert self.reader is not None
        sink, received = self.sink, 0
        while not sink.done:
            try:
                data = await self.reader.read(65536)
            except OSError:
                raise _PeerClosed(RST, received) from None
            if not data:
                try:
                    self.parser.feed_eof()  # ends a body delimited by the close
                except IncompleteResponse:
                    raise _PeerClosed(FIN, received) from None
                if not sink.done:
                    raise _PeerClosed(FIN, received)
                break
            received += len(data)
            self.parser.feed(data)
        head = sink.head
        assert head is not None
        return _Reply(head, self.loop.time(), self.sent_at, head.keep_alive)

    async def watch(self, seconds: float) -> _Close | None:
        """Wait up to ``seconds`` for the server to close; None if it is still open."""
        assert self.reader is not None
        deadline = self.loop.time() + seconds
        sent = b""
        while True:
            left = deadline - self.loop.time()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                return None
            except OSError:
                return _Close(RST, self.loop.time(), sent)
            if not data:
                return _Close(FIN, self.loop.time(), sent)
            sent += data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None
