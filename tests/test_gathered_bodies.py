"""Buffered bodies of known length, gathered whole by the parser (issue 17).

A buffered response's Content-Length body is kept in one bytes of its size; where the
connection reads into lent buffers (asyncio's loops, TLS on uvloop) the socket is read
straight into it. These tests drive that against real servers on loopback, with the
body dripped in small writes so that it spans many reads, and check what a caller
sees: the bytes, typed errors, timeouts, and a connection fit for reuse or closed.
"""

from __future__ import annotations

import asyncio
import random
import ssl

import pytest
import trustme

from aiofasthttp import Client
from aiofasthttp.engine import connection
from aiofasthttp.engine.connection import BufferedConnection
from aiofasthttp.errors import ConnectionClosedError, ReadTimeout, ResponseTooLarge
from servers import LOOPS, ConnInfo, read_request, run, serve, stats_of

BODY = random.Random(17).randbytes(3 << 20)  # 3 MiB: many reads, whatever the loop
PIECE = 7919  # bytes per server write: a prime, so reads and writes never line up


def _tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def _dripping(body: bytes, *, stop_after: int | None = None, stall: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    """A handler answering each request with ``body`` in PIECE-byte writes, draining
    each. ``stop_after``: send only that many body bytes, then close (or, with ``stall``,
    wait for it, holding the connection open)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            info.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            sent = body if stop_after is None else body[:stop_after]
            for at in range(0, len(sent), PIECE):
                writer.write(sent[at : at + PIECE])
                await writer.drain()
            if stop_after is not None:
                if stall is not None:
                    await stall.wait()
                return

    return handler


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_large_body_in_many_reads_arrives_whole(loop_kind: str, scheme: str) -> None:
    server_tls, client_tls = _tls() if scheme == "https" else (None, None)

    async def main() -> None:
        client = Client(ssl=client_tls) if client_tls else Client()
        async with serve(_dripping(BODY), tls=server_tls) as server, client:
            for _ in range(3):  # the same connection, response after response
                resp = await client.get(server.url("/big"))
                assert type(resp.content) is bytes and resp.content == BODY
            stats = stats_of(client)
            assert stats["created"] == 1 and stats["reused"] == 2

    run(loop_kind, main)


def test_lent_connections_read_the_body_straight_into_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """On asyncio's loop (which lends), most of a large body bypasses data_received."""
    direct: list[int] = []
    original = BufferedConnection.direct_updated

    def counting(self: BufferedConnection, nbytes: int) -> None:
        direct.append(nbytes)
        original(self, nbytes)

    monkeypatch.setattr(BufferedConnection, "direct_updated", counting)

    async def main() -> None:
        async with serve(_dripping(BODY)) as server, Client() as client:
            assert (await client.get(server.url())).content == BODY

    run("asyncio", main)
    assert sum(direct) > len(BODY) // 2, sum(direct)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_body_over_the_size_limit_is_refused_and_its_connection_closed(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(_dripping(BODY)) as server:
            async with Client(max_response_body_size=len(BODY) - 1) as client:
                with pytest.raises(ResponseTooLarge):
                    await client.get(server.url())
                assert stats_of(client)["close_reasons"] == {"response_too_large": 1}
            async with Client(max_response_body_size=len(BODY)) as client:  # just fits
                assert (await client.get(server.url())).content == BODY

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_body_past_the_gathering_size_comes_in_pieces(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "GATHER_UP_TO", 1 << 16)

    async def main() -> None:
        async with serve(_dripping(BODY)) as server, Client() as client:
            assert (await client.get(server.url())).content == BODY
            small = await client.get(server.url())  # and the limit holds per response
            assert small.content == BODY

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_the_server_closing_inside_a_gathered_body(loop_kind: str) -> None:
    async def main() -> None:
        handler = _dripping(BODY, stop_after=len(BODY) // 3)
        async with serve(handler) as server, Client(retry=False) as client:
            with pytest.raises(ConnectionClosedError) as caught:
                await client.get(server.url())
            assert caught.value.response_bytes > len(BODY) // 3
            assert stats_of(client)["open"] == 0

    run(loop_kind, main)


async def _slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: ConnInfo) -> None:
    """One response whose body takes 1.2 s: 12 parts, 0.1 s apart (pacing, not ordering)."""
    await read_request(reader)
    part = BODY[: 1 << 16]
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (12 * len(part)))
    for _ in range(12):
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_read_timeout_counts_from_the_last_byte_read_into_the_body(loop_kind: str) -> None:
    """Reads straight into the body move the read timer on like any read: a body that
    keeps coming (1.2 s in all, gaps of 0.1 s) does not time out at 0.8 s; one that
    stops does, after read_timeout."""
    stall = asyncio.Event()

    async def main() -> None:
        async with serve(_slowly) as server, Client(read_timeout=0.8, retry=False) as client:
            assert len((await client.get(server.url())).content) == 12 << 16
        handler = _dripping(BODY, stop_after=len(BODY) // 2, stall=stall)
        async with serve(handler) as server:
            async with Client(read_timeout=0.5, retry=False) as client:
                with pytest.raises(ReadTimeout):
                    await client.get(server.url())
                assert stats_of(client)["open"] == 0
            stall.set()

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_streamed_body_is_not_gathered(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(_dripping(BODY)) as server, Client() as client:
            async with client.stream("GET", server.url()) as resp:
                pieces = [chunk async for chunk in resp.iter_bytes()]
            assert len(pieces) > 1 and b"".join(pieces) == BODY
            # and the next buffered response on the same connection is gathered again
            assert (await client.get(server.url())).content == BODY
            assert stats_of(client)["created"] == 1

    run(loop_kind, main)


@pytest.mark.parametrize("status", [200, 204, 304])
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_streamed_and_buffered_empty_responses_alternate(loop_kind: str, status: int) -> None:
    """A body-less response comes whole in one parser call only to a buffered request:
    a streamed one still gets its head (its waiter) and an empty body."""

    async def empty(r: asyncio.StreamReader, w: asyncio.StreamWriter, info: ConnInfo) -> None:
        while await read_request(r) is not None:
            w.write(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % status)
            await w.drain()

    async def main() -> None:
        async with serve(empty) as server, Client() as client:
            for _ in range(2):
                async with client.stream("GET", server.url()) as resp:
                    assert resp.status == status
                    assert [chunk async for chunk in resp.iter_bytes()] == []
                resp = await client.get(server.url())
                assert (resp.status, resp.content) == (status, b"")
                resp = await client.head(server.url())
                assert (resp.status, resp.content) == (status, b"")
            assert stats_of(client)["created"] == 1

    run(loop_kind, main)
