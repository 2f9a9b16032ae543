"""The client against other real servers: nginx, a uvloop+httptools server, TLS, a Unix socket."""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import tempfile

import pytest
import trustme

from aiofasthttp import Client, TLSError
from servers import (
    LOOPS,
    ConnInfo,
    keep_alive_handler,
    nginx,
    read_request,
    response,
    run,
    wait_until,
)

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def only_stats(client: Client) -> dict:
    (s,) = client.stats().values()
    return s


def test_nginx_keep_alive_limits_and_bodies(loop_kind: str) -> None:
    with nginx(keepalive_timeout="1s", keepalive_requests=5) as base:

        async def main() -> None:
            async with Client() as client:
                for i in range(12):
                    r = await client.get(f"{base}/small.txt")
                    assert r.status == 200 and r.content == b"x" * 100, i
                big = await client.get(f"{base}/big.bin")
                assert big.content == bytes(range(256)) * 1024
                assert (await client.get(f"{base}/204")).status == 204
                head = await client.head(f"{base}/big.bin")
                assert head.content == b"" and head.headers["content-length"] == "262144"
                gz = await client.get(f"{base}/chunked")
                assert gz.content == b"chunked-ish"
                # nginx says "Connection: close" on its 5th response on a connection.
                s = only_stats(client)
                assert s["created"] >= 3 and s["retries"] == 0
                # The idle connection is closed by nginx after 1 s: seen, not failed on.
                await wait_until(lambda: only_stats(client)["closed_by_server_idle"] >= 1, 10)
                assert (await client.get(f"{base}/echo")).content == b"GET /echo"
                assert only_stats(client)["retries"] == 0

        run(loop_kind, main)


def test_uvloop_httptools_server(loop_kind: str) -> None:
    import httptools  # a test dependency: the far side of this test

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_message_complete(self) -> None:
            body = b"path=" + self.url
            self.transport.write(response(body))  # type: ignore[attr-defined]

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with Client(max_conns_per_host=16) as client:
                rng = random.Random(7)
                paths = [f"/p{rng.randrange(10**6)}" for _ in range(500)]
                got = await asyncio.gather(
                    *(client.get(f"http://127.0.0.1:{port}{p}") for p in paths)
                )
                assert [r.content for r in got] == [b"path=" + p.encode() for p in paths]
                assert only_stats(client)["created"] <= 16
        finally:
            server.close()
            await server.wait_closed()

    run(loop_kind, main)


def test_tls_verified_and_server_closed_idle_tls_connection(loop_kind: str) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(reader, writer, info) -> None:
        await read_request(reader)
        writer.write(response(b"secure"))
        await writer.drain()
        if info.index == 0:
            return  # close the first TLS connection once idle
        while await read_request(reader) is not None:
            writer.write(response(b"secure"))
            await writer.drain()

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _run_handler(handler, r, w, counter), "127.0.0.1", 0, ssl=server_ctx
        )
        counter = [0]
        port = server.sockets[0].getsockname()[1]
        url = f"https://127.0.0.1:{port}/"
        try:
            async with Client(ssl=client_ctx) as client:
                assert (await client.get(url)).content == b"secure"
                await wait_until(lambda: only_stats(client)["closed_by_server_idle"] == 1)
                assert (await client.get(url)).content == b"secure"
                assert only_stats(client)["retries"] == 0
            async with Client() as client:  # the default context does not trust this CA
                with pytest.raises(TLSError, match="did not verify"):
                    await client.get(url)
                assert only_stats(client)["retries"] == 0
            async with Client(ssl=False) as client:
                assert (await client.get(url)).content == b"secure"
        finally:
            server.close()
            await server.wait_closed()

    run(loop_kind, main)


async def _run_handler(handler, reader, writer, counter) -> None:
    class Info:
        index = counter[0]

    counter[0] += 1
    try:
        await handler(reader, writer, Info)
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.transport.abort()


def test_unix_socket(loop_kind: str) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as root:
            path = os.path.join(root, "s.sock")

            async def on_connect(reader, writer) -> None:
                try:
                    await keep_alive_handler(b"via uds")(reader, writer, ConnInfo(0))
                finally:
                    writer.transport.abort()

            server = await asyncio.start_unix_server(on_connect, path)
            try:
                async with Client(uds=path) as client:
                    for _ in range(3):
                        r = await client.get("http://service.local/x")
                        assert r.content == b"via uds"
                    assert only_stats(client)["created"] == 1
            finally:
                server.close()
                await server.wait_closed()

    run(loop_kind, main)
