"""httpx on aiofasthttp's engine (AsyncTransport), against real loopback servers.

Each behaviour httpx users rely on is checked on the wire: the request sent as
httpx built it, streaming, early close, each timeout and each error mapped to
httpx's exception (the engine's error as ``__cause__``), a stale keep-alive
connection replayed for a GET, uploads, and the same requests through httpx's own
transport and ours giving the same bytes on the wire and the same responses.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

import aiofasthttp
from servers import (
    HOST,
    LOOPS,
    ConnInfo,
    FullAcceptQueue,
    response,
    run,
    serve,
    stats_of,
    wait_until,
)

httpx = pytest.importorskip("httpx")
from aiofasthttp.integrations.httpx import AsyncTransport  # noqa: E402
from proxy import run_proxy  # noqa: E402

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


async def read_raw(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One request as it came: its head bytes and its (de-chunked) body; None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lower = head.lower()
    if b"\r\ncontent-length:" in lower:
        length = int(lower.split(b"\r\ncontent-length:")[1].split(b"\r\n")[0])
        return head, await reader.readexactly(length)
    if b"\r\ntransfer-encoding: chunked" in lower:
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append((await reader.readexactly(size + 2))[:-2])
        await reader.readuntil(b"\r\n")
        return head, b"".join(parts)
    return head, b""


def target_of(head: bytes) -> str:
    return head.split(b" ", 2)[1].decode()


ZIPPED = gzip.compress(b"unzipped " * 100, mtime=0)


def answer(head: bytes, body: bytes) -> bytes:
    """The differential server's routes."""
    target = target_of(head)
    method = head.split(b" ", 1)[0]
    if target.startswith("/gzip"):
        return response(ZIPPED, headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
    if target == "/redirect":
        return response(b"", status=302, headers={"Location": "/small"})
    if target == "/cookies":
        return (
            b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\n"
            b"Content-Length: 2\r\n\r\nok"
        )
    if target == "/chunked":
        pieces = [b"%x\r\n%s\r\n" % (len(p), p) for p in (b"one ", b"two ", b"three")]
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(pieces)
            + (b"0\r\n\r\n")
        )
    if target == "/204":
        return b"HTTP/1.1 204 No Content\r\nX-Empty: yes\r\n\r\n"
    if target == "/404":
        return response(b"missing", status=404, headers={"Content-Type": "text/plain"})
    if target == "/big":
        return response(bytes(range(256)) * 4096)
    digest = hashlib.sha256(body).hexdigest()
    text = json.dumps({"method": method.decode(), "target": target, "sha256": digest})
    extra = {"Content-Type": "application/json", "X-Multi": "1"}
    if method == b"HEAD":
        return response(b"", headers={"Content-Length": str(len(text))})
    return response(text.encode(), headers=extra)


def recording_server(heads: list[bytes]):
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (got := await read_raw(reader)) is not None:
            heads.append(got[0])
            writer.write(answer(*got))
            await writer.drain()

    return handler


def transport(**options) -> AsyncTransport:
    return AsyncTransport(**options)


# -- the request as httpx built it ------------------------------------------------------


def test_sends_exactly_the_request_httpx_built(loop_kind: str) -> None:
    heads: list[bytes] = []

    async def main() -> None:
        async with (
            serve(recording_server(heads)) as srv,
            httpx.AsyncClient(transport=transport()) as client,
        ):
            headers = [("X-B", "2"), ("x-a", "1"), ("X-B", "3"), ("Accept-Encoding", "identity")]
            url = srv.url("/path%20x?q=%C3%A9&r=1")
            resp = await client.get(url, headers=headers)
            assert resp.status_code == 200
            built = client.build_request("GET", url, headers=headers)
        # The head is httpx's request, byte for byte: its headers, in its order, and
        # nothing of aiofasthttp's (no User-Agent, Accept-Encoding or Host of its own).
        fields = b"".join(b"%s: %s\r\n" % pair for pair in built.headers.raw)
        assert heads == [b"GET /path%20x?q=%C3%A9&r=1 HTTP/1.1\r\n" + fields + b"\r\n"]
        assert b"Accept-Encoding: identity" in heads[0] and heads[0].count(b"X-B:") == 2

    run(loop_kind, main)


def test_no_decompression_and_no_redirects_below_httpx(loop_kind: str) -> None:
    heads: list[bytes] = []

    async def main() -> None:
        async with (
            serve(recording_server(heads)) as srv,
            httpx.AsyncClient(transport=transport()) as client,
        ):
            async with client.stream("GET", srv.url("/gzip")) as resp:
                raw = b"".join([c async for c in resp.aiter_raw()])
            assert raw == ZIPPED  # the transport left the body as it came
            assert (await client.get(srv.url("/gzip"))).content == b"unzipped " * 100
            resp = await client.get(srv.url("/redirect"))
            assert resp.status_code == 302 and len(heads) == 3
            resp = await client.get(srv.url("/redirect"), follow_redirects=True)
            assert resp.status_code == 200 and [target_of(h) for h in heads[3:]] == [
                "/redirect",
                "/small",
            ]
            assert len(resp.history) == 1

    run(loop_kind, main)


