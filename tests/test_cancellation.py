"""Cancellation, flow control and write timeouts: nothing dirty is pooled, nothing leaks."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from aiofasthttp import Client, WriteTimeout
from aiofasthttp.engine.connection import State
from servers import LOOPS, ConnInfo, read_request, response, run, serve, wait_until

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_random_cancellations_leave_a_clean_pool(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            body = req.target.encode() * 50
            wire = response(body)
            split = len(wire) // 2
            writer.write(wire[:split])
            await writer.drain()
            await asyncio.sleep(0)
            writer.write(wire[split:])
            await writer.drain()

    async def main() -> None:
        rng = random.Random(1234)
        # Warm up first: uvloop opens a descriptor of its own on first use.
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url("/warm"))
        before = open_fds()
        completed = cancelled = 0
        async with serve(handler) as srv, Client(max_conns_per_host=32) as client:

            async def one(i: int) -> None:
                r = await client.get(srv.url(f"/{i}"))
                assert r.content == f"/{i}".encode() * 50

            for batch in range(100):
                tasks = [asyncio.ensure_future(one(batch * 100 + j)) for j in range(100)]
                for _ in range(rng.randrange(0, 12)):
                    await asyncio.sleep(0)
                for task in tasks:
                    if rng.random() < 0.3:
                        task.cancel()
                for result in await asyncio.gather(*tasks, return_exceptions=True):
                    if isinstance(result, asyncio.CancelledError):
                        cancelled += 1
                    elif result is None:
                        completed += 1
                    else:
                        raise result
            (pool,) = client._pools.values()
            for conn in pool._idle:
                assert conn.state is State.IDLE
                assert not conn._parser.in_message
                assert conn.socket_is_quiet()
            counts = pool.counts
            assert counts["active"] == 0 and counts["open"] == counts["idle"]
            assert counts["open"] <= 32
        assert completed + cancelled == 10_000 and cancelled > 1000 and completed > 1000
        await wait_until(lambda: open_fds() <= before)

    run(loop_kind, main, timeout=150)


def test_slow_reader_of_a_large_stream_holds_bounded_memory(loop_kind: str) -> None:
    size = 256 << 20
    block = b"z" * 65536

    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            base = rss_bytes()
            peak = base
            total = 0
            async with client.stream("GET", srv.url()) as resp:
                async for chunk in resp.iter_bytes():
                    total += len(chunk)
                    if total % (8 << 20) < len(chunk):
                        peak = max(peak, rss_bytes())
                        await asyncio.sleep(0.01)  # a slow consumer
            assert total == size
            assert peak - base < 32 << 20, f"RSS grew by {(peak - base) >> 20} MiB"

    run(loop_kind, main, timeout=120)


def _most_a_send_buffer_holds() -> int:
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        return int(f.read().split()[2])


def test_large_upload_and_write_timeout_when_server_stops_reading(loop_kind: str) -> None:
    # The write can time out only if the upload does not fit in the kernel's buffers
    # of a stalled server: its receive buffer is fixed small (autotuning after the
    # first upload grew it to hold all of the second one, and the server's reset 30 s
    # later came instead of the timeout), and the upload is larger than the client's
    # send buffer can ever grow.
    server_buffer = 64 << 10
    upload = os.urandom(2 * _most_a_send_buffer_holds() + (1 << 20))

    async def handler(reader, writer, info: ConnInfo) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if b"/stuck" in head:
                await asyncio.Event().wait()  # never reads the body (cancelled at the end)
            req_len = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            got = await reader.readexactly(req_len)
            writer.write(response(str(len(got)).encode()))
            await writer.drain()

    async def main() -> None:
        # write_timeout is generous: on a loaded machine the server (on this same loop)
        # may leave the transport full for a while even when it does read.
        async with (
            serve(handler, rcvbuf=server_buffer) as srv,
            Client(write_timeout=3.0) as client,
        ):
            r = await client.post(srv.url("/ok"), content=upload)
            assert r.content == str(len(upload)).encode()
            with pytest.raises(WriteTimeout, match=r"write_timeout=3 s") as info:
                await client.post(srv.url("/stuck"), content=upload)
            assert "closed" not in str(info.value)  # a timeout is not explained as a close
            assert client.stats()[next(iter(client.stats()))]["active"] == 0

    run(loop_kind, main)
