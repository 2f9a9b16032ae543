"""Responses: the head at once, the body buffered or streamed, decoded on the way out."""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import HTTPStatusError
from .headers import HeaderPairs, Headers
from .parser import ResponseHead

_CHARSET = re.compile(r"""charset=["']?([\w.:-]+)""", re.I)


class Response:
    """An HTTP response.

    Made by ``client.request()`` with the whole body read (``content``), or by
    ``client.stream()`` with the body to read through ``iter_bytes()``.
    """

    __slots__ = (
        "_content",
        "_head",
        "_headers",
        "_held",
        "_stream",
        "history",
        "method",
        "status",
        "url",
    )
    # A streamed response's connection and exchange, for the engine to release; set
    # only when streaming (unset otherwise: nothing to pay on a buffered response).
    _held: tuple[Any, Any]

    def __init__(self, method: str, url: str, head: ResponseHead) -> None:
        self.method = method
        self.url = url
        self.status = head.status
        # The parsed head is kept as it is: reason, version and the header list are
        # built from it only when asked for (most callers read status and body only).
        self._head = head
        self._headers: Headers | None = None
        self._content: bytes | None = None
        self._stream: Callable[[], AsyncIterator[bytes]] | None = None
        self.history: list[Response] = []  # the redirect responses that led here

    @property
    def reason(self) -> str:
        return self._head.reason.decode("latin-1")

    @property
    def http_version(self) -> str:
        return "HTTP/1.1" if self._head.version == (1, 1) else "HTTP/1.0"

    @property
    def headers(self) -> Headers:
        headers = self._headers
        if headers is None:
            headers = self._headers = Headers.from_raw(self._head.headers)
        return headers

    @property
    def raw_headers(self) -> HeaderPairs:
        """The header pairs as received: bytes, wire order, names as sent."""
        return self._head.headers

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError(
                "the body of a streamed response is read with iter_bytes() or aread()"
            )
        return self._content

    @property
    def charset(self) -> str | None:
        content_type = self.headers.get("content-type")
        if content_type:
            m = _CHARSET.search(content_type)
            if m:
                return m.group(1)
        return None

    @property
    def text(self) -> str:
        charset = self.charset or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        return jsonlib.loads(self.content, **kwargs)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> Response:
        if self.status >= 400:
            kind = "client" if self.status < 500 else "server"
            raise HTTPStatusError(
                f"{kind} error {self.status} {self.reason} for {self.method} {self.url}",
                status=self.status,
            )
        return self

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """The body, decoded, in the pieces it arrives in."""
        if self._stream is None:
            if self._content:
                yield self._content
            return
        stream, self._stream = self._stream, None
        async for chunk in stream():
            yield chunk

    async def aread(self) -> bytes:
        """Read the rest of a streamed body into ``content`` and return it."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.iter_bytes()])
        return self._content

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}] {self.method} {self.url}>"
