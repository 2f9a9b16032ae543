"""The pure-Python HTTP/1.1 response parser: the compiled parser's twin.

Theory of operation
-------------------
The parser is sans-I/O: ``feed(data)`` takes bytes from the connection and
calls its sink; ``feed_eof()`` tells it the peer closed. It never reads a
socket, starts a timer or touches an event loop.

A response is read in phases. In the *head* phase complete lines are parsed as
soon as their CRLF arrives (the status line, then header lines), so a malformed
head fails at the first bad byte, not when the blank line finally comes; a line
still waiting for its CRLF is checked as far as it goes. When the blank line
arrives the framing is decided once (RFC 9112 section 6.3) and the whole head
goes to ``sink.on_head`` as one object. The *body* phase is one of:
content-length, chunked (size line, data, CRLF, ..., trailers) or until-close.
1xx interim heads go to ``sink.on_informational`` and the next head follows.

Choices where the RFC lets a recipient choose (the compiled parser makes the
same ones; tests/test_parser*.py hold both to them):

- Line ends must be CRLF. A bare LF or a bare CR is an error (as llhttp's
  strict mode): lenient line ends are how responses get smuggled.
- Obsolete line folding (RFC 9112 section 5.2) is replaced by one space, as the
  RFC asks of a user agent, except in Content-Length and Transfer-Encoding,
  where a fold is an error, and right after the status line, where it is an error.
- Transfer-Encoding together with Content-Length: Transfer-Encoding wins and
  the response is marked not keep-alive, so the connection is not reused.
- ``chunked`` anywhere but last in Transfer-Encoding, or twice, is an error;
  a last coding other than chunked means the body runs until close.
- Content-Length must be digits only, below 2**63; a comma list or repeated
  field is accepted only when every value is the same.
- Bytes after a response that ended the connection's keep-alive are an error.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from .errors import (
    ChunkLineTooLong,
    HeadTooLarge,
    IncompleteResponse,
    ProtocolError,
    TooManyHeaders,
)

DEFAULT_MAX_HEAD_SIZE = 65536
DEFAULT_MAX_HEADERS = 128
DEFAULT_MAX_CHUNK_LINE_SIZE = 4096
_MAX_LENGTH = (1 << 63) - 1

_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Field values and reason phrases: HTAB, SP, VCHAR and obs-text.
_TEXT_CHARS = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_HEX_CHARS = b"0123456789abcdefABCDEF"

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: (.*))?", re.S)
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]+)((?:[ \t]*;[ \t]*"
    + _TOKEN
    + rb"(?:[ \t]*=[ \t]*(?:"
    + _TOKEN
    + rb"|"
    + _QUOTED
    + rb"))?)*)"
)
_KEEP_ALIVE_PARAM = re.compile(rb"(?i)\s*(timeout|max)\s*=\s*\"?([0-9]{1,9})")

# Parser phases.
_HEAD = 0
_BODY_LENGTH = 1
_CHUNK_SIZE = 2
_CHUNK_DATA = 3
_CHUNK_DATA_END = 4
_TRAILERS = 5
_BODY_UNTIL_CLOSE = 6
_UPGRADED = 7
_CLOSED = 8
_FAILED = 9

_HTTP_10 = (1, 0)
_HTTP_11 = (1, 1)


def _status_prefix_ok(line: bytes) -> bool:
    """Whether ``line`` can still grow into a valid status line."""
    for i, c in enumerate(line[:13]):
        if i < 5:
            ok = c == b"HTTP/"[i]
        elif i == 5:
            ok = c == 0x31  # 1
        elif i == 6:
            ok = c == 0x2E  # .
        elif i == 7:
            ok = c in (0x30, 0x31)
        elif i == 8 or i == 12:
            ok = c == 0x20 or (i == 12 and c == 0x0D)
        else:
            ok = 0x30 <= c <= 0x39
        if not ok:
            return False
    return True


class ResponseHead:
    """One response head: status line, header pairs and the framing decided from them.

    ``headers`` is a list of ``(name, value)`` byte pairs in wire order, names
    as sent, values without surrounding whitespace. ``trailers`` is ``None``
    until a chunked body's trailer section was read (then a list, maybe empty).
    """

    __slots__ = (
        "chunked",
        "content_length",
        "headers",
        "keep_alive",
        "keep_alive_max",
        "keep_alive_timeout",
        "reason",
        "status",
        "trailers",
        "upgrade",
        "version",
    )

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.version: tuple[int, int] = _HTTP_11
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = True
        self.chunked = False
        self.content_length: int | None = None
        self.keep_alive_timeout: int | None = None
        self.keep_alive_max: int | None = None
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.upgrade = False

    def __repr__(self) -> str:
        return (
            f"<ResponseHead HTTP/{self.version[0]}.{self.version[1]} {self.status} "
            f"{self.reason.decode('latin-1')!r} headers={len(self.headers)}>"
        )


class _Framing:
    """What the framing headers of one head said, gathered while reading it."""

    __slots__ = ("connection", "content_length", "keep_alive", "transfer_codings")

    def __init__(self) -> None:
        self.content_length: int | None = None
        self.transfer_codings: list[bytes] | None = None
        self.connection: set[bytes] = set()
        self.keep_alive: list[bytes] = []


class ResponseParser:
    """Incremental HTTP/1.1 response parser (pure Python).

    ``sink`` receives ``on_head(head)``, ``on_body(bytes)`` and
    ``on_complete()`` for each response, and ``on_informational(head)`` for
    1xx interim responses if it has that method. ``expect(method)`` queues the
    method of each request sent, so that HEAD and CONNECT are framed right.
    """

    def __init__(
        self,
        sink: Any,
        *,
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_chunk_line_size: int = DEFAULT_MAX_CHUNK_LINE_SIZE,
    ) -> None:
        self._on_head = sink.on_head
        self._on_body = sink.on_body
        self._on_complete = sink.on_complete
        self._on_informational = getattr(sink, "on_informational", None)
        self.max_head_size = max_head_size
        self.max_headers = max_headers
        self.max_chunk_line_size = max_chunk_line_size
        self._methods: deque[bytes] = deque()
        self._state = _HEAD
        self._offset = 0  # stream offset of the first byte of the current feed
        self._line = b""  # an unfinished line carried over between feeds
        self._line_offset = 0  # stream offset where self._line starts
        self._head_size = 0
        self._head: ResponseHead | None = None
        self._framing = _Framing()
        self._remaining = 0
        self._trailers: list[tuple[bytes, bytes]] = []
        self._upgrade_data = bytearray()
        self.upgrade_offset: int | None = None
        self.messages_completed = 0

    # -- public -----------------------------------------------------------

    def expect(self, method: bytes | str) -> None:
        """Queue the method of the next request sent on this connection."""
        if isinstance(method, str):
            method = method.encode("ascii")
        self._methods.append(method.upper())

    @property
    def in_message(self) -> bool:
        """True while a response has begun and is not complete."""
        if self._state == _HEAD:
            return bool(self._line) or self._head is not None
        return self._state not in (_CLOSED, _UPGRADED, _FAILED)

    @property
    def upgraded(self) -> bool:
        """True after a 101 response or a 2xx to CONNECT: the rest is not HTTP."""
        return self._state == _UPGRADED

    def upgraded_data(self) -> bytes:
        """Bytes received after the head that switched protocols."""
        return bytes(self._upgrade_data)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse the next bytes of the response stream."""
        if self._state == _FAILED:
            raise ProtocolError(
                "the parser failed earlier and takes no more input",
                reason="parser_failed",
                offset=self._offset,
            )
        if type(data) is not bytes:
            data = bytes(data)
        try:
            self._feed(data)
        except BaseException:
            self._state = _FAILED
            raise
        self._offset += len(data)

    def feed_eof(self) -> None:
        """The peer closed the connection: end a close-delimited body, or fail."""
        state = self._state
        if state == _BODY_UNTIL_CLOSE:
            self._state = _CLOSED
            self._complete()
            return
        if state in (_CLOSED, _UPGRADED, _FAILED):
            return
        if state == _HEAD and not self._line and self._head is None:
            self._state = _CLOSED
            return
        self._state = _FAILED
        where = {
            _HEAD: "in the response head",
            _BODY_LENGTH: f"with {self._remaining} bytes of the Content-Length body unread",
            _TRAILERS: "in the chunked body's trailers",
        }.get(state, "inside the chunked body")
        raise IncompleteResponse(f"the connection closed {where}", offset=self._offset)

    # -- the phases -------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state in (_HEAD, _TRAILERS):
                pos = self._feed_lines(data, pos)
            elif state == _BODY_LENGTH:
                pos = self._feed_length(data, pos)
            elif state == _CHUNK_DATA:
                pos = self._feed_chunk_data(data, pos)
            elif state in (_CHUNK_SIZE, _CHUNK_DATA_END):
                pos = self._feed_chunk_line(data, pos)
            elif state == _BODY_UNTIL_CLOSE:
                self._on_body(data if pos == 0 else data[pos:])
                return
            elif state == _UPGRADED:
                self._upgrade_data += data[pos:]
                return
            else:  # _CLOSED
                raise ProtocolError(
                    "data after a response that closed the connection",
                    reason="data_after_close",
                    offset=self._offset + pos,
                )

    def _next_line(self, data: bytes, pos: int, limit: int) -> tuple[bytes | None, int]:
        """Take one CRLF-terminated line starting at ``pos`` (carried part included).

        Returns ``(line_without_crlf, new_pos)``, or ``(None, len(data))`` when
        the line is not complete yet (it is kept for the next feed).
        """
        lf = data.find(b"\n", pos)
        if lf < 0:
            if not self._line:
                self._line_offset = self._offset + pos
            self._line += data[pos:]
            if len(self._line) > limit:
                self._line_over_limit()
            return None, len(data)
        if self._line:
            line = self._line + data[pos:lf]
            self._line = b""
        else:
            line = data[pos:lf]
            self._line_offset = self._offset + pos
        if len(line) + 1 > limit:
            self._line_over_limit()
        if not line or line[-1] != 0x0D:
            raise ProtocolError(
                "line ends with a bare LF; CRLF is required",
                reason="bare_lf",
                offset=self._offset + lf,
            )
        return line[:-1], lf + 1

    def _line_over_limit(self) -> None:
        if self._state in (_CHUNK_SIZE, _CHUNK_DATA_END):
            raise ChunkLineTooLong(
                f"chunk-size line longer than {self.max_chunk_line_size} bytes",
                offset=self._line_offset,
            )
        raise HeadTooLarge(
            f"response head larger than {self.max_head_size} bytes",
            offset=self._line_offset,
        )

    def _feed_lines(self, data: bytes, pos: int) -> int:
        """Head or trailer lines, until the blank line."""
        end = len(data)
        while pos < end:
            line, new_pos = self._next_line(data, pos, self.max_head_size - self._head_size)
            if line is None:
                self._check_partial_line(self._line)
                return new_pos
            self._head_size += len(line) + 2
            pos = new_pos
            if self._state == _TRAILERS:
                if not line:
                    return self._end_trailers(pos)
                self._header_line(line, self._trailers)
            elif self._head is None:
                if line:  # empty lines before a status line are skipped, as llhttp does
                    self._status_line(line)
            elif not line:
                return self._end_head(pos)
            else:
                self._header_line(line, self._head.headers)
        return pos

    def _status_line(self, line: bytes) -> None:
        m = _STATUS_LINE.fullmatch(line)
        if m is None:
            raise ProtocolError(
                f"invalid status line {line[:40]!r}",
                reason="invalid_status_line",
                offset=self._line_offset,
            )
        reason = m.group(3) or b""
        if reason.translate(None, _TEXT_CHARS):
            raise ProtocolError(
                "control character in the reason phrase",
                reason="invalid_reason",
                offset=self._line_offset,
            )
        head = ResponseHead()
        head.version = _HTTP_11 if m.group(1) == b"1" else _HTTP_10
        head.status = int(m.group(2))
        head.reason = reason
        self._head = head

    def _header_line(self, line: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        first = line[0]
        if first == 0x20 or first == 0x09:
            self._fold(line, headers)
            return
        colon = line.find(b":")
        name = line[:colon] if colon > 0 else line
        if colon <= 0 or name.translate(None, _TOKEN_CHARS):
            raise ProtocolError(
                f"invalid header name {name[:40]!r}",
                reason="invalid_header_name",
                offset=self._line_offset,
            )
        value = line[colon + 1 :].strip(b" \t")
        if value.translate(None, _TEXT_CHARS):
            raise ProtocolError(
                f"invalid character in the value of header {name.decode('latin-1')!r}",
                reason="invalid_header_value",
                offset=self._line_offset + colon + 1,
            )
        if len(headers) >= self.max_headers:
            raise TooManyHeaders(
                f"more than {self.max_headers} header fields",
                offset=self._line_offset,
            )
        headers.append((name, value))
        if self._state == _HEAD:
            self._note_framing(name, value)

    def _fold(self, line: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        if not headers:
            raise ProtocolError(
                "whitespace at the start of the first header line",
                reason="invalid_header_name",
                offset=self._line_offset,
            )
        name, value = headers[-1]
        if name.lower() in (b"content-length", b"transfer-encoding"):
            raise ProtocolError(
                f"obsolete line folding in {name.decode('latin-1')}",
                reason="folded_framing_header",
                offset=self._line_offset,
            )
        more = line.strip(b" \t")
        if more.translate(None, _TEXT_CHARS):
            raise ProtocolError(
                "invalid character in a folded header value",
                reason="invalid_header_value",
                offset=self._line_offset,
            )
        headers[-1] = (name, value + b" " + more if value and more else value + more)
        if self._state == _HEAD and name.lower() in (
            b"connection",
            b"proxy-connection",
            b"keep-alive",
        ):
            self._note_framing(name, more)

    def _note_framing(self, name: bytes, value: bytes) -> None:
        lname = name.lower()
        framing = self._framing
        if lname == b"content-length":
            framing.content_length = self._content_length(value, framing.content_length)
        elif lname == b"transfer-encoding":
            codings = framing.transfer_codings
            if codings is None:
                codings = framing.transfer_codings = []
            for part in value.split(b","):
                coding = part.split(b";", 1)[0].strip(b" \t").lower()
                if not coding:
                    continue
                if coding.translate(None, _TOKEN_CHARS):
                    raise ProtocolError(
                        f"invalid transfer coding {coding[:40]!r}",
                        reason="invalid_transfer_encoding",
                        offset=self._line_offset,
                    )
                if codings and codings[-1] == b"chunked":
                    raise ProtocolError(
                        "Transfer-Encoding has a coding after chunked",
                        reason="invalid_transfer_encoding",
                        offset=self._line_offset,
                    )
                codings.append(coding)
        elif lname == b"connection" or lname == b"proxy-connection":
            for token in value.lower().split(b","):
                framing.connection.add(token.strip(b" \t"))
        elif lname == b"keep-alive":
            framing.keep_alive.append(value)

    def _content_length(self, value: bytes, previous: int | None) -> int:
        length = previous
        for part in value.split(b","):
            part = part.strip(b" \t")
            if not part or part.translate(None, b"0123456789") or len(part) > 19:
                raise ProtocolError(
                    f"invalid Content-Length {value[:40]!r}",
                    reason="invalid_content_length",
                    offset=self._line_offset,
                )
            n = int(part)
            if n > _MAX_LENGTH:
                raise ProtocolError(
                    f"Content-Length {value[:40]!r} is too large",
                    reason="invalid_content_length",
                    offset=self._line_offset,
                )
            if length is not None and n != length:
                raise ProtocolError(
                    "Content-Length fields with different values",
                    reason="conflicting_content_length",
                    offset=self._line_offset,
                )
            length = n
        return length  # type: ignore[return-value]

    def _check_partial_line(self, line: bytes) -> None:
        """Fail early on a line that cannot become valid, before its CRLF arrives."""
        cr = line.find(b"\r")
        if 0 <= cr < len(line) - 1:
            raise ProtocolError(
                "bare CR inside a line", reason="bare_cr", offset=self._line_offset + cr
            )
        if self._state == _HEAD and self._head is None:
            if line != b"\r" and not _status_prefix_ok(line):
                raise ProtocolError(
                    f"invalid status line {line[:40]!r}",
                    reason="invalid_status_line",
                    offset=self._line_offset,
                )
            return
        body = line[:cr] if cr >= 0 else line
        if not body:
            return
        if body[0] in (0x20, 0x09):
            if self._state == _HEAD and self._head is not None and not self._head.headers:
                raise ProtocolError(
                    "whitespace at the start of the first header line",
                    reason="invalid_header_name",
                    offset=self._line_offset,
                )
            return
        colon = body.find(b":")
        name = body if colon < 0 else body[:colon]
        bad_value = colon >= 0 and body[colon + 1 :].translate(None, _TEXT_CHARS)
        if name.translate(None, _TOKEN_CHARS) or colon == 0 or bad_value:
            raise ProtocolError(
                f"invalid header line {body[:40]!r}",
                reason="invalid_header_name" if not bad_value else "invalid_header_value",
                offset=self._line_offset,
            )

    def _end_head(self, pos: int) -> int:
        """The blank line arrived: decide the framing and deliver the head."""
        head = self._head
        assert head is not None
        framing = self._framing
        self._head = None
        self._framing = _Framing()
        self._head_size = 0
        status = head.status
        if status < 200 and status != 101:
            if self._on_informational is not None:
                self._on_informational(head)
            return pos

        method = self._methods.popleft() if self._methods else b"GET"
        keep_alive = b"close" not in framing.connection and (
            head.version == _HTTP_11 or b"keep-alive" in framing.connection
        )
        for hint in framing.keep_alive:
            for m in _KEEP_ALIVE_PARAM.finditer(hint):
                if m.group(1).lower() == b"timeout":
                    head.keep_alive_timeout = int(m.group(2))
                else:
                    head.keep_alive_max = int(m.group(2))
        head.content_length = framing.content_length

        if status == 101 or (method == b"CONNECT" and 200 <= status < 300):
            head.upgrade = True
            head.keep_alive = False
            self._deliver_head(head)
            self._state = _UPGRADED
            self.upgrade_offset = self._offset + pos
            self._complete()
            return pos

        codings = framing.transfer_codings
        if codings is not None:
            head.content_length = None
            if framing.content_length is not None:
                keep_alive = False  # TE with CL: a smuggling shape; never reuse.
        if method == b"HEAD" or status == 204 or status == 304:
            head.keep_alive = keep_alive
            self._deliver_head(head)
            self._end_message(keep_alive)
            return pos
        if codings:
            if codings[-1] == b"chunked":
                head.chunked = True
                head.keep_alive = keep_alive
                self._deliver_head(head)
                self._state = _CHUNK_SIZE
                self._keep_alive_after = keep_alive
                return pos
        elif codings is None and framing.content_length is not None:
            head.keep_alive = keep_alive
            self._deliver_head(head)
            if framing.content_length == 0:
                self._end_message(keep_alive)
            else:
                self._remaining = framing.content_length
                self._state = _BODY_LENGTH
                self._keep_alive_after = keep_alive
            return pos
        head.keep_alive = False
        self._deliver_head(head)
        self._state = _BODY_UNTIL_CLOSE
        return pos

    def _deliver_head(self, head: ResponseHead) -> None:
        self._current = head
        self._on_head(head)

    def _end_message(self, keep_alive: bool) -> None:
        self._state = _HEAD if keep_alive else _CLOSED
        self._complete()

    def _complete(self) -> None:
        self.messages_completed += 1
        self._on_complete()

    def _feed_length(self, data: bytes, pos: int) -> int:
        available = len(data) - pos
        remaining = self._remaining
        if available <= remaining:
            self._remaining = remaining - available
            self._on_body(data if pos == 0 else data[pos:])
            if self._remaining == 0:
                self._end_message(self._keep_alive_after)
            return len(data)
        end = pos + remaining
        self._remaining = 0
        self._on_body(data[pos:end])
        self._end_message(self._keep_alive_after)
        return end

    def _feed_chunk_data(self, data: bytes, pos: int) -> int:
        available = len(data) - pos
        remaining = self._remaining
        if available <= remaining:
            self._remaining = remaining - available
            self._on_body(data if pos == 0 else data[pos:])
            if self._remaining == 0:
                self._state = _CHUNK_DATA_END
            return len(data)
        end = pos + remaining
        self._remaining = 0
        self._state = _CHUNK_DATA_END
        self._on_body(data[pos:end])
        return end

    def _feed_chunk_line(self, data: bytes, pos: int) -> int:
        line, new_pos = self._next_line(data, pos, self.max_chunk_line_size)
        if line is None:
            self._check_partial_chunk_line(self._line)
            return new_pos
        if self._state == _CHUNK_DATA_END:
            if line:
                raise ProtocolError(
                    "chunk data not followed by CRLF",
                    reason="invalid_chunk",
                    offset=self._line_offset,
                )
            self._state = _CHUNK_SIZE
            return new_pos
        m = _CHUNK_LINE.fullmatch(line)
        if m is None:
            raise ProtocolError(
                f"invalid chunk-size line {line[:40]!r}",
                reason="invalid_chunk_size",
                offset=self._line_offset,
            )
        digits = m.group(1).lstrip(b"0")
        size = int(digits, 16) if digits else 0
        if len(digits) > 16 or size > _MAX_LENGTH:
            raise ProtocolError(
                "chunk size too large", reason="invalid_chunk_size", offset=self._line_offset
            )
        if size == 0:
            self._state = _TRAILERS
            self._trailers = []
            self._head_size = 0
        else:
            self._remaining = size
            self._state = _CHUNK_DATA
        return new_pos

    def _check_partial_chunk_line(self, line: bytes) -> None:
        if self._state == _CHUNK_DATA_END:
            bad = line not in (b"", b"\r")
        else:
            bad = bool(line) and line[0] not in _HEX_CHARS
        if bad:
            raise ProtocolError(
                f"invalid chunk framing {line[:40]!r}",
                reason="invalid_chunk" if self._state == _CHUNK_DATA_END else "invalid_chunk_size",
                offset=self._line_offset,
            )

    def _end_trailers(self, pos: int) -> int:
        self._current.trailers = self._trailers
        self._trailers = []
        self._head_size = 0
        self._end_message(self._keep_alive_after)
        return pos

    _current: ResponseHead
    _keep_alive_after = True


__all__ = ["ResponseHead", "ResponseParser"]
