"""Files and multipart through the Client: httpbin reads them, big files stream in bounded
memory with a Content-Length, replays and 307s resend the same body, one-shot bodies refuse."""

from __future__ import annotations

import asyncio
import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiofasthttp import Client, ConnectionClosedError, RedirectError
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)
from servers import ConnInfo, ReceivedRequest, read_request, response, serve


def test_httpbin_reads_fields_and_files(httpbin_url: str, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "notes.txt"
    path.write_bytes(b"from a file\n" * 1000)

    async def main() -> None:
        async with Client(base_url=httpbin_url) as client:
            with path.open("rb") as f:
                resp = await client.post(
                    "/post",
                    data={"name": "oat", "n": 2},
                    files={"doc": f, "raw": b"\x00\x01", "named": ("a.csv", b"x,y", "text/csv")},
                )
            body = resp.json()
            assert body["form"] == {"name": "oat", "n": "2"}
            assert body["files"] == {
                "doc": "from a file\n" * 1000,
                "raw": "\x00\x01",
                "named": "x,y",
            }
            sent = body["headers"]
            assert sent["Content-Type"].startswith("multipart/form-data; boundary=")
            assert "Transfer-Encoding" not in sent and int(sent["Content-Length"]) > 12000

    asyncio.run(main())


def _recording() -> tuple[list[ReceivedRequest], object]:
    seen: list[ReceivedRequest] = []

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            seen.append(req)
            writer.write(response(b"%d" % len(req.body)))
            await writer.drain()

    return seen, handler


async def _counting(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
) -> None:
    """Reads a Content-Length body without keeping it; answers with its size and framing."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
    length = int(head.split("content-length: ")[1].split("\r\n")[0])
    left = length
    while left:
        left -= len(await reader.read(min(left, 1 << 20)))
    chunked = "transfer-encoding" in head
    writer.write(response(f"{length} {chunked}".encode()))
    await writer.drain()


def test_a_large_file_is_streamed_in_bounded_memory_with_its_length(tmp_path: Path) -> None:
    size = 64 << 20
    path = tmp_path / "big.bin"
    with path.open("wb") as f:
        f.truncate(size)  # sparse: no disk to speak of

    async def main() -> tuple[bytes, int]:
        async with serve(_counting) as server, Client() as client:
            with path.open("rb") as f:
                tracemalloc.start()
                try:
                    resp = await client.post(server.url("/up"), files={"big": f})
                    peak = tracemalloc.get_traced_memory()[1]
                finally:
                    tracemalloc.stop()
            return resp.content, peak

    content, peak = asyncio.run(main())
    length, chunked = content.split()
    assert int(length) > size and chunked == b"False"
    assert peak < 8 << 20, f"peak {peak} bytes for a {size}-byte upload"


def _drop_second_request_once() -> tuple[list[ReceivedRequest], object]:
    """Answers the first request of the first connection, then reads the second and
    closes without a byte: a reused connection dying under a written request."""
    seen: list[ReceivedRequest] = []

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            seen.append(req)
            info.requests += 1
            if info.index == 0 and info.requests == 2:
                return  # the serve() helper aborts the transport
            writer.write(response(b"%d" % len(req.body)))
            await writer.drain()

    return seen, handler


def test_a_seekable_file_is_replayed_on_a_fresh_connection(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(200_000))

    async def main() -> list[ReceivedRequest]:
        seen, handler = _drop_second_request_once()
        async with serve(handler) as server, Client() as client:  # type: ignore[arg-type]
            await client.get(server.url("/warm"))
            with path.open("rb") as f:
                resp = await client.put(server.url("/up"), files={"f": f})
            assert server.connections == 2
            assert resp.content == b"%d" % len(seen[-1].body)
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 3 and seen[1].body == seen[2].body
    assert path.read_bytes() in seen[2].body
    assert "content-length" in seen[2].headers


class _Pipe(io.RawIOBase):
    """A readable binary file that cannot seek: one-shot, of unknown length."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_one_shot_file_is_chunked_and_not_replayed() -> None:
    async def main() -> list[ReceivedRequest]:
        seen, handler = _drop_second_request_once()
        async with serve(handler) as server, Client() as client:  # type: ignore[arg-type]
            await client.get(server.url("/warm"))
            with pytest.raises(ConnectionClosedError):
                await client.put(server.url("/up"), files={"f": _Pipe(b"abc" * 1000)})
            assert server.connections == 1
            resp = await client.put(server.url("/up"), files={"f": ("p.bin", _Pipe(b"z"))})
            assert resp.status == 200
        return seen

    seen = asyncio.run(main())
    assert seen[-1].headers.get("transfer-encoding") == "chunked"
    assert b'filename="p.bin"' in seen[-1].body


def _redirecting() -> tuple[list[ReceivedRequest], object]:
    seen: list[ReceivedRequest] = []

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            seen.append(req)
            if req.target == "/from":
                writer.write(response(b"", 307, {"Location": "/to"}))
            else:
                writer.write(response(b"%d" % len(req.body)))
            await writer.drain()

    return seen, handler


def test_a_307_resends_the_same_multipart_body(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(100_000))

    async def main() -> list[ReceivedRequest]:
        seen, handler = _redirecting()
        async with serve(handler) as server, Client(follow_redirects=True) as client:  # type: ignore[arg-type]
            with path.open("rb") as f:
                resp = await client.post(server.url("/from"), data={"a": "1"}, files={"f": f})
            assert resp.status == 200 and [r.status for r in resp.history] == [307]
            with pytest.raises(RedirectError):
                await client.post(server.url("/from"), files={"f": _Pipe(b"once")})
        return seen

    seen = asyncio.run(main())
    first, second = seen[0], seen[1]
    # The same Body, not encoded again: the boundary is the same too.
    assert first.headers["content-type"] == second.headers["content-type"]
    assert first.body == second.body and path.read_bytes() in second.body


def _chunks() -> Iterator[bytes]:
    yield b"gen"
    yield b"erator"


def test_sync_iterables_and_files_as_content(tmp_path: Path) -> None:
    path = tmp_path / "c.bin"
    path.write_bytes(b"file body")

    async def main() -> list[ReceivedRequest]:
        seen, handler = _recording()
        async with serve(handler) as server, Client() as client:  # type: ignore[arg-type]
            await client.post(server.url("/"), content=[b"li", b"st"])
            await client.post(server.url("/"), content=_chunks())
            with path.open("rb") as f:
                await client.post(server.url("/"), content=f)
        return seen

    seen = asyncio.run(main())
    assert [r.body for r in seen] == [b"list", b"generator", b"file body"]
    assert seen[0].headers.get("content-length") == "4"
    assert seen[1].headers.get("transfer-encoding") == "chunked"
    assert seen[2].headers.get("content-length") == "9"
