"""Pipelining: many requests in flight on one connection; failures replay only the unanswered."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiofasthttp import (
    ClientClosedError,
    ConnectError,
    ConnectionClosedError,
    RequestTimeout,
    ResponseTooLarge,
    RetryPolicy,
)
from aiofasthttp.engine.pipeline import PipelineClient
from servers import LOOPS, ConnInfo, free_port, read_request, response, run, serve, wait_until

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def test_requests_are_pipelined_and_answered_in_order(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        # Read ten requests before answering any: only a pipelining client gets answers.
        batch = [await read_request(reader) for _ in range(10)]
        while True:
            for req in batch:
                assert req is not None
                writer.write(response(f"{req.method} {req.target}".encode()))
            await writer.drain()
            req = await read_request(reader)
            if req is None:
                return
            batch = [req]

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url(), max_pending_requests=32) as pc:
            got = await asyncio.gather(*(pc.get(f"/n{i}") for i in range(300)))
            assert [r.content for r in got] == [f"GET /n{i}".encode() for i in range(300)]
            head = await pc.request("HEAD", "/h")
            assert head.content == b"" and head.status == 200
            assert srv.connections == 1

    run(loop_kind, main)


def test_failure_mid_pipeline_replays_only_unanswered_idempotent_requests(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        if info.index > 0:  # later connections behave
            while (req := await read_request(reader)) is not None:
                writer.write(response(f"{req.method} {req.target}".encode()))
                await writer.drain()
            return
        reqs = [await read_request(reader) for _ in range(8)]
        for req in reqs[:3]:
            assert req is not None
            writer.write(response(f"{req.method} {req.target}".encode()))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")  # 4th: cut short
        await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url()) as pc:
            calls = [pc.get(f"/g{i}") for i in range(6)] + [pc.post("/p6", content=b"x")]
            calls.append(pc.get("/g7"))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for i in range(3):
                assert results[i].content == f"GET /g{i}".encode()
            assert isinstance(results[3], ConnectionClosedError)  # its answer had begun
            assert results[3].response_bytes > 0
            for i in (4, 5, 7):
                assert results[i].content == f"GET /g{i}".encode()  # replayed on a new one
            assert isinstance(results[6], ConnectionClosedError)  # a POST is not replayed
            assert results[6].response_bytes == 0 and "before this pipelined request" in str(
                results[6]
            )
            assert pc.replays == 3 and srv.connections == 2

    run(loop_kind, main)


def test_kept_heads_carry_each_pipelined_requests_own_body(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            length = req.headers.get("content-length", "-")
            writer.write(response(f"{req.method} {req.target} {length} ".encode() + req.body))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url()) as pc:
            for _ in range(2):  # the second time round, every head is a kept one
                sent = [
                    pc.post("/p", content=b"aaaa"),
                    pc.post("/p", content=b"bbbb"),
                    pc.post("/p", content=b"cc"),
                    pc.get("/p"),
                    pc.request("POST", "/p", content=b"dddd", headers={"X-A": "1"}),
                ]
                got = [r.content for r in await asyncio.gather(*sent)]
                assert got == [
                    b"POST /p 4 aaaa",
                    b"POST /p 4 bbbb",
                    b"POST /p 2 cc",
                    b"GET /p - ",
                    b"POST /p 4 dddd",
                ]

    run(loop_kind, main)


def test_aclose_closes_every_connection_and_fails_what_waits(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)  # takes one request, never answers
        await reader.read()

    async def main() -> None:
        async with serve(handler) as srv:
            pc = PipelineClient(srv.url(), max_conns=4, max_pending_requests=1)
            calls = [asyncio.ensure_future(pc.get(f"/{i}")) for i in range(4)]
            # The server may accept a connection before the client's side of it is made.
            await wait_until(lambda: srv.connections == 4 and only(pc.stats())["open"] == 4)
            await pc.aclose()
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
            assert all(isinstance(r, ClientClosedError) for r in results), results
            stats = only(pc.stats())
            assert stats["open"] == 0 and stats["close_reasons"] == {"client_closed": 4}
            with pytest.raises(ClientClosedError):
                await pc.get("/after")

    run(loop_kind, main)


def only(stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (one,) = stats.values()
    return one


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo) -> None:
    """Answers every request with its method and target, keeping the connection open
    (whatever the request's Connection header says)."""
    while (req := await read_request(reader)) is not None:
        writer.write(response(f"{req.method} {req.target}".encode()))
        await writer.drain()


def test_body_over_the_limit_fails_its_request_and_closes_the_connection(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            body = b"x" * 5000 if req.target == "/big" else req.target.encode()
            writer.write(response(body))
            await writer.drain()

    async def main() -> None:
        limit = 1000
        async with (
            serve(handler) as srv,
            PipelineClient(srv.url(), max_response_body_size=limit) as pc,
        ):
            small = pc.get("/a")
            big = pc.get("/big")
            behind = [pc.get(f"/b{i}") for i in range(3)]  # sent after /big, unanswered
            results = await asyncio.gather(small, big, *behind, return_exceptions=True)
            assert results[0].content == b"/a"
            assert isinstance(results[1], ResponseTooLarge)
            assert "max_response_body_size=1000" in str(results[1])
            # Those behind it were never answered on that connection: replayed.
            assert [r.content for r in results[2:]] == [b"/b0", b"/b1", b"/b2"]
            stats = only(pc.stats())
            assert stats["close_reasons"] == {"response_too_large": 1}
            assert stats["created"] == 2 and stats["retries"] == 3
            assert (await pc.get("/c")).content == b"/c"
            assert srv.connections == 2

    run(loop_kind, main)


@pytest.mark.parametrize("how", ["option", "header"])
def test_a_request_saying_connection_close_is_the_last_on_its_connection(
    loop_kind: str, how: str
) -> None:
    async def main() -> None:
        async with serve(echo) as srv, PipelineClient(srv.url(), max_conns=1) as pc:

            def call(i: int) -> Any:
                if how == "option":
                    return pc.get(f"/{i}", connection_close=True)
                return pc.request("GET", f"/{i}", headers={"Connection": "close"})

            # One at a time, and all at once: the server ignores the header, yet no
            # request follows one that said close on the same connection.
            for i in range(5):
                assert (await call(i)).content == f"GET /{i}".encode()
            got = await asyncio.gather(*(call(i) for i in range(5, 10)))
            assert [r.content for r in got] == [f"GET /{i}".encode() for i in range(5, 10)]
            assert srv.connections == 10
            await wait_until(lambda: only(pc.stats())["open"] == 0)
            stats = only(pc.stats())
            assert stats["close_reasons"] == {"request_close": 10}
            assert stats["reused"] == 0 and stats["retries"] == 0

    run(loop_kind, main)


def test_a_close_request_lets_those_before_it_finish_and_none_after_it(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(echo) as srv, PipelineClient(srv.url(), max_conns=1) as pc:
            first = [pc.get(f"/a{i}") for i in range(3)]
            closing = pc.get("/close", connection_close=True)
            after = [pc.get(f"/z{i}") for i in range(3)]
            got = await asyncio.gather(*first, closing, *after)
            assert [r.content for r in got[:4]] == [
                b"GET /a0",
                b"GET /a1",
                b"GET /a2",
                b"GET /close",
            ]
            assert [r.content for r in got[4:]] == [b"GET /z0", b"GET /z1", b"GET /z2"]
            assert srv.connections == 2

    run(loop_kind, main)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda **facts: self.events.append((name, facts))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [facts for event, facts in self.events if event == name]


def test_stats_and_trace_events(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        for _ in range(4):  # four answers, then it closes the idle connection
            req = await read_request(reader)
            if req is None:
                return
            writer.write(response(req.target.encode(), headers={"Keep-Alive": "timeout=5"}))
            await writer.drain()

    async def main() -> None:
        trace = Recorder()
        async with serve(handler) as srv, PipelineClient(srv.url(), trace=trace) as pc:
            got = await asyncio.gather(*(pc.get(f"/{i}") for i in range(4)))
            assert [r.content for r in got] == [b"/0", b"/1", b"/2", b"/3"]
            await wait_until(lambda: only(pc.stats())["open"] == 0)
            stats = only(pc.stats())
            assert stats == {
                "open": 0,
                "idle": 0,
                "active": 0,
                "dialling": 0,
                "waiting": 0,
                "in_flight": 0,
                "created": 1,
                "reused": 3,
                "closed_by_server_idle": 1,
                "retries": 0,
                "close_reasons": {"server_closed_idle": 1},
            }
            assert list(pc.stats()) == [f"http://127.0.0.1:{srv.port}"]
        (dialled,) = trace.named("connection_dialled")
        conn_id = dialled["connection_id"]
        written = trace.named("request_written")
        assert [w["url"] for w in written] == [srv.url(f"/{i}") for i in range(4)]
        assert [w["reused"] for w in written] == [False, True, True, True]
        assert all(w["connection_id"] == conn_id and w["bytes_written"] > 0 for w in written)
        assert [h["status"] for h in trace.named("head_received")] == [200] * 4
        (idle,) = trace.named("connection_closed_idle")
        assert idle["requests_served"] == 4 and idle["idle_time"] >= 0
        (closed,) = trace.named("connection_closed")
        assert closed["why"] == "server_closed_idle" and closed["requests_served"] == 4

    run(loop_kind, main)


def test_errors_carry_the_connections_facts_and_the_likely_cause(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        # Answers one request with a Keep-Alive hint, then closes when the next comes.
        if await read_request(reader) is None:
            return
        writer.write(response(b"one", headers={"Keep-Alive": "timeout=5, max=100"}))
        await writer.drain()
        await read_request(reader)

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url()) as pc:
            assert (await pc.get("/one")).content == b"one"
            with pytest.raises(ConnectionClosedError) as caught:
                await pc.post("/two", content=b"body")
            exc = caught.value
            assert exc.reused and exc.request_written and exc.response_bytes == 0
            assert exc.requests_served == 1 and exc.keep_alive_hint == "timeout=5, max=100"
            assert exc.idle_time is not None and exc.idle_time >= 0
            assert exc.connection_age is not None and exc.connection_age >= exc.idle_time
            text = str(exc)
            assert text.startswith(f"POST {srv.url('/two')}: the server closed the connection")
            assert "before this pipelined request was answered on reused connection #" in text
            assert "1 requests served, age " in text
            assert "the server's Keep-Alive hint was timeout=5, max=100" in text
            # explain's sentence for a reused connection closed on the next request
            assert "it may limit requests per connection (this one had served 1)" in text
            assert "[attempt 1 of 5; not replayed: the server may have processed" in text

    run(loop_kind, main)


def test_backoff_within_the_timeout_then_request_timeout(loop_kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens: every dial is refused

    async def main() -> None:
        trace = Recorder()
        policy = RetryPolicy(attempts=5, backoff_base=0.2, jitter=0.0)
        async with PipelineClient(url, retry=policy, timeout=0.5, trace=trace) as pc:
            with pytest.raises(RequestTimeout) as caught:
                await pc.get("/x")
        # 0.2 s after the first refusal; the 0.4 s after the second would end past the
        # 0.5 s timeout, so the request ends there instead of sleeping.
        assert [e["delay"] for e in trace.named("retry_scheduled")] == [0.2, 0.4]
        assert {e["reason"] for e in trace.named("retry_scheduled")} == {"connect_failed"}
        errors = caught.value.errors
        assert [type(e) for e in errors[:-1]] == [ConnectError, ConnectError]
        assert errors[-1] is caught.value
        assert "leaves no time for another attempt after 2 attempts" in str(caught.value)

        policy = RetryPolicy(attempts=3, backoff_base=0.01, jitter=0.0)
        async with PipelineClient(url, retry=policy) as pc:
            with pytest.raises(ConnectError) as refused:
                await pc.get("/x")
            assert "[attempt 3 of 3]" in str(refused.value) and len(refused.value.errors) == 3
            assert only(pc.stats())["retries"] == 2

    run(loop_kind, main)


def test_a_request_past_its_timeout_lets_go_and_the_connection_stays_in_step(
    loop_kind: str,
) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        slow = await read_request(reader)  # answered only once the next request has come
        nxt = await read_request(reader)
        assert slow is not None and nxt is not None
        writer.write(response(b"slow") + response(b"next"))
        await writer.drain()
        await echo(reader, writer, info)

    async def main() -> None:
        async with serve(handler) as srv, PipelineClient(srv.url(), timeout=5) as pc:
            with pytest.raises(RequestTimeout):
                await pc.get("/slow", timeout=0.2)
            assert (await pc.get("/next")).content == b"next"
            assert (await pc.get("/after")).content == b"GET /after"
            assert srv.connections == 1 and only(pc.stats())["retries"] == 0

    run(loop_kind, main)


def test_the_retry_budget_bounds_replays_against_a_failing_server(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)  # takes a request and closes without an answer

    async def main() -> None:
        policy = RetryPolicy(attempts=5, backoff_base=0.001, jitter=0.0)
        async with serve(handler) as srv, PipelineClient(srv.url(), retry=policy) as pc:
            results = await asyncio.gather(
                *(pc.get(f"/{i}") for i in range(40)), return_exceptions=True
            )
            assert all(isinstance(r, ConnectionClosedError) for r in results), results
            spent = [r for r in results if "retry budget" in str(r)]
            assert spent, "40 requests x 4 replays pass the budget: some were refused"
            # The budget: 20% of the 40 requests, plus 10 a second over its 10 s window.
            assert only(pc.stats())["retries"] == 40 * 0.2 + 100
            assert srv.connections <= 40 * 0.2 + 100 + 1

    run(loop_kind, main)
