"""Expect: 100-continue for large uploads: body after 100, after a timeout, or never."""

from __future__ import annotations

import asyncio

import pytest

from aiofasthttp import Client
from servers import LOOPS, ConnInfo, run, serve, wait_until

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)

BODY = b"u" * 4096


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def test_body_follows_100_continue(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while True:
            head = await read_head(reader)
            assert b"Expect: 100-continue" in head
            # Nothing of the body may have arrived before the 100.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(reader.readexactly(1), 0.1)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await reader.readexactly(len(BODY))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body[:5])

    async def main() -> None:
        async with serve(handler) as srv, Client(expect_continue_threshold=1024) as client:
            for _ in range(2):
                r = await client.post(srv.url(), content=BODY)
                assert r.status == 200 and r.content.startswith(b"uuuuu")
            assert next(iter(client.stats().values()))["created"] == 1

    run(loop_kind, main)


def test_body_sent_after_timeout_when_server_says_nothing(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_head(reader)
        body = await reader.readexactly(len(BODY))  # an old server: just waits for the body
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await reader.read()

    async def main() -> None:
        async with (
            serve(handler) as srv,
            Client(expect_continue_threshold=1024, expect_continue_timeout=0.2) as client,
        ):
            r = await client.post(srv.url(), content=BODY)
            assert r.content == BODY

    run(loop_kind, main)


def test_final_answer_first_means_no_body_and_no_reuse(loop_kind: str) -> None:
    received = []

    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 4\r\n\r\nnope")
        await writer.drain()
        received.append(await reader.read())  # until the client closes

    async def main() -> None:
        async with (
            serve(handler) as srv,
            Client(expect_continue_threshold=1024, expect_continue_timeout=5) as client,
        ):
            r = await client.post(srv.url(), content=BODY)
            assert r.status == 413 and r.content == b"nope"
            stats = next(iter(client.stats().values()))
            assert stats["open"] == 0  # not reused: the server may still expect the body
            await wait_until(lambda: bool(received))
        assert received == [b""]  # and the body was never sent

    run(loop_kind, main)


def test_small_bodies_do_not_wait(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        head = await read_head(reader)
        assert b"Expect" not in head
        body = await reader.readexactly(10)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + body)
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv, Client(expect_continue_threshold=1024) as client:
            assert (await client.post(srv.url(), content=b"0123456789")).content == b"0123456789"

    run(loop_kind, main)


def test_a_streamed_upload_answered_early_returns_the_answer(loop_kind: str) -> None:
    sent = []

    async def upload():
        for i in range(1000):
            sent.append(i)
            yield b"x" * 65536  # 64 MiB in all, far more than the server will take

    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 4\r\n\r\nnope")
        await writer.drain()
        await reader.read()  # drains until the client closes

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            r = await client.put(srv.url(), content=lambda: upload())
            assert r.status == 413 and r.content == b"nope"
            stats = next(iter(client.stats().values()))
            assert stats["open"] == 0  # the stream is out of step: not reused
        assert len(sent) < 1000  # the upload stopped when the answer came

    run(loop_kind, main)
