"""Streamed text: a body's byte chunks decoded by its charset, and split into lines.

``resp.iter_text()`` and ``resp.iter_lines()`` are these functions over
``resp.iter_bytes()``. A character split between two chunks is decoded once
both halves are in (an incremental decoder keeps the first); a ``\\r\\n``
split between two chunks is one line end, not two. Lines end at ``\\n``,
``\\r\\n`` or ``\\r`` (what NDJSON and server-sent events allow) and nowhere
else: unlike ``str.splitlines``, a U+2028 inside a JSON string stays in its line.
:func:`iter_events` reads server-sent events from those lines.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from ..errors import LimitExceeded

_CHARSET = re.compile(r""";\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))""", re.I)
_LINE_END = re.compile(r"\r\n|\r|\n")


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset a ``Content-Type`` names, if Python has a codec for it."""
    if not content_type:
        return None
    m = _CHARSET.search(content_type)
    if m is None:
        return None
    name = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


class TextDecoder:
    """Bytes chunks to text; undecodable bytes become U+FFFD, never an error."""

    __slots__ = ("_decoder",)

    def __init__(self, encoding: str = "utf-8") -> None:
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def decode(self, chunk: bytes) -> str:
        return self._decoder.decode(chunk)

    def flush(self) -> str:
        """The text of bytes held at the end (a truncated character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)


class LineSplitter:
    """Text chunks to lines, without their line ends.

    A ``\\r`` ends its line at once (a server-sent event is not held back); a
    ``\\n`` right after it, in the same chunk or the next, is part of that end.
    ``max_line_size`` bounds the characters held for one unfinished line:
    past it, :class:`LimitExceeded` (reason ``line_too_long``).
    """

    __slots__ = ("_max", "_pieces", "_size", "_skip_lf")

    def __init__(self, max_line_size: int | None = None) -> None:
        self._max = max_line_size
        self._pieces: list[str] = []  # the unfinished line, kept as pieces: no quadratic joins
        self._size = 0
        self._skip_lf = False

    def feed(self, text: str) -> list[str]:
        if self._skip_lf and text:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\n" not in text and "\r" not in text:
            self._pieces.append(text)
            self._size += len(text)
            self._check(self._size)
            return []
        lines = _LINE_END.split(text)
        if self._pieces:
            lines[0] = "".join(self._pieces) + lines[0]
        tail = lines.pop()
        self._pieces = [tail] if tail else []
        self._size = len(tail)
        self._skip_lf = text[-1] == "\r"
        if self._max is not None:
            self._check(max(len(line) for line in lines))
            self._check(self._size)
        return lines

    def flush(self) -> list[str]:
        """The last line, if the text did not end with a line end."""
        line = "".join(self._pieces)
        self._pieces, self._size = [], 0
        return [line] if line else []

    def _check(self, size: int) -> None:
        if self._max is not None and size > self._max:
            raise LimitExceeded(
                f"a line longer than max_line_size={self._max} characters", reason="line_too_long"
            )


async def iter_text(
    chunks: AsyncIterable[bytes], encoding: str | None = None
) -> AsyncIterator[str]:
    """Decode ``chunks`` with ``encoding`` (else UTF-8), yielding text as it comes."""
    decoder = TextDecoder(encoding or "utf-8")
    async for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield text
    text = decoder.flush()
    if text:
        yield text


async def iter_lines(
    chunks: AsyncIterable[bytes],
    encoding: str | None = None,
    *,
    max_line_size: int | None = None,
) -> AsyncIterator[str]:
    """The lines of the decoded ``chunks``, without line ends; empty lines included
    (a server-sent event ends with one)."""
    splitter = LineSplitter(max_line_size)
    async for text in iter_text(chunks, encoding):
        for line in splitter.feed(text):
            yield line
    for line in splitter.flush():
        yield line


# -- server-sent events ------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSentEvent:
    """One event of a ``text/event-stream``: ``id`` is the last event ID seen so
    far (it carries over, as the standard says); ``retry`` is the reconnection
    time in milliseconds if this event set one."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


async def iter_events(lines: AsyncIterable[str]) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events from the lines of an event stream (the HTML standard's
    "interpret an event stream"): ``iter_events(iter_lines(resp.iter_bytes()))``.

    An event without a closing blank line at the stream's end is dropped, as the
    standard says.
    """
    data: list[str] = []
    event, last_id, retry = "", None, None
    first = True
    async for line in lines:
        if first:
            line, first = line.removeprefix("\ufeff"), False
        if not line:
            if data:
                yield ServerSentEvent("\n".join(data), event or "message", last_id, retry)
            data, event, retry = [], "", None
            continue
        name, colon, value = line.partition(":")
        if not name:
            continue  # a comment (a line starting with ":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
