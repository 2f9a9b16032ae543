"""The client against real loopback servers, on the asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import zlib

import pytest

import aiofasthttp
import aiofasthttp.engine.client as client_module
from aiofasthttp import (
    Client,
    ConnectError,
    ConnectionClosedError,
    InvalidHeader,
    PoolTimeout,
    ProtocolError,
    ReadTimeout,
    RequestTimeout,
    ResponseTooLarge,
)
from aiofasthttp.engine.trace import Tracer
from servers import (
    LOOPS,
    ConnInfo,
    ThreadServer,
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


@pytest.fixture(autouse=True, params=["untraced", "traced"])
def tracing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: without a tracer (the zero-cost case) and with a no-op one,
    so a traced client is shown to run the same attempt code and behave the same."""
    if request.param == "traced":
        real = client_module.make_tracer
        monkeypatch.setattr(
            client_module, "make_tracer", lambda trace: real(trace) or Tracer(None, False)
        )


def test_get_post_head_and_reuse(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv, Client() as client:
            r = await client.get(srv.url("/a?b=1"), params={"c": "d e"})
            assert r.status == 200
            assert r.http_version == "HTTP/1.1"
            assert r.content == b"GET /a?b=1&c=d+e "
            r = await client.post(srv.url("/p"), json={"k": [1, 2]})
            assert r.text == 'POST /p {"k":[1,2]}'
            r = await client.put(srv.url("/f"), data={"x": "1"})
            assert r.content == b"PUT /f x=1"
            r = await client.head(srv.url("/h"))
            assert r.content == b""
            s = stats_of(client)
            assert s["created"] == 1 and s["reused"] == 3 and srv.connections == 1

    run(loop_kind, main)


def test_headers_case_insensitive_multi_valued_in_order(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX-Thing: one\r\n"
            b"set-cookie: b=2\r\nContent-Type: application/json; charset=utf-8\r\n"
            b'Content-Length: 9\r\n\r\n{"k": 1}\n'
        )
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            r = await client.get(srv.url())
            assert r.status == 201 and r.reason == "Created"
            assert r.headers["SET-COOKIE"] == "a=1, b=2"
            assert r.headers.get_all("set-cookie") == ["a=1", "b=2"]
            assert list(r.headers)[:2] == ["Set-Cookie", "X-Thing"]
            assert r.json() == {"k": 1}
            assert r.charset == "utf-8"

    run(loop_kind, main)


def test_server_closing_idle_connection_is_noticed_before_next_request(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(response(b"one"))
        await writer.drain()
        if info.index == 0:
            return  # close the first connection once idle, without Connection: close
        while await read_request(reader) is not None:
            writer.write(response(b"two"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            assert (await client.get(srv.url())).content == b"one"
            await wait_until(lambda: stats_of(client)["closed_by_server_idle"] == 1)
            assert stats_of(client)["idle"] == 0
            r = await client.get(srv.url())
            assert r.content == b"one"
            s = stats_of(client)
            assert s["created"] == 2 and s["retries"] == 0 and s["reused"] == 0

    run(loop_kind, main)


def test_fin_unread_while_loop_was_busy_is_caught_before_reuse(loop_kind: str) -> None:
    server = ThreadServer()

    async def main() -> None:
        async with Client() as client:
            assert (await client.get(server.url())).content == b"first"
            server.close_now.set()
            # Block the loop, as a long CPU step would: the FIN arrives but
            # eof_received cannot run. The blocking sleep is the scenario itself
            # (and makes the idle time exceed the 5 ms below which poll() is skipped).
            assert server.closed.wait(10)
            time.sleep(0.05)  # noqa: ASYNC251
            r = await client.get(server.url())
            assert r.content == b"first"
            s = stats_of(client)
            assert s["closed_by_server_idle"] == 1
            assert s["retries"] == 0 and s["created"] == 2
            server.close_now.set()

    try:
        run(loop_kind, main)
    finally:
        server.shutdown()


def test_connection_close_response_ends_reuse(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while await read_request(reader) is not None:
            writer.write(response(b"bye", headers={"Connection": "close"}))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            for _ in range(3):
                assert (await client.get(srv.url())).content == b"bye"
            s = stats_of(client)
            assert s["created"] == 3 and s["reused"] == 0 and s["open"] == 0

    run(loop_kind, main)


def test_http10_close_delimited_and_keep_alive(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        req = await read_request(reader)
        assert req is not None
        if req.target == "/ka":
            writer.write(
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nka"
            )
            await writer.drain()
            await reader.read()
        else:
            writer.write(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            r = await client.get(srv.url("/eof"))
            assert r.http_version == "HTTP/1.0" and r.content == b"until close"
            r = await client.get(srv.url("/ka"))
            assert r.content == b"ka"
            assert stats_of(client)["idle"] == 1

    run(loop_kind, main)


def test_no_body_statuses_chunked_and_gzip(loop_kind: str) -> None:
    payload = b"compressed " * 100

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/204":
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif req.target == "/304":
                writer.write(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n")
            elif req.target == "/chunked":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                )
            elif req.target == "/gzip":
                writer.write(response(gzip.compress(payload), headers={"Content-Encoding": "gzip"}))
            elif req.target == "/deflate":
                writer.write(
                    response(zlib.compress(payload), headers={"Content-Encoding": "deflate"})
                )
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            assert (await client.get(srv.url("/204"))).content == b""
            assert (await client.get(srv.url("/304"))).status == 304
            assert (await client.get(srv.url("/chunked"))).content == b"hello world"
            assert (await client.get(srv.url("/gzip"))).content == payload
            assert (await client.get(srv.url("/deflate"))).content == payload
            assert stats_of(client)["created"] == 1

    run(loop_kind, main)


def test_keep_alive_hint_retires_connection_before_server_would(loop_kind: str) -> None:
    async def main() -> None:
        handler = keep_alive_handler(headers={"Keep-Alive": "timeout=1"})
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url())
            # timeout=1 minus the 0.25 s margin: gone by 0.75 s, with no request needed.
            await wait_until(lambda: stats_of(client)["expired"] == 1, timeout=5)
            assert stats_of(client)["open"] == 0
            await client.get(srv.url())
            assert stats_of(client)["created"] == 2

    run(loop_kind, main)


def test_pool_limit_waiters_and_pool_timeout(loop_kind: str) -> None:
    release = asyncio.Event()

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/slow":
                await release.wait()
            writer.write(response(req.target.encode()))
            await writer.drain()

    async def main() -> None:
        async with (
            serve(handler) as srv,
            Client(max_conns_per_host=2, max_conn_wait_timeout=0.2) as client,
        ):
            slow = [asyncio.ensure_future(client.get(srv.url("/slow"))) for _ in range(2)]
            await wait_until(lambda: srv.connections == 2)
            with pytest.raises(PoolTimeout, match="max_conns_per_host=2"):
                await client.get(srv.url("/x"))
            waiting = [asyncio.ensure_future(client.get(srv.url(f"/w{i}"))) for i in range(4)]
            await wait_until(lambda: stats_of(client)["waiting"] == 4)
            release.set()
            done = await asyncio.gather(*slow, *waiting)
            assert [r.content for r in done[2:]] == [b"/w0", b"/w1", b"/w2", b"/w3"]
            assert srv.connections == 2

    run(loop_kind, main)


def test_read_timeout_and_request_timeout_discard_the_connection(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/trickle":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                for _ in range(100):
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            elif req.target != "/never":
                writer.write(response(b"fine"))
                await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client(read_timeout=0.2) as client:
            with pytest.raises(ReadTimeout, match=r"GET .*/never"):
                await client.get(srv.url("/never"))
            assert stats_of(client)["open"] == 0
            with pytest.raises(RequestTimeout):
                await client.get(srv.url("/trickle"), timeout=0.4)
            assert stats_of(client)["open"] == 0
            assert (await client.get(srv.url("/ok"))).content == b"fine"

    run(loop_kind, main)


def test_cancelled_requests_leave_no_dirty_connection(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf-")
            await writer.drain()
            if req.target == "/full":
                writer.write(b"body!")
                await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            task = asyncio.ensure_future(client.get(srv.url("/stall")))
            await wait_until(lambda: srv.connections == 1)
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            s = stats_of(client)
            assert s["idle"] == 0 and s["open"] == 0
            assert (await client.get(srv.url("/full"))).content == b"half-body!"

    run(loop_kind, main)


def test_stream_reads_pieces_and_early_exit_closes(loop_kind: str) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/partial":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n" + b"p" * 1000)
            else:
                writer.write(response(big))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            async with client.stream("GET", srv.url()) as resp:
                assert resp.status == 200
                got = b"".join([c async for c in resp.iter_bytes()])
            assert got == big
            assert stats_of(client)["idle"] == 1
            async with client.stream("GET", srv.url("/partial")) as resp:
                async for chunk in resp.iter_bytes():
                    assert chunk.startswith(b"p")
                    break
            s = stats_of(client)
            assert s["open"] == 0 and s["idle"] == 0  # left early: closed, not pooled
            assert (await client.get(srv.url())).content == big

    run(loop_kind, main)


def test_body_size_limit_and_malformed_response(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/big":
                writer.write(response(b"x" * 5000))
            elif req.target == "/garbage":
                writer.write(b"SMTP ready\r\n\r\n")
            else:
                writer.write(response(b"fine"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client(max_response_body_size=1000) as client:
            with pytest.raises(ResponseTooLarge):
                await client.get(srv.url("/big"))
            with pytest.raises(ProtocolError) as info:
                await client.get(srv.url("/garbage"))
            assert info.value.reason == "invalid_status_line"
            assert stats_of(client)["open"] == 0
            assert (await client.get(srv.url("/ok"))).content == b"fine"

    run(loop_kind, main)


def test_stale_reused_connection_replays_get_but_not_post(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(response(b"first"))
        await writer.drain()
        if info.index == 0:
            await read_request(reader)  # read the second request, then drop it unanswered
            return
        while await read_request(reader) is not None:
            writer.write(response(b"again"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url())
            assert (await client.get(srv.url())).content == b"first"
            assert stats_of(client)["retries"] == 1
        async with serve(handler) as srv, Client() as client:
            await client.get(srv.url())
            with pytest.raises(ConnectionClosedError, match="may have processed") as info:
                await client.post(srv.url(), content=b"payload")
            err = info.value
            assert err.reused and err.request_written and err.response_bytes == 0
            assert err.requests_served == 1

    run(loop_kind, main)


def test_unsolicited_bytes_on_idle_connection_close_it(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(response(b"one") + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            assert (await client.get(srv.url())).content == b"one"
            await wait_until(lambda: stats_of(client)["open"] == 0)

    run(loop_kind, main)


def test_errors_for_bad_input_and_closed_client(loop_kind: str) -> None:
    async def main() -> None:
        client = Client()
        with pytest.raises(InvalidHeader):
            await client.get("http://127.0.0.1:1/", headers={"X": "a\r\nInjected: 1"})
        with pytest.raises(aiofasthttp.InvalidURL):
            await client.get("ftp://127.0.0.1/")
        # A bad argument surfaces at the await, not at the call: a task made from the
        # call fails like any other request's task.
        task = asyncio.ensure_future(client.get("ftp://127.0.0.1/"))
        with pytest.raises(aiofasthttp.InvalidURL):
            await task
        with pytest.raises(ConnectError):
            await client.get("http://127.0.0.1:1/")
        await client.aclose()
        with pytest.raises(aiofasthttp.ClientClosedError):
            await client.get("http://127.0.0.1:1/")

    run(loop_kind, main)


def test_concurrent_requests_get_their_own_responses(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo_handler()) as srv, Client(max_conns_per_host=8) as client:

            async def one(i: int) -> None:
                r = await client.get(srv.url(f"/{i}"), headers={"X-Request-Id": str(i)})
                assert r.headers["x-request-id"] == str(i)
                assert r.content == f"GET /{i} ".encode()

            await asyncio.gather(*(one(i) for i in range(400)))
            assert srv.connections <= 8

    run(loop_kind, main)


def test_streamed_upload_and_replayable_callable_body(loop_kind: str) -> None:
    async def gen():
        for i in range(5):
            yield b"part%d;" % i

    async def main() -> None:
        async with serve(echo_handler()) as srv, Client() as client:
            r = await client.post(srv.url("/up"), content=gen())
            assert r.content == b"POST /up part0;part1;part2;part3;part4;"
            r = await client.post(srv.url("/up"), content=lambda: gen())
            assert r.content.endswith(b"part4;")
            assert json.loads(json.dumps(client.stats()))  # stats are plain data

    run(loop_kind, main)


def test_kept_heads_carry_each_requests_own_body(loop_kind: str) -> None:
    """The client keeps encoded heads (for bodies too: keyed by length and type); every
    request must still go out with its own body, length and content type."""

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            kind = req.headers.get("content-type", "-")
            length = req.headers.get("content-length", "-")
            echo = f"{req.method} {req.target} {kind} {length} ".encode() + req.body
            writer.write(response(echo))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            url = srv.url("/p")
            sent = [
                ("POST", {"content": b"aaaa"}, b"POST /p - 4 aaaa"),
                ("POST", {"content": b"bbbb"}, b"POST /p - 4 bbbb"),  # same head, new body
                ("POST", {"content": b"cc"}, b"POST /p - 2 cc"),
                ("PUT", {"content": b"dddd"}, b"PUT /p - 4 dddd"),
                ("POST", {"data": b"eeee"}, b"POST /p - 4 eeee"),
                ("POST", {"content": "ffff"}, b"POST /p text/plain; charset=utf-8 4 ffff"),
                ("POST", {"json": {"a": 1}}, b'POST /p application/json 7 {"a":1}'),
                ("POST", {"json": {"b": 2}}, b'POST /p application/json 7 {"b":2}'),
                ("POST", {"data": {"x": "y"}}, b"POST /p application/x-www-form-urlencoded 3 x=y"),
                ("GET", {}, b"GET /p - - "),
                ("POST", {"content": b"aaaa", "headers": {"X": "1"}}, b"POST /p - 4 aaaa"),
            ]
            for _ in range(2):  # the second time round, every head comes from the cache
                for method, kwargs, expected in sent:
                    resp = await client.request(method, url, **kwargs)
                    assert resp.content == expected, (method, kwargs)
            # The client keeps heads, not bodies: none of them stays alive in it.
            assert client._kept_heads and all(
                kept.body.data is None for kept, _pool in client._kept_heads.values()
            )

    run(loop_kind, main)


def test_connection_close_request_is_the_last_on_its_connection(loop_kind: str) -> None:
    """RFC 9112 9.6: after sending "Connection: close" the client sends nothing more on
    that connection, even when the server ignores the header and keeps it open."""

    said_close: list[bool] = []

    async def ignores_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            said_close.append("close" in req.headers.get("connection", ""))
            writer.write(response(b"open"))  # keep-alive all the same

    async def main() -> None:
        async with serve(ignores_close) as srv, Client() as client:
            for _ in range(5):
                r = await client.get(srv.url("/c"), connection_close=True)
                assert r.status == 200
            for _ in range(2):  # the user's own header counts too
                await client.get(srv.url("/h"), headers={"Connection": "keep-alive, close"})
            assert srv.connections == 7
            s = stats_of(client)
            assert s["created"] == 7 and s["reused"] == 0
            assert s["close_reasons"] == {"request_close": 7}
            assert said_close == [True] * 7
            await client.get(srv.url("/k"))
            await client.get(srv.url("/k"))
            assert srv.connections == 8  # without the header, reuse as before

    run(loop_kind, main)
