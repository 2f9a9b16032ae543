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
A content-length body of at most ``collect_limit`` bytes (0, the default: none)
is gathered into one buffer of its full size instead of handed over piece by
piece: ``body_buffer()`` lends the part still to come, so a transport can read
straight into it and report ``body_written(n)``, and ``sink.on_body`` gets the
body once, whole, as bytes. A sink with ``on_response(head, body)`` then gets a
response that is whole in one feed (the common case of a small response) in that
one call instead of three.
1xx interim heads go to ``sink.on_informational`` and the next head follows;
until the final head has come the parser is still in a message (``in_message``
is true and ``feed_eof()`` raises IncompleteResponse).

Which error is reported
-----------------------
The earliest offending byte wins, however the input is split. Each line (the
status line, header and trailer lines, chunk-size lines, the CRLF after chunk
data) is scanned left to right, complete or still partial, and the first byte
that breaks the grammar is reported at its own stream offset, named by what it
is and where it is:

- a CR not followed by LF: ``bare_cr``; an LF not preceded by CR: ``bare_lf``;
- a byte that breaks ``HTTP/1.[01] DDD[ reason]``: ``invalid_status_line``; a
  control byte in the reason phrase: ``invalid_reason``;
- a non-token byte (whitespace included) before the colon of a field line:
  ``invalid_header_name``; a control byte other than HTAB in a value:
  ``invalid_header_value``;
- a byte that breaks ``size[;ext[=value]]...``: ``invalid_chunk_size``;
  anything but CRLF after chunk data: ``invalid_chunk``.

A partial line is checked with the same scan, up to the bytes it has (a CR at
its end waits for the next byte), so a fault is found as early as possible and
named the same way whatever the split. Faults of a line as a whole are found
only when the line is complete, and only if no byte of it was at fault; they
are reported at the line's start: a field line without a colon or with an
empty name, a status or chunk-size line that ends too early, a chunk size too
large, Content-Length and Transfer-Encoding values, obsolete folding where it
is not allowed. A line past a size limit fails with the limit's error at the
line's start, unless a byte before the limit was at fault.

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

