"""Every proxy kind against a real proxy server (pproxy): HTTP, HTTPS, SOCKS5, SOCKS5h.

pproxy runs in its own process, started and stopped (by PID) by the tests. An
``http+socks5`` instance serves both kinds on one port; an ``http+ssl`` one is
the HTTPS proxy, its certificate from a trustme CA. Both demand user:pw.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from aiofasthttp import Client, ConnectionClosedError, ProxyError, TLSError
from pproxy_server import RunningProxy, pproxy
from servers import HOST, LOOPS, read_request, response, run

KINDS = ["http", "https", "socks5", "socks5h"]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def proxies(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder: Path = tmp_path_factory.mktemp("proxy-tls")
    cert = ca.issue_cert(HOST)
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    with (
        pproxy("http+socks5", auth="user:pw") as plain,
        pproxy("http+ssl", auth="user:pw", tls=(str(cert_file), str(key_file))) as tls,
    ):
        yield {"http": plain, "socks5": plain, "socks5h": plain, "https": tls}


class Origin:
    """A loopback origin, plain or TLS, that answers with what it was asked."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self.close_after: int | None = None  # close silently on reading request N+1
        self.hold: asyncio.Event | None = None
        self.got_request = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while (req := await read_request(reader)) is not None:
                self.got_request.set()
                if self.close_after is not None and served >= self.close_after:
                    return  # a server at its request limit: no answer, just the close
                if self.hold is not None:
                    await self.hold.wait()
                writer.write(response(f"{req.method} {req.target}".encode()))
                await writer.drain()
                served += 1
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()


@contextlib.asynccontextmanager
async def origin(tls: ssl.SSLContext | None) -> AsyncIterator[tuple[Origin, str]]:
    state = Origin()
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await state.handle(reader, writer)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, HOST, 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    # By name, so that who resolves it (the client, or a socks5h proxy) shows.
    base = f"{'https' if tls else 'http'}://localhost:{state.port}"
    try:
        yield state, base
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)
        await server.wait_closed()


