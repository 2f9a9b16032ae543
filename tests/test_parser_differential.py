"""Differential tests: our parsers against httptools (llhttp), and against each other.

Hypothesis generates valid responses (statuses including 204 and 304, interim
1xx heads, header sets with random case and whitespace, Content-Length,
chunked or close-delimited bodies with random chunkings, extensions and
trailers, pipelines of two or three responses) and random split points. Both
our parser and ``httptools.HttpResponseParser`` read the same pieces; they must
report the same messages: status, reason, version, headers (values compared
stripped, as ours strips them), trailers, body and keep-alive.

Every run is derandomized, so the examples are the same each time.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parser_helpers import fuzz_runs, pieces_at, run

# On a failure hypothesis imports libcst (to suggest a patch), which warns on import;
# under -W error that would hide the failure behind an INTERNALERROR.
pytestmark = pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict:DeprecationWarning")

DIFFERENTIAL = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TWINS_VALID = settings(DIFFERENTIAL, max_examples=200)
TWINS_FUZZ = settings(DIFFERENTIAL, max_examples=1000)

TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
VISIBLE = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
# Names that change framing or keep-alive are generated on purpose, never at random.
RESERVED = {
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"proxy-connection",
    b"keep-alive",
    b"upgrade",
    b"trailer",
}
COMMON_NAMES = [b"Server", b"Date", b"Content-Type", b"Set-Cookie", b"ETag", b"Vary", b"X-Id"]


@dataclass
class Message:
    """One generated response and what a parser must report for it."""

    raw: bytes
    status: int
    reason: bytes
    version: str
    headers: list[tuple[bytes, bytes]]  # as they must be reported: values stripped
    body: bytes
    trailers: list[tuple[bytes, bytes]] | None
    keep_alive: bool | None  # None for 1xx heads
    close_delimited: bool


def random_case(draw: st.DrawFn, word: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return bytes(
        c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(word, flips, strict=True)
    )


def ows(draw: st.DrawFn, tabs: bool = True) -> bytes:
    # llhttp does not strip a tab around Transfer-Encoding or Connection values
    # ("chunked\t" is not chunked to it), so framing fields get spaces only.
    return draw(st.sampled_from([b"", b"", b" ", b"  ", b"\t", b" \t "][: 6 if tabs else 4]))


def field_value(draw: st.DrawFn) -> bytes:
    """A field value: visible bytes with inner spaces and tabs, maybe empty."""
    words = draw(st.lists(st.binary(min_size=1, max_size=8).map(_visible), max_size=4))
    seps = [draw(st.sampled_from([b" ", b"\t", b"  "])) for _ in words]
    value = b""
    for i, word in enumerate(words):
        value += (seps[i] if i else b"") + word
    return value


def _visible(data: bytes) -> bytes:
    return bytes(VISIBLE[b % len(VISIBLE)] for b in data)


@st.composite
def header_fields(draw: st.DrawFn, max_size: int = 8) -> list[tuple[bytes, bytes]]:
    """(name, value with surrounding whitespace) pairs; the reported value is stripped."""
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        if draw(st.booleans()):
            name = random_case(draw, draw(st.sampled_from(COMMON_NAMES)))
        else:
            name = draw(st.text(TOKEN, min_size=1, max_size=16)).encode()
        if name.lower() not in RESERVED:
            out.append((name, ows(draw) + field_value(draw) + ows(draw)))
    return out


def stripped(fields: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name, value.strip(b" \t")) for name, value in fields]


def field_lines(fields: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(name + b":" + value + b"\r\n" for name, value in fields)


@st.composite
def interim(draw: st.DrawFn) -> Message:
    status = draw(st.sampled_from([100, 102, 103]))
    reason = draw(st.sampled_from([b"Continue", b"Processing", b"Early Hints", b""]))
    fields = draw(header_fields(max_size=3))
    raw = b"HTTP/1.1 %d %s\r\n" % (status, reason) + field_lines(fields) + b"\r\n"
    return Message(raw, status, reason, "1.1", stripped(fields), b"", None, None, False)


@st.composite
def final(draw: st.DrawFn, last: bool) -> Message:
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    status = draw(
        st.one_of(
            st.sampled_from([200, 201, 204, 206, 301, 302, 304, 400, 404, 500, 503]),
            st.integers(200, 599),
        )
    )
    reason = draw(
        st.one_of(
            st.sampled_from([b"OK", b"Not Found", b"Some  Reason", b"Ori\xc3\xabntatie", b""]),
            st.binary(max_size=12).map(_visible),
        )
    )
    status_line = b"HTTP/%s %d %s\r\n" % (version.encode(), status, reason)
    if not reason and draw(st.booleans()):
        status_line = b"HTTP/%s %d\r\n" % (version.encode(), status)
    fields = draw(header_fields())

    # Connection: every message but the last must leave the connection open.
    connection = draw(st.sampled_from([None, b"keep-alive", b"close"]))
    if not last:
        connection = (
            b"keep-alive" if version == "1.0" else draw(st.sampled_from([None, b"keep-alive"]))
        )
    if connection is not None:
        fields.insert(
            draw(st.integers(0, len(fields))),
            (
                random_case(draw, b"Connection"),
                ows(draw, False) + random_case(draw, connection) + ows(draw, False),
            ),
        )
    keep_alive = (connection != b"close") and (version == "1.1" or connection == b"keep-alive")

    body = draw(st.binary(max_size=200))
    no_body = status in (204, 304)
    framings = ["length"] + (["chunked"] if version == "1.1" else []) + (["close"] if last else [])
    framing = "none" if no_body else draw(st.sampled_from(framings))
    trailers: list[tuple[bytes, bytes]] | None = None
    payload = b""
    if no_body:
        body = b""
        if status == 304 and draw(st.booleans()):
            fields.append((b"Content-Length", b" %d" % draw(st.integers(0, 10**6))))
    elif framing == "length":
        name = random_case(draw, b"Content-Length")
        value = ows(draw, False) + b"%d" % len(body) + ows(draw, False)
        fields.insert(draw(st.integers(0, len(fields))), (name, value))
        payload = body
    elif framing == "chunked":
        te = random_case(draw, b"chunked")
        if draw(st.booleans()):
            te = random_case(draw, b"gzip") + b"," + ows(draw, False) + te
        name = random_case(draw, b"Transfer-Encoding")
        value = ows(draw, False) + te + ows(draw, False)
        fields.insert(draw(st.integers(0, len(fields))), (name, value))
        payload, trailers = draw(chunked_body(body))
    else:  # close-delimited
        keep_alive = False
        payload = body

    raw = status_line + field_lines(fields) + b"\r\n" + payload
    return Message(
        raw,
        status,
        reason,
        version,
        stripped(fields),
        body,
        trailers,
        keep_alive,
        framing == "close",
    )


@st.composite
def chunked_body(draw: st.DrawFn, body: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=6)))
    out = b""
    start = 0
    for end in [*cuts, len(body)]:
        piece = body[start:end]
        start = end
        if not piece:
            continue
        size = b"%x" % len(piece)
        size = draw(st.sampled_from([size, size.upper(), b"0" + size]))
        ext = draw(st.sampled_from([b"", b";a", b";name=value", b';q="quoted ; \\" ext"']))
        out += size + ext + b"\r\n" + piece + b"\r\n"
    fields = draw(header_fields(max_size=3))
    out += b"0" + draw(st.sampled_from([b"", b";last"])) + b"\r\n"
    out += field_lines(fields) + b"\r\n"
    return out, stripped(fields)


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[Message], list[bytes]]:
    count = draw(st.integers(1, 3))
    messages: list[Message] = []
    for i in range(count):
        if draw(st.integers(0, 4)) == 0:
            messages.append(draw(interim()))
        messages.append(draw(final(last=i == count - 1)))
    data = b"".join(m.raw for m in messages)
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=6))
    return messages, pieces_at(data, cuts)


# -- httptools, driven the way a client must drive it --------------------------


class HttptoolsSink:
    def __init__(self) -> None:
        self.parser: Any = None
        self.messages: list[dict[str, Any]] = []

    def on_message_begin(self) -> None:
        self.messages.append(
            {"reason": b"", "headers": [], "trailers": [], "body": b"", "complete": False}
        )

    def on_status(self, data: bytes) -> None:
        self.messages[-1]["reason"] += data

    def on_header(self, name: bytes, value: bytes) -> None:
        m = self.messages[-1]
        m["trailers" if "status" in m else "headers"].append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        m = self.messages[-1]
        m["status"] = self.parser.get_status_code()
        m["version"] = self.parser.get_http_version()
        m["keep_alive"] = self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        self.messages[-1]["body"] += data

    def on_message_complete(self) -> None:
        self.messages[-1]["complete"] = True


def httptools_messages(pieces: list[bytes]) -> list[dict[str, Any]]:
    sink = HttptoolsSink()
    sink.parser = httptools.HttpResponseParser(sink)
    for piece in pieces:
        sink.parser.feed_data(piece)
    return sink.messages


def our_messages(impl: ModuleType, pieces: list[bytes]) -> tuple[list[dict[str, Any]], Any]:
    outcome = run(impl, pieces)
    assert outcome.error is None, outcome.error
    messages: list[dict[str, Any]] = []
    for kind, value in outcome.events:
        if kind in ("head", "informational"):
            messages.append(
                {
                    "status": value.status,
                    "reason": value.reason,
                    "version": "{}.{}".format(*value.version),
                    "headers": list(value.headers),
                    "keep_alive": value.keep_alive,
                    "body": b"",
                    "trailers": [],
                    "complete": kind == "informational",
                }
            )
        elif kind == "body":
            messages[-1]["body"] += value
        else:
            messages[-1]["complete"] = True
            messages[-1]["trailers"] = list(value or ())
    return messages, outcome.parser


@DIFFERENTIAL
@given(conversation=conversations())
def test_same_messages_as_httptools(
    parser_impl: ModuleType, conversation: tuple[list[Message], list[bytes]]
) -> None:
    expected, pieces = conversation
    theirs = httptools_messages(pieces)
    ours, parser = our_messages(parser_impl, pieces)
    assert len(ours) == len(theirs) == len(expected)
    for want, mine, llhttp in zip(expected, ours, theirs, strict=True):
        for key in ("status", "reason", "version", "headers", "body"):
            assert mine[key] == llhttp[key] == getattr(want, key), key
        if want.trailers is not None:
            assert mine["trailers"] == llhttp["trailers"] == want.trailers
        if want.keep_alive is not None:
            assert mine["keep_alive"] is bool(llhttp["keep_alive"]) is want.keep_alive
        assert mine["complete"] is llhttp["complete"] is (not want.close_delimited)
    if expected[-1].close_delimited:
        parser.feed_eof()
    assert not parser.in_message


# -- the two implementations against each other -----------------------------------


def twin_key(impl: ModuleType, pieces: list[bytes], methods: list[bytes], eof: bool) -> Any:
    outcome = run(impl, pieces, methods=methods, eof=eof, max_head_size=512, max_headers=16)
    error = outcome.error
    parser = outcome.parser
    return (
        outcome.events,
        None if error is None else (type(error).__name__, error.reason, error.offset),
        None if error else (parser.in_message, parser.upgraded, parser.upgraded_data()),
    )


@TWINS_VALID
@given(
    conversation=conversations(),
    methods=st.lists(st.sampled_from([b"GET", b"HEAD", b"CONNECT"]), max_size=3),
)
def test_twins_agree_on_valid_responses(
    both_parser_impls: tuple[ModuleType, ModuleType],
    conversation: tuple[list[Message], list[bytes]],
    methods: list[bytes],
) -> None:
    python, compiled = both_parser_impls
    _, pieces = conversation
    assert twin_key(python, pieces, methods, True) == twin_key(compiled, pieces, methods, True)


@TWINS_FUZZ
@given(fuzz_run=fuzz_runs())
def test_twins_agree_on_arbitrary_input(
    both_parser_impls: tuple[ModuleType, ModuleType],
    fuzz_run: tuple[list[bytes], list[bytes], bool, dict[str, int]],
) -> None:
    python, compiled = both_parser_impls
    pieces, methods, eof, limits = fuzz_run
    keys = []
    for impl in (python, compiled):
        outcome = run(impl, pieces, methods=methods, eof=eof, **limits)
        error = outcome.error
        keys.append(
            (
                outcome.events,
                None if error is None else (type(error).__name__, error.reason, error.offset),
            )
        )
    assert keys[0] == keys[1]