# -- uploads ------------------------------------------------------------------------------


def test_uploads_bytes_streamed_and_streamed_with_a_length(loop_kind: str) -> None:
    heads: list[bytes] = []
    payload = os.urandom(3 << 20)
    digest = hashlib.sha256(payload).hexdigest()

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    async def main() -> None:
        async with (
            serve(recording_server(heads)) as srv,
            httpx.AsyncClient(transport=transport()) as client,
        ):
            got = (await client.post(srv.url("/up"), content=payload)).json()
            assert got["sha256"] == digest
            got = (await client.put(srv.url("/up"), content=pieces())).json()
            assert got["sha256"] == digest and got["method"] == "PUT"
            assert b"Transfer-Encoding: chunked" in heads[1]
            length = {"Content-Length": str(len(payload))}
            got = (await client.post(srv.url("/up"), content=pieces(), headers=length)).json()
            assert got["sha256"] == digest
            assert b"Transfer-Encoding" not in heads[2]
            got = (await client.post(srv.url("/form"), data={"a": "1"}, files={"f": b"xyz"})).json()
            assert got["method"] == "POST" and b"multipart/form-data" in heads[3]
            # A streamed body shorter than its stated length is refused, not sent short.
            short = {"Content-Length": str(len(payload) + 1)}
            with pytest.raises(httpx.LocalProtocolError, match="shorter"):
                await client.post(srv.url("/up"), content=pieces(), headers=short)
            assert (await client.get(srv.url("/after"))).status_code == 200

    run(loop_kind, main)


# -- the response, streamed -----------------------------------------------------------------


def test_the_response_streams_and_an_early_close_closes_the_connection(loop_kind: str) -> None:
    first_read = asyncio.Event()
    finished = []

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (got := await read_raw(reader)) is not None:
            if target_of(got[0]) == "/small":
                writer.write(response(b"small"))
                await writer.drain()
                continue
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhead\r\n")
            await writer.drain()
            await first_read.wait()  # the rest only once the client has read the first piece
            for _ in range(64):
                writer.write(b"10000\r\n" + b"x" * 65536 + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            finished.append(info.index)

    async def main() -> None:
        tr = transport()
        async with serve(handler) as srv, httpx.AsyncClient(transport=tr) as client:
            async with client.stream("GET", srv.url("/stream")) as resp:
                chunks = resp.aiter_bytes()
                assert await chunks.__anext__() == b"head"  # before the server sent the rest
                first_read.set()
                rest = b"".join([c async for c in chunks])
            assert len(rest) == 64 * 65536 and finished == [0]
            assert stats_of(tr.client)["idle"] == 1  # read to the end: pooled
            first_read.clear()
            async with client.stream("GET", srv.url("/stream")) as resp:
                assert await resp.aiter_bytes().__anext__() == b"head"
            # Left before its end: closed, never pooled with unread bytes.
            assert stats_of(tr.client)["open"] == 0
            first_read.set()
            assert (await client.get(srv.url("/small"))).text == "small"
            assert stats_of(tr.client)["created"] == 2

    run(loop_kind, main)


# -- timeouts ---------------------------------------------------------------------------------


async def silent(reader, writer, info: ConnInfo) -> None:
    """Reads requests, never answers (but for /ok), never stops reading."""
    while (got := await read_raw(reader)) is not None:
        if target_of(got[0]) == "/ok":
            writer.write(response(b"ok"))
            await writer.drain()


def test_read_and_pool_timeouts_from_httpx(loop_kind: str) -> None:
    async def main() -> None:
        limits = httpx.Limits(max_connections=1)
        tr = transport(limits=limits)
        async with serve(silent) as srv, httpx.AsyncClient(transport=tr) as client:
            with pytest.raises(httpx.ReadTimeout) as info:
                await client.get(srv.url("/x"), timeout=httpx.Timeout(5.0, read=0.2))
            assert isinstance(info.value.__cause__, aiofasthttp.ReadTimeout)
            assert "read_timeout=0.2" in str(info.value)
            assert info.value.request.url == srv.url("/x")
            busy = asyncio.ensure_future(client.get(srv.url("/busy"), timeout=30))
            await wait_until(lambda: srv.connections == 2)
            with pytest.raises(httpx.PoolTimeout) as pool_info:
                await client.get(srv.url("/ok"), timeout=httpx.Timeout(5.0, pool=0.2))
            assert isinstance(pool_info.value.__cause__, aiofasthttp.PoolTimeout)
            busy.cancel()
            with pytest.raises(asyncio.CancelledError):
                await busy
            assert (await client.get(srv.url("/ok"))).text == "ok"

    run(loop_kind, main)


def test_connect_timeout_from_httpx(loop_kind: str) -> None:
    queue = FullAcceptQueue()

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport(retry=False)) as client:
            with pytest.raises(httpx.ConnectTimeout) as info:
                url = f"http://{HOST}:{queue.port}/"
                await client.get(url, timeout=httpx.Timeout(30.0, connect=0.2))
            assert isinstance(info.value.__cause__, aiofasthttp.ConnectTimeout)

    try:
        run(loop_kind, main)
    finally:
        queue.close()


