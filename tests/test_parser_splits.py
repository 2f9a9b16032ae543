"""However the bytes arrive, the parser reports the same thing.

Each message below is fed whole, then split in two at every byte position,
then one byte at a time, then at seeded random cut points; every way must give
the same events (heads, body bytes, completions, trailers), the same error
type, reason and offset, the same upgraded bytes and the same ``in_message``.
Fed whole, an error case must give its stated reason at its stated offset.

An error is the earliest offending byte, at its own offset (see "Which error
is reported" in ``aiofasthttp.h1._pyparser``), whether its line is complete or
not; a fault of a line as a whole is reported at the line's start. Last,
fuzzed inputs at fuzzed splits must agree with the same input fed whole.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings

from parser_helpers import (
    Outcome,
    Recorder,
    WholeRecorder,
    byte_by_byte,
    fuzz_runs,
    pieces_at,
    run,
    snapshot,
)

S200 = b"HTTP/1.1 200 OK\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    methods: tuple[bytes, ...] = ()
    eof: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    # The reason and stream offset of the error the whole feed must end with, None for success.
    error: str | None = None
    offset: int | None = None


CASES = [
    Case("content-length", S200 + b"Server: t\r\nContent-Length: 12\r\n\r\nhello, world"),
    Case("no-reason-empty-body", b"HTTP/1.1 204\r\nDate: today\r\n\r\n"),
    Case(
        "http10-keep-alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
    ),
    Case(
        "chunked-extensions-trailers",
        S200 + CHUNKED + b"\r\n"
        b'4;ext=1;q="a \\" b"\r\nWiki\r\n'
        b"5\r\npedia\r\n"
        b"E ; x\r\n in\r\n\r\nchunks.\r\n"
        b"0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\nX-Sum:  abc \r\n\r\n",
    ),
    Case(
        "chunked-many-small",
        S200
        + CHUNKED
        + b"\r\n"
        + b"".join(b"1\r\n%c\r\n" % c for c in b"abcdefghij")
        + b"0\r\n\r\n",
    ),
    Case(
        "pipelined-triple",
        S200 + b"Content-Length: 5\r\n\r\nfirst"
        b"HTTP/1.1 201 Created\r\n" + CHUNKED + b"\r\n6\r\nsecond\r\n0\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ),
    Case(
        "interim-then-final",
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ),
    Case("close-delimited", S200 + b"Content-Type: text/plain\r\n\r\nuntil the end", eof=True),
    Case("gzip-until-close", S200 + b"Transfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00", eof=True),
    Case(
        "head-then-get",
        S200 + b"Content-Length: 50\r\n\r\n" + S200 + b"Content-Length: 3\r\n\r\nget",
        methods=(b"HEAD", b"GET"),
    ),
    Case(
        "not-modified-then-ok",
        b'HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\nETag: "x"\r\n\r\n'
        + S200
        + b"Content-Length: 2\r\n\r\nhi",
    ),
    Case(
        "switching-protocols",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x05hello",
    ),
    Case(
        "connect-tunnel",
        b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x01\x00\x05hello",
        methods=(b"CONNECT",),
    ),
    Case(
        "obs-fold",
        S200 + b"X-Folded: one\r\n two\r\n\tthree\r\nContent-Length: 0\r\n\r\n",
    ),
    Case(
        "whitespace-and-case",
        S200 + b"content-length:2\r\nX-Empty:\r\nX-Tabs:\t a b \t\r\nSET-Cookie: k=v\r\n\r\nok",
    ),
    Case(
        "keep-alive-hints",
        S200 + b"Keep-Alive: timeout=15, max=99\r\nConnection: keep-alive\r\n"
        b"Content-Length: 1\r\n\r\n!",
    ),
    Case(
        "te-and-cl",
        S200 + b"Content-Length: 99\r\n" + CHUNKED + b"\r\n3\r\nabc\r\n0\r\n\r\n",
    ),
    Case("leading-crlf", b"\r\n\r\n" + S200 + b"Content-Length: 1\r\n\r\nx"),
    Case(
        "obs-text-reason",
        b"HTTP/1.0 500 Ori\xc3\xabntatieprobleem\r\nConnection: close\r\n\r\nbody",
        eof=True,
    ),
    Case(
        "interim-only-still-in-message",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
    ),
    Case(
        "keep-alive-number-too-long",
        S200 + b"Keep-Alive: timeout=12345678901, max=7\r\nContent-Length: 0\r\n\r\n",
    ),
    Case(
        "connection-close-then-eof",
        S200 + b"Connection: close\r\nContent-Length: 4\r\n\r\nbyes",
        eof=True,
    ),
    # -- errors ----------------------------------------------------------------
    Case(
        "bad-header-in-second-response",
        S200 + b"Content-Length: 2\r\n\r\nok" + S200 + b"Good: 1\r\nBad Name: 2\r\n\r\n",
        error="invalid_header_name",
        offset=len(S200 + b"Content-Length: 2\r\n\r\nok" + S200 + b"Good: 1\r\nBad"),
    ),
    Case(
        "bare-lf",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        error="bare_lf",
        offset=len(b"HTTP/1.1 200 OK"),
    ),
    Case(
        "conflicting-content-length",
        S200 + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        error="conflicting_content_length",
        offset=len(S200 + b"Content-Length: 3\r\n"),
    ),
    Case(
        "data-after-close",
        S200 + b"Connection: close\r\nContent-Length: 1\r\n\r\nx" + S200 + b"\r\n",
        error="data_after_close",
        offset=len(S200 + b"Connection: close\r\nContent-Length: 1\r\n\r\nx"),
    ),
    Case(
        "chunk-data-too-long",
        S200 + CHUNKED + b"\r\n3\r\nabcdef\r\n0\r\n\r\n",
        error="invalid_chunk",
        offset=len(S200 + CHUNKED + b"\r\n3\r\nabc"),
    ),
    Case(
        "chunk-size-overflow",
        S200 + CHUNKED + b"\r\n1\r\na\r\n10000000000000000\r\n",
        error="invalid_chunk_size",
        offset=len(S200 + CHUNKED + b"\r\n1\r\na\r\n"),
    ),
    Case(
        "chunked-identity",
        S200 + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        error="invalid_transfer_encoding",
        offset=len(S200),
    ),
    Case(
        "head-too-large",
        S200 + b"X-Long: " + b"v" * 80 + b"\r\n\r\n",
        limits={"max_head_size": 64},
        error="head_too_large",
        offset=len(S200),
    ),
    Case(
        "too-many-headers",
        S200 + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        limits={"max_headers": 2},
        error="too_many_headers",
        offset=len(S200 + b"A: 1\r\nB: 2\r\n"),
    ),
    Case(
        "chunk-line-too-long",
        S200 + CHUNKED + b"\r\n1;" + b"e" * 40 + b"\r\nx\r\n0\r\n\r\n",
        limits={"max_chunk_line_size": 32},
        error="chunk_line_too_long",
        offset=len(S200 + CHUNKED + b"\r\n"),
    ),
    Case(
        "eof-in-body",
        S200 + b"Content-Length: 10\r\n\r\nshort",
        eof=True,
        error="incomplete_response",
        offset=len(S200 + b"Content-Length: 10\r\n\r\nshort"),
    ),
    Case(
        "eof-after-interim-head",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        eof=True,
        error="incomplete_response",
        offset=len(b"HTTP/1.1 100 Continue\r\n\r\n"),
    ),
    # -- the earliest offending byte wins, at its own offset ---------------------
    # The five that depended on the split before (whole feed vs one byte at a time):
    Case(
        "bare-cr-in-value",  # was invalid_header_value@19 whole, bare_cr@21 byte by byte
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",
        error="bare_cr",
        offset=21,
    ),
    Case(
        "bare-cr-after-reason",  # was invalid_reason@0 whole, bare_cr@15 byte by byte
        b"HTTP/1.1 200 OK\rFoo: a\r\n\r\n",
        error="bare_cr",
        offset=15,
    ),
    Case(
        "bad-name-then-bare-lf",  # was bare_lf@24 whole, invalid_header_name@17 byte by byte
        b"HTTP/1.1 200 OK\r\nFo@o: a\n",
        error="invalid_header_name",
        offset=19,
    ),
    Case(
        "bad-status-byte-then-bare-lf",  # was bare_lf whole, invalid_status_line byte by byte
        b"HTTP/1.1\x88200\n",
        error="invalid_status_line",
        offset=8,
    ),
    Case(
        "nul-in-value",  # was invalid_header_value@21 whole, @17 byte by byte
        b"HTTP/1.1 200 OK\r\nFoo: a\x00b\r\n\r\n",
        error="invalid_header_value",
        offset=23,
    ),
    Case(
        "bad-name-and-bare-lf",
        S200 + b"Fo@o: a\nContent-Length: 0\r\n\r\n",
        error="invalid_header_name",
        offset=len(S200 + b"Fo"),
    ),
    Case(
        "control-byte-before-bare-cr",
        S200 + b"X: a\x01\rb\r\n\r\n",
        error="invalid_header_value",
        offset=len(S200 + b"X: a"),
    ),
    Case("invalid-status-line", b"HTTP/1.1 2OO OK\r\n\r\n", error="invalid_status_line", offset=10),
    Case("status-line-ends-early", b"HTTP/1.1 20\r\n\r\n", error="invalid_status_line", offset=0),
    Case("reason-control-byte", b"HTTP/1.1 200 O\x7fK\r\n\r\n", error="invalid_reason", offset=14),
    Case("field-without-colon", S200 + b"Foo\r\n\r\n", error="invalid_header_name", offset=17),
    Case(
        "empty-name-bad-value",
        S200 + b": a\x00\r\n\r\n",
        error="invalid_header_value",
        offset=len(S200 + b": a"),
    ),
    Case("fold-first-field", S200 + b" Foo: a\r\n\r\n", error="invalid_header_name", offset=17),
    Case(
        "fold-framing-field",
        S200 + b"Content-Length: 1\r\n 0\r\n\r\n",
        error="folded_framing_header",
        offset=len(S200 + b"Content-Length: 1\r\n"),
    ),
    Case(
        "bare-cr-in-chunk-size",
        S200 + CHUNKED + b"\r\n2\rhi\r\n0\r\n\r\n",
        error="bare_cr",
        offset=len(S200 + CHUNKED + b"\r\n2"),
    ),
    Case(
        "bad-byte-in-chunk-extension",
        S200 + CHUNKED + b"\r\n5;a=b c\r\nhello\r\n0\r\n\r\n",
        error="invalid_chunk_size",
        offset=len(S200 + CHUNKED + b"\r\n5;a=b "),
    ),
    Case(
        "unterminated-quote-in-chunk-extension",
        S200 + CHUNKED + b'\r\n5;a="b\r\nhello\r\n0\r\n\r\n',
        error="invalid_chunk_size",
        offset=len(S200 + CHUNKED + b"\r\n"),
    ),
    Case(
        "bare-lf-after-chunk-data",
        S200 + CHUNKED + b"\r\n2\r\nhi\n0\r\n\r\n",
        error="bare_lf",
        offset=len(S200 + CHUNKED + b"\r\n2\r\nhi"),
    ),
    Case(
        "bare-cr-after-chunk-data",
        S200 + CHUNKED + b"\r\n2\r\nhi\rX\r\n0\r\n\r\n",
        error="bare_cr",
        offset=len(S200 + CHUNKED + b"\r\n2\r\nhi"),
    ),
    Case(
        "nul-in-trailer",
        S200 + CHUNKED + b"\r\n0\r\nX: a\x00\r\n\r\n",
        error="invalid_header_value",
        offset=len(S200 + CHUNKED + b"\r\n0\r\nX: a"),
    ),
    Case(
        "fold-first-trailer",
        S200 + CHUNKED + b"\r\n0\r\n\tX: 1\r\n\r\n",
        error="invalid_header_name",
        offset=len(S200 + CHUNKED + b"\r\n0\r\n"),
    ),
    # A byte before a size limit is judged first; past the limit the limit's error wins.
    Case(
        "bad-byte-before-head-limit",
        S200 + b"X: a\x00" + b"v" * 80 + b"\r\n\r\n",
        limits={"max_head_size": 64},
        error="invalid_header_value",
        offset=len(S200 + b"X: a"),
    ),
    Case(
        "bad-byte-past-head-limit",
        S200 + b"X: " + b"v" * 60 + b"\x00\r\n\r\n",
        limits={"max_head_size": 64},
        error="head_too_large",
        offset=len(S200),
    ),
    Case(
        "bare-cr-as-the-last-byte-within-head-limit",  # the line may have 47 bytes here
        S200 + b"X: " + b"v" * 43 + b"\rvvvv\r\n\r\n",
        limits={"max_head_size": 64},
        error="bare_cr",
        offset=len(S200 + b"X: " + b"v" * 43),
    ),
    Case(
        "lf-past-head-limit",
        S200 + b"X: " + b"v" * 43 + b"\r\n\r\n",
        limits={"max_head_size": 64},
        error="head_too_large",
        offset=len(S200),
    ),
    Case(
        "bad-byte-before-chunk-line-limit",
        S200 + CHUNKED + b"\r\n1;a\x01bcdefgh\r\nx\r\n0\r\n\r\n",
        limits={"max_chunk_line_size": 8},
        error="invalid_chunk_size",
        offset=len(S200 + CHUNKED + b"\r\n1;a"),
    ),
    Case(
        "bad-byte-past-chunk-line-limit",
        S200 + CHUNKED + b"\r\n1;abcdefgh\x01\r\nx\r\n0\r\n\r\n",
        limits={"max_chunk_line_size": 8},
        error="chunk_line_too_long",
        offset=len(S200 + CHUNKED + b"\r\n"),
    ),
    Case(
        "bad-byte-in-a-field-past-the-count",
        S200 + b"A: 1\r\nB: 2\r\nC: \x00\r\n\r\n",
        limits={"max_headers": 2},
        error="invalid_header_value",
        offset=len(S200 + b"A: 1\r\nB: 2\r\nC: "),
    ),
]


def outcome_key(outcome: Outcome) -> tuple[Any, ...]:
    parser = outcome.parser
    upgraded = parser.upgraded_data() if outcome.error is None else None
    return (*outcome.key(), upgraded, parser.in_message if outcome.error is None else None)


def parse(
    impl: ModuleType, case: Case, pieces: Iterable[bytes], collect: str = "pieces"
) -> tuple[Any, ...]:
    """``collect``: "pieces" (bodies piece by piece), "gathered" (Content-Length bodies
    whole, collect_limit), "whole" (gathered, and a sink with on_response)."""
    limits = {**case.limits, "collect_limit": 0 if collect == "pieces" else 1 << 20}
    sink = WholeRecorder() if collect == "whole" else Recorder()
    outcome = run(impl, pieces, methods=case.methods, eof=case.eof, sink=sink, **limits)
    return outcome_key(outcome)


# Every split test runs three ways; test_gathered_bodies_make_the_same_events ties them.
GATHERED = pytest.mark.parametrize("collect", ["pieces", "gathered", "whole"])


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def test_whole_feed_is_as_expected(parser_impl: ModuleType, case: Case) -> None:
    outcome = run(parser_impl, case.data, methods=case.methods, eof=case.eof, **case.limits)
    assert (outcome.reason, outcome.offset) == (case.error, case.offset)
    if case.error is None:
        assert any(kind in ("head", "informational") for kind, _ in outcome.events)


@GATHERED
def test_every_split_point(parser_impl: ModuleType, case: Case, collect: str) -> None:
    whole = parse(parser_impl, case, [case.data], collect)
    for cut in range(len(case.data) + 1):
        split = parse(parser_impl, case, [case.data[:cut], case.data[cut:]], collect)
        assert split == whole, f"split at byte {cut}"


@GATHERED
def test_byte_by_byte(parser_impl: ModuleType, case: Case, collect: str) -> None:
    whole = parse(parser_impl, case, [case.data], collect)
    assert parse(parser_impl, case, byte_by_byte(case.data), collect) == whole


@GATHERED
def test_random_splits(parser_impl: ModuleType, case: Case, collect: str) -> None:
    whole = parse(parser_impl, case, [case.data], collect)
    rng = random.Random(case.id)
    for _ in range(30):
        cuts = [rng.randint(0, len(case.data)) for _ in range(rng.randint(2, 8))]
        split = parse(parser_impl, case, pieces_at(case.data, cuts), collect)
        assert split == whole, f"cuts {cuts}"


@pytest.mark.parametrize("collect", ["gathered", "whole"])
def test_gathered_bodies_make_the_same_events(
    parser_impl: ModuleType, case: Case, collect: str
) -> None:
    """A gathered body is the pieces' bytes, delivered once; only a parse that fails
    inside a Content-Length body differs: the part that came is never delivered."""
    pieces = parse(parser_impl, case, [case.data])
    gathered = parse(parser_impl, case, [case.data], collect)
    if case.error is None:
        assert gathered == pieces
    else:
        without_body = [event for event in pieces[0] if event[0] != "body"]
        assert [event for event in gathered[0] if event[0] != "body"] == without_body
        assert gathered[1:] == pieces[1:]


def _through_one_buffer(pieces: list[bytes]) -> Iterator[memoryview]:
    """Each piece in turn in the same buffer, scribbled over once the parser had it.

    This is how the connections feed the parser: a view of a receive buffer that
    the next read overwrites.
    """
    buf = bytearray(max(map(len, pieces), default=0) or 1)
    view = memoryview(buf)
    for piece in pieces:
        buf[: len(piece)] = piece
        yield view[: len(piece)]
        buf[:] = b"\xff" * len(buf)


@GATHERED
def test_a_fed_buffer_may_be_overwritten_once_feed_returns(
    parser_impl: ModuleType, case: Case, collect: str
) -> None:
    """Nothing the parser hands out or keeps (heads, their lazily built headers, body
    pieces, trailers, upgraded bytes) points into the bytes it was fed."""

    def late(outcome: Outcome) -> tuple[Any, ...]:
        heads = [snapshot(head) for head in outcome.sink.heads]  # headers built only now
        chunks = outcome.sink.body_chunks
        kinds = {type(c) for c in chunks} - {bytes}  # every piece a bytes object of its own
        body = b"".join(bytes(c) for c in chunks)  # read only now
        trailers = [head.trailers for head in outcome.sink.heads]
        return outcome.key(), heads, kinds, body, trailers, outcome.parser.upgraded_data()

    limits = {**case.limits, "collect_limit": 0 if collect == "pieces" else 1 << 20}

    def sink() -> Recorder:
        return WholeRecorder() if collect == "whole" else Recorder()

    whole = run(parser_impl, case.data, methods=case.methods, eof=case.eof, sink=sink(), **limits)
    rng = random.Random(case.id)
    splits = [[case.data], byte_by_byte(case.data)]
    splits += [pieces_at(case.data, [rng.randint(0, len(case.data))]) for _ in range(10)]
    for pieces in splits:
        reused = run(
            parser_impl,
            _through_one_buffer(pieces),
            methods=case.methods,
            eof=case.eof,
            sink=sink(),
            **limits,
        )
        assert late(reused) == late(whole), [len(p) for p in pieces]


def test_case_ids_are_unique() -> None:
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict:DeprecationWarning")
@settings(derandomize=True, database=None, deadline=None, max_examples=600)
@given(fuzz_run=fuzz_runs())
def test_fuzzed_input_at_fuzzed_splits_is_as_fed_whole(
    parser_impl: ModuleType, fuzz_run: tuple[list[bytes], list[bytes], bool, dict[str, int]]
) -> None:
    pieces, methods, eof, limits = fuzz_run
    data = b"".join(pieces)
    whole = outcome_key(run(parser_impl, data, methods=methods, eof=eof, **limits))
    for split in (pieces, byte_by_byte(data)):
        assert outcome_key(run(parser_impl, split, methods=methods, eof=eof, **limits)) == whole
    # Gathered bodies, and whole responses in one call, agree across splits too, and
    # with the pieces but for the body of a parse that failed inside one.
    gathering = {**limits, "collect_limit": 1 << 20}
    for collect in ("gathered", "whole"):

        def parsed(feed: Iterable[bytes], collect: str = collect) -> tuple[Any, ...]:
            sink = WholeRecorder() if collect == "whole" else Recorder()
            outcome = run(parser_impl, feed, methods=methods, eof=eof, sink=sink, **gathering)
            return outcome_key(outcome)

        gathered = parsed([data])
        for split in (pieces, byte_by_byte(data)):
            assert parsed(split) == gathered
        if gathered[1] is None:  # no error
            assert gathered == whole
        else:
            assert [e for e in gathered[0] if e[0] != "body"] == [
                e for e in whole[0] if e[0] != "body"
            ]
            assert gathered[1:] == whole[1:]