from ..errors import (
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
_KEEP_ALIVE_PARAM = re.compile(rb"(?i)\s*(timeout|max)\s*=\s*\"?([0-9]+)")
_KEEP_ALIVE_DIGITS = 9  # a longer number is ignored, not cut short

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


# -- the left-to-right fault scan ------------------------------------------------
#
# One scanner per line kind finds the first byte that breaks the line's grammar.
# It runs on a partial line as its bytes come (resuming where it stopped) and,
# only when the cheap whole-line checks fail, on a complete line to name the
# fault; both see the same bytes in the same order, so the split cannot matter.

_K_STATUS = 0
_K_FIELD = 1  # a field line after another: it may be a fold (leading SP or HTAB)
_K_FIRST_FIELD = 2  # the first field line of a head or trailers: no fold
_K_CHUNK_SIZE = 3
_K_CHUNK_END = 4

# Field-line states: at the first byte, in the name, in the value.
_F_START = 0
_F_NAME = 1
_F_VALUE = 2

# Chunk-size line states: size[ BWS ; BWS name[ BWS = BWS (token | "quoted")]]...
_C_START = 0  # before the first hex digit
_C_SIZE = 1  # in the size (may end here)
_C_BWS = 2  # whitespace after the size or a value, before ";"
_C_SEMI = 3  # after ";", before the name
_C_NAME = 4  # in a name (may end here)
_C_AFTER_NAME = 5  # whitespace after a name, before "=" or ";"
_C_EQ = 6  # after "=", before the value
_C_TOKEN = 7  # in a token value (may end here)
_C_QUOTED = 8  # in a quoted value
_C_QPAIR = 9  # after a backslash in a quoted value
_C_QEND = 10  # after the closing quote (may end here)

_TEXT_RUN = re.compile(rb"[\t\x20-\x7e\x80-\xff]+")
_TOKEN_RUN = re.compile(_TOKEN)
_TOKEN_SET = frozenset(_TOKEN_CHARS)
_WS_SET = frozenset(b" \t")
_HEX_SET = frozenset(_HEX_CHARS)
_QDTEXT_SET = frozenset(
    b"\t \x21" + bytes(range(0x23, 0x5C)) + bytes(range(0x5D, 0x7F)) + bytes(range(0x80, 0x100))
)
_QPAIR_SET = frozenset(_TEXT_CHARS)
# What each byte of "HTTP/1.x DDD " may be; the reason phrase follows.
_STATUS_TEMPLATE = tuple(
    frozenset(allowed)
    for allowed in (
        *(bytes([c]) for c in b"HTTP/1."),
        b"01",
        b" ",
        b"123456789",
        b"0123456789",
        b"0123456789",
        b" ",
    )
)


def _chunk_step(state: int, c: int) -> int:
    """The chunk-size line state after byte ``c``, or -1 when ``c`` breaks the grammar."""
    if state == _C_QUOTED:
        if c == 0x22:
            return _C_QEND
        if c == 0x5C:
            return _C_QPAIR
        return _C_QUOTED if c in _QDTEXT_SET else -1
    if state == _C_QPAIR:
        return _C_QUOTED if c in _QPAIR_SET else -1
    if state == _C_START:
        return _C_SIZE if c in _HEX_SET else -1
    if state == _C_EQ:
        if c in _TOKEN_SET:
            return _C_TOKEN
        if c == 0x22:
            return _C_QUOTED
        return _C_EQ if c in _WS_SET else -1
    if state == _C_SEMI:
        if c in _TOKEN_SET:
            return _C_NAME
        return _C_SEMI if c in _WS_SET else -1
    # _C_SIZE, _C_BWS, _C_NAME, _C_AFTER_NAME, _C_TOKEN, _C_QEND
    if c == 0x3B:
        return _C_SEMI
    if state == _C_SIZE and c in _HEX_SET:
        return _C_SIZE
    if state == _C_NAME and c in _TOKEN_SET:
        return _C_NAME
    if state == _C_TOKEN and c in _TOKEN_SET:
        return _C_TOKEN
    if state in (_C_NAME, _C_AFTER_NAME):
        if c == 0x3D:
            return _C_EQ
        return _C_AFTER_NAME if c in _WS_SET else -1
    return _C_BWS if c in _WS_SET else -1


def _scan(kind: int, line: bytes, at: int, state: int, end: int) -> tuple[int, int, str | None]:
    """Scan ``line[at:end]`` (``state`` is the grammar state at ``at``) for a faulty byte.

    Returns ``(index, state, reason)``. With a reason, the byte at ``index`` is
    the first fault. Without one, ``line[:index]`` is clean and ``index`` is
    where to resume: ``end``, or a CR at ``end - 1`` that the next byte will
    decide, or the CR of the line's CRLF.
    """
    i = at
    while i < end:
        c = line[i]
        if c == 0x0D:
            if i + 1 < end and line[i + 1] != 0x0A:
                return i, state, "bare_cr"
            break
        if c == 0x0A:
            return i, state, "bare_lf"
        if kind in (_K_FIELD, _K_FIRST_FIELD):
            if state == _F_VALUE:
                m = _TEXT_RUN.match(line, i, end)
                if m is None:
                    return i, state, "invalid_header_value"
                i = m.end()
                continue
            m = _TOKEN_RUN.match(line, i, end)
            if m is not None:
                state = _F_NAME
                i = m.end()
                continue
            if c == 0x3A or (state == _F_START and kind == _K_FIELD and c in _WS_SET):
                state = _F_VALUE  # the colon, or the start of a fold
            else:
                return i, state, "invalid_header_name"
        elif kind == _K_STATUS:
            if i >= 13:
                m = _TEXT_RUN.match(line, i, end)
                if m is None:
                    return i, state, "invalid_reason"
                i = m.end()
                continue
            if c not in _STATUS_TEMPLATE[i]:
                return i, state, "invalid_status_line"
        elif kind == _K_CHUNK_SIZE:
            after = _chunk_step(state, c)
            if after < 0:
                return i, state, "invalid_chunk_size"
            state = after
        else:  # _K_CHUNK_END: only CRLF may follow chunk data
            return i, state, "invalid_chunk"
        i += 1
    return i, state, None


def _fault_message(reason: str, line: bytes, at: int) -> str:
    byte = line[at : at + 1]
    if reason == "bare_cr":
        return "bare CR inside a line; CRLF is required"
    if reason == "bare_lf":
        return "line ends with a bare LF; CRLF is required"
    if reason == "invalid_status_line":
        return f"invalid status line {line[: at + 1][:40]!r}"
    if reason == "invalid_reason":
        return f"control character {byte!r} in the reason phrase"
    if reason == "invalid_header_name":
        if at == 0 and byte in (b" ", b"\t"):
            return "whitespace at the start of the first field line: nothing to fold into"
        return f"invalid character {byte!r} in a header name"
    if reason == "invalid_header_value":
        return f"invalid character {byte!r} in a header value"
    if reason == "invalid_chunk_size":
        return f"invalid chunk-size line {line[: at + 1][:40]!r}"
    return "chunk data not followed by CRLF"


class ResponseHead:
    """One response head: status line, header pairs and the framing decided from them.

    ``headers`` is a list of ``(name, value)`` byte pairs in wire order, names
    as sent, values without surrounding whitespace. ``trailers`` is ``None``
    until a chunked body's trailer section was read (then a list, maybe empty).
    """

    __slots__ = (
        "chunked",
        "content_length",
        "has_content_encoding",
        "has_set_cookie",
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
        # Whether a Content-Encoding field came: a client skips decoding without
        # looking through the headers when it did not.
        self.has_content_encoding = False
        # Whether a Set-Cookie field came: a client keeps cookies without looking
        # through the headers of the (most) responses that set none.
        self.has_set_cookie = False

    def __repr__(self) -> str:
        return (
            f"<ResponseHead HTTP/{self.version[0]}.{self.version[1]} {self.status} "
            f"{self.reason.decode('latin-1')!r} headers={len(self.headers)}>"
        )


class _Framing:
    """What the framing headers of one head said, gathered while reading it."""

    __slots__ = (
        "connection",
        "content_encoding",
        "content_length",
        "keep_alive",
        "set_cookie",
        "transfer_codings",
    )

    def __init__(self) -> None:
        self.content_encoding = False
        self.set_cookie = False
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
    A Content-Length body of at most ``collect_limit`` bytes comes to
    ``on_body`` once, whole (see ``body_buffer``); then, if the sink has
    ``on_response(head, body)``, a response whose body is all in one feed (or that
    has none) comes to it alone, instead of on_head, on_body and on_complete.
    """

    def __init__(
        self,
        sink: Any,
        *,
        max_head_size: int = DEFAULT_MAX_HEAD_SIZE,
        max_headers: int = DEFAULT_MAX_HEADERS,
        max_chunk_line_size: int = DEFAULT_MAX_CHUNK_LINE_SIZE,
        collect_limit: int = 0,
    ) -> None:
        self._on_head = sink.on_head
        self._on_body = sink.on_body
        self._on_complete = sink.on_complete
        self._on_informational = getattr(sink, "on_informational", None)
        self._on_response = getattr(sink, "on_response", None)
        self.max_head_size = max_head_size
        self.max_headers = max_headers
        self.max_chunk_line_size = max_chunk_line_size
        self._methods: deque[bytes] = deque()
        self._state = _HEAD
        self._offset = 0  # stream offset of the first byte of the current feed
        self._line = b""  # an unfinished line carried over between feeds
        self._line_offset = 0  # stream offset where self._line starts
        self._scan_at = 0  # self._line[:_scan_at] holds no fault (see _scan)
        self._scan_state = 0  # the grammar state at _scan_at
        self._after_interim = False  # a 1xx head came; the final head is still owed
        self._head_size = 0
        self._head: ResponseHead | None = None
        self._framing = _Framing()
        self._remaining = 0
        self.collect_limit = collect_limit
        # A body of known length being gathered: its buffer and how much is in it.
        self._body: bytearray | None = None
        self._body_filled = 0
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
            return bool(self._line) or self._head is not None or self._after_interim
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
            self._fail()
            raise
        self._offset += len(data)

    def body_buffer(self) -> memoryview | None:
        """A writable view of the rest of the body being gathered, or None.

        Write the body's next bytes into it, then call ``body_written(n)`` before
        anything else is asked of this parser: the view is valid until then only.
        """
        if self._body is None:
            return None
        return memoryview(self._body)[self._body_filled :]

    def body_written(self, n: int) -> None:
        """``n`` bytes of the body were written into ``body_buffer()``'s view."""
        if self._body is None or n < 0 or n > self._remaining:
            to_come = self._remaining if self._body is not None else 0
            raise ValueError(
                f"body_written({n}): the body being gathered has {to_come} bytes to come"
            )
        self._offset += n
        self._body_filled += n
        self._remaining -= n
        if self._remaining == 0:
            try:
                self._deliver_body()
            except BaseException:
                self._fail()
                raise

    def _fail(self) -> None:
        self._state = _FAILED
        self._body = None

    def feed_eof(self) -> None:
        """The peer closed the connection: end a close-delimited body, or fail."""
        state = self._state
        if state == _BODY_UNTIL_CLOSE:
            self._state = _CLOSED
            self._complete()
            return
        if state in (_CLOSED, _UPGRADED, _FAILED):
            return
        if state == _HEAD and not self.in_message:
            self._state = _CLOSED
            return
        self._fail()
        head_started = self._line or self._head is not None
        where = {
            _HEAD: "in the response head" if head_started else "before the final response",
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
        the line is not complete yet (it is kept for the next feed, scanned as
        far as it goes). ``limit`` is how long the line may be, LF included.
        """
        lf = data.find(b"\n", pos)
        if lf < 0:
            if not self._line:
                self._line_offset = self._offset + pos
                self._scan_at = self._scan_state = 0
            self._line += data[pos:]
            self._check_partial_line(limit)
            return None, len(data)
        if self._line:
            line = self._line + data[pos:lf]
            self._line = b""
        else:
            line = data[pos:lf]
            self._line_offset = self._offset + pos
        if len(line) + 1 > limit:
            raise self._first_fault(line + b"\n", limit) or self._over_limit()
        if not line or line[-1] != 0x0D:
            raise self._first_fault(line + b"\n") or self._fault("bare_lf", line, len(line))
        return line[:-1], lf + 1

    def _check_partial_line(self, limit: int) -> None:
        """Fail early on a line that cannot become valid, before its LF arrives.

        The scan resumes where the previous feed's stopped; past ``limit`` the
        line fails with the limit's error, unless a byte before it was at fault.
        """
        line = self._line
        at, state, reason = _scan(
            self._kind(), line, self._scan_at, self._scan_state, min(len(line), limit + 1)
        )
        if reason is not None and at < limit:
            raise self._fault(reason, line, at)
        if len(line) > limit:
            raise self._over_limit()
        self._scan_at, self._scan_state = at, state

    def _kind(self) -> int:
        """The kind of line the parser reads now (for _scan)."""
        state = self._state
        if state == _HEAD:
            if self._head is None:
                return _K_STATUS
            return _K_FIELD if self._head.headers else _K_FIRST_FIELD
        if state == _TRAILERS:
            return _K_FIELD if self._trailers else _K_FIRST_FIELD
        return _K_CHUNK_SIZE if state == _CHUNK_SIZE else _K_CHUNK_END

    def _first_fault(self, line: bytes, before: int | None = None) -> ProtocolError | None:
        """The error for the first faulty byte of ``line`` (its end included) before ``before``.

        Called only when a cheap whole-line check failed, as ``raise
        self._first_fault(line) or <the line's own fault>``: a line without a
        faulty byte is at fault as a whole.
        """
        end = len(line) if before is None else min(len(line), before + 1)
        at, _, reason = _scan(self._kind(), line, 0, 0, end)
        if reason is None or (before is not None and at >= before):
            return None
        return self._fault(reason, line, at)

    def _fault(self, reason: str, line: bytes, at: int) -> ProtocolError:
        """The error for the faulty byte ``line[at]`` of the current line."""
        return ProtocolError(
            _fault_message(reason, line, at), reason=reason, offset=self._line_offset + at
        )

    def _over_limit(self) -> ProtocolError:
        if self._state in (_CHUNK_SIZE, _CHUNK_DATA_END):
            return ChunkLineTooLong(
                f"chunk-size line longer than {self.max_chunk_line_size} bytes",
                offset=self._line_offset,
            )
        return HeadTooLarge(
            f"response head larger than {self.max_head_size} bytes",
            offset=self._line_offset,
        )

    def _feed_lines(self, data: bytes, pos: int) -> int:
        """Head or trailer lines, until the blank line."""
        end = len(data)
        while pos < end:
            line, new_pos = self._next_line(data, pos, self.max_head_size - self._head_size)
            if line is None:
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
                return self._end_head(pos, data)
            else:
                self._header_line(line, self._head.headers)
        return pos

    def _status_line(self, line: bytes) -> None:
        m = _STATUS_LINE.fullmatch(line)
        if m is None:
            raise (
                self._first_fault(line + b"\r\n")
                or ProtocolError(  # it ends too early
                    f"invalid status line {line[:40]!r}",
                    reason="invalid_status_line",
                    offset=self._line_offset,
                )
            )
        reason = m.group(3) or b""
        if reason.translate(None, _TEXT_CHARS):
            raise self._first_fault(line + b"\r\n") or self._fault("invalid_reason", line, 13)
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
            raise self._first_fault(line + b"\r\n") or ProtocolError(
                f"invalid header name {name[:40]!r}",  # no colon, or nothing before it
                reason="invalid_header_name",
                offset=self._line_offset,
            )
        value = line[colon + 1 :].strip(b" \t")
        if value.translate(None, _TEXT_CHARS):
            raise self._first_fault(line + b"\r\n") or self._fault(
                "invalid_header_value", line, colon + 1
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
        if line.translate(None, _TEXT_CHARS):
            raise self._first_fault(line + b"\r\n") or self._fault("invalid_header_value", line, 0)
        if not headers:  # the whitespace itself is the faulty byte
            raise self._fault("invalid_header_name", line, 0)
        name, value = headers[-1]
        if name.lower() in (b"content-length", b"transfer-encoding"):
            raise ProtocolError(
                f"obsolete line folding in {name.decode('latin-1')}",
                reason="folded_framing_header",
                offset=self._line_offset,
            )
        more = line.strip(b" \t")
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
        elif lname == b"content-encoding":
            framing.content_encoding = True
        elif lname == b"set-cookie":
            framing.set_cookie = True

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

    def _end_head(self, pos: int, data: bytes) -> int:
        """The blank line arrived: decide the framing and deliver the head
        (``data[pos:]``: the rest of this feed)."""
        head = self._head
        assert head is not None
        framing = self._framing
        self._head = None
        self._framing = _Framing()
        self._head_size = 0
        head.has_content_encoding = framing.content_encoding
        head.has_set_cookie = framing.set_cookie
        status = head.status
        self._after_interim = status < 200 and status != 101
        if self._after_interim:
            if self._on_informational is not None:
                self._on_informational(head)
            return pos

        method = self._methods.popleft() if self._methods else b"GET"
        keep_alive = b"close" not in framing.connection and (
            head.version == _HTTP_11 or b"keep-alive" in framing.connection
        )
        for hint in framing.keep_alive:
            for m in _KEEP_ALIVE_PARAM.finditer(hint):
                if len(m.group(2)) > _KEEP_ALIVE_DIGITS:
                    continue
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
            if self._on_response is not None and self.collect_limit:
                return pos + self._deliver_whole(head, data, pos, 0)
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
            length = framing.content_length
            if (
                self._on_response is not None
                and self.collect_limit
                and length <= self.collect_limit
                and length <= len(data) - pos
            ):
                return pos + self._deliver_whole(head, data, pos, length)
            self._deliver_head(head)
            if framing.content_length == 0:
                self._end_message(keep_alive)
            else:
                self._remaining = framing.content_length
                self._state = _BODY_LENGTH
                self._keep_alive_after = keep_alive
                if self._remaining <= self.collect_limit:
                    self._body = bytearray(self._remaining)
                    self._body_filled = 0
            return pos
        head.keep_alive = False
        self._deliver_head(head)
        self._state = _BODY_UNTIL_CLOSE
        return pos

    def _deliver_whole(self, head: ResponseHead, data: bytes, pos: int, length: int) -> int:
        """A buffered response whose body is all in this feed: head and body in one
        call to ``on_response`` (instead of on_head, on_body and on_complete)."""
        self._current = head
        self._state = _HEAD if head.keep_alive else _CLOSED
        self.messages_completed += 1
        on_response = self._on_response
        assert on_response is not None  # checked by the caller
        on_response(head, data[pos : pos + length])
        return length

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
        if self._body is not None:
            n = min(available, remaining)
            self._body[self._body_filled : self._body_filled + n] = data[pos : pos + n]
            self._body_filled += n
            self._remaining = remaining - n
            if self._remaining == 0:
                self._deliver_body()
            return pos + n
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

    def _deliver_body(self) -> None:
        """The gathered body is whole: hand it over, then end the message."""
        body, self._body = self._body, None
        assert body is not None
        self._on_body(bytes(body))
        self._end_message(self._keep_alive_after)

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
            return new_pos
        if self._state == _CHUNK_DATA_END:
            if line:
                raise self._first_fault(line + b"\r\n") or self._fault("invalid_chunk", line, 0)
            self._state = _CHUNK_SIZE
            return new_pos
        m = _CHUNK_LINE.fullmatch(line)
        if m is None:
            raise (
                self._first_fault(line + b"\r\n")
                or ProtocolError(  # it ends too early
                    f"invalid chunk-size line {line[:40]!r}",
                    reason="invalid_chunk_size",
                    offset=self._line_offset,
                )
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

    def _end_trailers(self, pos: int) -> int:
        self._current.trailers = self._trailers
        self._trailers = []
        self._head_size = 0
        self._end_message(self._keep_alive_after)
        return pos

    _current: ResponseHead
    _keep_alive_after = True


__all__ = ["ResponseHead", "ResponseParser"]
