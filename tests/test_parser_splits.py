"""However the bytes arrive, the parser reports the same thing.

Each message below is fed whole, then split in two at every byte position,
then one byte at a time, then at seeded random cut points; every way must give
the same events (heads, body bytes, completions, trailers), the same error
type and reason, the same upgraded bytes and the same ``in_message``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from parser_helpers import Outcome, byte_by_byte, pieces_at, run

S200 = b"HTTP/1.1 200 OK\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    data: bytes
    methods: tuple[bytes, ...] = ()
    eof: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    # The reason the whole feed must end with (or any of several), None for success.
    error: str | tuple[str, ...] | None = None


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
        "connection-close-then-eof",
        S200 + b"Connection: close\r\nContent-Length: 4\r\n\r\nbyes",
        eof=True,
    ),
    # -- errors ----------------------------------------------------------------
    Case(
        "bad-header-in-second-response",
        S200 + b"Content-Length: 2\r\n\r\nok" + S200 + b"Good: 1\r\nBad Name: 2\r\n\r\n",
        error="invalid_header_name",
    ),
    Case("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", error="bare_lf"),
    Case(
        "conflicting-content-length",
        S200 + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        error="conflicting_content_length",
    ),
    Case(
        "data-after-close",
        S200 + b"Connection: close\r\nContent-Length: 1\r\n\r\nx" + S200 + b"\r\n",
        error="data_after_close",
    ),
    Case(
        "chunk-data-too-long",
        S200 + CHUNKED + b"\r\n3\r\nabcdef\r\n0\r\n\r\n",
        error="invalid_chunk",
    ),
    Case(
        "chunk-size-overflow",
        S200 + CHUNKED + b"\r\n1\r\na\r\n10000000000000000\r\n",
        error="invalid_chunk_size",
    ),
    Case(
        "chunked-identity",
        S200 + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        error="invalid_transfer_encoding",
    ),
    Case(
        "head-too-large",
        S200 + b"X-Long: " + b"v" * 80 + b"\r\n\r\n",
        limits={"max_head_size": 64},
        error="head_too_large",
    ),
    Case(
        "too-many-headers",
        S200 + b"A: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        limits={"max_headers": 2},
        error="too_many_headers",
    ),
    Case(
        "chunk-line-too-long",
        S200 + CHUNKED + b"\r\n1;" + b"e" * 40 + b"\r\nx\r\n0\r\n\r\n",
        limits={"max_chunk_line_size": 32},
        error="chunk_line_too_long",
    ),
    Case(
        "eof-in-body",
        S200 + b"Content-Length: 10\r\n\r\nshort",
        eof=True,
        error="incomplete_response",
    ),
    Case("invalid-status-line", b"HTTP/1.1 2OO OK\r\n\r\n", error="invalid_status_line"),
    Case("nul-in-value", S200 + b"X: a\x00b\r\n\r\n", error="invalid_header_value"),
    Case(
        "bare-cr-in-value",
        S200 + b"X: a\rb\r\nContent-Length: 0\r\n\r\n",
        error=("bare_cr", "invalid_header_value"),
    ),
    Case(
        "bad-name-and-bare-lf",
        S200 + b"Fo@o: a\nContent-Length: 0\r\n\r\n",
        error=("bare_lf", "invalid_header_name"),
    ),
]

# Genuine parser bugs found by these tests: {case id: {implementation: reason}}.
# Both come from one cause: a line still waiting for its LF is checked byte by
# byte as it grows, a complete line is checked for its line end first and its
# content second, and the two paths name a bad line differently.
_SPLIT_REASON_BUG = (
    "parser bug: the error reason depends on where the input is split (a line checked "
    "while incomplete is named differently from the same line checked whole)"
)
KNOWN_BUGS: dict[str, dict[str, str]] = {
    "bare-cr-in-value": {"python": _SPLIT_REASON_BUG, "c": _SPLIT_REASON_BUG},
    "bad-name-and-bare-lf": {"python": _SPLIT_REASON_BUG, "c": _SPLIT_REASON_BUG},
}


def outcome_key(outcome: Outcome) -> tuple[Any, ...]:
    parser = outcome.parser
    upgraded = parser.upgraded_data() if outcome.error is None else None
    return (*outcome.key(), upgraded, parser.in_message if outcome.error is None else None)


def parse(impl: ModuleType, case: Case, pieces: list[bytes]) -> tuple[Any, ...]:
    return outcome_key(run(impl, pieces, methods=case.methods, eof=case.eof, **case.limits))


def impl_id(impl: ModuleType) -> str:
    return "c" if impl.__name__.endswith("_cparser") else "python"


def mark_known_bug(request: pytest.FixtureRequest, impl: ModuleType, case: Case) -> None:
    bug = KNOWN_BUGS.get(case.id, {}).get(impl_id(impl))
    if bug:
        request.applymarker(pytest.mark.xfail(reason=bug, strict=True))


@pytest.fixture(params=CASES, ids=[case.id for case in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param  # type: ignore[no-any-return]


def test_whole_feed_is_as_expected(parser_impl: ModuleType, case: Case) -> None:
    outcome = run(parser_impl, case.data, methods=case.methods, eof=case.eof, **case.limits)
    if isinstance(case.error, tuple):
        assert outcome.reason in case.error
    else:
        assert outcome.reason == case.error
    if case.error is None:
        assert any(kind in ("head", "informational") for kind, _ in outcome.events)


def test_every_split_point(
    request: pytest.FixtureRequest, parser_impl: ModuleType, case: Case
) -> None:
    mark_known_bug(request, parser_impl, case)
    whole = parse(parser_impl, case, [case.data])
    for cut in range(len(case.data) + 1):
        split = parse(parser_impl, case, [case.data[:cut], case.data[cut:]])
        assert split == whole, f"split at byte {cut}"


def test_byte_by_byte(request: pytest.FixtureRequest, parser_impl: ModuleType, case: Case) -> None:
    mark_known_bug(request, parser_impl, case)
    whole = parse(parser_impl, case, [case.data])
    assert parse(parser_impl, case, byte_by_byte(case.data)) == whole


def test_random_splits(request: pytest.FixtureRequest, parser_impl: ModuleType, case: Case) -> None:
    mark_known_bug(request, parser_impl, case)
    whole = parse(parser_impl, case, [case.data])
    rng = random.Random(case.id)
    for _ in range(30):
        cuts = [rng.randint(0, len(case.data)) for _ in range(rng.randint(2, 8))]
        assert parse(parser_impl, case, pieces_at(case.data, cuts)) == whole, f"cuts {cuts}"
