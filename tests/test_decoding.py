"""Content decoding: gzip, deflate (zlib and raw), br, zstd; streamed; bombs bounded."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import brotli
import pytest
import zstandard

from aiofasthttp import Client, ProtocolError, ResponseTooLarge
from aiofasthttp.h1.decoding import ACCEPT_ENCODING, decoder_for
from servers import LOOPS, ConnInfo, read_request, run, serve

PAYLOAD = b"the quick brown fox " * 500


def raw_deflate(data: bytes) -> bytes:
    z = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return z.compress(data) + z.flush()


ENCODED = {
    "gzip": gzip.compress(PAYLOAD),
    "deflate": zlib.compress(PAYLOAD),
    "br": brotli.compress(PAYLOAD),
    "zstd": zstandard.ZstdCompressor().compress(PAYLOAD),
}


def test_accept_encoding_names_what_is_installed() -> None:
    assert ACCEPT_ENCODING == "gzip, deflate, br, zstd"


@pytest.mark.parametrize("coding", [*ENCODED, "raw-deflate"])
def test_each_coding_decodes_piece_by_piece(coding: str) -> None:
    data = raw_deflate(PAYLOAD) if coding == "raw-deflate" else ENCODED[coding]
    name = b"deflate" if coding == "raw-deflate" else coding.encode()
    decoder = decoder_for([(b"Content-Encoding", name)], None)
    assert decoder is not None
    out = b"".join(decoder.decode(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out + decoder.flush() == PAYLOAD


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_a_bomb_stops_at_the_limit(coding: str) -> None:
    bomb = {
        "gzip": gzip.compress(b"\0" * (8 << 20)),
        "deflate": zlib.compress(b"\0" * (8 << 20)),
        "br": brotli.compress(b"\0" * (8 << 20)),
        "zstd": zstandard.ZstdCompressor().compress(b"\0" * (8 << 20)),
    }[coding]
    decoder = decoder_for([(b"content-encoding", coding.encode())], 1 << 20)
    assert decoder is not None
    with pytest.raises(ResponseTooLarge):
        for i in range(0, len(bomb), 1024):
            decoder.decode(bomb[i : i + 1024])


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_corrupt_data_is_a_protocol_error(coding: str) -> None:
    decoder = decoder_for([(b"Content-Encoding", coding.encode())], None)
    assert decoder is not None
    with pytest.raises(ProtocolError) as info:
        decoder.decode(b"\x1f\x8b\x08\x00garbage-that-is-not-compressed" * 4)
        decoder.flush()
    assert info.value.reason == "invalid_content_coding"


def test_unknown_coding_is_left_alone() -> None:
    assert decoder_for([(b"Content-Encoding", b"compress")], None) is None
    assert decoder_for([(b"Content-Type", b"gzip")], None) is None


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_streamed_body_is_decoded_as_it_arrives(loop_kind: str) -> None:
    gate = asyncio.Event()
    first_part = gzip.compress(PAYLOAD)

    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        half = len(first_part) // 2
        writer.write(b"%x\r\n%s\r\n" % (half, first_part[:half]))
        await writer.drain()
        await gate.wait()  # the rest only once the client has decoded the first half
        rest = first_part[half:]
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            async with client.stream("GET", srv.url()) as resp:
                pieces = []
                async for piece in resp.iter_bytes():
                    pieces.append(piece)
                    gate.set()
            assert b"".join(pieces) == PAYLOAD and len(pieces) >= 2

    run(loop_kind, main)