def test_write_timeout_from_httpx(loop_kind: str) -> None:
    async def never_reads(reader, writer, info: ConnInfo) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.Event().wait()

    async def main() -> None:
        async with serve(never_reads) as srv, httpx.AsyncClient(transport=transport()) as client:
            with pytest.raises(httpx.WriteTimeout) as info:
                timeout = httpx.Timeout(30.0, write=0.5)
                await client.post(srv.url("/up"), content=os.urandom(8 << 20), timeout=timeout)
            assert isinstance(info.value.__cause__, aiofasthttp.WriteTimeout)

    run(loop_kind, main)


# -- errors -------------------------------------------------------------------------------------


def test_connect_errors_and_proxy_errors(loop_kind: str) -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        closed_port = s.getsockname()[1]  # bound, not listening: refused

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport(retry=False)) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(f"http://{HOST}:{closed_port}/")
            assert type(info.value.__cause__) is aiofasthttp.ConnectError
        async with run_proxy(require_auth="Basic secret") as proxy:
            tr = transport(retry=False, proxy=proxy.url())
            async with httpx.AsyncClient(transport=tr) as client:
                with pytest.raises(httpx.ProxyError, match="407") as proxy_info:
                    await client.get(f"https://{HOST}:{closed_port}/")
                assert isinstance(proxy_info.value.__cause__, aiofasthttp.ProxyError)

    run(loop_kind, main)


