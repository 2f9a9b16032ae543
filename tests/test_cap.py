"""max_conns: one cap on open plus dialling connections across origins."""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiofasthttp import Client, PoolTimeout
from servers import HOST, LOOPS, read_request, response, run, wait_until

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


class Fleet:
    """Many loopback origins (one port each) that count the client's sockets open at once.

    At every accept the servers count the accepted sockets whose peer has not
    closed (poll for a FIN or RST without reading), so a socket the client has
    already closed is not counted even if its handler has not run yet.
    """

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.transports: set[asyncio.BaseTransport] = set()
        self.most_open = 0
        self.accepted = 0
        self.hold: asyncio.Event | None = None  # when set, answers wait for it

    def open_now(self) -> int:
        poller = select.poll()
        fds = []
        for transport in self.transports:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.fileno() >= 0:
                fds.append(sock.fileno())
                poller.register(sock.fileno(), select.POLLRDHUP)
        gone = {fd for fd, ev in poller.poll(0) if ev & (select.POLLRDHUP | select.POLLHUP)}
        return len(fds) - len(gone)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.transports.add(writer.transport)
        self.most_open = max(self.most_open, self.open_now())
        try:
            while await read_request(reader) is not None:
                if self.hold is not None:
                    await self.hold.wait()
                writer.write(response(b"ok"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.transports.discard(writer.transport)
            writer.transport.abort()

    def url(self, i: int) -> str:
        return f"http://{HOST}:{self.ports[i]}/"


@contextlib.asynccontextmanager
async def fleet(n: int) -> AsyncIterator[Fleet]:
    state = Fleet()
    servers = []
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await state.handle(reader, writer)
        finally:
            tasks.discard(task)

    try:
        for _ in range(n):
            server = await asyncio.start_server(handle, HOST, 0)
            servers.append(server)
            state.ports.append(server.sockets[0].getsockname()[1])
        yield state
    finally:
        for server in servers:
            server.close()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)
        for server in servers:
            await server.wait_closed()


def test_400_requests_over_40_origins_never_open_more_than_max_conns(loop_kind: str) -> None:
    async def main() -> None:
        async with (
            fleet(40) as origins,
            Client(max_conns=20, max_conns_per_host=8) as client,
        ):
            urls = [origins.url(i % 40) for i in range(400)]
            rs = await asyncio.gather(*(client.get(u) for u in urls))
            assert [r.status for r in rs] == [200] * 400
            assert origins.most_open <= 20
            assert origins.most_open == 20  # the cap was reached, not avoided
            stats = client.stats()
            assert len(stats) == 40
            assert sum(s["open"] for s in stats.values()) <= 20
            assert client._cap.used <= 20
            evicted = sum(
                s["close_reasons"].get("evicted_for_max_conns", 0) for s in stats.values()
            )
            assert evicted > 0  # idle connections of other origins made the room

    run(loop_kind, main)


def test_an_idle_connection_of_another_origin_gives_way_longest_idle_first(
    loop_kind: str,
) -> None:
    async def main() -> None:
        async with fleet(3) as origins, Client(max_conns=2) as client:
            await client.get(origins.url(0))  # idle longest
            await client.get(origins.url(1))
            await client.get(origins.url(2))  # needs room: origin 0's connection goes
            stats = client.stats()
            first, second, third = (stats[f"http://{HOST}:{p}"] for p in origins.ports)
            assert first["open"] == 0
            assert first["close_reasons"] == {"evicted_for_max_conns": 1}
            assert second["open"] == 1 and second["idle"] == 1
            assert third["open"] == 1
            assert origins.most_open <= 2

    run(loop_kind, main)


def test_waiting_for_a_slot_is_first_come_first_served_and_bounded(loop_kind: str) -> None:
    async def main() -> None:
        async with fleet(3) as origins:
            origins.hold = asyncio.Event()
            async with Client(max_conns=1, max_conn_wait_timeout=5) as client:
                busy = asyncio.ensure_future(client.get(origins.url(0)))
                await wait_until(lambda: origins.accepted == 1)
                order: list[int] = []

                async def get(i: int) -> None:
                    await client.get(origins.url(i))
                    order.append(i)

                second = asyncio.ensure_future(get(1))
                await wait_until(lambda: len(client._cap.waiters) == 1)
                third = asyncio.ensure_future(get(2))
                await wait_until(lambda: len(client._cap.waiters) == 2)
                origins.hold.set()
                await asyncio.gather(busy, second, third)
                assert order == [1, 2]
            origins.hold = asyncio.Event()
            origins.accepted = 0
            async with Client(max_conns=1, max_conn_wait_timeout=0.2, retry=False) as client:
                busy = asyncio.ensure_future(client.get(origins.url(0)))
                await wait_until(lambda: origins.accepted == 1)
                t = asyncio.get_running_loop().time()
                with pytest.raises(PoolTimeout, match="max_conns=1 across origins"):
                    await client.get(origins.url(1))
                assert 0.15 < asyncio.get_running_loop().time() - t < 2
                origins.hold.set()
                assert (await busy).status == 200

    run(loop_kind, main)


def test_the_default_cap_never_caps_one_origin_below_its_own_limit(loop_kind: str) -> None:
    async def main() -> None:
        for per_host, cap in ((256, 512), (512, 512), (2000, 2000)):
            async with Client(max_conns_per_host=per_host) as client:
                assert client._cap.limit == cap
        with pytest.raises(ValueError, match="max_conns"):
            Client(max_conns=0)

    run(loop_kind, main)
