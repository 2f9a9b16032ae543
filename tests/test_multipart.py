"""multipart/form-data and sync content: structure, streaming, replay, memory, httpbin."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import io
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from aiofasthttp import Client, InvalidHeader
from aiofasthttp.h1.multipart import (
    FileChangedError,
    Payload,
    encode_multipart,
    sync_content,
)
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)


async def _collect(stream: AsyncIterable[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def _body(payload: Payload) -> bytes:
    if payload.data is not None:
        return payload.data
    assert payload.make_stream is not None
    return asyncio.run(_collect(payload.make_stream()))


def _parts(payload: Payload, body: bytes) -> list[EmailMessage]:
    """The parts as the standard library's MIME parser reads them."""
    raw = f"Content-Type: {payload.content_type}\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert isinstance(message, EmailMessage) and message.is_multipart()
    return list(message.iter_parts())  # type: ignore[arg-type]


@pytest.fixture
def tmp_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as root:
        yield Path(root) / "report.csv"


def test_fields_and_byte_files_make_one_body_with_its_length() -> None:
    payload = encode_multipart(
        {"name": "Zoë", "tags": ["a", "b"], "n": 3},
        {
            "raw": b"\x00\x01",
            "doc": ("notes.txt", b"hello"),
            "img": ("x.bin", b"\xff", "image/png"),
        },
    )
    assert payload.data is not None and payload.make_stream is None and payload.replayable
    assert payload.length == len(payload.data)
    parts = _parts(payload, payload.data)
    got = [
        (
            p.get_param("name", header="content-disposition"),
            p.get_filename(),
            p.get_content_type(),
            p.get_payload(decode=True),
        )
        for p in parts
    ]
    assert got == [
        ("name", None, "text/plain", "Zoë".encode()),
        ("tags", None, "text/plain", b"a"),
        ("tags", None, "text/plain", b"b"),
        ("n", None, "text/plain", b"3"),
        ("raw", "raw", "application/octet-stream", b"\x00\x01"),
        ("doc", "notes.txt", "text/plain", b"hello"),
        ("img", "x.bin", "image/png", b"\xff"),
    ]


def test_quotes_and_line_breaks_in_names_are_escaped() -> None:
    payload = encode_multipart({'a"b\r\nc': "v"}, {"f": ('we"ird\n.txt', b"x")}, boundary="B")
    assert b'name="a%22b%0D%0Ac"\r\n' in (payload.data or b"")
    assert b'filename="we%22ird%0A.txt"\r\n' in (payload.data or b"")


def test_a_seekable_file_streams_is_replayable_and_of_known_length(tmp_file: Path) -> None:
    tmp_file.write_bytes(b"header\n" + b"1,2,3\n" * 50_000)
    with open(tmp_file, "rb") as f:
        f.seek(7)  # sent from where the file stands
        payload = encode_multipart({"k": "v"}, {"upload": f}, chunk_size=4096)
        assert payload.data is None and payload.replayable
        first, second = _body(payload), _body(payload)
    assert first == second and len(first) == payload.length
    parts = _parts(payload, first)
    assert parts[1].get_filename() == "report.csv"
    assert parts[1].get_content_type() == "text/csv"
    assert parts[1].get_payload(decode=True) == b"1,2,3\n" * 50_000


def test_a_file_streams_in_chunks_of_chunk_size(tmp_file: Path) -> None:
    tmp_file.write_bytes(b"z" * 10_000)
    with open(tmp_file, "rb") as f:
        payload = encode_multipart(None, {"f": f}, chunk_size=1000)
        assert payload.make_stream is not None

        async def sizes() -> list[int]:
            return [len(c) async for c in payload.make_stream()]  # type: ignore[misc]

        got = asyncio.run(sizes())
    assert max(got) <= 1000 + 200  # a part head, or a chunk
    assert got.count(1000) == 10


