"""Responses: the head at once, the body buffered or streamed, decoded on the way out."""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from .._compiled import read_as_slots
from ..errors import HTTPStatusError
from .headers import HeaderPairs, Headers
from .parser import ResponseHead
from .text import ServerSentEvent, charset_from_content_type, iter_events, iter_lines, iter_text

_CHARSET = re.compile(r"""charset=["']?([\w.:-]+)""", re.I)


class Response:
    """An HTTP response.

    Made by ``client.request()`` with the whole body read (``content``), or by
    ``client.stream()`` with the body to read through ``iter_bytes()``.
    """

    __slots__ = (
        "_content",
        "_elapsed",
        "_head",
        "_headers",
        "_held",
        "_history",
        "_stream",
        "method",
        "status",
        "url",
    )
    # A streamed response's connection and exchange, for the engine to release; set
    # only when streaming (unset otherwise: nothing to pay on a buffered response).
    _held: tuple[Any, Any]
    # Seconds from the request sent to its head received: the engine sets it.
    _elapsed: float

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
        # Made when first read: most responses followed no redirect, and a list per
        # response was an allocation the collector counts.
        self._history: list[Response] | None = None

    @property
    def history(self) -> list[Response]:
        """The redirect responses that led here, oldest first (empty if none)."""
        history = self._history
        if history is None:
            history = self._history = []
        return history

    @history.setter
    def history(self, responses: list[Response]) -> None:
        self._history = responses

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
    def elapsed(self) -> timedelta:
        """The time from sending the request to receiving this response's head.

        Measured on the event loop's clock, from when the request was handed to
        its connection (after any wait for one) to the read that completed the
        head; for a redirect, each response has its own. Zero for a response the
        engine did not time (one made by hand, or by PipelineClient).
        """
        # Unset (as Python) or None (compiled) when the engine did not time it.
        elapsed = getattr(self, "_elapsed", None)
        return timedelta(0) if elapsed is None else timedelta(seconds=elapsed)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def raise_for_status(self) -> Response:
        if self.status >= 400:
            kind = "client" if self.status < 500 else "server"
            raise HTTPStatusError(
                f"{kind} error {self.status} {self.reason} for {self.method} {self.url}",
                status=self.status,
                response=self,
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

    def iter_text(self) -> AsyncIterator[str]:
        """The body as text, decoded by the Content-Type's charset (else UTF-8) as it
        arrives; a character split between two pieces is decoded once both are in."""
        return iter_text(self.iter_bytes(), self._text_charset())

    def iter_lines(self, *, max_line_size: int | None = None) -> AsyncIterator[str]:
        """The body's lines, without their line ends (``\\n``, ``\\r\\n`` or ``\\r``),
        empty ones included: NDJSON records, server-sent event fields. ``max_line_size``
        bounds one line, in characters (past it: LimitExceeded)."""
        return iter_lines(self.iter_bytes(), self._text_charset(), max_line_size=max_line_size)

    def iter_events(self, *, max_line_size: int | None = None) -> AsyncIterator[ServerSentEvent]:
        """The server-sent events of a ``text/event-stream`` body."""
        return iter_events(self.iter_lines(max_line_size=max_line_size))

    def _text_charset(self) -> str | None:
        return charset_from_content_type(self.headers.get("content-type"))

    async def aread(self) -> bytes:
        """Read the rest of a streamed body into ``content`` and return it."""
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.iter_bytes()])
        return self._content

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}] {self.method} {self.url}>"

    def __delattr__(self, name: str) -> None:
        # Compiled, a field deleted would be NULL where the compiled methods expect an
        # object (its fields are read as slots: see aiofasthttp._compiled).
        raise AttributeError(f"a Response's {name!r} cannot be deleted")


def buffered_response(
    method: str, url: str, head: ResponseHead, content: bytes, elapsed: float
) -> Response:
    """A response with its whole body, timed by the engine: made and filled in one call
    (compiled, without a Python frame; and Response's ``__delattr__`` makes every field
    written from Python code cost more)."""
    resp = Response(method, url, head)
    resp._elapsed = elapsed
    resp._content = content
    return resp


read_as_slots(Response, Response.__slots__)
