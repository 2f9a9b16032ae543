"""Proxies: absolute-form for http targets, CONNECT tunnels for https, Basic auth, env vars."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import trustme

from aiofasthttp import Client, ConnectError
from proxy import run_proxy
from servers import LOOPS, ConnInfo, echo_handler, read_request, response, run, serve

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)

AUTH = "Basic dXNlcjpwdw=="  # user:pw


def test_http_target_goes_through_proxy_in_absolute_form(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv, run_proxy(require_auth=AUTH) as proxy:
            async with Client(proxy=proxy.url("user:pw")) as client:
                for i in range(3):
                    r = await client.get(srv.url(f"/p{i}?q=1"))
                    assert r.content == f"GET /p{i}?q=1 ".encode()
                stats = client.stats()
            assert proxy.request_lines == [f"GET {srv.url(f'/p{i}?q=1')}" for i in range(3)]
            assert proxy.auth == [AUTH] * 3
            (key,) = stats
            assert key == f"http://127.0.0.1:{proxy.port}"  # pooled as the proxy's origin
            assert srv.connections == 1  # the proxy kept one upstream; the client one conn

    run(loop_kind, main)


def test_https_target_is_tunnelled_with_connect(loop_kind: str) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(reader, writer) -> None:
        try:
            while (req := await read_request(reader)) is not None:
                writer.write(response(f"tls {req.method} {req.target}".encode()))
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    async def main() -> None:
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            async with (
                run_proxy(require_auth=AUTH) as proxy,
                Client(proxy=proxy.url("user:pw"), ssl=client_ctx) as client,
            ):
                for _ in range(3):
                    r = await client.get(f"https://127.0.0.1:{port}/secret")
                    assert r.content == b"tls GET /secret"
                assert proxy.tunnels == [f"127.0.0.1:{port}"]  # one tunnel, reused
                assert proxy.auth == [AUTH]
                (key,) = client.stats()
                assert key.startswith(f"https://127.0.0.1:{port} via http://")
        finally:
            server.close()
            await server.wait_closed()

    run(loop_kind, main)


def test_proxy_auth_refused_is_a_clear_error(loop_kind: str) -> None:
    async def main() -> None:
        async with (
            run_proxy(require_auth=AUTH) as proxy,
            Client(proxy=proxy.url("user:wrong"), retry=False) as client,
        ):
            with pytest.raises(ConnectError, match="407"):
                await client.get("https://127.0.0.1:9/")

    run(loop_kind, main)


def test_environment_proxies_and_no_proxy(loop_kind: str, monkeypatch) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while await read_request(reader) is not None:
            writer.write(response(b"direct-or-proxied"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, run_proxy() as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url())
            monkeypatch.setenv("NO_PROXY", "localhost")
            async with Client(trust_env=True) as client:
                await client.get(srv.url("/via"))
                await client.get(f"http://localhost:{srv.port}/direct")
            async with Client() as client:  # trust_env off: the variables are ignored
                await client.get(srv.url("/ignored"))
            assert proxy.request_lines == [f"GET {srv.url('/via')}"]

    run(loop_kind, main)