class _Pipe(io.RawIOBase):
    """A readable, unseekable binary stream (like a socket or a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        return self._data.readinto(buffer)


def test_an_unseekable_file_is_one_shot_with_no_length() -> None:
    payload = encode_multipart(None, {"f": ("pipe.bin", _Pipe(b"abc" * 1000))}, boundary="B")
    assert not payload.replayable and payload.length is None
    body = _body(payload)
    assert _parts(payload, body)[0].get_payload(decode=True) == b"abc" * 1000
    assert payload.make_stream is not None
    with pytest.raises(RuntimeError, match="already sent"):
        payload.make_stream()


def test_a_file_that_shrinks_before_sending_fails_rather_than_send_a_short_body(
    tmp_file: Path,
) -> None:
    tmp_file.write_bytes(b"x" * 5000)
    with open(tmp_file, "rb") as f:
        payload = encode_multipart(None, {"f": f})
        tmp_file.write_bytes(b"x" * 100)  # truncated under the open file
        with pytest.raises(FileChangedError, match="4900 bytes before"):
            _body(payload)


def test_bad_values_get_typed_errors(tmp_file: Path) -> None:
    tmp_file.write_text("text")
    with open(tmp_file) as text_file, pytest.raises(TypeError, match="text mode"):
        encode_multipart(None, {"f": text_file})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="not bytes or a binary file"):
        encode_multipart(None, {"f": 12})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="is not str, bytes"):
        encode_multipart({"d": object()}, {})
    with pytest.raises(InvalidHeader):
        encode_multipart(None, {"f": ("a", b"x", "text/plain\r\nX-Injected: 1")})
    with pytest.raises(TypeError, match="mapping"):
        encode_multipart("a=b", {"f": b"x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="boundary"):
        encode_multipart(None, {"f": b"x"}, boundary="bad\r\n")


def test_a_one_gib_file_is_streamed_in_bounded_memory(tmp_file: Path) -> None:
    size = 1 << 30
    with open(tmp_file, "wb") as f:
        f.truncate(size)  # sparse: no disk blocks, reads give zeros
    with open(tmp_file, "rb") as f:
        payload = encode_multipart({"k": "v"}, {"big": f})
        assert payload.length is not None and payload.length > size

        async def count() -> int:
            total = 0
            async for chunk in payload.make_stream():  # type: ignore[misc]
                total += len(chunk)
            return total

        tracemalloc.start()
        try:
            total = asyncio.run(count())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert total == payload.length
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while streaming 1 GiB"


def test_sync_iterables_and_files_as_content(tmp_file: Path) -> None:
    listed = sync_content([b"ab", bytearray(b"cd"), memoryview(b"e")])
    assert listed is not None and listed.replayable and listed.length == 5
    assert _body(listed) == _body(listed) == b"abcde"

    generated = sync_content(c for c in [b"x", b"y"])
    assert generated is not None and not generated.replayable and generated.length is None
    assert _body(generated) == b"xy"
    with pytest.raises(RuntimeError, match="already sent"):
        _body(generated)

    tmp_file.write_bytes(b"0123456789")
    with open(tmp_file, "rb") as f:
        f.seek(4)
        from_file = sync_content(f)
        assert from_file is not None and from_file.replayable and from_file.length == 6
        assert _body(from_file) == _body(from_file) == b"456789"

    unseekable = sync_content(_Pipe(b"pipe"))
    assert unseekable is not None and not unseekable.replayable and unseekable.length is None
    assert _body(unseekable) == b"pipe"

    with pytest.raises(TypeError, match="holds str"):
        sync_content(["text"])
    with pytest.raises(TypeError, match="gave int"):
        _body(sync_content(iter([1, 2])))  # type: ignore[arg-type]
    assert sync_content(b"bytes") is None and sync_content("str") is None
    assert sync_content({"a": "b"}) is None and sync_content(_collect) is None
    assert sync_content(_AsyncFile()) is None


class _AsyncFile:
    """A file object whose read is a coroutine (as aiofiles' are)."""

    name = "async.bin"

    async def read(self, size: int = -1) -> bytes:
        return b""


def test_an_async_file_is_not_read_as_a_sync_one() -> None:
    with pytest.raises(TypeError, match="reads asynchronously"):
        encode_multipart(None, {"f": _AsyncFile()})  # type: ignore[dict-item]


# -- against a real server ---------------------------------------------------------------


def _post(url: str, payload: Payload) -> dict[str, object]:
    async def main() -> dict[str, object]:
        async with Client() as client:
            assert payload.content_type is not None
            headers = {"Content-Type": payload.content_type}
            content = payload.data if payload.data is not None else payload.make_stream
            resp = await client.post(url, content=content, headers=headers)
            assert resp.status == 200, resp.content
            result: dict[str, object] = resp.json()
            return result

    return asyncio.run(main())


def test_httpbin_reads_fields_and_files_sent_whole(httpbin_url: str) -> None:  # noqa: F811
    payload = encode_multipart({"who": "Zoë"}, {"doc": ("notes.txt", b"hello there")})
    echoed = _post(f"{httpbin_url}/post", payload)
    assert echoed["form"] == {"who": "Zoë"}
    assert echoed["files"] == {"doc": "hello there"}


def test_httpbin_reads_a_streamed_file_sent_chunked(
    httpbin_url: str,  # noqa: F811
    tmp_file: Path,
) -> None:
    content = os.urandom(300_000).hex().encode()  # 600 kB of text
    tmp_file.write_bytes(content)
    with open(tmp_file, "rb") as f:
        payload = encode_multipart({"k": "v"}, {"up": f}, chunk_size=8192)
        assert payload.make_stream is not None
        echoed = _post(f"{httpbin_url}/post", payload)
    assert echoed["form"] == {"k": "v"}
    assert echoed["files"] == {"up": content.decode()}
