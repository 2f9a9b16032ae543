"""An httpx transport on aiofasthttp's engine: httpx's API, this pool, its replays.

::

    import httpx
    from aiofasthttp.integrations.httpx import AsyncTransport

    client = httpx.AsyncClient(transport=AsyncTransport(max_conns_per_host=100))

httpx keeps its own layer: redirects, cookies, auth, decoding and Accept-Encoding.
So the transport sends exactly the request it is given (method, URL, the headers
in their order, the body, streamed or not) and hands back the response as it
came: no decompression, no redirects. The engine adds its pool, its safe replays
of requests that met a stale connection, and its speed.

- Timeouts: the connect, read, write and pool timeouts httpx passes in
  ``request.extensions["timeout"]`` replace the engine's for that request.
- Streaming: ``Response.aiter_bytes()`` pulls from the connection; closing a
  response before its end closes that connection (it is never pooled with unread
  bytes).
- Errors: each engine error becomes the httpx exception httpx's own transport
  raises for the same event, with the engine's error as ``__cause__`` (reused or
  fresh, idle time, attempt).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "aiofasthttp.integrations.httpx needs httpx: pip install 'aiofasthttp[httpx]'"
    ) from exc

from ..engine.client import Client
from ..engine.connection import Connection
from ..engine.exchange import AttemptSettings, Exchange
from ..errors import (
    ClientClosedError,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    HeadTimeout,
    HTTPError,
    InvalidHeader,
    InvalidURL,
    PoolTimeout,
    ProtocolError,
    ProxyError,
    ReadTimeout,
    TimeoutError,
    WriteTimeout,
)
from ..h1.request import EMPTY_BODY, IDEMPOTENT_METHODS, Body, BodyIterable, Request
from ..h1.url import DEFAULT_PORTS, Origin, Proxy, Route, Target

__all__ = ["AsyncTransport"]

# Options of Client that would change the request or the response httpx gave or
# expects: httpx does these itself.
_HTTPX_OWNS = frozenset(
    {
        "base_url",
        "headers",
        "user_agent",
        "decompress",
        "follow_redirects",
        "max_redirects",
        "event_hooks",
        "trust_env",
    }
)
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class AsyncTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` running requests on an aiofasthttp ``Client``.

    ``options`` are the engine's (``max_conns_per_host``, ``max_idle_conn_duration``,
    ``retry``, ``ssl``, the timeouts, ``uds``, ``proxy``, ...). ``limits``, an
    ``httpx.Limits``, maps onto them where nothing more specific is given:
    ``max_connections`` to ``max_conns_per_host`` and ``keepalive_expiry`` to
    ``max_idle_conn_duration``; the engine keeps every idle connection up to its
    limit, so ``max_keepalive_connections`` has no counterpart.
    """

    def __init__(self, *, limits: httpx.Limits | None = None, **options: Any) -> None:
        owned = _HTTPX_OWNS & set(options)
        if owned:
            raise TypeError(
                f"AsyncTransport does not take {sorted(owned)}: httpx handles those itself"
            )
        if limits is not None:
            if limits.max_connections is not None:
                options.setdefault("max_conns_per_host", limits.max_connections)
            options.setdefault("max_idle_conn_duration", limits.keepalive_expiry)
        self._client = Client(decompress=False, **options)
        self._settings: dict[tuple[Any, ...], AttemptSettings] = {}
        self._places: dict[tuple[bytes, bytes, int | None], tuple[Origin, Route, Proxy | None]] = {}

    @property
    def client(self) -> Client:
        """The engine client underneath (its ``stats()``, say)."""
        return self._client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            engine_request = self._engine_request(request)
            settings = self._settings_for(request.extensions.get("timeout"))
            deadline = self._client._deadline(self._client._timeout)
            resp, conn, ex = await self._client._coordinator.run(
                engine_request, deadline, True, settings
            )
        except HTTPError as exc:
            raise httpx_error(exc, request) from exc
        assert conn is not None and ex is not None  # a streamed response keeps its exchange
        return httpx.Response(
            resp.status,
            headers=resp.raw_headers,
            stream=_ResponseStream(conn, ex, request),
            extensions={
                "http_version": resp.http_version.encode("ascii"),
                "reason_phrase": resp.reason.encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the request, as httpx built it ---------------------------------------------

    def _engine_request(self, request: httpx.Request) -> Request:
        url = request.url
        place = self._places.get(
            (url.raw_scheme, url.raw_host, url.port)
        )  # (scheme, host, port): where it goes
        if place is None:
            place = self._place(url)
        origin, route, proxy = place
        shown = str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)
        fields = _Fields(request.headers.raw)
        target = url.raw_path
        if proxy is not None:  # plain http through a proxy: the absolute form
            target = shown.encode("ascii")
            if proxy.authorization and not fields.proxy_authorization:
                auth = proxy.authorization.encode("latin-1")
                fields.block = b"Proxy-Authorization: %s\r\n%s" % (auth, fields.block)
        method = request.method
        head = b"%s %s HTTP/1.1\r\n%s\r\n" % (method.encode("ascii"), target, fields.block)
        idempotent = method in IDEMPOTENT_METHODS or fields.idempotency_key
        return Request(method, shown, origin, head, _body(request, fields), idempotent, route)

    def _place(self, url: httpx.URL) -> tuple[Origin, Route, Proxy | None]:
        """The origin of a URL, its route and its proxy (kept: the same few recur)."""
        scheme = url.scheme
        if scheme not in DEFAULT_PORTS:
            raise InvalidURL(f"unsupported URL scheme {scheme!r} in {url}: use http or https")
        origin = Origin(scheme, url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[scheme])
        route, proxy = self._client._route(Target(origin, "", "", None))
        if len(self._places) > 256:
            self._places.clear()
        place = self._places[url.raw_scheme, url.raw_host, url.port] = (origin, route, proxy)
        return place

    def _settings_for(self, timeout: dict[str, float | None] | None) -> AttemptSettings | None:
        """The engine's settings with httpx's per-request timeouts (kept per value)."""
        if not timeout:
            return None
        get = timeout.get
        key = (get("connect"), get("read"), get("write"), get("pool"))
        found = self._settings.get(key)
        if found is None:
            if len(self._settings) > 64:
                self._settings.clear()
            found = self._settings[key] = self._client._settings_for(
                {
                    "connect_timeout": key[0],
                    "read_timeout": key[1],
                    "write_timeout": key[2],
                    "pool_timeout": key[3],
                }
            )
        return found


class _Fields:
    """httpx's header fields, checked and joined in one pass, and what the engine
    must know of them: the body's framing, an Idempotency-Key, a Proxy-Authorization."""

    __slots__ = ("block", "chunked", "idempotency_key", "length", "proxy_authorization")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.chunked = self.idempotency_key = self.proxy_authorization = False
        self.length: int | None = None
        lines = []
        for name, value in raw:
            if not _TOKEN.match(name):
                raise InvalidHeader(f"invalid header name {name!r}")
            if _BAD_VALUE.search(value):
                raise InvalidHeader(f"control character in the value of header {name!r}")
            lines.append(b"%s: %s\r\n" % (name, value))
            lower = name.lower()
            if lower == b"content-length":
                self.length = int(value)
            elif lower == b"transfer-encoding":
                self.chunked = b"chunked" in value.lower()
            elif lower == b"idempotency-key":
                self.idempotency_key = True
            elif lower == b"proxy-authorization":
                self.proxy_authorization = True
        self.block = b"".join(lines)


def _body(request: httpx.Request, fields: _Fields) -> Body:
    """The engine's body for httpx's, framed as httpx's headers say.

    As in httpcore (h11), a request with neither Content-Length nor chunked
    Transfer-Encoding has an empty body; a longer one is refused, not sent.
    """
    chunked, length = fields.chunked, fields.length
    stream = request.stream
    try:
        data: bytes | None = request.content
    except httpx.RequestNotRead:
        # A ByteStream httpx has not read (a redirect's): bytes, which it iterates as one.
        data = b"".join(stream) if isinstance(stream, httpx.ByteStream) else None
    if data is None:
        assert isinstance(stream, httpx.AsyncByteStream)
        send = _one_shot(stream, None if chunked else length or 0)
        return Body(None, send, False, None, chunked)
    if chunked:  # the body is known, but the head says chunked: frame it so
        return Body(None, lambda: _iterate(data), True, None, True)
    if not data:
        return EMPTY_BODY
    if length != len(data):
        raise httpx.LocalProtocolError(
            f"a body of {len(data)} bytes with Content-Length {length}: refused, not sent"
        )
    return Body(data, None, True, None)


def _one_shot(stream: httpx.AsyncByteStream, length: int | None) -> Callable[[], BodyIterable]:
    """httpx's streamed body, sent once; with a Content-Length, exactly that many bytes."""
    sent = False

    def start() -> BodyIterable:
        nonlocal sent
        if sent:
            raise httpx.StreamConsumed()
        sent = True
        return _counted(stream, length)

    return start


async def _counted(stream: httpx.AsyncByteStream, length: int | None) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if length is not None and total > length:
            raise httpx.LocalProtocolError(f"the body is longer than its Content-Length {length}")
        yield chunk
    if length is not None and total != length:
        raise httpx.LocalProtocolError(f"the body is shorter than its Content-Length {length}")


async def _iterate(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- the response --------------------------------------------------------------------


class _ResponseStream(httpx.AsyncByteStream):
    """The body, read from the connection as httpx asks for it."""

    def __init__(self, conn: Connection, ex: Exchange, request: httpx.Request) -> None:
        self._conn = conn
        self._ex = ex
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = self._conn.read_body_chunk
        ex = self._ex
        try:
            while (chunk := await read(ex)) is not None:
                yield chunk
        except HTTPError as exc:
            raise httpx_error(exc, self._request) from exc
        except BaseException:
            self._conn.abandon(ex, "streamed response left before its end")
            raise

    async def aclose(self) -> None:
        # Done with: nothing happens. Left early: the connection closes, unread bytes and all.
        self._conn.abandon(self._ex, "httpx response closed before its end")


# -- errors ------------------------------------------------------------------------------

_MAPPING: tuple[tuple[type[HTTPError], type[httpx.TransportError]], ...] = (
    # The most specific first: ConnectTimeout is a ConnectError and a TimeoutError.
    (ConnectTimeout, httpx.ConnectTimeout),
    (ProxyError, httpx.ProxyError),
    (ConnectError, httpx.ConnectError),
    (HeadTimeout, httpx.ReadTimeout),
    (ReadTimeout, httpx.ReadTimeout),
    (WriteTimeout, httpx.WriteTimeout),
    (PoolTimeout, httpx.PoolTimeout),
    (TimeoutError, httpx.TimeoutException),  # the engine's whole-request timeout
    (ProtocolError, httpx.RemoteProtocolError),
    (InvalidHeader, httpx.LocalProtocolError),
    (InvalidURL, httpx.UnsupportedProtocol),
)


def httpx_error(exc: HTTPError, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception httpx's own transport raises for the event ``exc`` reports."""
    kind: type[httpx.TransportError] = httpx.TransportError
    if isinstance(exc, ConnectionClosedError):
        kind = _closed_kind(exc)
    elif isinstance(exc, ClientClosedError):
        kind = httpx.TransportError
    else:
        for ours, theirs in _MAPPING:
            if isinstance(exc, ours):
                kind = theirs
                break
    return kind(str(exc), request=request)


def _closed_kind(exc: ConnectionClosedError) -> type[httpx.TransportError]:
    """httpcore's view: a reset is a read or write error; a clean close before the
    response (or before its end) is the server breaking the protocol."""
    reset = isinstance(exc.__cause__, OSError)
    if not exc.request_written and not exc.response_bytes:
        return httpx.WriteError if reset or exc.bytes_written else httpx.RemoteProtocolError
    if reset:
        return httpx.ReadError
    return httpx.RemoteProtocolError
