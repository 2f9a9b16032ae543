"""Reading a response: iter_text, iter_lines, iter_events, elapsed, and HTTPStatusError's
response, against scripted loopback servers on both loops."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from aiofasthttp import Client, HTTPStatusError, LimitExceeded
from servers import LOOPS, ConnInfo, Handler, read_request, response, run, serve

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def chunked_pieces(pieces: list[bytes], content_type: str) -> Handler:
    """Answers each request with ``pieces`` as separate chunks, each written and drained."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            head = {"Transfer-Encoding": "chunked", "Content-Type": content_type}
            writer.write(response(b"", headers=head))
            for piece in pieces:
                writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return handler


# NDJSON whose records are cut mid-line, mid-"\r\n" and inside a UTF-8 character.
RECORDS = [{"n": i, "name": "caf\u00e9 \u2603 \u2028"} for i in range(40)]
NDJSON = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\r\n" for r in RECORDS)
NDJSON_PIECES = [NDJSON[i : i + 7] for i in range(0, len(NDJSON), 7)]


def test_iter_lines_streamed_ndjson(loop_kind: str) -> None:
    async def main() -> None:
        async with (
            serve(chunked_pieces(NDJSON_PIECES, "application/x-ndjson")) as server,
            Client() as client,
        ):
            async with client.stream("GET", server.url("/feed")) as resp:
                lines = [line async for line in resp.iter_lines()]
            buffered = await client.get(server.url("/feed"))
            again = [line async for line in buffered.iter_lines()]
        assert [json.loads(line) for line in lines] == RECORDS
        assert again == lines

    run(loop_kind, main)


def test_iter_text_decodes_by_the_charset_across_pieces(loop_kind: str) -> None:
    text = "na\u00efve r\u00e9sum\u00e9 " * 50
    latin = text.encode("iso-8859-1")
    utf16 = text.encode("utf-16")
    pieces16 = [utf16[i : i + 5] for i in range(0, len(utf16), 5)]  # odd cuts: split units

    async def main() -> None:
        async with (
            serve(chunked_pieces([latin[:13], latin[13:]], "text/plain; charset=ISO-8859-1")) as a,
            serve(chunked_pieces(pieces16, 'text/plain; charset="utf-16"')) as b,
            Client() as client,
        ):
            async with client.stream("GET", a.url()) as resp:
                got_latin = "".join([t async for t in resp.iter_text()])
            async with client.stream("GET", b.url()) as resp:
                got16 = [t async for t in resp.iter_text()]
        assert got_latin == text
        assert "".join(got16) == text
        assert len(got16) > 1  # decoded as it came, not at the end

    run(loop_kind, main)


def test_iter_events_and_max_line_size(loop_kind: str) -> None:
    stream = b": hello\n\nevent: tick\ndata: 1\nid: a\n\ndata: two\ndata: lines\n\n"
    pieces = [stream[i : i + 3] for i in range(0, len(stream), 3)]

    async def main() -> None:
        async with serve(chunked_pieces(pieces, "text/event-stream")) as server, Client() as client:
            async with client.stream("GET", server.url()) as resp:
                events = [e async for e in resp.iter_events()]
            async with client.stream("GET", server.url()) as resp:
                with pytest.raises(LimitExceeded):
                    _ = [line async for line in resp.iter_lines(max_line_size=5)]
        assert [(e.event, e.data, e.id) for e in events] == [
            ("tick", "1", "a"),
            ("message", "two\nlines", "a"),
        ]

    run(loop_kind, main)


def slow_head(head_delay: float, body_delay: float) -> Handler:
    """The head after ``head_delay`` seconds, the body ``body_delay`` seconds after it."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            await asyncio.sleep(head_delay)  # the delay measured, not a synchronisation
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(body_delay)
            writer.write(b"body")
            await writer.drain()

    return handler


@pytest.mark.parametrize("read_timeout", [60.0, None], ids=["timed", "untimed"])
def test_elapsed_runs_from_the_request_to_the_head(
    loop_kind: str, read_timeout: float | None
) -> None:
    async def main() -> None:
        async with (
            serve(slow_head(0.2, 1.0)) as server,
            Client(read_timeout=read_timeout) as client,
        ):
            buffered = await client.get(server.url())
            async with client.stream("GET", server.url()) as streamed:
                elapsed = streamed.elapsed
                await streamed.aread()
        assert isinstance(buffered.elapsed, timedelta)
        # At least the server's delay (same loop clock); the body's second not counted.
        assert timedelta(seconds=0.2) <= buffered.elapsed < timedelta(seconds=1.0)
        assert timedelta(seconds=0.2) <= elapsed < timedelta(seconds=1.0)

    run(loop_kind, main)


def not_found() -> Handler:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            writer.write(response(b"no such item", 404, {"X-Why": "gone"}))
            await writer.drain()

    return handler


def test_http_status_error_carries_the_response(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(not_found()) as server, Client() as client:
            resp = await client.get(server.url("/item"))
            with pytest.raises(HTTPStatusError) as info:
                resp.raise_for_status()
            assert info.value.response is resp
            assert info.value.status == 404
            assert info.value.response.headers["x-why"] == "gone"
            assert info.value.response.text == "no such item"
            async with client.stream("GET", server.url("/item")) as streamed:
                with pytest.raises(HTTPStatusError) as info:
                    streamed.raise_for_status()
                assert await info.value.response.aread() == b"no such item"

    run(loop_kind, main)
