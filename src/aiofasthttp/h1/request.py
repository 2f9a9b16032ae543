# cython: annotation_typing=False
# Compiled (setup.py), only Request is an extension type (request.pxd), whose fields the
# compiled connection reads as a C struct's. The functions keep Python's argument
# semantics: typed by their annotations, Cython would refuse a str subclass where
# ``str`` is annotated.
"""Requests: URLs resolved to an origin and a target, heads encoded once, bodies framed.

The head of a request is encoded to bytes here, once; the connection writes
it as it is. Everything that could split the head (CR, LF or NUL in the
method, the target or a header) is refused here with :class:`InvalidHeader`
or :class:`InvalidURL`, so no caller input can smuggle a second request.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import IO, Any, Final, Generic, NamedTuple, TypeVar
from urllib.parse import urlencode

from .._compiled import read_as_slots
from ..errors import InvalidHeader
from .headers import HeadersLike
from .multipart import FilesArg, Payload, encode_multipart, sync_content
from .url import Origin, Proxy, Route, Target

# Encoded requests a client keeps for reuse (see KeptHeads); past this many it starts
# afresh rather than track which are used.
KEPT_HEADS = 1024
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Field values: no control characters but HTAB (RFC 9110 5.5); CR and LF would split the head.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

BodyIterable = AsyncIterable[bytes]
# Sync iterables of bytes and binary files are streamed too (see multipart.sync_content).
Content = (
    bytes
    | bytearray
    | memoryview
    | str
    | BodyIterable
    | Callable[[], BodyIterable]
    | Iterable[bytes]
    | IO[bytes]
)
QueryParams = Mapping[str, Any] | Iterable[tuple[str, Any]] | str


def add_params(url: str, params: QueryParams | None) -> str:
    if not params:
        return url
    query = params if isinstance(params, str) else urlencode(list(_pairs(params)), doseq=True)
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _pairs(items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Iterable[tuple[str, Any]]:
    return items.items() if isinstance(items, Mapping) else items


def check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise InvalidHeader(f"invalid header name {name!r}")
    if _BAD_VALUE.search(value):
        raise InvalidHeader(
            f"control character (CR, LF, NUL, ...) in the value of header {name!r} is not allowed"
        )


def check_method(method: str) -> str:
    if not _TOKEN.match(method):
        raise InvalidHeader(f"invalid HTTP method {method!r}")
    return method.upper()


def header_items(headers: HeadersLike | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out = []
    for name, value in items:
        name, value = str(name), str(value)
        check_header(name, value)
        out.append((name, value))
    return out


class Body(NamedTuple):
    """A request body and how it is framed.

    ``data`` is the whole body as bytes, or None for a streamed body, which
    ``make_stream`` produces (afresh each call when ``replayable``) and which is
    sent in chunked coding unless ``chunked`` is False (the head then states its
    Content-Length: ``length`` when known, as for a multipart upload of files of
    known sizes, or the user's own field, as a transport relaying another
    client's request may).
    """

    data: bytes | None
    make_stream: Callable[[], BodyIterable] | None
    replayable: bool
    content_type: str | None
    chunked: bool = True
    length: int | None = None


EMPTY_BODY = Body(None, None, True, None)


def encode_body(
    content: Content | None, json: Any, data: Any, files: FilesArg | None = None
) -> Body:
    given = sum(x is not None for x in (content, json, data))
    if files is not None:
        if content is not None or json is not None:
            raise TypeError("files= goes with data= fields, not with content= or json=")
        return _streamed(encode_multipart(data, files))
    if given > 1:
        raise TypeError("pass at most one of content=, json= and data=")
    if json is not None:
        payload = jsonlib.dumps(json, separators=(",", ":"), ensure_ascii=False)
        return Body(payload.encode("utf-8"), None, True, "application/json")
    if data is not None:
        if isinstance(data, bytes | bytearray | memoryview | str):
            content = data
        else:
            form = urlencode(list(_pairs(data)), doseq=True).encode("ascii")
            return Body(form, None, True, "application/x-www-form-urlencoded")
    if content is None:
        return EMPTY_BODY
    if isinstance(content, str):
        return Body(content.encode("utf-8"), None, True, "text/plain; charset=utf-8")
    if isinstance(content, bytes):
        return Body(content, None, True, None)
    if isinstance(content, bytearray | memoryview):
        return Body(bytes(content), None, True, None)
    if callable(content):
        return Body(None, content, True, None)
    if isinstance(content, AsyncIterable):
        once = _OneShot(content)
        return Body(None, once, False, None)
    streamed = sync_content(content)
    if streamed is not None:
        return _streamed(streamed)
    raise TypeError(
        f"unsupported content type {type(content).__name__}: use bytes, str, a binary "
        "file, an iterable or async iterable of bytes, or a callable returning one"
    )


def _streamed(payload: Payload) -> Body:
    """A multipart or file body as a Body: of known length, sent unframed with its
    Content-Length rather than chunked (servers and proxies that refuse chunked
    uploads accept it)."""
    if payload.data is not None:
        return Body(payload.data, None, True, payload.content_type)
    known = payload.length is not None
    return Body(
        None,
        payload.make_stream,
        payload.replayable,
        payload.content_type,
        not known,
        payload.length,
    )


class _OneShot:
    """A body iterable that can be sent once; a second send is a clear error."""

    def __init__(self, iterable: BodyIterable) -> None:
        self._iterable: BodyIterable | None = iterable

    def __call__(self) -> BodyIterable:
        iterable, self._iterable = self._iterable, None
        if iterable is None:
            raise RuntimeError(
                "this request body is a one-shot async iterable; it was already sent"
            )
        return iterable


class Request:
    """One request, ready to send: its head is encoded bytes. A value: never changed
    (``Final``, so the type checker refuses an assignment).

    It knows where it goes (``route``), never which pool serves it, so the layers
    below the engine can hold one without knowing the engine. A class with slots,
    not a named tuple: the engine reads its fields on every request, and a slot
    is the cheapest attribute to read.
    """

    __slots__ = (
        "body",
        "closes_connection",
        "expect_continue",
        "head",
        "idempotent",
        "method",
        "origin",
        "route",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        origin: Origin,
        head: bytes,
        body: Body,
        idempotent: bool,
        route: Route | None = None,
        expect_continue: bool | None = None,
        closes_connection: bool | None = None,
    ) -> None:
        self.method: Final = method
        self.url: Final = url
        self.origin: Final = origin
        self.route: Final = route if route is not None else Route(origin)
        if expect_continue is None or closes_connection is None:
            lowered = head.lower()
            expect_continue = b"\r\nexpect: 100-continue\r\n" in lowered
            # RFC 9112 9.6: a request that says "Connection: close" is the last one
            # on its connection, whatever the server answers.
            closes_connection = _says_close(lowered)
        self.expect_continue: Final = expect_continue
        self.closes_connection: Final = closes_connection
        self.head: Final = head
        self.body: Final = body
        self.idempotent: Final = idempotent

    @property
    def replayable(self) -> bool:
        return self.body.replayable

    def with_body(self, body: Body) -> Request:
        """This request with another body of the same length and type, which the
        head already states: the encoded head is shared, not made again."""
        return Request(
            self.method,
            self.url,
            self.origin,
            self.head,
            body,
            self.idempotent,
            self.route,
            self.expect_continue,
            self.closes_connection,
        )

    def with_fields(self, fields: list[tuple[str, str]]) -> Request:
        """This request with more header fields at the end of its head (checked here).

        For fields that change no framing and no field the head already has: the
        head is extended, not encoded again.
        """
        for name, value in fields:
            check_header(name, value)
        try:
            added = "".join(f"{n}: {v}\r\n" for n, v in fields).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise InvalidHeader(f"header text outside ISO-8859-1: {exc}") from None
        return Request(
            self.method,
            self.url,
            self.origin,
            self.head[:-2] + added + b"\r\n",
            self.body,
            self.idempotent,
            self.route,
            self.expect_continue,
            self.closes_connection,
        )

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


def _says_close(lowered_head: bytes) -> bool:
    """Whether a (lower-cased) request head has a Connection header with the close token."""
    at = lowered_head.find(b"\r\nconnection:")
    while at >= 0:
        end = lowered_head.find(b"\r\n", at + 2)
        tokens = lowered_head[at + 13 : end].split(b",")
        if any(token.strip() == b"close" for token in tokens):
            return True
        at = lowered_head.find(b"\r\nconnection:", end)
    return False


Companion = TypeVar("Companion")


class KeptHeads(dict[tuple[object, ...], tuple[Request, Companion]], Generic[Companion]):
    """Encoded requests a client keeps, by what their head depends on, each with a
    companion of the client's choosing (the Client keeps the request's pool).

    Without params or headers of its own, a request's head depends only on the
    method, the URL and its body's type and length: the key says which. Lookups
    are the dict's own ``get`` (a GET's per-request cost is one of them); the
    kept requests hold heads only, never a body: reuse one with ``with_body``.
    """

    def keep(self, key: tuple[object, ...], request: Request, companion: Companion) -> None:
        if len(self) >= KEPT_HEADS:
            self.clear()
        self[key] = (request.with_body(EMPTY_BODY), companion)


def encode_head(
    method: str,
    target: Target,
    default_headers: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: Body,
    connection_close: bool,
    proxy: Proxy | None = None,
    expect_continue: bool = False,
) -> bytes:
    """The request line and header block, ending with the blank line.

    With ``proxy`` (plain http through a proxy) the request line carries the
    absolute URL and the proxy's credentials go in Proxy-Authorization.
    """
    user_names = {name.lower() for name, _ in headers}
    if proxy is None:
        lines = [f"{method} {target.target} HTTP/1.1"]
    else:
        lines = [f"{method} {target.origin.scheme}://{target.host_header}{target.target} HTTP/1.1"]
        if proxy.authorization and "proxy-authorization" not in user_names:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
    if "host" not in user_names:
        lines.append(f"Host: {target.host_header}")
    lines.extend(f"{n}: {v}" for n, v in default_headers if n.lower() not in user_names)
    if target.authorization and "authorization" not in user_names:
        lines.append(f"Authorization: {target.authorization}")
    if body.content_type and "content-type" not in user_names:
        lines.append(f"Content-Type: {body.content_type}")
    lines.extend(f"{n}: {v}" for n, v in headers)
    if body.data is not None:
        if "content-length" not in user_names:
            lines.append(f"Content-Length: {len(body.data)}")
    elif body.make_stream is not None:
        if "transfer-encoding" in user_names or "content-length" in user_names:
            pass  # the user framed it (a relayed request)
        elif body.chunked or body.length is None:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {body.length}")
    elif method in _METHODS_WITH_BODY and "content-length" not in user_names:
        lines.append("Content-Length: 0")
    if connection_close and "connection" not in user_names:
        lines.append("Connection: close")
    if expect_continue and "expect" not in user_names and body.data is not None:
        lines.append("Expect: 100-continue")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise InvalidHeader(f"header text outside ISO-8859-1: {exc}") from None


def build_request(
    method: str,
    url: str,
    target: Target,
    default_headers: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: Body,
    *,
    connection_close: bool = False,
    proxy: Proxy | None = None,
    expect_continue: bool = False,
    route: Route | None = None,
) -> Request:
    """Encode the head, and note what the retry rules need: is it idempotent?"""
    head = encode_head(
        method, target, default_headers, headers, body, connection_close, proxy, expect_continue
    )
    idempotent = method in IDEMPOTENT_METHODS or any(
        name.lower() == "idempotency-key" for name, _ in headers
    )
    return Request(method, url, target.origin, head, body, idempotent, route)


# Compiled, the engine's Python code reads a request's fields as slots; as Python this
# does nothing.
read_as_slots(Request, Request.__slots__)