def test_protocol_read_and_write_errors(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        got = await read_raw(reader)
        assert got is not None
        target = target_of(got[0])
        sock = writer.get_extra_info("socket")
        if target == "/garbage":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
        elif target == "/truncated":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await writer.drain()
            writer.close()
        elif target == "/reset":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await writer.drain()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif target == "/close":
            writer.close()  # a fresh connection, the request read, no answer
        await writer.drain()
        await reader.read()

    async def main() -> None:
        tr = transport(retry=False)
        async with serve(handler) as srv, httpx.AsyncClient(transport=tr) as client:
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await client.get(srv.url("/garbage"))
            assert isinstance(info.value.__cause__, aiofasthttp.ProtocolError)
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await client.post(srv.url("/close"), content=b"x")
            assert isinstance(info.value.__cause__, aiofasthttp.ConnectionClosedError)
            with pytest.raises(httpx.RemoteProtocolError) as info:
                await client.get(srv.url("/truncated"))
            assert isinstance(info.value.__cause__, aiofasthttp.HTTPError)
            with pytest.raises(httpx.ReadError) as info:
                await client.get(srv.url("/reset"))
            assert isinstance(info.value.__cause__, aiofasthttp.ConnectionClosedError)
            assert stats_of(tr.client)["open"] == 0

    run(loop_kind, main)


def test_a_reset_while_uploading_is_a_write_error(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.read(65536)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(512):
            yield b"x" * 65536

    async def main() -> None:
        tr = transport(retry=False)
        async with serve(handler) as srv, httpx.AsyncClient(transport=tr) as client:
            with pytest.raises(httpx.WriteError) as info:
                await client.post(srv.url("/up"), content=chunks())
            assert isinstance(info.value.__cause__, aiofasthttp.ConnectionClosedError)

    run(loop_kind, main)


# -- stale connections --------------------------------------------------------------------------


def closes_on_second_request():
    """Answers the first request on each connection; on the second, closes without a word,
    as a server does that timed the connection out just as the request arrived."""

    async def handler(reader, writer, info: ConnInfo) -> None:
        while await read_raw(reader) is not None:
            info.requests += 1
            if info.requests == 2:
                return  # serve() aborts the connection
            writer.write(response(f"conn {info.index}".encode()))
            await writer.drain()

    return handler


def test_a_get_on_a_stale_keep_alive_connection_is_replayed(loop_kind: str) -> None:
    async def main() -> None:
        tr = transport()
        async with (
            serve(closes_on_second_request()) as srv,
            httpx.AsyncClient(transport=tr) as client,
        ):
            assert (await client.get(srv.url("/a"))).text == "conn 0"
            assert (await client.get(srv.url("/b"))).text == "conn 1"  # replayed, not raised
            assert stats_of(tr.client)["retries"] == 1
            # A POST is not replayed, so it does not go on a connection that has served as
            # many requests as the one that just died silently: a fresh one carries it.
            assert (await client.post(srv.url("/c"), content=b"once")).text == "conn 2"
            assert stats_of(tr.client)["suspected_max_requests"] == 1
        # httpx's own transport surfaces the stale GET.
        async with serve(closes_on_second_request()) as srv, httpx.AsyncClient() as plain:
            await plain.get(srv.url("/a"))
            with pytest.raises(httpx.RemoteProtocolError):
                await plain.get(srv.url("/b"))

    run(loop_kind, main)


# -- the same requests through httpx's transport and ours ------------------------------------------


def test_the_same_requests_through_both_transports_match(loop_kind: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"streamed "
        yield b"body"

    sample = [
        ("GET", "/small", {}),
        ("GET", "/q?x=1&y=%20z&u=%C3%A9", {"params": {"extra": "a b"}}),
        ("HEAD", "/small", {}),
        ("GET", "/gzip", {}),
        ("GET", "/chunked", {}),
        ("GET", "/204", {}),
        ("GET", "/404", {}),
        ("GET", "/cookies", {}),
        ("GET", "/big", {}),
        ("GET", "/redirect", {}),
        ("GET", "/redirect", {"follow_redirects": True}),
        ("POST", "/json", {"json": {"k": [1, 2, "é"]}}),
        ("POST", "/form", {"data": {"a": "1", "b": "two"}}),
        ("PUT", "/stream", {"content": body}),
        ("DELETE", "/thing", {"headers": {"X-Trace": "t1", "Authorization": "Bearer x"}}),
        ("OPTIONS", "/", {}),
        ("PATCH", "/p", {"content": b"\x00\x01binary"}),
        ("GET", "/auth", {"auth": ("user", "pass")}),
    ]

    async def through(client: httpx.AsyncClient, srv_url) -> list[tuple]:
        out = []
        for method, path, kwargs in sample:
            kw = dict(kwargs)
            if callable(kw.get("content")):
                kw["content"] = kw["content"]()
            resp = await client.request(method, srv_url(path), **kw)
            out.append(
                (
                    resp.status_code,
                    resp.reason_phrase,
                    resp.http_version,
                    resp.headers.multi_items(),
                    resp.content,
                    [r.status_code for r in resp.history],
                    dict(resp.cookies),
                )
            )
        return out

    async def main() -> None:
        results = []
        for make in (lambda: httpx.AsyncClient(), lambda: httpx.AsyncClient(transport=transport())):
            heads: list[bytes] = []
            async with serve(recording_server(heads)) as srv, make() as client:
                results.append((await through(client, srv.url), heads))
        (theirs, their_heads), (ours, our_heads) = results
        assert len(ours) == len(sample)
        for case, a, b in zip(sample, theirs, ours, strict=True):
            assert a == b, case

        def strip_port(head: bytes) -> bytes:
            lines = head.split(b"\r\n")
            return b"\r\n".join(line for line in lines if not line.startswith(b"Host:"))

        assert [strip_port(h) for h in our_heads] == [strip_port(h) for h in their_heads]

    run(loop_kind, main)


# -- options ------------------------------------------------------------------------------------


def test_httpx_limits_map_onto_the_engine(loop_kind: str) -> None:
    release = asyncio.Event()

    async def handler(reader, writer, info: ConnInfo) -> None:
        while await read_raw(reader) is not None:
            await release.wait()
            writer.write(response(b"ok"))
            await writer.drain()

    async def main() -> None:
        limits = httpx.Limits(max_connections=2, keepalive_expiry=1.5)
        tr = transport(limits=limits)
        assert tr.client._limits.max_conns == 2
        assert tr.client._limits.max_idle_duration == 1.5
        async with serve(handler) as srv, httpx.AsyncClient(transport=tr) as client:
            calls = [asyncio.ensure_future(client.get(srv.url(f"/{i}"))) for i in range(6)]
            stats = tr.client.stats
            await wait_until(lambda: sum(s["waiting"] for s in stats().values()) == 4)
            release.set()
            assert all(r.status_code == 200 for r in await asyncio.gather(*calls))
            assert srv.connections == 2
        with pytest.raises(TypeError, match="httpx handles those"):
            AsyncTransport(follow_redirects=True)

    run(loop_kind, main)


def test_importing_without_httpx_names_the_extra(loop_kind: str) -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "try:\n"
        "    import aiofasthttp.integrations.httpx\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "aiofasthttp[httpx]" in out.stdout, out.stderr
