"""Security: nothing a caller passes can split a request head, and TLS verifies by default.

Injection attempts must fail in the request builder, before a connection is even
asked for: the loopback server records every connection and byte it gets, and
must get none. TLS runs against a loopback server with a trustme certificate;
its TCP accepts are counted below the handshake, so "never retried" is read off
what the server saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from aiofasthttp import (
    Client,
    ConnectError,
    InvalidHeader,
    InvalidURL,
    RetryPolicy,
    TLSError,
)
from servers import HOST, LOOPS, read_request, response, run

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


@dataclass
class Recorder:
    """What a loopback server received: connections, raw bytes, request targets."""

    port: int = 0
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def targets(self) -> list[str]:
        lines = bytes(self.received).split(b"\r\n")
        return [line.split(b" ")[1].decode() for line in lines if line.endswith(b" HTTP/1.1")]


@contextlib.asynccontextmanager
async def recording_server() -> AsyncIterator[Recorder]:
    """Answers each request head with 200; records every byte. Stopped by its handle."""
    rec = Recorder()
    writers: set[asyncio.StreamWriter] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        rec.connections += 1
        writers.add(writer)
        buffer = b""
        try:
            while data := await reader.read(65536):
                rec.received += data
                buffer += data
                while b"\r\n\r\n" in buffer:  # the test's requests carry no body
                    _, buffer = buffer.split(b"\r\n\r\n", 1)
                    writer.write(response(b"ok"))
        except ConnectionError:
            pass
        finally:
            writers.discard(writer)
            writer.transport.abort()

    server = await asyncio.start_server(on_connect, HOST, 0)
    rec.port = server.sockets[0].getsockname()[1]
    try:
        yield rec
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        await server.wait_closed()


# -- request splitting ------------------------------------------------------------------

HEADER_CASES = [
    # (name, value)
    ("X-Ok", "a\r\nInjected: 1"),
    ("X-Ok", "a\nInjected: 1"),
    ("X-Ok", "a\rInjected: 1"),
    ("X-Ok", "a\x00b"),
    ("X-Ok", "a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x"),
    ("X-Ok", "\r\n"),
    ("X-Ok", "line\u2028separator"),  # not ISO-8859-1: cannot be encoded, refused
    ("X-Ok\r\nInjected", "1"),
    ("X-Ok\n", "1"),
    ("X-Ok\r", "1"),
    ("X\x00Ok", "1"),
    ("X-Ok: 1\r\nInjected", "1"),
    ("Bad Name", "1"),
    ("", "1"),
    ("Host", "h\r\nX-Injected: 1"),
]

METHOD_CASES = [
    "GET\r\n",
    "GET\n",
    "GET\r",
    "G\x00ET",
    "GET / HTTP/1.1\r\nX-Injected:",
    "GET /smuggled HTTP/1.1\r\n\r\nGET",
    "GE T",
    "",
]

PATH_CASES = [
    "/a\r\nX-Injected: 1",
    "/a\nb",
    "/a\rb",
    "/a\x00b",
    "/a HTTP/1.1\r\nHost: x\r\n\r\nGET /smuggled",
    "/?q=a\r\nX-Injected: 1",
    "/#frag\r\nX-Injected: 1",
    "/a\tb",
    "/a\x7fb",
]


async def refused_before_sending(build: Any, expect: type[Exception]) -> None:
    """``build(client, server, stream)`` is refused with ``expect``, through request()
    and through stream(); the server got nothing, not even on a pooled connection."""
    async with recording_server() as rec, Client() as client:
        assert (await client.get(rec.url("/before"))).content == b"ok"
        for stream in (False, True):
            with pytest.raises(expect):
                await build(client, rec, stream)
        assert (await client.get(rec.url("/after"))).content == b"ok"
        assert rec.targets == ["/before", "/after"]
        assert rec.connections == 1
        (s,) = client.stats().values()
        assert s["created"] == 1 and s["reused"] == 1 and s["retries"] == 0
    async with recording_server() as rec, Client() as client:
        with pytest.raises(expect):
            await build(client, rec, False)
        assert rec.connections == 0 and rec.received == b""
        assert all(s["created"] == 0 for s in client.stats().values())


@pytest.mark.parametrize(("name", "value"), HEADER_CASES)
def test_cr_lf_nul_in_a_header_is_refused_before_sending(
    loop_kind: str, name: str, value: str
) -> None:
    async def build(client: Client, rec: Recorder, stream: bool) -> None:
        if stream:
            async with client.stream("GET", rec.url(), headers={name: value}):
                pass
        else:
            await client.get(rec.url(), headers=[(name, value)])

    run(loop_kind, lambda: refused_before_sending(build, InvalidHeader))


@pytest.mark.parametrize("method", METHOD_CASES)
def test_cr_lf_nul_in_the_method_is_refused_before_sending(loop_kind: str, method: str) -> None:
    async def build(client: Client, rec: Recorder, stream: bool) -> None:
        if stream:
            async with client.stream(method, rec.url()):
                pass
        else:
            await client.request(method, rec.url())

    run(loop_kind, lambda: refused_before_sending(build, InvalidHeader))


@pytest.mark.parametrize("path", PATH_CASES)
def test_control_characters_in_the_url_are_refused_before_sending(
    loop_kind: str, path: str
) -> None:
    async def build(client: Client, rec: Recorder, stream: bool) -> None:
        if stream:
            async with client.stream("GET", rec.url(path)):
                pass
        else:
            await client.get(rec.url(path))

    run(loop_kind, lambda: refused_before_sending(build, InvalidURL))


def test_injection_through_client_headers_and_the_host_is_refused(loop_kind: str) -> None:
    async def main() -> None:
        with pytest.raises(InvalidHeader):
            Client(headers={"X-Default": "a\r\nInjected: 1"})
        async with recording_server() as rec, Client() as client:
            with pytest.raises(InvalidURL):
                await client.get(f"http://{HOST}\r\nX-Injected: 1:{rec.port}/")
            with pytest.raises(InvalidURL):
                await client.get(f"http://{HOST}:{rec.port}\r\n/")
            assert rec.connections == 0 and rec.received == b""

    run(loop_kind, main)


@pytest.mark.parametrize(
    ("base", "path"),
    [("", "/a\r\nInjected"), ("", "/a\tb"), ("/api\r\nX-Injected: 1", "/x")],
)
def test_control_characters_are_refused_with_a_base_url(
    loop_kind: str, base: str, path: str
) -> None:
    async def main() -> None:
        async with recording_server() as rec:
            async with Client(base_url=f"http://{HOST}:{rec.port}{base}") as client:
                with pytest.raises(InvalidURL):
                    await client.get(path)
            assert rec.connections == 0 and rec.received == b""

    run(loop_kind, main)


def test_cr_lf_in_the_user_agent_is_refused(loop_kind: str) -> None:
    async def main() -> None:
        async with recording_server() as rec:
            with contextlib.suppress(InvalidHeader):
                async with Client(user_agent="ua\r\nX-Injected: 1") as client:
                    with pytest.raises(InvalidHeader):
                        await client.get(rec.url())
            assert rec.connections == 0 and rec.received == b""

    run(loop_kind, main)


def test_encoded_line_breaks_stay_encoded(loop_kind: str) -> None:
    # Percent-encoded CR LF in a path and CR LF in query parameters are data, not
    # line ends: sent encoded, one request on the wire.
    async def main() -> None:
        async with recording_server() as rec, Client() as client:
            await client.get(rec.url("/a%0D%0AX-Injected:%201"))
            await client.get(rec.url("/q"), params={"v": "a\r\nX-Injected: 1"})
            await client.post(rec.url("/p"), data={"v": "a\r\n\r\nGET /smuggled HTTP/1.1"})
            assert rec.targets == [
                "/a%0D%0AX-Injected:%201",
                "/q?v=a%0D%0AX-Injected%3A+1",
                "/p",
            ]
            assert b"\nX-Injected" not in rec.received
            assert rec.received.count(b" HTTP/1.1\r\n") == 3

    run(loop_kind, main)


def test_a_tab_in_a_header_value_is_sent(loop_kind: str) -> None:
    # HTAB is legal inside a field value (RFC 9110 5.5): not everything is refused.
    async def main() -> None:
        async with recording_server() as rec, Client() as client:
            await client.get(rec.url(), headers={"X-Tab": "a\tb"})
            assert b"\r\nX-Tab: a\tb\r\n" in rec.received

    run(loop_kind, main)


# -- TLS ----------------------------------------------------------------------------------


@dataclass
class TLSServer:
    port: int = 0
    accepts: int = 0  # TCP connections, counted before the handshake
    handshakes: int = 0

    def url(self, host: str = HOST) -> str:
        return f"https://{host}:{self.port}/"


@contextlib.asynccontextmanager
async def tls_server(server_ctx: ssl.SSLContext | None) -> AsyncIterator[TLSServer]:
    """A TLS server answering requests; with ``server_ctx`` None, a plain HTTP server
    (which answers a ClientHello with a 400, as real ones do)."""
    state = TLSServer()
    writers: set[asyncio.StreamWriter] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.handshakes += server_ctx is not None  # with TLS, called once it is done
        writers.add(writer)
        try:
            if server_ctx is None:
                await reader.read(65536)
                writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            while await read_request(reader) is not None:
                writer.write(response(b"secure"))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writers.discard(writer)
            writer.transport.abort()

    def accept() -> asyncio.Protocol:
        # Called at each TCP accept, before any TLS handshake.
        state.accepts += 1
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), on_connect)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(accept, HOST, 0, ssl=server_ctx)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        await server.wait_closed()


def server_context(ca: trustme.CA, *identities: str, **validity: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*identities, **validity).configure_cert(ctx)
    return ctx


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


# Every attempt a policy could make: TLS failures must still take exactly one.
EAGER = RetryPolicy(attempts=5, retry_timeouts=True, backoff_base=0.001)


async def refused_once(url: str, server: TLSServer, match: str, **options: Any) -> TLSError:
    async with Client(retry=EAGER, **options) as client:
        for send in (client.get, client.post):
            with pytest.raises(TLSError, match=match) as info:
                await send(url)
            assert isinstance(info.value, ConnectError)
            assert len(info.value.errors) == 1  # type: ignore[attr-defined]
            assert "attempt 1 of 5" in str(info.value)
        (s,) = client.stats().values()
        assert s["retries"] == 0 and s["created"] == 0 and s["open"] == 0
    assert server.accepts == 2 and server.handshakes == 0
    return info.value


def test_tls_verifies_by_default_and_ssl_false_is_needed_to_skip(loop_kind: str) -> None:
    ca = trustme.CA()  # trusted by nobody but the contexts made from it here
    ctx = server_context(ca, HOST, "localhost")

    async def main() -> None:
        for options in ({}, {"ssl": None}, {"ssl": True}):
            async with tls_server(ctx) as srv:
                err = await refused_once(srv.url(), srv, "did not verify", **options)
                assert "ssl=False" in str(err) and f"https://{HOST}:{srv.port}" in str(err)
        async with tls_server(ctx) as srv:
            async with Client(ssl=False) as client:
                assert (await client.get(srv.url())).content == b"secure"
            async with Client(ssl=trusting(ca)) as client:
                assert (await client.get(srv.url())).content == b"secure"
                assert (await client.get(srv.url())).content == b"secure"
                (s,) = client.stats().values()
                assert s["reused"] == 1
            assert srv.handshakes == 2

    run(loop_kind, main)


def test_host_name_mismatch_is_a_tls_error_never_retried(loop_kind: str) -> None:
    ca = trustme.CA()
    ctx = server_context(ca, "service.example")  # not 127.0.0.1, not localhost

    async def main() -> None:
        async with tls_server(ctx) as srv:
            err = await refused_once(srv.url(), srv, "did not verify", ssl=trusting(ca))
            assert "mismatch" in str(err) or "match" in str(err)
        async with tls_server(ctx) as srv, Client(ssl=False) as client:
            assert (await client.get(srv.url())).content == b"secure"

    run(loop_kind, main)


def test_expired_certificate_is_a_tls_error_never_retried(loop_kind: str) -> None:
    ca = trustme.CA()
    now = datetime.datetime.now(datetime.timezone.utc)
    ctx = server_context(
        ca,
        HOST,
        not_before=now - datetime.timedelta(days=10),
        not_after=now - datetime.timedelta(days=1),
    )

    async def main() -> None:
        async with tls_server(ctx) as srv:
            err = await refused_once(srv.url(), srv, "did not verify", ssl=trusting(ca))
            assert "expired" in str(err)

    run(loop_kind, main)


def test_certificate_from_an_unknown_ca_is_refused_even_when_another_is_trusted(
    loop_kind: str,
) -> None:
    ours, theirs = trustme.CA(), trustme.CA()
    ctx = server_context(theirs, HOST)

    async def main() -> None:
        async with tls_server(ctx) as srv:
            await refused_once(srv.url(), srv, "did not verify", ssl=trusting(ours))

    run(loop_kind, main)


def test_plain_http_server_on_an_https_url_is_a_tls_error(loop_kind: str) -> None:
    async def main() -> None:
        async with tls_server(None) as srv, Client(connect_timeout=5) as client:
            with pytest.raises(TLSError, match="TLS handshake with"):
                await client.get(srv.url())

    run(loop_kind, main)
