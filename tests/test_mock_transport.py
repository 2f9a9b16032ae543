"""MockTransport: requests answered by a function, through the engine's own parser.

Each test runs the Client unchanged above the dial: the pool, the coordinator,
the Connection and the parser see the mock's bytes as they would a socket's.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from aiofasthttp import (
    Client,
    ConnectionClosedError,
    ProtocolError,
    ReadTimeout,
    RetryPolicy,
)
from aiofasthttp.testing import MockRequest, MockResponse, MockTransport
from servers import LOOPS, run, stats_of

loops = pytest.mark.parametrize("loop_kind", LOOPS)


def on(loop_kind: str, main: Callable[[], Awaitable[object]]) -> object:
    return run(loop_kind, main, timeout=30)


@loops
def test_handler_sees_the_request_as_sent(loop_kind: str) -> None:
    seen: list[MockRequest] = []

    def handler(request: MockRequest) -> MockResponse:
        seen.append(request)
        return MockResponse(201, headers={"X-Id": "7"}, text="made")

    async def main() -> None:
        mock = MockTransport(handler)
        async with Client(transport=mock) as client:
            resp = await client.post(
                "http://api.test/items?page=2", json={"a": 1}, headers={"X-Trace": "t"}
            )
        assert (resp.status, resp.reason, resp.text) == (201, "Created", "made")
        assert resp.headers["x-id"] == "7"
        assert resp.headers["content-type"] == "text/plain; charset=utf-8"
        (request,) = seen
        assert request.method == "POST"
        assert request.url == "http://api.test/items?page=2"
        assert request.headers["host"] == "api.test"
        assert request.headers["user-agent"].startswith("aiofasthttp/")
        assert "gzip" in request.headers["accept-encoding"]
        assert request.headers["x-trace"] == "t"
        assert json.loads(request.content) == {"a": 1}
        assert mock.requests == seen

    on(loop_kind, main)


@loops
def test_async_handler_and_a_streamed_request_body_gathered(loop_kind: str) -> None:
    async def handler(request: MockRequest) -> MockResponse:
        await asyncio.sleep(0)
        return MockResponse(
            200, json={"got": len(request.content), "te": request.headers.get("transfer-encoding")}
        )

    async def body() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([65 + i]) * 1000

    async def main() -> None:
        async with Client(transport=MockTransport(handler)) as client:
            resp = await client.put("https://secure.test/up", content=body())
        assert resp.json() == {"got": 5000, "te": "chunked"}

    on(loop_kind, main)


@loops
def test_gzip_content_is_decoded_buffered_and_streamed(loop_kind: str) -> None:
    text = b"".join(b"line %d\n" % i for i in range(2000))

    def handler(request: MockRequest) -> MockResponse:
        return MockResponse(200, headers={"Content-Encoding": "gzip"}, content=gzip.compress(text))

    async def main() -> None:
        # Pieces of 97 bytes: the stream's decoder sees the gzip member split anywhere.
        async with Client(transport=MockTransport(handler, chunk_size=97)) as client:
            resp = await client.get("http://api.test/log")
            assert resp.content == text
            async with client.stream("GET", "http://api.test/log") as streamed:
                pieces = [chunk async for chunk in streamed.iter_bytes()]
        assert len(pieces) > 1
        assert b"".join(pieces) == text

    on(loop_kind, main)


@loops
def test_chunked_framing_and_head_responses(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        return MockResponse(200, headers={"Transfer-Encoding": "chunked"}, content=b"abc" * 100)

    async def main() -> None:
        async with Client(transport=MockTransport(handler, chunk_size=5)) as client:
            resp = await client.get("http://api.test/")
            head = await client.head("http://api.test/")
            again = await client.get("http://api.test/")
            assert resp.content == b"abc" * 100
            assert head.content == b""
            assert again.content == b"abc" * 100
            assert stats_of(client)["created"] == 1  # all three on one kept-alive connection

    on(loop_kind, main)


@loops
def test_keep_alive_until_the_response_says_close(loop_kind: str) -> None:
    calls = 0

    def handler(request: MockRequest) -> MockResponse:
        nonlocal calls
        calls += 1
        headers = {"Connection": "close"} if calls == 2 else {}
        return MockResponse(200, headers=headers, content=b"%d" % calls)

    async def main() -> None:
        mock = MockTransport(handler)
        async with Client(transport=mock) as client:
            bodies = [(await client.get("http://api.test/")).content for _ in range(4)]
            stats = stats_of(client)
        assert bodies == [b"1", b"2", b"3", b"4"]
        assert mock.connections == 2
        assert stats["close_reasons"] == {"response_close": 1}

    on(loop_kind, main)


@loops
def test_redirects_are_followed_through_the_mock(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        if request.url.endswith("/old"):
            return MockResponse(301, headers={"Location": "http://other.test/new"})
        return MockResponse(200, text=request.url)

    async def main() -> None:
        async with Client(transport=MockTransport(handler), follow_redirects=True) as client:
            resp = await client.get("http://api.test/old")
        assert resp.text == "http://other.test/new"
        assert [r.status for r in resp.history] == [301]

    on(loop_kind, main)


@loops
def test_a_reset_reused_connection_is_replayed_on_a_fresh_one(loop_kind: str) -> None:
    calls = 0

    def handler(request: MockRequest) -> MockResponse:
        nonlocal calls
        calls += 1
        if calls == 2:
            return MockResponse.reset()
        return MockResponse(200, text=str(calls))

    async def main() -> None:
        mock = MockTransport(handler)
        async with Client(transport=mock) as client:
            first = await client.get("http://api.test/")
            second = await client.get("http://api.test/")
            stats = stats_of(client)
        assert (first.text, second.text) == ("1", "3")
        assert mock.connections == 2
        assert stats["retries"] == 1

    on(loop_kind, main)


@loops
def test_a_raised_connection_reset_is_not_replayed_for_a_post(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        raise ConnectionResetError("peer reset")

    async def main() -> None:
        mock = MockTransport(handler)
        async with Client(transport=mock) as client:
            with pytest.raises(ConnectionClosedError) as info:
                await client.post("http://api.test/", content=b"x")
            assert info.value.request_written and not info.value.response_bytes
            assert "reset" in str(info.value)
            assert stats_of(client)["open"] == 0
        assert len(mock.requests) == 1

    on(loop_kind, main)


@loops
def test_close_without_an_answer(loop_kind: str) -> None:
    async def main() -> None:
        mock = MockTransport(lambda request: MockResponse.close())
        async with Client(transport=mock, retry=False) as client:
            with pytest.raises(ConnectionClosedError, match="closed"):
                await client.get("http://api.test/")

    on(loop_kind, main)


@loops
def test_retryable_status_is_retried(loop_kind: str) -> None:
    answers = [MockResponse(503, headers={"Retry-After": "0"}), MockResponse(200, text="ok")]

    async def main() -> None:
        mock = MockTransport(lambda request: answers.pop(0))
        policy = RetryPolicy(attempts=3, statuses=frozenset({503}))
        async with Client(transport=mock, retry=policy) as client:
            resp = await client.get("http://api.test/")
        assert (resp.status, resp.text, len(mock.requests)) == (200, "ok", 2)

    on(loop_kind, main)


@loops
def test_a_short_body_then_close_is_an_error_not_a_response(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        headers = {"Content-Length": "100", "Connection": "close"}
        return MockResponse(200, headers=headers, content=b"only ten b")

    async def main() -> None:
        async with Client(transport=MockTransport(handler)) as client:
            with pytest.raises(ConnectionClosedError) as info:
                await client.get("http://api.test/")
        assert info.value.response_bytes > 0  # the server answered: not replayed

    on(loop_kind, main)


@loops
def test_a_malformed_response_is_a_protocol_error(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        return MockResponse(200, headers=[("Bad Name", "x")], content=b"ok")

    async def main() -> None:
        async with Client(transport=MockTransport(handler)) as client:
            with pytest.raises(ProtocolError):
                await client.get("http://api.test/")
            assert stats_of(client)["close_reasons"] == {"protocol_error": 1}

    on(loop_kind, main)


@loops
def test_a_handler_bug_reaches_the_caller_as_raised(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        raise LookupError("no such fixture")

    async def main() -> None:
        mock = MockTransport(handler)
        async with Client(transport=mock) as client:
            with pytest.raises(LookupError, match="no such fixture"):
                await client.get("http://api.test/")
            assert stats_of(client)["open"] == 0
        assert len(mock.requests) == 1  # not replayed

    on(loop_kind, main)


@loops
def test_a_handler_returning_something_else_is_a_type_error(loop_kind: str) -> None:
    async def main() -> None:
        async with Client(transport=MockTransport(lambda request: 200)) as client:  # type: ignore[arg-type,return-value]
            with pytest.raises(TypeError, match="must return a MockResponse"):
                await client.get("http://api.test/")

    on(loop_kind, main)


@loops
def test_a_silent_handler_meets_the_read_timeout(loop_kind: str) -> None:
    async def main() -> None:
        never = asyncio.Event()

        async def handler(request: MockRequest) -> MockResponse:
            await never.wait()
            raise AssertionError("unreachable")

        async with Client(transport=MockTransport(handler), read_timeout=0.2) as client:
            with pytest.raises(ReadTimeout):
                await client.get("http://api.test/")
            assert stats_of(client)["open"] == 0

    on(loop_kind, main)


@loops
def test_a_large_streamed_body_is_paused_and_resumed(loop_kind: str) -> None:
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB: past the connection's high-water mark

    async def main() -> None:
        mock = MockTransport(lambda request: MockResponse(200, content=body), chunk_size=1 << 16)
        async with Client(transport=mock) as client:
            async with client.stream("GET", "http://api.test/big") as resp:
                got = bytearray()
                async for chunk in resp.iter_bytes():
                    got += chunk
                    await asyncio.sleep(0)  # a slow reader: the mock must wait for it
            again = await client.get("http://api.test/big")
        assert bytes(got) == body and again.content == body
        assert mock.connections == 1

    on(loop_kind, main)


@loops
def test_expect_continue_is_answered_with_100(loop_kind: str) -> None:
    def handler(request: MockRequest) -> MockResponse:
        return MockResponse(
            200, json={"expect": request.headers.get("expect"), "n": len(request.content)}
        )

    async def main() -> None:
        # With no "100 Continue" the body would wait the whole 30 s continue timeout,
        # past the request's own 10 s timeout.
        client = Client(
            transport=MockTransport(handler),
            expect_continue_threshold=10,
            expect_continue_timeout=30,
            timeout=10,
        )
        async with client:
            resp = await client.post("http://api.test/", content=b"x" * 100)
        assert resp.json() == {"expect": "100-continue", "n": 100}

    on(loop_kind, main)


def test_mock_response_takes_one_body() -> None:
    with pytest.raises(ValueError, match="one of"):
        MockResponse(200, text="a", json={})
    with pytest.raises(ValueError, match="chunk_size"):
        MockTransport(lambda r: MockResponse(), chunk_size=0)


def test_the_mock_server_reads_requests_split_anywhere() -> None:
    from aiofasthttp.errors import ProtocolError
    from aiofasthttp.testing.wire import RequestReader

    wire = (
        b"POST /a?b=1 HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: api.test:8080\r\nContent-Length: 2\r\n\r\nxy"
    )
    whole = RequestReader("https").feed(wire)
    assert [(r.method, r.url, r.content) for r in whole] == [
        ("POST", "https://api.test/a?b=1", b"abcde"),
        ("GET", "https://api.test:8080/next", b"xy"),
    ]
    for cut in range(1, len(wire)):
        reader = RequestReader("https")
        assert reader.feed(wire[:cut]) + reader.feed(wire[cut:]) == whole
    reader = RequestReader("https")
    assert [got for i in range(len(wire)) for got in reader.feed(wire[i : i + 1])] == whole
    with pytest.raises(ProtocolError):
        RequestReader("http").feed(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n")
