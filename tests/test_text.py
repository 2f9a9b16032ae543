"""Streamed text: decoding across chunk boundaries, and lines split by \\n, \\r\\n and \\r."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator

import pytest

from aiofasthttp import Client, LimitExceeded
from aiofasthttp.h1.text import (
    LineSplitter,
    ServerSentEvent,
    charset_from_content_type,
    iter_events,
    iter_lines,
    iter_text,
)
from servers import LOOPS, ConnInfo, read_request, run, serve


async def _chunks(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*cuts, len(data)]:
        yield data[start:cut]
        start = cut


def _text(data: bytes, cuts: list[int], encoding: str | None = None) -> list[str]:
    async def main() -> list[str]:
        return [t async for t in iter_text(_chunks(data, cuts), encoding)]

    return asyncio.run(main())


def _lines(data: bytes, cuts: list[int], **kwargs: object) -> list[str]:
    async def main() -> list[str]:
        return [line async for line in iter_lines(_chunks(data, cuts), **kwargs)]  # type: ignore[arg-type]

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/plain; charset=ISO-8859-1", "iso8859-1"),
        ('text/html; charset="utf-8"', "utf-8"),
        ("application/json;CHARSET=Shift_JIS ", "shift_jis"),
        ("text/plain; format=flowed; charset=latin1; x=y", "iso8859-1"),
        ("text/plain; charset=no-such-codec", None),
        ("text/plain", None),
        ("", None),
        (None, None),
    ],
)
def test_charset_from_content_type(content_type: str | None, expected: str | None) -> None:
    assert charset_from_content_type(content_type) == expected


TEXT = "héllo wörld € 😀 ascii 中文"


def test_every_split_of_multibyte_utf8_decodes_to_the_same_text() -> None:
    data = TEXT.encode("utf-8")
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            assert "".join(_text(data, [i, j])) == TEXT


def test_byte_by_byte_and_other_charsets() -> None:
    data = TEXT.encode("utf-8")
    assert "".join(_text(data, list(range(1, len(data))))) == TEXT
    sjis = "日本語テキスト".encode("shift_jis")
    assert "".join(_text(sjis, list(range(1, len(sjis))), "shift_jis")) == "日本語テキスト"
    assert "".join(_text(b"caf\xe9", [3], "iso8859-1")) == "café"


def test_a_truncated_character_at_the_end_becomes_a_replacement_character() -> None:
    data = "ok €".encode()[:-1]
    assert "".join(_text(data, [1])) == "ok \ufffd"
    assert "".join(_text(b"\xff\xfeok", [1])) == "\ufffd\ufffdok"


def test_lines_end_at_lf_crlf_and_cr_only() -> None:
    data = "a\r\nb\rc\nd\u2028e\x0bf\x85g\n\nlast".encode()
    expected = ["a", "b", "c", "d\u2028e\x0bf\x85g", "", "last"]
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            assert _lines(data, [i, j]) == expected, (i, j)


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    assert _lines(b"one\r\ntwo\r\n", [4]) == ["one", "two"]
    assert _lines(b"one\r\r\ntwo", [4, 5]) == ["one", "", "two"]
    assert _lines(b"\r\n\r\n", [1, 2, 3]) == ["", ""]


def test_random_splits_match_a_reference_split() -> None:
    rng = random.Random(1515)
    alphabet = ["a", "é", "😀", "\r", "\n", "\r\n", " ", "{}"]
    text = "".join(rng.choice(alphabet) for _ in range(3000))
    data = text.encode()
    reference = re.split(r"\r\n|\r|\n", text)
    if reference[-1] == "":
        reference.pop()
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 60)))
        assert _lines(data, cuts) == reference


def test_ndjson_stream() -> None:
    records = [{"id": i, "text": "line\u2028sep é"} for i in range(100)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    assert [json.loads(line) for line in _lines(data, cuts)] == records


def test_server_sent_events_keep_their_blank_lines() -> None:
    data = b"event: tick\r\ndata: 1\r\n\r\ndata: 2\r\rdata: 3\n\n"
    assert _lines(data, [13, 14, 25]) == [
        "event: tick",
        "data: 1",
        "",
        "data: 2",
        "",
        "data: 3",
        "",
    ]


def test_a_line_longer_than_the_limit_raises() -> None:
    assert _lines(b"12345\n1234567890\n", [3], max_line_size=10) == ["12345", "1234567890"]
    with pytest.raises(LimitExceeded) as info:
        _lines(b"x" * 11 + b"\n", [], max_line_size=10)
    assert info.value.reason == "line_too_long"
    with pytest.raises(LimitExceeded):  # an unfinished line, across chunks
        _lines(b"x" * 30, [5, 10, 15, 20, 25], max_line_size=10)


def test_splitter_holds_an_unfinished_line_in_pieces() -> None:
    splitter = LineSplitter()
    for _ in range(1000):
        assert splitter.feed("ab") == []
    assert splitter.feed("c\nd") == ["ab" * 1000 + "c"]
    assert splitter.flush() == ["d"]
    assert splitter.flush() == []


def _events(data: bytes, cuts: list[int]) -> list[ServerSentEvent]:
    async def main() -> list[ServerSentEvent]:
        return [e async for e in iter_events(iter_lines(_chunks(data, cuts)))]

    return asyncio.run(main())


def test_server_sent_events_as_the_html_standard_reads_them() -> None:
    stream = (
        "\ufeff: a comment\r\n\r\n"
        "data: YHOO\ndata: +2\ndata: 10\n\n"
        "event: add\rdata:no space\rid: 7\rretry: 1500\r\r"
        "data\n\ndata\ndata\n\n"
        "id\ndata:  two spaces\nretry: soon\n\n"
        "data: never closed"
    ).encode()
    expected = [
        ServerSentEvent("YHOO\n+2\n10"),
        ServerSentEvent("no space", "add", "7", 1500),
        ServerSentEvent("", "message", "7"),
        ServerSentEvent("\n", "message", "7"),
        ServerSentEvent(" two spaces", "message", ""),
    ]
    assert _events(stream, []) == expected
    rng = random.Random(99)
    for _ in range(30):
        assert _events(stream, sorted(rng.sample(range(1, len(stream)), 12))) == expected


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_events_and_lines_streamed_by_a_loopback_server(loop_kind: str) -> None:
    pieces = [b"data: caf\xc3", b"\xa9\r", b"\n\r\n", b'event: end\r\ndata: {"n"', b": 1}\n\n"]

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> list[ServerSentEvent]:
        async with (
            serve(handler) as server,
            Client() as client,
            client.stream("GET", server.url("/events")) as resp,
        ):
            charset = charset_from_content_type(resp.headers.get("content-type"))
            lines = iter_lines(resp.iter_bytes(), charset)
            return [e async for e in iter_events(lines)]

    events = run(loop_kind, main)
    assert events == [ServerSentEvent("café"), ServerSentEvent('{"n": 1}', "end")]
