"""Name resolution: the DNS cache, shared lookups, remembered failures, a custom resolver."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from aiofasthttp import Client, ClientClosedError, ConnectError, NameResolutionError
from aiofasthttp.engine.resolve import DEFAULT_TTL, FAILURE_TTL, DNSCache
from servers import LOOPS, echo_handler, read_request, response, run, serve

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


class CountingGetaddrinfo:
    """socket.getaddrinfo, counted: the system lookups asyncio's own loop makes."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        self.hosts.append(host)
        return self._real(host, *args, **kwargs)


async def one_per_connection(reader: Any, writer: Any, info: Any) -> None:
    """Answers one request and closes, as a server does for ``Connection: close``."""
    if await read_request(reader) is not None:
        writer.write(response(b"once", headers={"Connection": "close"}))
        await writer.drain()


def test_thirty_fresh_connections_to_localhost_make_one_lookup(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted = CountingGetaddrinfo()
    monkeypatch.setattr(socket, "getaddrinfo", counted)

    async def main() -> None:
        async with serve(one_per_connection) as srv, Client() as client:
            url = f"http://localhost:{srv.port}/"
            for _ in range(15):  # one after another, each on a new connection
                r = await client.get(url)
                assert r.status == 200
            # and fifteen at once, each needing a connection of its own
            rs = await asyncio.gather(*(client.get(url) for _ in range(15)))
            assert [r.status for r in rs] == [200] * 15
            (stats,) = client.stats().values()
            assert srv.connections == 30
            assert stats["created"] == 30
            assert stats["dns_lookups"] == 1

    run(loop_kind, main)
    if loop_kind == "asyncio":  # uvloop asks libuv, not socket.getaddrinfo
        assert counted.hosts.count("localhost") == 1


def test_dns_cache_ttl_zero_looks_up_for_every_connection(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(one_per_connection) as srv, Client(dns_cache_ttl=0) as client:
            for _ in range(5):
                await client.get(f"http://localhost:{srv.port}/")
            (stats,) = client.stats().values()
            assert stats["dns_lookups"] == 5

    run(loop_kind, main)


def test_concurrent_dials_share_one_lookup_and_survive_a_cancelled_neighbour(
    loop_kind: str,
) -> None:
    calls: list[tuple[str, int]] = []

    async def main() -> None:
        release = asyncio.Event()
        asked = asyncio.Event()

        async def slow(host: str, port: int) -> list[str]:
            calls.append((host, port))
            asked.set()
            await release.wait()
            return ["127.0.0.1"]

        async with serve(echo_handler()) as srv, Client(resolver=slow) as client:
            url = f"http://api.test:{srv.port}/x"
            tasks = [asyncio.ensure_future(client.get(url)) for _ in range(10)]
            # The lookup task runs after every request has started its dial (they were
            # all scheduled before it), so all ten wait on it by now.
            await asyncio.wait_for(asked.wait(), 10)
            tasks[0].cancel()  # the dial that started the lookup goes away
            release.set()
            done = await asyncio.gather(*tasks[1:])
            assert [r.content for r in done] == [b"GET /x "] * 9
            assert tasks[0].cancelled()
        assert calls == [("api.test", srv.port)]

    run(loop_kind, main)


def test_a_custom_resolver_picks_the_address_and_the_host_header_keeps_the_name(
    loop_kind: str,
) -> None:
    async def main() -> None:
        seen: list[str] = []

        async def handler(reader: Any, writer: Any, info: Any) -> None:
            while (req := await read_request(reader)) is not None:
                seen.append(req.headers["host"])
                writer.write(response(b"named"))
                await writer.drain()

        async def hosts_file(host: str, port: int) -> list[str]:
            return {"svc.internal": ["127.0.0.1"]}[host]

        async with serve(handler) as srv, Client(resolver=hosts_file) as client:
            r = await client.get(f"http://svc.internal:{srv.port}/")
            assert r.content == b"named"
        assert seen == [f"svc.internal:{srv.port}"]

    run(loop_kind, main)


def test_a_failed_lookup_is_remembered_briefly_and_named_in_the_error(loop_kind: str) -> None:
    calls: list[str] = []

    async def main() -> None:
        async def failing(host: str, port: int) -> list[str]:
            calls.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        async with Client(resolver=failing, retry=False) as client:
            for _ in range(5):
                with pytest.raises(NameResolutionError) as info:
                    await client.get("http://gone.test/")
                assert isinstance(info.value, ConnectError)
                assert "cannot resolve host 'gone.test'" in str(info.value)
                assert "Name or service not known" in str(info.value)
                assert "dialling http://gone.test:80" in str(info.value)

    run(loop_kind, main)
    assert calls == ["gone.test"]


def test_a_remembered_failure_expires(loop_kind: str) -> None:
    async def main() -> None:
        calls: list[str] = []

        async def flaky(host: str, port: int) -> list[str]:
            calls.append(host)
            if len(calls) == 1:
                raise OSError("resolver down")
            return ["127.0.0.1"]

        cache = DNSCache(DEFAULT_TTL, flaky)
        loop = asyncio.get_running_loop()
        real_time = loop.time
        with pytest.raises(NameResolutionError, match="resolver down"):
            await cache.resolve("flaky.test", 80)
        with pytest.raises(NameResolutionError, match="remembered"):
            await cache.resolve("flaky.test", 80)
        key = ("flaky.test", 80)
        expires, _ = cache._answers[key]
        assert expires - real_time() == pytest.approx(FAILURE_TTL, abs=0.5)
        cache._answers[key] = (real_time() - 1, cache._answers[key][1])  # as if time passed
        (info,) = await cache.resolve("flaky.test", 80)
        assert info[4] == ("127.0.0.1", 80)
        assert calls == ["flaky.test", "flaky.test"]

    run(loop_kind, main)


def test_a_resolver_answer_that_is_not_an_address_is_a_typed_error(loop_kind: str) -> None:
    async def main() -> None:
        async def wrong(host: str, port: int) -> list[str]:
            return ["not-an-ip"]

        async with Client(resolver=wrong, retry=False) as client:
            with pytest.raises(NameResolutionError, match="not an IP address"):
                await client.get("http://odd.test/")

    run(loop_kind, main)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def dns_resolved(self, **facts: Any) -> None:
        self.seen.append(("dns_resolved", facts))

    def dns_failed(self, **facts: Any) -> None:
        self.seen.append(("dns_failed", facts))

    def connect_attempt(self, **facts: Any) -> None:
        self.seen.append(("connect_attempt", facts))


def test_lookups_and_connect_attempts_are_traced(loop_kind: str) -> None:
    events = Events()

    async def main() -> None:
        async def names(host: str, port: int) -> list[str]:
            if host == "down.test":
                raise OSError("no such name here")
            return ["127.0.0.1"]

        async with (
            serve(echo_handler()) as srv,
            Client(resolver=names, trace=events, retry=False) as client,
        ):
            await client.get(f"http://up.test:{srv.port}/")
            await client.get(f"http://up.test:{srv.port}/")  # reused: no lookup, no dial
            with pytest.raises(NameResolutionError):
                await client.get("http://down.test/")
        (resolved, attempt, failed) = events.seen
        assert resolved[0] == "dns_resolved"
        assert resolved[1]["host"] == "up.test" and resolved[1]["addresses"] == ["127.0.0.1"]
        assert attempt[0] == "connect_attempt"
        assert attempt[1]["address"] == f"127.0.0.1:{srv.port}"
        assert attempt[1]["outcome"] == "connected" and attempt[1]["error"] is None
        assert failed[0] == "dns_failed"
        assert failed[1]["host"] == "down.test" and "no such name here" in failed[1]["error"]
        assert failed[1]["seconds"] >= 0

    run(loop_kind, main)


def test_a_refused_address_is_named_with_its_error_and_time(loop_kind: str) -> None:
    from servers import free_port

    async def main() -> None:
        port = free_port()  # nothing listens there
        async with Client(retry=False) as client:
            with pytest.raises(ConnectError) as info:
                await client.get(f"http://127.0.0.1:{port}/")
        text = str(info.value)
        assert f"cannot connect to http://127.0.0.1:{port}" in text
        assert f"tried 127.0.0.1:{port}: Connection refused after 0.0" in text, text

    run(loop_kind, main)


def test_closing_the_client_stops_a_lookup_in_flight(loop_kind: str) -> None:
    async def main() -> None:
        asked = asyncio.Event()
        stopped: list[bool] = []

        async def hangs(host: str, port: int) -> list[str]:
            asked.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                stopped.append(True)
                raise
            return []

        client = Client(resolver=hangs)
        request = asyncio.ensure_future(client.get("http://hangs.test/"))
        await asyncio.wait_for(asked.wait(), 10)
        await client.aclose()
        with pytest.raises(ClientClosedError, match=r"hangs\.test"):
            await asyncio.wait_for(request, 10)
        assert stopped == [True]

    run(loop_kind, main)
