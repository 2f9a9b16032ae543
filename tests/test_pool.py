"""Pool rules: expiry on the client's clock, learning from the server, strategies, 408."""

from __future__ import annotations

import asyncio
import socket

import pytest

from aiofasthttp import Client, ConnectionClosedError, RetryPolicy, reasons
from servers import (
    LOOPS,
    ConnInfo,
    echo_handler,
    keep_alive_handler,
    read_request,
    response,
    run,
    serve,
    stats_of,
    wait_until,
)

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def conn_ids(client: Client) -> list[int]:
    (pool,) = client._pools.values()
    return [c.id for c in pool._idle]


def test_max_requests_per_conn_with_jitter(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv, Client(max_requests_per_conn=10) as client:
            for _ in range(40):
                await client.get(srv.url())
            s = stats_of(client)
            # Each connection serves between 9 and 10 requests (up to 10% jitter).
            assert 4 <= s["created"] <= 5
            assert s["close_reasons"].get(reasons.MAX_REQUESTS, 0) >= 3

    run(loop_kind, main)


def test_max_idle_and_max_conn_duration(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv:
            async with Client(max_idle_conn_duration=0.2) as client:
                await client.get(srv.url())
                await wait_until(lambda: stats_of(client)["expired"] == 1, 5)
                assert stats_of(client)["open"] == 0
            async with Client(max_conn_duration=0.3) as client:
                await client.get(srv.url())
                first = conn_ids(client)
                await wait_until(lambda: stats_of(client)["expired"] == 1, 5)
                await client.get(srv.url())
                assert conn_ids(client) != first

    run(loop_kind, main)


def test_lifo_and_fifo_strategies(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv:
            for strategy in ("lifo", "fifo"):
                async with Client(conn_pool_strategy=strategy) as client:
                    await asyncio.gather(*(client.get(srv.url()) for _ in range(3)))
                    order = conn_ids(client)
                    assert len(order) == 3
                    assert (await client.get(srv.url())).status == 200
                    # The idle deque is oldest-first and a used connection goes back
                    # at the end: LIFO took the newest, FIFO the oldest.
                    after = conn_ids(client)
                    if strategy == "lifo":
                        assert after == order
                    else:
                        assert after == order[1:] + order[:1]

    run(loop_kind, main)


def test_learns_server_idle_timeout_without_a_hint(loop_kind: str) -> None:
    idle_limit = 0.6

    async def handler(reader, writer, info: ConnInfo) -> None:
        while True:
            try:
                req = await asyncio.wait_for(read_request(reader), idle_limit)
            except asyncio.TimeoutError:
                return  # the server's silent idle timeout
            if req is None:
                return
            writer.write(response(b"ok"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url())
            await wait_until(lambda: stats_of(client)["closed_by_server_idle"] == 1, 5)
            # One close proves little (a restart closes everything at once): not learned yet.
            assert stats_of(client)["learned_idle_timeout"] is None
            await client.get(srv.url())
            await wait_until(lambda: stats_of(client)["closed_by_server_idle"] == 2, 5)
            learned = stats_of(client)["learned_idle_timeout"]
            assert learned is not None and idle_limit * 0.9 <= learned < idle_limit + 1.0
            await client.get(srv.url())
            # Now retired by the client before the server closes it again.
            await wait_until(lambda: stats_of(client)["expired"] == 1, 5)
            assert stats_of(client)["closed_by_server_idle"] == 2

    run(loop_kind, main)


def test_learns_request_limit_of_a_server_that_closes_silently(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        for _ in range(3):
            if await read_request(reader) is None:
                return
            writer.write(response(b"ok"))  # no Connection: close on the 3rd
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            for closes in (1, 2):  # learned once two closes, apart in time, agree
                for _ in range(3):
                    await client.get(srv.url())
                await wait_until(lambda n=closes: stats_of(client)["closed_by_server_idle"] == n)
                await asyncio.sleep(0.15)  # a separate event, not one burst of closes
            assert stats_of(client)["learned_max_requests"] == 3
            for _ in range(12):
                assert (await client.get(srv.url())).content == b"ok"
            s = stats_of(client)
            assert s["retries"] == 0 and s["closed_by_server_idle"] == 2

    run(loop_kind, main)


def test_408_on_idle_connection_is_a_server_close(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(response(b"ok"))
        await writer.drain()
        if info.index == 0:
            writer.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url())
            await wait_until(lambda: stats_of(client)["open"] == 0)
            assert stats_of(client)["close_reasons"][reasons.SERVER_CLOSED_IDLE] == 1
            assert (await client.get(srv.url())).content == b"ok"

    run(loop_kind, main)


def test_tcp_keepalive_option_sets_the_socket(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv, Client(tcp_keepalive=30) as client:
            await client.get(srv.url())
            (pool,) = client._pools.values()
            (conn,) = pool._idle
            sock = conn.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1

    run(loop_kind, main)


def test_ipv6_loopback_basic_auth_and_base_url(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            body = f"{req.headers.get('host')}|{req.headers.get('authorization')}|{req.target}"
            writer.write(response(body.encode()))
            await writer.drain()

    async def main() -> None:
        try:
            server = await asyncio.start_server(lambda r, w: _serve_one(handler, r, w), "::1", 0)
        except OSError:
            pytest.skip("no IPv6 loopback on this machine")
        port = server.sockets[0].getsockname()[1]
        try:
            async with Client(base_url=f"http://user:p%40ss@[::1]:{port}/api") as client:
                r = await client.get("items", params={"q": "a b"})
                host, auth, target = r.text.split("|")
                assert host == f"[::1]:{port}"
                assert auth == "Basic dXNlcjpwQHNz"  # user:p@ss
                assert target == "/api/items?q=a+b"
        finally:
            server.close()
            await server.wait_closed()

    run(loop_kind, main)


async def _serve_one(handler, reader, writer) -> None:
    try:
        await handler(reader, writer, ConnInfo(0))
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.transport.abort()


def test_keep_alive_max_hint_limits_requests(loop_kind: str) -> None:
    async def main() -> None:
        handler = keep_alive_handler(headers={"Keep-Alive": "timeout=30, max=2"})
        async with serve(handler) as srv, Client() as client:
            for _ in range(6):
                await client.get(srv.url())
            s = stats_of(client)
            assert s["created"] == 3 and s["retries"] == 0

    run(loop_kind, main)


def test_a_short_learned_idle_timeout_still_allows_reuse(loop_kind: str) -> None:
    idle_limit = 0.2

    async def handler(reader, writer, info: ConnInfo) -> None:
        while True:
            try:
                req = await asyncio.wait_for(read_request(reader), idle_limit)
            except asyncio.TimeoutError:
                return
            if req is None:
                return
            writer.write(response(b"ok"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url())
            await wait_until(lambda: stats_of(client)["closed_by_server_idle"] == 1, 5)
            for _ in range(50):
                await client.get(srv.url())
            s = stats_of(client)
            # Retired 0.1 s after going idle, not at once: back-to-back requests reuse it.
            assert s["reused"] >= 45 and s["created"] <= 3

    run(loop_kind, main)


def test_idle_limit_counts_from_the_last_use_not_the_first(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv, Client(max_idle_conn_duration=0.3) as client:
            loop = asyncio.get_running_loop()
            until = loop.time() + 1.0
            while loop.time() < until:  # busy for 1 s, never idle for 0.3 s
                await client.get(srv.url())
                await asyncio.sleep(0.05)
            s = stats_of(client)
            assert s["created"] == 1 and s["expired"] == 0

    run(loop_kind, main)


def test_learns_request_limit_from_requests_that_died_on_reuse(loop_kind: str) -> None:
    # Under load the FIN of a server's request limit arrives after the next request
    # was written; the failure itself is the evidence.
    async def handler(reader, writer, info: ConnInfo) -> None:
        for _ in range(3):
            if await read_request(reader) is None:
                return
            writer.write(response(b"ok"))
            await writer.drain()
        await read_request(reader)  # the 4th request: read, never answered

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            for event in range(2):
                for _ in range(4):  # the 4th GET dies on reuse and is replayed
                    assert (await client.get(srv.url())).content == b"ok"
                assert stats_of(client)["retries"] == event + 1
                await asyncio.sleep(0.15)  # a separate event
            assert stats_of(client)["learned_max_requests"] == 3
            for _ in range(9):  # POSTs cannot be replayed: none may meet a dead connection
                assert (await client.post(srv.url(), content=b"x")).content == b"ok"

    run(loop_kind, main)


def test_a_connection_closed_mid_response_reaches_the_pool_with_its_reason(
    loop_kind: str,
) -> None:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with serve(handler) as srv, Client(retry=RetryPolicy(attempts=1)) as client:
            with pytest.raises(ConnectionClosedError):
                await client.get(srv.url())
            assert stats_of(client)["close_reasons"] == {reasons.SERVER_CLOSED: 1}

    run(loop_kind, main)
