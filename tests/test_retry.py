"""The retry coordinator and policy: replay only when safe, explain when not, trace it all."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import subprocess
import sys
import time
from email.utils import formatdate

import pytest

from aiofasthttp import (
    Client,
    ConnectError,
    ConnectionClosedError,
    ReadTimeout,
    RetryPolicy,
    TLSError,
    reasons,
)
from aiofasthttp.h1.request import EMPTY_BODY, Request, encode_body
from aiofasthttp.h1.url import Origin
from aiofasthttp.policy.retry import CONNECT, NOT_SENT, STALE, RetryBudget
from hostile import HostileServer
from servers import (
    HOST,
    LOOPS,
    ConnInfo,
    free_port,
    nginx,
    read_request,
    response,
    run,
    serve,
)


def make_request(method: str = "GET", idempotent: bool | None = None, body=EMPTY_BODY) -> Request:
    if idempotent is None:
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE")
    return Request(method, "http://h/", Origin("http", "h", 80), b"", body, idempotent)


def closed(**facts) -> ConnectionClosedError:
    return ConnectionClosedError("closed", **facts)


# -- the policy as a value ------------------------------------------------------------


def test_policy_is_an_immutable_comparable_value() -> None:
    a = RetryPolicy(statuses={503, 429})
    assert a == RetryPolicy(statuses=frozenset({429, 503}))
    assert a != RetryPolicy()
    with pytest.raises(AttributeError):
        a.attempts = 3  # type: ignore[misc]
    assert "attempts=5" in repr(a) and "503" in repr(a)
    assert RetryPolicy().attempts == 5
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_backoff_is_exponential_capped_and_jittered() -> None:
    p = RetryPolicy(backoff_base=0.1, backoff_cap=1.0, jitter=0.0)
    assert [p.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    rng = random.Random(5)
    jittered = [RetryPolicy(backoff_base=1.0, jitter=0.5).backoff(1, rng) for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in jittered) and len(set(jittered)) > 40


def test_retry_after_seconds_and_http_date() -> None:
    p = RetryPolicy()
    assert p.retry_after("7") == 7.0
    later = p.retry_after(formatdate(time.time() + 30, usegmt=True))
    assert later is not None and 28 <= later <= 31
    assert p.retry_after("soon") is None
    assert RetryPolicy(respect_retry_after=False).retry_after("7") is None


# -- the replay table (docs/design.md) ---------------------------------------------------


def test_replay_table() -> None:
    p = RetryPolicy()
    get, post = make_request("GET"), make_request("POST")
    keyed = make_request("POST", idempotent=True)  # the client sets this for Idempotency-Key
    assert p.replay_reason(get, ConnectError("refused"), 1) == CONNECT
    assert p.replay_reason(post, ConnectError("refused"), 1) == CONNECT
    assert p.replay_reason(post, TLSError("bad cert"), 1) is None
    unsent = closed(reused=True, request_written=False)
    assert p.replay_reason(post, unsent, 1) == STALE  # at once, on a new connection
    assert p.replay_reason(post, closed(reused=False, request_written=False), 1) == NOT_SENT
    stale = closed(reused=True, request_written=True)
    assert p.replay_reason(get, stale, 1) == STALE
    assert p.replay_reason(post, stale, 1) is None
    assert p.replay_reason(keyed, stale, 1) == STALE
    answering = closed(reused=True, request_written=True, response_bytes=10)
    assert p.replay_reason(get, answering, 1) is None
    assert p.replay_reason(get, ReadTimeout("slow"), 1) is None
    assert RetryPolicy(retry_timeouts=True).replay_reason(get, ReadTimeout("slow"), 1)
    assert p.replay_reason(get, stale, 5) is None  # attempts are spent
    yes = RetryPolicy(retry_if=lambda req, err, n: req.method == "POST")
    assert yes.replay_reason(post, answering, 1) == "retry_if"


def test_one_shot_body_is_never_replayed() -> None:
    async def gen():
        yield b"x"

    one_shot = make_request("PUT", body=encode_body(gen(), None, None))
    assert RetryPolicy().replay_reason(one_shot, closed(request_written=False), 1) is None


def test_retry_budget_allows_a_share_plus_a_floor() -> None:
    budget = RetryBudget(ratio=0.2, floor_per_second=1.0, window=10)
    now = 1000.0
    for _ in range(100):
        budget.record_request(now)
    allowed = sum(budget.try_retry(now) for _ in range(100))
    assert allowed == 30  # 20% of 100 requests, plus 1/s over 10 s
    assert not budget.try_retry(now + 5)  # the same window: still spent
    assert not budget.try_retry(now + 9.99)
    assert budget.try_retry(now + 10)  # the second of those requests left the window


def test_retry_budget_counts_requests_in_the_window_only() -> None:
    budget = RetryBudget(ratio=0.5, floor_per_second=0.0, window=10)
    for second in range(20):  # 10 requests a second for 20 seconds
        for _ in range(10):
            budget.record_request(1000.0 + second + 0.5)
    # In the window: the last 10 seconds' 100 requests, so 50 retries, not 100.
    now = 1019.6
    assert sum(budget.try_retry(now) for _ in range(200)) == 50


# -- against real servers ------------------------------------------------------------------


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_status_retry_honours_retry_after(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        n = 0
        while await read_request(reader) is not None:
            n += 1
            if n <= 2:
                writer.write(response(b"busy", status=503, headers={"Retry-After": "0"}))
            else:
                writer.write(response(b"done"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv:
            async with Client(retry=RetryPolicy(statuses={503})) as client:
                r = await client.get(srv.url())
                assert r.status == 200 and r.content == b"done"
                assert next(iter(client.stats().values()))["retries"] == 2
            async with Client() as client:  # statuses are not retried unless named
                assert (await client.get(srv.url())).status == 503

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_streamed_status_retry_closes_the_unread_response_connection(loop_kind: str) -> None:
    seen: list[int] = []

    async def handler(reader, writer, info: ConnInfo) -> None:
        seen.append(info.index)
        while await read_request(reader) is not None:
            if len(seen) == 1:  # a body too large to arrive before the retry decision
                writer.write(response(b"b" * (8 << 20), status=503, headers={"Retry-After": "0"}))
            else:
                writer.write(response(b"done"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client(retry=RetryPolicy(statuses={503})) as client:
            async with client.stream("GET", srv.url()) as r:
                assert r.status == 200 and await r.aread() == b"done"
            stats = next(iter(client.stats().values()))
            assert stats["retries"] == 1
            # The 503's body was never read: its connection was closed, not reused.
            assert stats["close_reasons"].get(reasons.RETRYING_STATUS) == 1
            assert len(seen) == 2

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_trace_hooks_and_debug_log_tell_the_story(loop_kind: str, caplog) -> None:
    events: list[tuple[str, dict]] = []

    class Recorder:
        def __getattr__(self, name: str):
            return lambda **facts: events.append((name, facts))

    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(response(b"one"))
        await writer.drain()
        if info.index == 0:
            await read_request(reader)  # the reused connection dies under the next request
            return
        while await read_request(reader) is not None:
            writer.write(response(b"two"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client(trace=Recorder()) as client:
            await client.get(srv.url())
            assert (await client.get(srv.url())).content == b"one"

    with caplog.at_level(logging.DEBUG, logger="aiofasthttp"):
        run(loop_kind, main)
    names = [name for name, _ in events]
    assert names[:5] == [
        "connect_attempt",  # 127.0.0.1, the only address: no lookup for an IP literal
        "connection_dialled",
        "request_head",
        "request_written",
        "head_received",
    ]
    head = events[2][1]["head"]
    assert head.startswith(b"GET / HTTP/1.1\r\n") and b"\r\nUser-Agent: aiofasthttp/" in head
    # The log gets the head's size only: a head may carry credentials.
    logged = [r.getMessage() for r in caplog.records if "request_head" in r.getMessage()]
    assert logged and all(f"head=<{len(head)} bytes>" in m for m in logged)
    assert not any("User-Agent" in r.getMessage() for r in caplog.records)
    assert "connection_reused" in names
    (retry,) = [facts for name, facts in events if name == "retry_scheduled"]
    assert retry["reason"] == STALE and retry["delay"] == 0.0
    assert names.count("connection_dialled") == 2
    assert any("retry_scheduled" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_hostile_server_gets_zero_get_errors_and_no_double_posts(loop_kind: str) -> None:
    async def main() -> None:
        hostile = HostileServer(seed=42)
        async with serve(hostile.handler) as srv, Client(max_conns_per_host=8) as client:
            rng = random.Random(9)

            async def get(i: int) -> None:
                rid = f"g{i}"
                r = await client.get(srv.url(), headers={"X-Request-Id": rid})
                assert r.headers["x-request-id"] == rid and r.content == f"GET {rid}".encode()

            for burst in range(20):
                await asyncio.gather(*(get(burst * 20 + j) for j in range(20)))
                await asyncio.sleep(rng.uniform(0, 0.03))

            refused = 0

            async def post(i: int, keyed: bool) -> None:
                nonlocal refused
                rid = f"{'k' if keyed else 'p'}{i}"
                headers = {"X-Request-Id": rid}
                if keyed:
                    headers["Idempotency-Key"] = rid
                try:
                    r = await client.post(srv.url(), content=b"x", headers=headers)
                except ConnectionClosedError as exc:
                    assert not keyed
                    assert "may have processed" in str(exc)
                    refused += 1
                    return
                assert r.headers["x-request-id"] == rid

            for burst in range(10):
                await asyncio.gather(*(post(burst * 20 + j, j % 2 == 0) for j in range(20)))
                await asyncio.sleep(rng.uniform(0, 0.03))
            assert all(n == 1 for rid, n in hostile.processed.items() if rid.startswith("p"))
            assert hostile.dropped > 0
            assert refused > 0, "the seed should make some POSTs unreplayable"

    run(loop_kind, main, timeout=120)


def test_nginx_short_keepalive_mixed_gaps_and_bursts_zero_errors() -> None:
    with nginx(keepalive_timeout="1s", keepalive_requests=10) as base:

        async def main() -> None:
            rng = random.Random(3)
            async with Client(max_conns_per_host=8) as client:
                sem = asyncio.Semaphore(8)

                async def one() -> None:
                    async with sem:
                        r = await client.get(f"{base}/small.txt")
                        assert r.status == 200 and len(r.content) == 100

                done = 0
                while done < 2000:
                    burst = rng.choice([1, 8, 40, 150])
                    await asyncio.gather(*(one() for _ in range(burst)))
                    done += burst
                    if rng.random() < 0.25:
                        await asyncio.sleep(rng.uniform(0.9, 1.1))  # around nginx's timeout
                s = next(iter(client.stats().values()))
                assert s["closed_by_server_idle"] + s["expired"] >= 1

        run("uvloop", main, timeout=240)


SERVER_SCRIPT = """
import asyncio, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def _start_server(port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_server_restart_while_pool_holds_idle_connections(loop_kind: str) -> None:
    port = free_port()
    proc = _start_server(port)

    async def main() -> None:
        nonlocal proc
        url = f"http://{HOST}:{port}/"
        async with Client(max_conns_per_host=8) as client:
            await asyncio.gather(*(client.get(url) for _ in range(8)))
            assert next(iter(client.stats().values()))["idle"] >= 2
            _stop(proc)
            proc = _start_server(port)
            results = await asyncio.gather(*(client.get(url) for _ in range(16)))
            assert all(r.content == b"ok" for r in results)

    try:
        run(loop_kind, main)
    finally:
        _stop(proc)


def test_refused_connection_is_retried_then_explained() -> None:
    port = free_port()

    async def main() -> None:
        policy = RetryPolicy(attempts=3, backoff_base=0.01)
        async with Client(retry=policy) as client:
            with pytest.raises(ConnectError) as info:
                await client.get(f"http://{HOST}:{port}/")
            assert "attempt 3 of 3" in str(info.value)
            assert len(info.value.errors) == 3  # type: ignore[attr-defined]

    asyncio.run(main())


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_plain_http_to_a_tls_port_says_use_https(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await reader.read(10)
        writer.write(bytes.fromhex("15030300020250"))  # a TLS alert record
        await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            with pytest.raises(Exception, match="https://"):
                await client.get(srv.url())

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_dead_idle_connection_takes_longer_idle_ones_with_it(loop_kind: str) -> None:
    drop_next = asyncio.Event()

    async def handler(reader, writer, info: ConnInfo) -> None:
        while await read_request(reader) is not None:
            if drop_next.is_set():
                return  # the request is read, the connection dropped: a dead peer
            writer.write(response(b"ok"))
            await writer.drain()

    async def main() -> None:
        async with serve(handler) as srv, Client(max_conns_per_host=4) as client:
            await asyncio.gather(*(client.get(srv.url()) for _ in range(4)))
            stats = next(iter(client.stats().values()))
            assert stats["idle"] == 4
            # Let idle time build up: uvloop's clock counts whole milliseconds.
            await asyncio.sleep(0.02)
            drop_next.set()
            with pytest.raises(ConnectionClosedError):
                await client.post(srv.url(), content=b"x")
            stats = next(iter(client.stats().values()))
            # The three others had been idle at least as long: dropped, not tried one by one.
            assert stats["idle"] == 0
            assert stats["close_reasons"].get(reasons.DROPPED_WITH_DEAD_PEER) == 3

    run(loop_kind, main)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_error_explains_an_idle_close_against_the_servers_hint(loop_kind: str) -> None:
    async def handler(reader, writer, info: ConnInfo) -> None:
        await read_request(reader)
        writer.write(response(b"ok", headers={"Keep-Alive": "timeout=1"}))
        await writer.drain()
        await read_request(reader)  # then drops the next request unanswered

    async def main() -> None:
        # The client keeps idle connections 10 s by default; this one honours no hint
        # because max_idle_conn_duration is shorter than what the test waits.
        async with serve(handler) as srv, Client(retry=False) as client:
            await client.get(srv.url())
            (pool,) = client._pools.values()
            (conn,) = pool._idle
            conn.idle_since -= 1.5  # as if it had sat idle 1.5 s
            conn.expires_at = float("inf")
            # ...after a connection had answered after 2 s idle: a POST may go first.
            pool.memory.survived(pool.loop.time(), 1, 2.0)
            with pytest.raises(ConnectionClosedError) as info:
                await client.post(srv.url(), content=b"x")
            text = str(info.value)
            assert "POST http://" in text and "attempt 1 of 1" in text
            assert f"reused connection #{conn.id}" in text
            assert "its hint said timeout=1" in text and "max_idle_conn_duration" in text
            assert "may have processed" in text
            err = info.value
            assert err.reused and err.idle_time >= 1.5 and err.keep_alive_hint == "timeout=1"

    run(loop_kind, main)
