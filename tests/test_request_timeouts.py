"""Per-request timeouts against real loopback servers: each overrides the client's for
that request only; head_timeout bounds the wait for the response head."""

from __future__ import annotations

import asyncio
import os

import pytest

from aiofasthttp import (
    Client,
    ConnectTimeout,
    HeadTimeout,
    PoolTimeout,
    ReadTimeout,
    WriteTimeout,
)
from servers import (
    HOST,
    LOOPS,
    ConnInfo,
    FullAcceptQueue,
    read_request,
    response,
    run,
    serve,
    stats_of,
    wait_until,
)

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


async def scripted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo):
    """/never: no answer; /late: the answer after 0.5 s; /slow-body: the head at once,
    then the body in 8 pieces 0.1 s apart; anything else: at once."""
    while (req := await read_request(reader)) is not None:
        if req.target == "/never":
            await asyncio.Event().wait()
        if req.target == "/late":
            await asyncio.sleep(0.5)
        if req.target == "/slow-body":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
            for _ in range(8):
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(b"x")
        else:
            writer.write(response(f"{req.target} {len(req.body)}".encode()))
        await writer.drain()


def test_read_timeout_per_request_overrides_the_clients_and_only_for_that_request(
    loop_kind: str,
) -> None:
    async def main() -> None:
        async with serve(scripted) as srv, Client(read_timeout=0.2) as client:
            with pytest.raises(ReadTimeout, match=r"read_timeout=0\.2"):
                await client.get(srv.url("/late"))
            # None lifts the limit for this request; a number replaces it.
            assert (await client.get(srv.url("/late"), read_timeout=None)).status == 200
            assert (await client.get(srv.url("/late"), read_timeout=5.0)).status == 200
            # The next plain request has the client's limit again.
            with pytest.raises(ReadTimeout, match=r"read_timeout=0\.2"):
                await client.get(srv.url("/late"))
            async with client.stream("GET", srv.url("/late"), read_timeout=5.0) as resp:
                assert resp.status == 200

    run(loop_kind, main)


def test_head_timeout_bounds_the_wait_for_the_head_not_the_body(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(scripted) as srv, Client(read_timeout=30.0) as client:
            started = asyncio.get_running_loop().time()
            with pytest.raises(HeadTimeout, match=r"head_timeout=0\.3") as info:
                await client.get(srv.url("/never"), head_timeout=0.3)
            assert asyncio.get_running_loop().time() - started < 10
            assert isinstance(info.value, TimeoutError)
            assert stats_of(client)["open"] == 0  # that connection is never reused
            # The head comes at once, the body takes 0.8 s: head_timeout does not apply.
            resp = await client.get(srv.url("/slow-body"), head_timeout=0.3)
            assert resp.content == b"x" * 8
            # A client-wide head_timeout, and a request that lifts it.
        async with serve(scripted) as srv, Client(head_timeout=0.2) as client:
            with pytest.raises(HeadTimeout):
                await client.get(srv.url("/late"))
            assert (await client.get(srv.url("/late"), head_timeout=None)).status == 200

    run(loop_kind, main)


def test_head_timeout_starts_after_a_streamed_body_is_sent(loop_kind: str) -> None:
    async def slow_upload():
        for _ in range(4):
            yield b"chunk"
            await asyncio.sleep(0.15)  # the upload takes 0.6 s, twice the head timeout

    async def main() -> None:
        async with serve(scripted) as srv, Client() as client:
            resp = await client.post(srv.url("/up"), content=slow_upload(), head_timeout=0.3)
            assert resp.content == b"/up 20"
            with pytest.raises(HeadTimeout):
                await client.post(srv.url("/never"), content=slow_upload(), head_timeout=0.3)

    run(loop_kind, main)


def test_connect_timeout_per_request(loop_kind: str) -> None:
    queue = FullAcceptQueue()

    async def main() -> None:
        async with Client(connect_timeout=30.0, retry=False) as client:
            started = asyncio.get_running_loop().time()
            with pytest.raises(ConnectTimeout, match=r"connect_timeout=0\.2"):
                await client.get(f"http://{HOST}:{queue.port}/", connect_timeout=0.2)
            assert asyncio.get_running_loop().time() - started < 10

    try:
        run(loop_kind, main)
    finally:
        queue.close()


def test_pool_timeout_per_request(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(scripted) as srv, Client(max_conns_per_host=1) as client:
            busy = asyncio.ensure_future(client.get(srv.url("/never")))
            await wait_until(lambda: srv.connections == 1)
            with pytest.raises(PoolTimeout, match=r"within 0\.2 s"):
                await client.get(srv.url("/x"), pool_timeout=0.2)
            busy.cancel()
            with pytest.raises(asyncio.CancelledError):
                await busy
            assert (await client.get(srv.url("/x"), pool_timeout=5.0)).content == b"/x 0"

    run(loop_kind, main)


def test_write_timeout_per_request(loop_kind: str) -> None:
    upload = os.urandom(8 << 20)

    async def never_reads(reader, writer, info: ConnInfo) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.Event().wait()

    async def main() -> None:
        async with serve(never_reads) as srv, Client(write_timeout=60.0) as client:
            with pytest.raises(WriteTimeout, match=r"write_timeout=0\.5"):
                await client.post(srv.url("/stuck"), content=upload, write_timeout=0.5)
            assert stats_of(client)["open"] == 0

    run(loop_kind, main)


def test_one_value_for_all_timeouts_and_unknown_ones_fail_loudly(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(scripted) as srv, Client(read_timeout=0.1) as client:
            same = {
                name: 5.0
                for name in (
                    "connect_timeout",
                    "read_timeout",
                    "write_timeout",
                    "pool_timeout",
                    "head_timeout",
                )
            }
            assert (await client.get(srv.url("/late"), **same)).status == 200
            with pytest.raises(TypeError):
                await client.get(srv.url("/"), reed_timeout=1.0)  # type: ignore[call-arg]

    run(loop_kind, main)
