"""Request building: URLs, heads, bodies, and refusing what would split a head."""

from __future__ import annotations

import asyncio
import gzip
import socket

import pytest

from aiofasthttp import Client, ClientClosedError, ConnectTimeout, InvalidHeader, InvalidURL
from aiofasthttp.engine.dial import Dialer
from aiofasthttp.h1.request import (
    EMPTY_BODY,
    add_params,
    encode_body,
    encode_head,
)
from aiofasthttp.h1.url import join_url, resolve_url
from servers import LOOPS, ConnInfo, read_request, response, run, serve, wait_until


def test_resolve_url_origin_target_host_and_auth() -> None:
    t = resolve_url("http://Example.COM/a b?x=1#frag")
    assert t.origin == ("http", "example.com", 80)
    assert t.target == "/a%20b?x=1"
    assert t.host_header == "example.com"
    t = resolve_url("https://u%40x:pw@[::1]:8443")
    assert t.origin == ("https", "::1", 8443) and t.target == "/"
    assert t.host_header == "[::1]:8443"
    assert t.authorization == "Basic dUB4OnB3"  # u@x:pw
    assert resolve_url("http://bücher.example/").origin.host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "url", ["ftp://h/", "http:///nohost", "http://h:99999/", "http://h/\r\nX: y", "nourl"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURL):
        resolve_url(url)


def test_join_and_params() -> None:
    assert join_url("http://h/api", "v1/x") == "http://h/api/v1/x"
    assert join_url("http://h/api/", "/v1") == "http://h/api/v1"
    assert join_url("http://h/api", "http://other/") == "http://other/"
    assert add_params("http://h/p?a=1", {"b": ["1", "2"]}) == "http://h/p?a=1&b=1&b=2"


def test_head_encoding_keeps_user_headers_in_order_and_frames_bodies() -> None:
    target = resolve_url("http://h:8080/p")
    defaults = [("User-Agent", "t"), ("Accept", "*/*")]
    head = encode_head(
        "POST",
        target,
        defaults,
        [("X-B", "2"), ("X-A", "1"), ("accept", "text/plain")],
        encode_body(None, {"k": 1}, None),
        True,
    )
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /p HTTP/1.1"
    assert lines[1] == "Host: h:8080"
    assert "Accept: */*" not in lines  # the user's Accept replaces the default
    assert lines.index("X-B: 2") < lines.index("X-A: 1") < lines.index("accept: text/plain")
    assert "Content-Type: application/json" in lines
    assert "Content-Length: 7" in lines and "Connection: close" in lines
    assert head.endswith(b"\r\n\r\n")
    empty_post = encode_head("POST", target, [], [], EMPTY_BODY, False)
    assert b"Content-Length: 0\r\n" in empty_post
    get = encode_head("GET", target, [], [], EMPTY_BODY, False)
    assert b"Content-Length" not in get


def test_streamed_body_is_chunked_and_one_shot() -> None:
    async def gen():
        yield b"x"

    body = encode_body(gen(), None, None)
    assert not body.replayable and body.make_stream is not None
    head = encode_head("POST", resolve_url("http://h/"), [], [], body, False)
    assert b"Transfer-Encoding: chunked" in head
    body.make_stream()
    with pytest.raises(RuntimeError, match="one-shot"):
        body.make_stream()
    assert encode_body(lambda: gen(), None, None).replayable
    with pytest.raises(TypeError):
        encode_body(b"x", {"a": 1}, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Ok", "a\r\nInjected: 1"),
        ("X-Ok", "a\nb"),
        ("X-Ok", "a\x00"),
        ("X-Ok", "a\x0bb"),
        ("X-Ok", "a\x7f"),
        ("Bad Name", "v"),
        ("X:Y", "v"),
        ("", "v"),
    ],
)
def test_header_injection_is_refused(name: str, value: str) -> None:
    async def main() -> None:
        async with Client() as client:
            with pytest.raises(InvalidHeader):
                await client.get("http://127.0.0.1:9/", headers={name: value})

    asyncio.run(main())


def test_method_injection_is_refused() -> None:
    async def main() -> None:
        async with Client() as client:
            with pytest.raises(InvalidHeader):
                await client.request("GET / HTTP/1.1\r\nX:", "http://127.0.0.1:9/")

    asyncio.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_connect_timeout_to_a_full_accept_queue(loop_kind: str) -> None:
    # A listener that never accepts, with its accept queue filled: further SYNs
    # are dropped by the kernel, so a connect hangs, as to a host that drops packets.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)

    async def main() -> None:
        async with Client(connect_timeout=0.3, retry=False) as client:
            with pytest.raises(ConnectTimeout, match=r"connect_timeout=0\.3"):
                await client.get(f"http://127.0.0.1:{port}/")

    try:
        run(loop_kind, main)
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_aclose_fails_waiters_and_in_flight_requests(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        await reader.read()  # never answers

    async def main() -> None:
        async with serve(handler) as srv:
            client = Client(max_conns_per_host=1)
            first = asyncio.ensure_future(client.get(srv.url()))
            second = asyncio.ensure_future(client.get(srv.url()))
            await wait_until(
                lambda: srv.connections == 1 and next(iter(client.stats().values()))["waiting"] == 1
            )
            await client.aclose()
            results = await asyncio.gather(first, second, return_exceptions=True)
            assert all(isinstance(r, Exception) for r in results)
            assert any(isinstance(r, ClientClosedError) for r in results)
            assert client.stats()[next(iter(client.stats()))]["open"] == 0

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_decompress_off_gives_raw_bytes(loop_kind: str) -> None:
    payload = gzip.compress(b"raw" * 10)

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            accept = req.headers.get("accept-encoding", "none")
            writer.write(response(payload, headers={"Content-Encoding": "gzip", "X-AE": accept}))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client(decompress=False) as client:
            r = await client.get(srv.url())
            assert r.content == payload and r.headers["x-ae"] == "none"

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_aclose_during_a_dial_fails_the_request_and_closes_what_it_dialled(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection whose dial ends after aclose() was not among those aclose() closed:
    it is closed on arrival and the request fails at once, instead of being sent on it
    and waiting for ever (seen under load: the dial's coroutine resumed after close).
    The dial is held, after the connection is made, until aclose() has run."""
    dialled = asyncio.Event()
    release = asyncio.Event()
    real_dial = Dialer.dial

    async def held_dial(self: Dialer, *args: object, **kwargs: object) -> object:
        conn = await real_dial(self, *args, **kwargs)  # type: ignore[arg-type]
        dialled.set()
        await release.wait()
        return conn

    monkeypatch.setattr(Dialer, "dial", held_dial)
    seen: list[object] = []  # what the server read: a request, then the end (None)

    async def handler(reader, writer, info: ConnInfo) -> None:
        seen.append(await read_request(reader))  # never answers

    async def main() -> None:
        async with serve(handler) as srv:
            client = Client(retry=False)
            request = asyncio.ensure_future(client.get(srv.url()))
            await asyncio.wait_for(dialled.wait(), 10)
            await client.aclose()
            release.set()
            with pytest.raises(ClientClosedError):
                await asyncio.wait_for(request, 10)
            assert client.stats()[next(iter(client.stats()))]["open"] == 0
            await wait_until(lambda: bool(seen))  # the dialled connection was closed
            assert seen == [None]  # with no request sent on it

    run(loop_kind, main)
