"""Behaviour of the response parser, held for both implementations.

Every test takes ``parser_impl`` (conftest.py), so it runs once against the
pure-Python twin and once against the compiled parser. The module docstring of
``aiofasthttp.h1._pyparser`` lists the choices these tests pin down.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import ModuleType

import pytest
from hypothesis import given, settings

from aiofasthttp.errors import (
    ChunkLineTooLong,
    HeadTooLarge,
    IncompleteResponse,
    LimitExceeded,
    ProtocolError,
    TooManyHeaders,
)
from parser_helpers import Head, Recorder, byte_by_byte, check_event_order, fuzz_runs, run

STATUS_200 = b"HTTP/1.1 200 OK\r\n"  # 17 bytes: the first header line starts at offset 17
EMPTY_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def only_head(impl: ModuleType, data: bytes, **kwargs: object) -> Head:
    """Parse ``data`` without error and return its one final head."""
    outcome = run(impl, data, **kwargs)  # type: ignore[arg-type]
    assert outcome.error is None, outcome.error
    heads = outcome.sink.final_heads
    assert len(heads) == 1, outcome.events
    return heads[0]


def error_of(impl: ModuleType, data: bytes | list[bytes], **kwargs: object) -> ProtocolError:
    outcome = run(impl, data, **kwargs)  # type: ignore[arg-type]
    assert outcome.error is not None, f"no error; events: {outcome.events}"
    return outcome.error


# -- the selector -------------------------------------------------------------


@pytest.mark.parametrize("disabled", [False, True], ids=["extensions", "no-extensions"])
def test_selector_picks_compiled_parser_unless_opted_out(disabled: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "AIOFASTHTTP_NO_EXTENSIONS"}
    if disabled:
        env["AIOFASTHTTP_NO_EXTENSIONS"] = "1"
    elif os.environ.get("AIOFASTHTTP_NO_EXTENSIONS", "") not in ("", "0"):
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: the compiled parser is not expected")
    code = (
        "import aiofasthttp.parser as p, aiofasthttp.h1._pyparser as py\n"
        "print(p.IMPLEMENTATION, p.ResponseParser.__module__, p.ResponseHead.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    if disabled:
        assert out == ["python", "aiofasthttp.h1._pyparser", "aiofasthttp.h1._pyparser"]
    else:
        assert out[0] == "c", "the compiled parser was expected but did not load"
        assert out[1] != "aiofasthttp.h1._pyparser"


# -- status line --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "version", "status", "reason"),
    [
        (b"HTTP/1.1 200 OK", (1, 1), 200, b"OK"),
        (b"HTTP/1.0 404 Not Found", (1, 0), 404, b"Not Found"),
        (b"HTTP/1.1 599 Whatever  it  says ", (1, 1), 599, b"Whatever  it  says "),
        (b"HTTP/1.1 500 Ori\xc3\xabntatieprobleem", (1, 1), 500, b"Ori\xc3\xabntatieprobleem"),
        (b"HTTP/1.1 301", (1, 1), 301, b""),
        (b"HTTP/1.1 301 ", (1, 1), 301, b""),
        (b"HTTP/1.1 200 \tOK", (1, 1), 200, b"\tOK"),
    ],
)
def test_status_line(
    parser_impl: ModuleType, line: bytes, version: tuple[int, int], status: int, reason: bytes
) -> None:
    head = only_head(parser_impl, line + b"\r\nContent-Length: 0\r\n\r\n")
    assert (head.version, head.status, head.reason) == (version, status, reason)


def test_head_fields_have_the_documented_types(parser_impl: ModuleType) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(b"HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 1\r\n\r\nx")
    (head,) = sink.heads
    assert isinstance(head, parser_impl.ResponseHead)
    assert type(head.status) is int and type(head.reason) is bytes
    assert head.version == (1, 1)
    assert list(head.headers) == [(b"A", b"b"), (b"Content-Length", b"1")]
    assert all(type(n) is bytes and type(v) is bytes for n, v in head.headers)
    assert head.content_length == 1 and type(head.content_length) is int
    assert head.keep_alive is True and head.chunked is False and head.upgrade is False
    assert head.keep_alive_timeout is None and head.keep_alive_max is None
    assert head.trailers is None


# (status line, index of the byte reported): the first byte that breaks
# "HTTP/1.[01] DDD[ reason]", or 0 (the line's start) for a line that ends too early.
INVALID_STATUS_LINES = [
    (b"HTTP/2.0 200 OK", 5),
    (b"HTTP/1.2 200 OK", 7),
    (b"HTTP/0.9 200 OK", 5),
    (b"HTTP/1 200 OK", 6),
    (b"HTTP/11.1 200 OK", 6),
    (b"HTTP/1.01 200 OK", 8),
    (b"HTTP/01.1 200 OK", 5),
    (b"http/1.1 200 OK", 0),
    (b"HTP/1.1 200 OK", 2),
    (b"RTSP/1.0 200 OK", 0),
    (b"ICE/1.0 200 OK", 0),
    (b"HTTP/1.1 20 OK", 11),
    (b"HTTP/1.1 2000 OK", 12),
    (b"HTTP/1.1 099 OK", 9),
    (b"HTTP/1.1 2x0 OK", 10),
    (b"HTTP/1.1 -20 OK", 9),
    (b"HTTP/1.1  200 OK", 9),
    (b"HTTP/1.1\t200 OK", 8),
    (b"HTTP/1.1 200OK", 12),
    (b"HTTP/1.1\x88200", 8),
    (b"HTTP/1.1", 0),
    (b"HTTP/1.1 ", 0),
    (b"HTTP/1.1 20", 0),
    (b" HTTP/1.1 200 OK", 0),
    (b"garbage", 0),
    (b"\x00\x01\x02", 0),
]


@pytest.mark.parametrize(("line", "at"), INVALID_STATUS_LINES, ids=repr)
def test_invalid_status_line_is_reported_at_the_first_bad_byte(
    parser_impl: ModuleType, line: bytes, at: int
) -> None:
    for pieces in ([line + b"\r\n\r\n"], byte_by_byte(line + b"\r\n\r\n")):
        err = error_of(parser_impl, pieces)
        assert type(err) is ProtocolError
        assert (err.reason, err.offset) == ("invalid_status_line", at)


def test_status_line_error_offset_counts_skipped_blank_lines(parser_impl: ModuleType) -> None:
    err = error_of(parser_impl, b"\r\n\r\nHTTP/2 200 OK\r\n\r\n")
    assert (err.reason, err.offset) == ("invalid_status_line", len(b"\r\n\r\nHTTP/"))


def test_blank_lines_before_the_status_line_are_skipped(parser_impl: ModuleType) -> None:
    head = only_head(parser_impl, b"\r\n\r\n" + EMPTY_200)
    assert head.status == 200


@pytest.mark.parametrize("bad", [b"\x00", b"\x01", b"\x7f", b"\x1b"])
def test_control_character_in_reason_is_an_error(parser_impl: ModuleType, bad: bytes) -> None:
    data = b"HTTP/1.1 200 O" + bad + b"K\r\n\r\n"
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces)
        assert (err.reason, err.offset) == ("invalid_reason", len(b"HTTP/1.1 200 O"))


# -- header fields --------------------------------------------------------------


def test_headers_keep_wire_order_case_and_duplicates(parser_impl: ModuleType) -> None:
    head = only_head(
        parser_impl,
        STATUS_200 + b"Set-Cookie: a=1\r\nX-UPPER: U\r\nset-cookie: b=2\r\n"
        b"x-lower: l\r\nContent-Length: 0\r\nSET-COOKIE: c=3\r\n\r\n",
    )
    assert head.headers == (
        (b"Set-Cookie", b"a=1"),
        (b"X-UPPER", b"U"),
        (b"set-cookie", b"b=2"),
        (b"x-lower", b"l"),
        (b"Content-Length", b"0"),
        (b"SET-COOKIE", b"c=3"),
    )


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"Foo: bar", b"bar"),
        (b"Foo:bar", b"bar"),
        (b"Foo:   bar baz \t ", b"bar baz"),
        (b"Foo:\tbar\t", b"bar"),
        (b"Foo: a\tb  c", b"a\tb  c"),
        (b"Foo:", b""),
        (b"Foo: \t \t ", b""),
        (b"Foo: caf\xc3\xa9 \xff", b"caf\xc3\xa9 \xff"),
        (b'Foo: "quoted: value"', b'"quoted: value"'),
    ],
)
def test_header_values_are_stripped_of_surrounding_whitespace(
    parser_impl: ModuleType, raw: bytes, value: bytes
) -> None:
    head = only_head(parser_impl, STATUS_200 + raw + b"\r\nContent-Length: 0\r\n\r\n")
    assert head.headers[0] == (b"Foo", value)


def test_every_token_character_is_allowed_in_a_name(parser_impl: ModuleType) -> None:
    name = b"!#$%&'*+-.^_`|~09AZaz"
    head = only_head(parser_impl, STATUS_200 + name + b": v\r\nContent-Length: 0\r\n\r\n")
    assert head.headers[0] == (name, b"v")


# (field line, index of the byte reported): the first non-token byte before the
# colon, or 0 (the line's start) for a line without a colon or without a name.
INVALID_FIELD_NAMES = [
    (b"Fo@o: v", 2),
    (b"Fo o: v", 2),
    (b"Foo\x01: v", 3),
    (b"Foo\x7f: v", 3),
    (b'Fo"o: v', 2),
    (b"Fo(o): v", 2),
    (b"Foo/bar: v", 3),
    (b"F\xc3\xa9e: v", 1),
    (b": v", 0),
    (b"Foo", 0),
    (b"Foo : v", 3),
    (b"Foo\t: v", 3),
    (b"Foo\x00: v", 3),
    (b"Foo bar", 3),
]


@pytest.mark.parametrize(("line", "at"), INVALID_FIELD_NAMES, ids=repr)
def test_invalid_header_name_is_reported_at_the_first_bad_byte(
    parser_impl: ModuleType, line: bytes, at: int
) -> None:
    start = len(STATUS_200 + b"Ok: 1\r\n")
    data = STATUS_200 + b"Ok: 1\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n"
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces)
        assert type(err) is ProtocolError
        assert (err.reason, err.offset) == ("invalid_header_name", start + at)


@pytest.mark.parametrize("bad", [b"\x00", b"\x01", b"\x08", b"\x0b", b"\x0c", b"\x1f", b"\x7f"])
def test_control_character_in_value_is_an_error(parser_impl: ModuleType, bad: bytes) -> None:
    data = STATUS_200 + b"Foo: a" + bad + b"b\r\n\r\n"
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces)
        assert type(err) is ProtocolError
        assert (err.reason, err.offset) == ("invalid_header_value", len(STATUS_200 + b"Foo: a"))


def test_cr_inside_a_value_is_a_bare_cr(parser_impl: ModuleType) -> None:
    data = STATUS_200 + b"Foo: a\rb\r\nContent-Length: 0\r\n\r\n"
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces)
        assert type(err) is ProtocolError
        assert (err.reason, err.offset) == ("bare_cr", len(STATUS_200 + b"Foo: a"))


@pytest.mark.parametrize(
    ("line", "reason", "at"),
    [
        (b"Fo@o: a\n", "invalid_header_name", 2),  # before the bare LF
        (b"Foo: a\x00b\n", "invalid_header_value", 6),  # before the bare LF
        (b"Foo: a\rb\x00\r\n", "bare_cr", 6),  # before the control byte
        (b"Foo: a\x00b\rc\r\n", "invalid_header_value", 6),  # before the bare CR
        (b"F o: a\x00\r\n", "invalid_header_name", 1),  # the name before the value
        (b": a\x00\r\n", "invalid_header_value", 3),  # a bad byte before the empty name
        (b"Foo\r\r\n", "bare_cr", 3),  # the first CR is not followed by LF
    ],
    ids=repr,
)
def test_the_earliest_bad_byte_of_a_line_is_reported(
    parser_impl: ModuleType, line: bytes, reason: str, at: int
) -> None:
    data = STATUS_200 + line + b"Content-Length: 0\r\n\r\n"
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces)
        assert (err.reason, err.offset) == (reason, len(STATUS_200) + at)


def test_lf_inside_a_value_is_a_bare_lf(parser_impl: ModuleType) -> None:
    err = error_of(parser_impl, STATUS_200 + b"Foo: a\nb\r\nContent-Length: 0\r\n\r\n")
    assert err.reason == "bare_lf"
    assert err.offset == len(STATUS_200) + len(b"Foo: a")


# -- obsolete line folding -------------------------------------------------------


def test_obs_fold_is_replaced_by_one_space(parser_impl: ModuleType) -> None:
    head = only_head(
        parser_impl,
        STATUS_200 + b"Foo: a\r\n   b  \r\n\tc\r\nEmpty:\r\n more\r\nContent-Length: 0\r\n\r\n",
    )
    assert head.headers == (
        (b"Foo", b"a b c"),
        (b"Empty", b"more"),
        (b"Content-Length", b"0"),
    )


def test_obs_fold_continues_the_connection_header(parser_impl: ModuleType) -> None:
    head = only_head(
        parser_impl, STATUS_200 + b"Connection: foo,\r\n close\r\nContent-Length: 0\r\n\r\n"
    )
    assert head.headers[0] == (b"Connection", b"foo, close")
    assert head.keep_alive is False


@pytest.mark.parametrize("name", [b"Content-Length", b"transfer-encoding"])
def test_obs_fold_in_a_framing_header_is_an_error(parser_impl: ModuleType, name: bytes) -> None:
    value = b"5" if name == b"Content-Length" else b"gzip,"
    data = STATUS_200 + name + b": " + value + b"\r\n chunked\r\n\r\n"
    err = error_of(parser_impl, data)
    assert err.reason == "folded_framing_header"
    assert err.offset == len(STATUS_200) + len(name) + len(value) + 4


def test_obs_fold_right_after_the_status_line_is_an_error(parser_impl: ModuleType) -> None:
    # The whitespace that starts the first field line is its bad byte: found before the LF.
    for pieces in ([STATUS_200 + b" Foo: a\r\n\r\n"], byte_by_byte(STATUS_200 + b" Foo")):
        err = error_of(parser_impl, pieces)
        assert err.reason == "invalid_header_name"
        assert err.offset == len(STATUS_200)


def test_obs_fold_as_the_first_trailer_is_an_error(parser_impl: ModuleType) -> None:
    head = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n0\r\n"
    for pieces in ([head + b"\tX: 1\r\n\r\n"], byte_by_byte(head + b"\tX")):
        err = error_of(parser_impl, pieces)
        assert (err.reason, err.offset) == ("invalid_header_name", len(head))


# -- framing (RFC 9112 section 6.3) -------------------------------------------


@pytest.mark.parametrize(
    ("status", "method"),
    [(204, b"GET"), (304, b"GET"), (200, b"HEAD"), (404, b"HEAD"), (304, b"HEAD")],
)
@pytest.mark.parametrize(
    "framing",
    [b"", b"Content-Length: 10\r\n", b"Transfer-Encoding: chunked\r\n"],
    ids=["none", "content-length", "chunked"],
)
def test_responses_without_a_body(
    parser_impl: ModuleType, status: int, method: bytes, framing: bytes
) -> None:
    first = b"HTTP/1.1 %d X\r\n%s\r\n" % (status, framing)
    data = first + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    outcome = run(parser_impl, data, methods=[method, b"GET"])
    assert outcome.error is None
    kinds = [kind for kind, _ in outcome.events]
    assert kinds == ["head", "complete", "head", "body", "complete"]
    head = outcome.events[0][1]
    assert head.status == status and head.chunked is False
    assert outcome.events[3] == ("body", b"abc")
    assert not outcome.parser.in_message


def test_head_response_keeps_its_content_length(parser_impl: ModuleType) -> None:
    head = only_head(
        parser_impl, b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", methods=[b"HEAD"]
    )
    assert head.content_length == 1234
    assert head.keep_alive is True


def test_content_length_body(parser_impl: ModuleType) -> None:
    outcome = run(parser_impl, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert outcome.error is None
    assert [kind for kind, _ in outcome.events] == ["head", "body", "complete"]
    assert outcome.sink.body == b"hello"
    assert outcome.events[0][1].content_length == 5
    assert outcome.events[-1] == ("complete", None)
    assert not outcome.parser.in_message


def test_zero_content_length_completes_at_the_head(parser_impl: ModuleType) -> None:
    outcome = run(parser_impl, EMPTY_200)
    assert [kind for kind, _ in outcome.events] == ["head", "complete"]


@pytest.mark.parametrize(
    "fields",
    [b"Content-Length: 5, 5\r\n", b"Content-Length: 5\r\nContent-Length: 5\r\n"],
)
def test_repeated_equal_content_length_is_accepted(parser_impl: ModuleType, fields: bytes) -> None:
    outcome = run(parser_impl, STATUS_200 + fields + b"\r\nhello")
    assert outcome.error is None
    assert outcome.sink.body == b"hello"
    assert outcome.events[0][1].content_length == 5


def test_largest_content_length_is_accepted(parser_impl: ModuleType) -> None:
    outcome = run(parser_impl, STATUS_200 + b"Content-Length: 9223372036854775807\r\n\r\nab")
    assert outcome.error is None
    assert outcome.events[0][1].content_length == 2**63 - 1
    assert outcome.parser.in_message


def test_chunked_body_with_extensions_and_trailers(parser_impl: ModuleType) -> None:
    data = (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n"
        b'1 ; a ; b="quoted; \\"x\\"" ;c=d\r\n,\r\n'
        b"B\r\n 0123456789\r\n"
        b"0;last\r\nExpires: never\r\nX-Check:  sum \r\n\r\n"
    )
    outcome = run(parser_impl, data)
    assert outcome.error is None, outcome.error
    head = outcome.events[0][1]
    assert head.chunked is True and head.content_length is None and head.keep_alive is True
    assert outcome.sink.body == b"hello, 0123456789"
    assert outcome.events[-1] == ("complete", ((b"Expires", b"never"), (b"X-Check", b"sum")))
    assert outcome.sink.heads[0].trailers == [(b"Expires", b"never"), (b"X-Check", b"sum")]
    assert not outcome.parser.in_message


def test_trailers_are_none_until_the_end_and_empty_without_trailers(
    parser_impl: ModuleType,
) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert sink.heads[0].trailers is None
    parser.feed(b"0\r\n\r\n")
    assert sink.heads[0].trailers == []
    assert sink.completed == 1


@pytest.mark.parametrize(
    ("size", "length"),
    [(b"a", 10), (b"A", 10), (b"00000000000000000000005", 5), (b"0Ff", 255)],
)
def test_chunk_size_is_hex(parser_impl: ModuleType, size: bytes, length: int) -> None:
    data = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n"
    data += b"x" * length + b"\r\n0\r\n\r\n"
    outcome = run(parser_impl, data)
    assert outcome.error is None
    assert outcome.sink.body == b"x" * length


def test_largest_chunk_size_is_accepted(parser_impl: ModuleType) -> None:
    outcome = run(
        parser_impl, STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nab"
    )
    assert outcome.error is None
    assert outcome.sink.body == b"ab"
    assert outcome.parser.in_message


@pytest.mark.parametrize(
    ("line", "at"),
    [
        (b"", 0),
        (b"zz", 0),
        (b"-5", 0),
        (b"5 ", 0),  # ends too early: reported at its start
        (b" 5", 0),
        (b"5;", 0),
        (b"5;=x", 2),
        (b"5 x", 2),
        (b'5;a="b', 0),
        (b'5;a="b\x01"', 6),
        (b"5;a=b c", 6),
        (b"0x5", 1),
        (b"5\t", 0),
        (b"10000000000000000", 0),  # too large: reported at its start
    ],
    ids=repr,
)
def test_invalid_chunk_size_line(parser_impl: ModuleType, line: bytes, at: int) -> None:
    head = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n"
    data = head + line + b"\r\nhello\r\n0\r\n\r\n"
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces)
        assert type(err) is ProtocolError
        assert (err.reason, err.offset) == ("invalid_chunk_size", len(head) + at)


def test_chunk_data_must_end_with_crlf(parser_impl: ModuleType) -> None:
    head = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n"
    err = error_of(parser_impl, head + b"3\r\nabcX\r\n0\r\n\r\n")
    assert err.reason == "invalid_chunk"
    assert err.offset == len(head) + len(b"3\r\nabc")


@pytest.mark.parametrize(
    "te",
    [
        b"chunked",
        b"CHUNKED",
        b"gzip, chunked",
        b"gzip,chunked",
        b"gzip\r\nTransfer-Encoding: chunked",
    ],
)
def test_chunked_last_means_chunked(parser_impl: ModuleType, te: bytes) -> None:
    outcome = run(
        parser_impl, STATUS_200 + b"Transfer-Encoding: " + te + b"\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    )
    assert outcome.error is None
    assert outcome.events[0][1].chunked is True
    assert outcome.sink.body == b"hi"
    assert outcome.sink.completed == 1


@pytest.mark.parametrize("te", [b"gzip", b"identity", b"chunkedchunked", b"x-chunked"])
def test_transfer_coding_not_ending_in_chunked_reads_until_close(
    parser_impl: ModuleType, te: bytes
) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(STATUS_200 + b"Transfer-Encoding: " + te + b"\r\nContent-Length: 2\r\n\r\nab")
    parser.feed(b"0\r\n\r\nmore")
    assert sink.completed == 0 and parser.in_message
    (head,) = sink.heads
    assert head.chunked is False and head.content_length is None and head.keep_alive is False
    parser.feed_eof()
    assert sink.body == b"ab0\r\n\r\nmore"
    assert sink.completed == 1
    assert not parser.in_message


def test_transfer_encoding_with_content_length_te_wins_and_no_reuse(
    parser_impl: ModuleType,
) -> None:
    data = (
        STATUS_200 + b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    outcome = run(parser_impl, data)
    assert outcome.error is None
    head = outcome.events[0][1]
    assert head.chunked is True and head.content_length is None
    assert head.keep_alive is False
    assert outcome.sink.body == b"abc" and outcome.sink.completed == 1
    # Not reusable: anything after it (a smuggled response) is refused.
    err = error_of(parser_impl, data + b"HTTP/1.1 200 OK\r\n\r\n")
    assert err.reason == "data_after_close"
    assert err.offset == len(data)


def test_no_framing_reads_until_close(parser_impl: ModuleType) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(STATUS_200 + b"Server: x\r\n\r\nsome")
    parser.feed(b" body")
    (head,) = sink.heads
    assert head.keep_alive is False and head.content_length is None and not head.chunked
    assert sink.completed == 0 and parser.in_message
    parser.feed_eof()
    assert sink.body == b"some body" and sink.completed == 1
    parser.feed_eof()  # a second EOF changes nothing
    assert sink.completed == 1


@pytest.mark.parametrize("status", [200, 201, 299])
def test_2xx_to_connect_ends_at_the_head(parser_impl: ModuleType, status: int) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.expect(b"CONNECT")
    parser.feed(b"HTTP/1.1 %d Connection established\r\nContent-Length: 5\r\n\r\n\x16\x03" % status)
    parser.feed(b"\x01tls")
    assert [kind for kind, _ in sink.events] == ["head", "complete"]
    assert sink.heads[0].upgrade is True
    assert parser.upgraded and not parser.in_message
    assert parser.upgraded_data() == b"\x16\x03\x01tls"
    parser.feed_eof()


def test_non_2xx_to_connect_is_an_ordinary_response(parser_impl: ModuleType) -> None:
    outcome = run(
        parser_impl,
        b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 4\r\n\r\ndeny",
        methods=[b"CONNECT"],
    )
    assert outcome.error is None and not outcome.parser.upgraded
    assert outcome.sink.body == b"deny" and outcome.sink.completed == 1


@pytest.mark.parametrize(
    "framing", [b"", b"Content-Length: 4\r\n", b"Transfer-Encoding: chunked\r\n"]
)
def test_101_ends_at_the_head_and_keeps_the_rest(parser_impl: ModuleType, framing: bytes) -> None:
    head_bytes = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + framing + b"\r\n"
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(head_bytes + b"body\x81\x05")
    parser.feed(b"hello")
    assert [kind for kind, _ in sink.events] == ["head", "complete"]
    head = sink.heads[0]
    assert head.status == 101 and head.upgrade is True and head.keep_alive is False
    assert parser.upgraded
    assert parser.upgraded_data() == b"body\x81\x05hello"
    parser.feed_eof()


def test_upgraded_data_is_empty_when_nothing_followed(parser_impl: ModuleType) -> None:
    outcome = run(parser_impl, b"HTTP/1.1 101 Switching\r\nUpgrade: h2c\r\n\r\n")
    assert outcome.parser.upgraded
    assert outcome.parser.upgraded_data() == b""


def test_a_parser_starts_not_upgraded(parser_impl: ModuleType) -> None:
    outcome = run(parser_impl, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert not outcome.parser.upgraded
    assert outcome.parser.upgraded_data() == b""


# -- 1xx interim responses -------------------------------------------------------


def test_interim_responses_come_before_the_final_one(parser_impl: ModuleType) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    outcome = run(parser_impl, data)
    assert outcome.error is None
    kinds = [kind for kind, _ in outcome.events]
    assert kinds == ["informational", "informational", "head", "body", "complete"]
    first, second = outcome.events[0][1], outcome.events[1][1]
    assert (first.status, first.reason, first.headers) == (100, b"Continue", ())
    assert second.status == 103
    assert second.headers == ((b"Link", b"</a.css>; rel=preload"), (b"Link", b"</b.js>"))
    assert outcome.events[2][1].status == 200


def test_interim_responses_are_skipped_without_on_informational(parser_impl: ModuleType) -> None:
    class Sink:
        def __init__(self) -> None:
            self.statuses: list[int] = []
            self.body = b""
            self.done = 0

        def on_head(self, head: object) -> None:
            self.statuses.append(head.status)  # type: ignore[attr-defined]

        def on_body(self, chunk: bytes) -> None:
            self.body += chunk

        def on_complete(self) -> None:
            self.done += 1

    sink = Sink()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n!")
    assert (sink.statuses, sink.body, sink.done) == ([201], b"!", 1)


def test_interim_response_does_not_use_up_the_expected_method(parser_impl: ModuleType) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    )
    outcome = run(parser_impl, data, methods=[b"HEAD", b"GET"])
    assert outcome.error is None
    assert [kind for kind, _ in outcome.events] == [
        "informational",
        "head",
        "complete",
        "head",
        "body",
        "complete",
    ]


@pytest.mark.parametrize(
    "interim",
    [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"],
    ids=["100", "103"],
)
def test_after_an_interim_head_the_final_response_is_still_owed(
    parser_impl: ModuleType, interim: bytes
) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(interim)
    assert [kind for kind, _ in sink.events] == ["informational"]
    assert parser.in_message
    parser.feed(interim)  # another interim head changes nothing
    assert parser.in_message
    parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert not parser.in_message
    parser.feed_eof()
    assert sink.completed == 1


def test_eof_after_an_interim_head_is_incomplete_response(parser_impl: ModuleType) -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\n"
    err = error_of(parser_impl, data, eof=True)
    assert type(err) is IncompleteResponse
    assert (err.reason, err.offset) == ("incomplete_response", len(data))


# -- keep-alive -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "fields", "keep_alive"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"Connection: close\r\n", False),
        (b"1.1", b"Connection: CLOSE\r\n", False),
        (b"1.1", b"Connection: keep-alive, close\r\n", False),
        (b"1.1", b"Connection: upgrade\r\nConnection: Close\r\n", False),
        (b"1.1", b"Connection: keep-alive\r\n", True),
        (b"1.1", b"Connection: upgrade\r\n", True),
        (b"1.1", b"Connection: closed\r\n", True),
        (b"1.1", b"Proxy-Connection: close\r\n", False),
        (b"1.0", b"", False),
        (b"1.0", b"Connection: keep-alive\r\n", True),
        (b"1.0", b"Connection: Keep-Alive\r\n", True),
        (b"1.0", b"Connection: te, keep-alive\r\n", True),
        (b"1.0", b"Connection: keep-alive, close\r\n", False),
        (b"1.0", b"Keep-Alive: timeout=5\r\n", False),
    ],
)
def test_keep_alive(
    parser_impl: ModuleType, version: bytes, fields: bytes, keep_alive: bool
) -> None:
    data = b"HTTP/" + version + b" 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n"
    head = only_head(parser_impl, data)
    assert head.keep_alive is keep_alive


@pytest.mark.parametrize(
    ("fields", "timeout", "maximum"),
    [
        (b"Keep-Alive: timeout=5, max=100\r\n", 5, 100),
        (b"Keep-Alive: max=3,timeout=90\r\n", 90, 3),
        (b"Keep-Alive: TIMEOUT=7\r\n", 7, None),
        (b"Keep-Alive: timeout = 2 , max = 9\r\n", 2, 9),
        (b"Keep-Alive: timeout=4\r\nKeep-Alive: max=8\r\n", 4, 8),
        (b"Keep-Alive: max=0\r\n", None, 0),
        (b"Keep-Alive: foo=bar\r\n", None, None),
        (b"", None, None),
        (b"Keep-Alive: timeout=123456789, max=000000001\r\n", 123456789, 1),
        # A number longer than nine digits is ignored, not cut to its first nine.
        (b"Keep-Alive: timeout=12345678901\r\n", None, None),
        (b"Keep-Alive: timeout=0000000005, max=7\r\n", None, 7),
        (b"Keep-Alive: timeout=5, timeout=12345678901, max=99999999999\r\n", 5, None),
    ],
)
def test_keep_alive_hints_are_numbers(
    parser_impl: ModuleType, fields: bytes, timeout: int | None, maximum: int | None
) -> None:
    head = only_head(parser_impl, STATUS_200 + fields + b"Content-Length: 0\r\n\r\n")
    assert head.keep_alive_timeout == timeout
    assert head.keep_alive_max == maximum


def test_keep_alive_hint_too_long_is_ignored_not_truncated(parser_impl: ModuleType) -> None:
    head = only_head(
        parser_impl, STATUS_200 + b"Keep-Alive: timeout=12345678901\r\nContent-Length: 0\r\n\r\n"
    )
    assert head.keep_alive_timeout is None


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (b"Content-Encoding: gzip\r\n", True),
        (b"content-ENCODING:br\r\n", True),
        (b"Content-Encoding:\r\n", True),  # present, even if empty
        (b"Content-Type: gzip\r\nContent-Encodings: gzip\r\n", False),
        (b"X-Content-Encoding: gzip\r\n", False),
        (b"", False),
    ],
)
def test_the_head_says_whether_a_content_encoding_came(
    parser_impl: ModuleType, fields: bytes, expected: bool
) -> None:
    head = only_head(parser_impl, STATUS_200 + fields + b"Content-Length: 0\r\n\r\n")
    assert head.has_content_encoding is expected


def test_content_encoding_of_one_response_does_not_leak_into_the_next(
    parser_impl: ModuleType,
) -> None:
    outcome = run(
        parser_impl,
        STATUS_200 + b"Content-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"
        + STATUS_200 + b"Content-Length: 0\r\n\r\n",
    )  # fmt: skip
    assert [h.has_content_encoding for h in outcome.sink.heads] == [True, False]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (b"Set-Cookie: a=1\r\n", True),
        (b"set-COOKIE:b=2\r\nSet-Cookie: c=3\r\n", True),
        (b"Set-Cookie:\r\n", True),  # present, even if empty
        (b"Set-Cookie2: a=1\r\nCookie: a=1\r\nSet-Cookies: a=1\r\n", False),
        (b"X-Set-Cookie: a=1\r\nSet: cookie\r\n", False),
        (b"", False),
    ],
)
def test_the_head_says_whether_a_set_cookie_came(
    parser_impl: ModuleType, fields: bytes, expected: bool
) -> None:
    head = only_head(parser_impl, STATUS_200 + fields + b"Content-Length: 0\r\n\r\n")
    assert head.has_set_cookie is expected


def test_a_set_cookie_in_the_trailers_is_not_reported_on_the_head(
    parser_impl: ModuleType,
) -> None:
    outcome = run(
        parser_impl,
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n0\r\nSet-Cookie: a=1\r\n\r\n",
    )
    assert [h.has_set_cookie for h in outcome.sink.heads] == [False]


def test_set_cookie_of_one_response_does_not_leak_into_the_next(
    parser_impl: ModuleType,
) -> None:
    outcome = run(
        parser_impl,
        b"HTTP/1.1 100 Continue\r\nSet-Cookie: early=1\r\n\r\n"
        + STATUS_200 + b"Content-Length: 0\r\n\r\n"
        + STATUS_200 + b"Set-Cookie: a=1\r\nContent-Length: 0\r\n\r\n"
        + STATUS_200 + b"Content-Length: 0\r\n\r\n",
    )  # fmt: skip
    assert [h.has_set_cookie for h in outcome.sink.heads] == [False, True, False]


def test_data_after_a_closing_response_is_an_error(parser_impl: ModuleType) -> None:
    first = STATUS_200 + b"Connection: close\r\nContent-Length: 2\r\n\r\nok"
    for extra in (b"HTTP/1.1 200 OK\r\n\r\n", b"\r\n", b"x"):
        outcome = run(parser_impl, first + extra)
        assert outcome.error is not None and outcome.reason == "data_after_close"
        assert outcome.error.offset == len(first)
        assert outcome.sink.completed == 1


def test_data_after_an_http10_response_is_an_error(parser_impl: ModuleType) -> None:
    first = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    err = error_of(parser_impl, [first, b"HTTP/1.0 200 OK\r\n\r\n"])
    assert (err.reason, err.offset) == ("data_after_close", len(first))


# -- requests and pipelining --------------------------------------------------


def test_expect_queue_frames_pipelined_head_and_get(parser_impl: ModuleType) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"
    )
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.expect(b"GET")
    parser.expect("head")
    parser.expect(b"HEAD")
    parser.expect(b"POST")
    parser.feed(data)
    bodies = []
    body = b""
    for kind, value in sink.raw_events:
        if kind == "body":
            body += value
        elif kind == "complete":
            bodies.append(body)
            body = b""
    assert bodies == [b"one", b"", b"", b"two"]
    assert [h.content_length for h in sink.final_heads] == [3, 1000, None, None]
    assert not parser.in_message


def test_back_to_back_responses_in_one_buffer(parser_impl: ModuleType) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nfifth"
    )
    outcome = run(parser_impl, data)
    assert outcome.error is None
    assert [h.status for h in outcome.sink.final_heads] == [200, 201, 204, 404]
    assert outcome.sink.completed == 4
    assert [v for k, v in outcome.events if k == "body"] == [b"first", b"second", b"fifth"]
    assert not outcome.parser.in_message


def test_in_message_tracks_the_response(parser_impl: ModuleType) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    assert not parser.in_message
    parser.feed(b"HTTP/1.1 2")
    assert parser.in_message
    parser.feed(b"00 OK\r\nContent-Length: 2\r\n\r\n")
    assert parser.in_message and sink.heads
    parser.feed(b"o")
    assert parser.in_message
    parser.feed(b"k")
    assert not parser.in_message


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_feed_takes_any_bytes_like_object(parser_impl: ModuleType, kind: type) -> None:
    data = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    expected = run(parser_impl, data).events
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    for i in range(0, len(data), 7):
        parser.feed(kind(data[i : i + 7]))
    assert sink.events == expected


def test_empty_feed_does_nothing(parser_impl: ModuleType) -> None:
    outcome = run(parser_impl, [b"", STATUS_200, b"", b"Content-Length: 1\r\n\r\n", b"", b"x", b""])
    assert outcome.events == run(parser_impl, STATUS_200 + b"Content-Length: 1\r\n\r\nx").events


# -- limits -----------------------------------------------------------------------


def test_head_exactly_at_the_limit_is_accepted(parser_impl: ModuleType) -> None:
    assert only_head(parser_impl, EMPTY_200, max_head_size=len(EMPTY_200)).status == 200
    for pieces in ([EMPTY_200], byte_by_byte(EMPTY_200)):
        err = error_of(parser_impl, pieces, max_head_size=len(EMPTY_200) - 1)
        assert type(err) is HeadTooLarge
        assert err.reason == "head_too_large"


def test_head_larger_than_the_default_limit(parser_impl: ModuleType) -> None:
    data = STATUS_200 + b"X-Big: " + b"a" * 65536 + b"\r\n\r\n"
    err = error_of(parser_impl, data)
    assert isinstance(err, HeadTooLarge) and isinstance(err, LimitExceeded)
    assert err.offset == len(STATUS_200)


def test_unterminated_head_line_fails_once_past_the_limit(parser_impl: ModuleType) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink, max_head_size=1000)
    parser.feed(STATUS_200 + b"X: ")
    with pytest.raises(HeadTooLarge):
        for _ in range(200):
            parser.feed(b"a" * 10)
    assert sink.events == []


def test_head_limit_counts_each_message_afresh(parser_impl: ModuleType) -> None:
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    outcome = run(parser_impl, one * 5, max_head_size=len(one) - 1)
    assert outcome.error is None and outcome.sink.completed == 5


def test_trailers_past_the_head_limit(parser_impl: ModuleType) -> None:
    head = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n"
    trailers = b"X-Trailer: " + b"t" * 60 + b"\r\n\r\n"
    ok = run(parser_impl, head + b"0\r\n" + trailers, max_head_size=len(trailers))
    assert ok.error is None and ok.sink.completed == 1
    err = error_of(parser_impl, head + b"0\r\n" + trailers, max_head_size=len(trailers) - 20)
    assert type(err) is HeadTooLarge
    assert err.offset == len(head) + 3


@pytest.mark.parametrize("limit", [1, 3, 128])
def test_header_count_limit(parser_impl: ModuleType, limit: int) -> None:
    kwargs = {} if limit == 128 else {"max_headers": limit}
    fields = b"".join(b"H%d: v\r\n" % i for i in range(limit))
    head = only_head(parser_impl, STATUS_200 + fields + b"\r\n", **kwargs)
    assert len(head.headers) == limit
    extra = STATUS_200 + fields + b"One-Too-Many: v\r\n\r\n"
    err = error_of(parser_impl, extra, **kwargs)
    assert type(err) is TooManyHeaders and isinstance(err, LimitExceeded)
    assert err.reason == "too_many_headers"
    assert err.offset == len(STATUS_200 + fields)


def test_trailer_count_limit(parser_impl: ModuleType) -> None:
    data = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\n\r\n"
    assert run(parser_impl, data, max_headers=2).error is None
    err = error_of(parser_impl, data, max_headers=1)
    assert type(err) is TooManyHeaders


def test_chunk_line_limit(parser_impl: ModuleType) -> None:
    head = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n"
    line = b"5;name=" + b"v" * 100
    data = head + line + b"\r\nhello\r\n0\r\n\r\n"
    assert run(parser_impl, data, max_chunk_line_size=len(line) + 2).error is None
    for pieces in ([data], byte_by_byte(data)):
        err = error_of(parser_impl, pieces, max_chunk_line_size=len(line) + 1)
        assert type(err) is ChunkLineTooLong and isinstance(err, LimitExceeded)
        assert err.reason == "chunk_line_too_long"
        assert err.offset == len(head)


def test_chunk_line_default_limit(parser_impl: ModuleType) -> None:
    head = STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n"
    err = error_of(parser_impl, head + b"1;x=" + b"y" * 5000 + b"\r\nz\r\n0\r\n\r\n")
    assert type(err) is ChunkLineTooLong


def test_limits_are_configurable_per_parser(parser_impl: ModuleType) -> None:
    big = (
        STATUS_200
        + b"X: "
        + b"v" * 70000
        + b"\r\n"
        + b"".join(b"H%d: v\r\n" % i for i in range(200))
    )
    big += b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 5000 + b"\r\nx\r\n0\r\n\r\n"
    outcome = run(parser_impl, big, max_head_size=100000, max_headers=300, max_chunk_line_size=6000)
    assert outcome.error is None and outcome.sink.body == b"x"


# -- errors and EOF -----------------------------------------------------------------


def test_error_offsets_are_stream_offsets(parser_impl: ModuleType) -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    second = b"HTTP/1.1 200 OK\r\nGood: 1\r\n"
    err = error_of(parser_impl, [first[:10], first[10:] + second[:5], second[5:], b"Bad@: x\r\n"])
    assert (err.reason, err.offset) == ("invalid_header_name", len(first + second + b"Bad"))


def test_bare_lf_offset_is_the_lf(parser_impl: ModuleType) -> None:
    data = STATUS_200 + b"A: 1\nB: 2\r\n\r\n"
    err = error_of(parser_impl, data)
    assert (err.reason, err.offset) == ("bare_lf", data.index(b"\n", len(STATUS_200)))


def test_errors_carry_message_reason_and_offset(parser_impl: ModuleType) -> None:
    err = error_of(parser_impl, STATUS_200 + b"Bad Name: 1\r\n\r\n")
    assert isinstance(err.message, str) and err.message
    assert str(err).endswith(f"(at byte {err.offset})")


def test_after_an_error_the_parser_takes_no_more_input(parser_impl: ModuleType) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    with pytest.raises(ProtocolError):
        parser.feed(b"HTTP/9.9 200 OK\r\n\r\n")
    for data in (EMPTY_200, b""):
        with pytest.raises(ProtocolError) as info:
            parser.feed(data)
        assert type(info.value) is ProtocolError
        assert info.value.reason == "parser_failed"
    assert sink.events == []


@pytest.mark.parametrize(
    "data",
    [
        b"H",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\n",
    ],
)
def test_eof_inside_a_message_is_incomplete_response(parser_impl: ModuleType, data: bytes) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(data)
    completed = sink.completed
    with pytest.raises(IncompleteResponse) as info:
        parser.feed_eof()
    assert info.value.reason == "incomplete_response"
    assert isinstance(info.value, ProtocolError)
    assert sink.completed == completed
    with pytest.raises(ProtocolError) as again:
        parser.feed(b"more")
    assert again.value.reason == "parser_failed"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        EMPTY_200,
        EMPTY_200 * 3,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
)
def test_eof_between_messages_is_clean(parser_impl: ModuleType, data: bytes) -> None:
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(data)
    completed = sink.completed
    parser.feed_eof()
    assert sink.completed == completed
    assert not parser.in_message


def test_eof_offset_is_the_end_of_the_stream(parser_impl: ModuleType) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"
    err = error_of(parser_impl, [data[:20], data[20:]], eof=True)
    assert type(err) is IncompleteResponse
    assert err.offset == len(data)


# -- the sink -----------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_large_body_pieces_reach_the_sink_uncopied(parser_impl: ModuleType, framing: str) -> None:
    size = 1 << 20
    piece = 64 * 1024
    fields = {
        "length": b"Content-Length: %d\r\n" % size,
        "chunked": b"Transfer-Encoding: chunked\r\n",
        "close": b"",
    }[framing]
    sink = Recorder()
    parser = parser_impl.ResponseParser(sink)
    parser.feed(STATUS_200 + fields + b"\r\n" + (b"%x\r\n" % size if framing == "chunked" else b""))
    pieces = [os.urandom(piece) for _ in range(size // piece)]
    for p in pieces:
        parser.feed(p)
    assert len(sink.body_chunks) == len(pieces)
    for got, sent in zip(sink.body_chunks, pieces, strict=True):
        assert got is sent
    if framing == "chunked":
        parser.feed(b"\r\n0\r\n\r\n")
    elif framing == "close":
        parser.feed_eof()
    assert sink.completed == 1


class Boom(Exception):
    pass


@pytest.mark.parametrize("callback", ["on_head", "on_body", "on_complete", "on_informational"])
def test_sink_exception_propagates_and_fails_the_parser(
    parser_impl: ModuleType, callback: str
) -> None:
    error = Boom(callback)

    class Sink(Recorder):
        pass

    def explode(*args: object) -> None:
        raise error

    setattr(Sink, callback, explode)
    parser = parser_impl.ResponseParser(Sink())
    with pytest.raises(Boom) as info:
        parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n" + STATUS_200 + b"Content-Length: 2\r\n\r\nok")
    assert info.value is error
    with pytest.raises(ProtocolError) as again:
        parser.feed(EMPTY_200)
    assert again.value.reason == "parser_failed"


# -- hostile inputs -------------------------------------------------------------------

HOSTILE = {
    "cl-te-smuggled-response": (
        STATUS_200 + b"Content-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "data_after_close",
    ),
    "te-cl-smuggled-response": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        "data_after_close",
    ),
    "differing-content-length": (
        STATUS_200 + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "conflicting_content_length",
    ),
    "differing-content-length-list": (
        STATUS_200 + b"Content-Length: 5, 6\r\n\r\nhello!",
        "conflicting_content_length",
    ),
    "chunked-then-identity": (
        STATUS_200 + b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "invalid_transfer_encoding",
    ),
    "chunked-twice": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "invalid_transfer_encoding",
    ),
    "invalid-transfer-coding": (
        STATUS_200 + b"Transfer-Encoding: gz@ip, chunked\r\n\r\n0\r\n\r\n",
        "invalid_transfer_encoding",
    ),
    "negative-length": (STATUS_200 + b"Content-Length: -1\r\n\r\n", "invalid_content_length"),
    "signed-length": (STATUS_200 + b"Content-Length: +5\r\n\r\nhello", "invalid_content_length"),
    "hex-length": (STATUS_200 + b"Content-Length: 0x10\r\n\r\n", "invalid_content_length"),
    "float-length": (STATUS_200 + b"Content-Length: 1e3\r\n\r\n", "invalid_content_length"),
    "spaced-length": (STATUS_200 + b"Content-Length: 1 0\r\n\r\n", "invalid_content_length"),
    "empty-length": (STATUS_200 + b"Content-Length:\r\n\r\n", "invalid_content_length"),
    "trailing-comma-length": (STATUS_200 + b"Content-Length: 5,\r\n\r\n", "invalid_content_length"),
    "length-2**63": (
        STATUS_200 + b"Content-Length: 9223372036854775808\r\n\r\n",
        "invalid_content_length",
    ),
    "length-2**64-1": (
        STATUS_200 + b"Content-Length: 18446744073709551615\r\n\r\n",
        "invalid_content_length",
    ),
    "length-20-digits": (
        STATUS_200 + b"Content-Length: 18446744073709551616\r\n\r\n",
        "invalid_content_length",
    ),
    "length-huge": (
        STATUS_200 + b"Content-Length: " + b"9" * 400 + b"\r\n\r\n",
        "invalid_content_length",
    ),
    "chunk-size-17-hex-digits": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n",
        "invalid_chunk_size",
    ),
    "chunk-size-2**64-1": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\nx\r\n",
        "invalid_chunk_size",
    ),
    "chunk-size-2**63": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n8000000000000000\r\nx\r\n",
        "invalid_chunk_size",
    ),
    "bare-lf-status-line": (b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare_lf"),
    "bare-lf-header": (STATUS_200 + b"Content-Length: 0\n\r\n", "bare_lf"),
    "bare-lf-blank-line": (STATUS_200 + b"Content-Length: 0\r\n\n", "bare_lf"),
    "bare-lf-everywhere": (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "bare_lf"),
    "bare-lf-before-status": (b"\nHTTP/1.1 200 OK\r\n\r\n", "bare_lf"),
    "bare-lf-chunk-size": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n",
        "bare_lf",
    ),
    "bare-lf-after-chunk": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\n0\r\n\r\n",
        "bare_lf",
    ),
    "bare-lf-last-chunk": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n0\n\r\n",
        "bare_lf",
    ),
    "bare-lf-trailer": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\r\n",
        "bare_lf",
    ),
    "bare-cr-after-status-line": (b"HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n", "bare_cr"),
    "bare-cr-between-headers": (STATUS_200 + b"A: 1\rB: 2\r\n\r\n", "bare_cr"),
    "bare-cr-cr-lf": (STATUS_200 + b"A: 1\r\r\n\r\n", "bare_cr"),
    "bare-cr-in-name": (STATUS_200 + b"A\rB: 1\r\n\r\n", "bare_cr"),
    "bare-cr-chunk-size": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n2\rhi\r\n",
        "bare_cr",
    ),
    "bare-cr-after-chunk": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\rX\r\n",
        "bare_cr",
    ),
    "nul-in-value": (STATUS_200 + b"X-Nul: a\x00b\r\n\r\n", "invalid_header_value"),
    "nul-in-name": (STATUS_200 + b"X-N\x00ul: ab\r\n\r\n", "invalid_header_name"),
    "nul-in-trailer": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: \x00\r\n\r\n",
        "invalid_header_value",
    ),
    "head-past-limit": (STATUS_200 + b"X: " + b"a" * 70000 + b"\r\n\r\n", "head_too_large"),
    "many-small-headers-past-limit": (
        STATUS_200 + b"X: y\r\n" * 20000 + b"\r\n",
        "too_many_headers",
    ),
    "headers-past-count-limit": (
        STATUS_200 + b"".join(b"H%d: v\r\n" % i for i in range(129)) + b"\r\n",
        "too_many_headers",
    ),
    "endless-status-line": (b"HTTP/1.1 200 " + b"O" * 70000, "head_too_large"),
    "endless-chunk-extension": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 5000,
        "chunk_line_too_long",
    ),
    "folded-content-length": (
        STATUS_200 + b"Content-Length: 1\r\n 0\r\n\r\n0123456789",
        "folded_framing_header",
    ),
    "folded-transfer-encoding": (
        STATUS_200 + b"Transfer-Encoding: gzip\r\n ,chunked\r\n\r\n",
        "folded_framing_header",
    ),
    "space-before-colon": (STATUS_200 + b"Content-Length : 5\r\n\r\nhello", "invalid_header_name"),
    "chunk-without-crlf": (
        STATUS_200 + b"Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
        "invalid_chunk",
    ),
    "data-after-close": (
        STATUS_200 + b"Connection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
        "data_after_close",
    ),
}


@pytest.mark.parametrize(("data", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_a_typed_error(parser_impl: ModuleType, data: bytes, reason: str) -> None:
    for pieces in ([data], [data[i : i + 1000] for i in range(0, len(data), 1000)]):
        outcome = run(parser_impl, pieces, eof=True)
        assert isinstance(outcome.error, ProtocolError), outcome.events
        assert outcome.reason == reason
        assert 0 <= outcome.error.offset <= len(data)
        with pytest.raises(ProtocolError) as info:
            outcome.parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        assert info.value.reason == "parser_failed"


# -- fuzzing: anything either parses or raises ProtocolError ----------------------


@pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict:DeprecationWarning")
@settings(derandomize=True, database=None, deadline=None, max_examples=800)
@given(fuzz_run=fuzz_runs())
def test_any_bytes_parse_or_raise_protocol_error(
    parser_impl: ModuleType, fuzz_run: tuple[list[bytes], list[bytes], bool, dict[str, int]]
) -> None:
    pieces, methods, eof, limits = fuzz_run
    outcome = run(parser_impl, pieces, methods=methods, eof=eof, **limits)  # nothing else escapes
    check_event_order(outcome.events)
    if outcome.error is not None:
        assert isinstance(outcome.error.reason, str) and outcome.error.reason
        assert 0 <= outcome.error.offset <= sum(map(len, pieces))
        with pytest.raises(ProtocolError) as info:
            outcome.parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
        assert info.value.reason == "parser_failed"
