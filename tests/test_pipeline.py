"""Pipelining: many requests in flight on one connection; failures replay only the unanswered."""

from __future__ import annotations

import asyncio

import pytest

from aiofasthttp import ClientClosedError, ConnectionClosedError
from aiofasthttp.engine.pipeline import PipelineClient
from servers import LOOPS, ConnInfo, read_request, response, run, serve, wait_until

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def test_requests_are_pipelined_and_answered_in_order(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        # Read ten requests before answering any: only a pipelining client gets answers.
        batch = [await read_request(reader) for _ in range(10)]
        while True:
            for req in batch:
                assert req is not None
                writer.write(response(f"{req.method} {req.target}".encode()))
            await writer.drain()
            req = await read_request(reader)
            if req is None:
                return
            batch = [req]

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url(), max_pending_requests=32) as pc:
            got = await asyncio.gather(*(pc.get(f"/n{i}") for i in range(300)))
            assert [r.content for r in got] == [f"GET /n{i}".encode() for i in range(300)]
            head = await pc.request("HEAD", "/h")
            assert head.content == b"" and head.status == 200
            assert srv.connections == 1

    run(loop_kind, main)


def test_failure_mid_pipeline_replays_only_unanswered_idempotent_requests(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        if info.index > 0:  # later connections behave
            while (req := await read_request(reader)) is not None:
                writer.write(response(f"{req.method} {req.target}".encode()))
                await writer.drain()
            return
        reqs = [await read_request(reader) for _ in range(8)]
        for req in reqs[:3]:
            assert req is not None
            writer.write(response(f"{req.method} {req.target}".encode()))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")  # 4th: cut short
        await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url()) as pc:
            calls = [pc.get(f"/g{i}") for i in range(6)] + [pc.post("/p6", content=b"x")]
            calls.append(pc.get("/g7"))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for i in range(3):
                assert results[i].content == f"GET /g{i}".encode()
            assert isinstance(results[3], ConnectionClosedError)  # its answer had begun
            assert results[3].response_bytes > 0
            for i in (4, 5, 7):
                assert results[i].content == f"GET /g{i}".encode()  # replayed on a new one
            assert isinstance(results[6], ConnectionClosedError)  # a POST is not replayed
            assert results[6].response_bytes == 0 and "before this pipelined request" in str(
                results[6]
            )
            assert pc.replays == 3 and srv.connections == 2

    run(loop_kind, main)


def test_kept_heads_carry_each_pipelined_requests_own_body(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            length = req.headers.get("content-length", "-")
            writer.write(response(f"{req.method} {req.target} {length} ".encode() + req.body))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url()) as pc:
            for _ in range(2):  # the second time round, every head is a kept one
                sent = [
                    pc.post("/p", content=b"aaaa"),
                    pc.post("/p", content=b"bbbb"),
                    pc.post("/p", content=b"cc"),
                    pc.get("/p"),
                    pc.request("POST", "/p", content=b"dddd", headers={"X-A": "1"}),
                ]
                got = [r.content for r in await asyncio.gather(*sent)]
                assert got == [
                    b"POST /p 4 aaaa",
                    b"POST /p 4 bbbb",
                    b"POST /p 2 cc",
                    b"GET /p - ",
                    b"POST /p 4 dddd",
                ]

    run(loop_kind, main)


def test_aclose_closes_every_connection_and_fails_what_waits(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)  # takes one request, never answers
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv:
            pc = PipelineClient(srv.url(), max_conns=4, max_pending_requests=1)
            calls = [asyncio.ensure_future(pc.get(f"/{i}")) for i in range(4)]
            # The server may accept a connection before the client's side of it is made.
            await wait_until(lambda: srv.connections == 4 and len(pc._conns) == 4)
            conns = list(pc._conns)
            assert len(conns) == 4
            await pc.aclose()
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
            assert all(isinstance(r, ClientClosedError) for r in results), results
            assert all(c.is_closed for c in conns) and pc._conns == []

    run(loop_kind, main)