def client_for(
    kind: str, proxy: RunningProxy, trusting: ssl.SSLContext, userinfo: str = "user:pw", **kw: Any
) -> Client:
    return Client(proxy=proxy.url(kind, userinfo), proxy_ssl=trusting, ssl=trusting, **kw)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("target", ["plain", "tls"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_proxy_kind_reaches_plain_and_tls_origins_and_reuses(
    loop_kind: str,
    kind: str,
    target: str,
    proxies: dict[str, Any],
    trusting: ssl.SSLContext,
    server_tls: ssl.SSLContext,
) -> None:
    proxy = proxies[kind]

    async def main() -> None:
        async with (
            origin(server_tls if target == "tls" else None) as (srv, base),
            client_for(kind, proxy, trusting) as client,
        ):
            for i in range(3):
                r = await client.get(f"{base}/p{i}?q=1")
                assert r.content == f"GET /p{i}?q=1".encode()
            ((key, stats),) = client.stats().items()
            assert stats["created"] == 1 and stats["reused"] == 2  # one connection, reused
            assert srv.connections == 1
            proxy_origin = f"{kind}://{HOST}:{proxy.port}"
            if kind in ("http", "https") and target == "plain":
                assert key == proxy_origin  # absolute-form requests to the proxy itself
            else:
                assert key == f"{base} via {proxy_origin}"  # a tunnel to the origin
            # socks5:// resolves the name here; socks5h:// and CONNECT leave it to the proxy.
            resolved_here = kind == "socks5"
            assert stats["dns_lookups"] == (1 if resolved_here else 0)

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_wrong_credentials_are_refused_with_an_error_naming_the_proxy(
    loop_kind: str,
    kind: str,
    proxies: dict[str, Any],
    trusting: ssl.SSLContext,
    server_tls: ssl.SSLContext,
) -> None:
    proxy = proxies[kind]

    async def main() -> None:
        async with (
            origin(server_tls) as (srv, base),
            # HTTP(S) proxies answer 407: a refusal not replayed (SOCKS ones here just close).
            client_for(
                kind, proxy, trusting, "user:wrong", retry=kind.startswith("http")
            ) as client,
        ):
            with pytest.raises(ProxyError) as info:
                await client.get(f"{base}/secret")
            assert info.value.proxy == f"{kind}://{HOST}:{proxy.port}"
            assert f"the proxy {kind}://{HOST}:{proxy.port}" in str(info.value)
            if kind in ("http", "https"):
                assert "407" in str(info.value) and "credentials" in str(info.value)
                assert info.value.refused and "[attempt 1 of" in str(info.value)
            assert srv.connections == 0

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_proxy_that_is_not_listening_is_a_proxy_error(
    loop_kind: str, kind: str, trusting: ssl.SSLContext
) -> None:
    async def main() -> None:
        from servers import free_port

        port = free_port()
        async with Client(proxy=f"{kind}://{HOST}:{port}", proxy_ssl=trusting, retry=False) as c:
            with pytest.raises(ProxyError) as info:
                await c.get("https://localhost:9/")
            assert info.value.proxy == f"{kind}://{HOST}:{port}"
            assert "refused" in str(info.value).lower()

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_the_proxy_certificate_is_verified_by_default(
    loop_kind: str, proxies: dict[str, Any]
) -> None:
    async def main() -> None:
        async with Client(proxy=proxies["https"].url("https", "user:pw"), retry=False) as c:
            with pytest.raises(TLSError, match="proxy_ssl="):
                await c.get("http://localhost:9/")

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_proxy_that_dies_mid_request_names_itself_in_the_error(
    loop_kind: str,
    kind: str,
    trusting: ssl.SSLContext,
    server_tls: ssl.SSLContext,
    tmp_path: Path,
    ca: trustme.CA,
) -> None:
    tls_files = None
    schemes = "http+socks5"
    if kind == "https":
        cert = ca.issue_cert(HOST)
        cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
        cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
        tls_files = (str(tmp_path / "c.pem"), str(tmp_path / "k.pem"))
        schemes = "http+ssl"

    async def main() -> None:
        with pproxy(schemes, tls=tls_files) as doomed:
            async with (
                origin(None) as (srv, base),
                client_for(kind, doomed, trusting, "", retry=False) as client,
            ):
                srv.hold = asyncio.Event()
                request = asyncio.ensure_future(client.get(f"{base}/slow"))
                await asyncio.wait_for(srv.got_request.wait(), 20)
                doomed.kill()  # mid-request: the request is written, no answer yet
                with pytest.raises(ConnectionClosedError) as info:
                    await request
                srv.hold.set()
            text = str(info.value)
            assert f"through the proxy {kind}://{HOST}:{doomed.port}" in text, text
            assert info.value.request_written

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_proxied_connection_is_replayed_like_a_direct_one(
    loop_kind: str,
    kind: str,
    proxies: dict[str, Any],
    trusting: ssl.SSLContext,
    server_tls: ssl.SSLContext,
) -> None:
    proxy = proxies[kind]

    async def main() -> None:
        # A TLS origin, so the connection is a tunnel through every kind of proxy and
        # the origin's close reaches the client as the tunnel's close.
        async with (
            origin(server_tls) as (srv, base),
            client_for(kind, proxy, trusting) as client,
        ):
            srv.close_after = 1  # each connection answers one request, then closes on the next
            first = await client.get(f"{base}/one")
            second = await client.get(f"{base}/two")  # written on the reused tunnel
            assert (first.content, second.content) == (b"GET /one", b"GET /two")
            (stats,) = client.stats().values()
            assert stats["created"] == 2
            assert stats["retries"] == 1  # the reused tunnel died under /two: replayed
            assert srv.connections == 2

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_environment_all_proxy_https_proxy_and_no_proxy(
    loop_kind: str,
    proxies: dict[str, Any],
    trusting: ssl.SSLContext,
    server_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    socks = proxies["socks5h"].url("socks5h", "user:pw")
    https = proxies["https"].url("https", "user:pw")
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", socks)
    monkeypatch.setenv("HTTPS_PROXY", https)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    async def main() -> None:
        async with origin(None) as (plain, plain_base), origin(server_tls) as (_, tls_base):
            async with Client(trust_env=True, proxy_ssl=trusting, ssl=trusting) as client:
                assert (await client.get(f"{plain_base}/all")).content == b"GET /all"
                assert (await client.get(f"{tls_base}/https")).content == b"GET /https"
                direct = f"http://{HOST}:{plain.port}/direct"
                assert (await client.get(direct)).content == b"GET /direct"
                keys = set(client.stats())
            assert keys == {
                f"{plain_base} via socks5h://{HOST}:{proxies['socks5h'].port}",
                f"{tls_base} via https://{HOST}:{proxies['https'].port}",
                f"http://{HOST}:{plain.port}",
            }

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_proxy_handshakes_are_traced(
    loop_kind: str,
    kind: str,
    proxies: dict[str, Any],
    trusting: ssl.SSLContext,
    server_tls: ssl.SSLContext,
) -> None:
    proxy = proxies[kind]
    seen: list[dict[str, Any]] = []

    class Events:
        def proxy_handshake(self, **facts: Any) -> None:
            seen.append(facts)

    async def main() -> None:
        async with origin(server_tls) as (_, base):
            async with client_for(kind, proxy, trusting, trace=Events()) as client:
                await client.get(f"{base}/ok")
            no = client_for(kind, proxy, trusting, "user:no", trace=Events(), retry=False)
            async with no as client:
                with pytest.raises(ProxyError):
                    await client.get(f"{base}/refused")
        ok, refused = seen
        named = f"{kind}://{HOST}:{proxy.port}"
        assert ok["proxy"] == named and ok["origin"] == base  # str(Origin) always names the port
        assert ok["error"] is None and ok["seconds"] >= 0
        assert refused["proxy"] == named and refused["error"] is not None

    run(loop_kind, main)
