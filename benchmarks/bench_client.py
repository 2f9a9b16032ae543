"""Benchmarks of the client's hot path (pytest-benchmark; not timed tests).

    python -m pytest benchmarks/bench_client.py --benchmark-only -p no:cacheprovider

Groups:

- ``head-encoding``: building a request (URL, head bytes), cached and not;
- ``response-building``: a Response from a parsed head, with and without header access;
- ``round-trip``: 200 requests over loopback to an in-process server, on uvloop:
  the default client; the same with the stale-socket ``poll()`` forced before
  every reuse (by default it runs only after 5 ms idle, so never in this loop);
  with a trace listener attached; with a request and a response hook; and
  instrumented with OpenTelemetry. The poll's cost is the difference of the
  first two; the cost of tracing when nothing listens is two ``is None`` tests
  per request, timed in ``tracer-check`` beside one request's time.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

import aiofasthttp.engine.poolcore
from aiofasthttp import Client
from aiofasthttp.h1.response import Response
from aiofasthttp.parser import ResponseParser

uvloop = pytest.importorskip("uvloop")

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 100\r\n\r\n" + b"x" * 100
)
ROUND_TRIPS = 200


class _Server(asyncio.Protocol):
    """Answers every request head with RESPONSE (requests carry no body here)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        if count:
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def url(loop: asyncio.AbstractEventLoop) -> Iterator[str]:
    server = loop.run_until_complete(loop.create_server(_Server, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/small"
    server.close()
    loop.run_until_complete(server.wait_closed())


def _round_trips(benchmark, loop: asyncio.AbstractEventLoop, client: Client, url: str) -> None:
    async def batch() -> int:
        total = 0
        for _ in range(ROUND_TRIPS):
            total += len((await client.get(url)).content)
        return total

    assert loop.run_until_complete(batch()) == 100 * ROUND_TRIPS  # checked before timing
    benchmark.pedantic(lambda: loop.run_until_complete(batch()), rounds=30, warmup_rounds=2)
    loop.run_until_complete(client.aclose())


@pytest.mark.benchmark(group="round-trip")
def test_round_trip_default(benchmark, loop, url) -> None:
    _round_trips(benchmark, loop, Client(), url)


@pytest.mark.benchmark(group="round-trip")
def test_round_trip_poll_before_every_reuse(benchmark, loop, url, monkeypatch) -> None:
    monkeypatch.setattr(aiofasthttp.engine.poolcore, "QUIET_CHECK_AFTER", -1.0)
    _round_trips(benchmark, loop, Client(), url)


@pytest.mark.benchmark(group="round-trip")
def test_round_trip_with_a_trace_listener(benchmark, loop, url) -> None:
    class Listener:
        def request_written(self, **facts: object) -> None:
            pass

    _round_trips(benchmark, loop, Client(trace=Listener()), url)


@pytest.mark.benchmark(group="round-trip")
def test_round_trip_with_event_hooks(benchmark, loop, url) -> None:
    async def sign(request: object) -> None:
        request.headers["X-Signed"] = "1"  # type: ignore[attr-defined]

    async def check(response: object) -> None:
        pass

    hooks = {"request": [sign], "response": [check]}
    _round_trips(benchmark, loop, Client(event_hooks=hooks), url)


@pytest.mark.benchmark(group="round-trip")
def test_round_trip_instrumented_with_opentelemetry(benchmark, loop, url) -> None:
    """Spans made and ended (exported nowhere) and the duration recorded, per request."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from aiofasthttp.integrations.opentelemetry import instrument

    client = Client()
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    instrument(client, tracer_provider=TracerProvider(), meter_provider=meters)
    _round_trips(benchmark, loop, client, url)


@pytest.mark.benchmark(group="tracer-check")
def test_tracer_check_cost_per_request(benchmark) -> None:
    """What tracing costs a request when nothing listens: two ``is not None`` tests."""
    tracer = None

    def checks() -> None:
        if tracer is not None:
            raise AssertionError
        if tracer is not None:
            raise AssertionError

    benchmark(checks)


@pytest.mark.benchmark(group="head-encoding")
def test_build_request_cached(benchmark) -> None:
    client = Client()
    benchmark(
        client._build, "GET", "http://127.0.0.1:8080/small", None, None, None, None, None, False
    )


@pytest.mark.benchmark(group="head-encoding")
def test_build_request_new_url_with_headers(benchmark) -> None:
    client = Client()
    counter = itertools.count()

    def build() -> object:
        n = next(counter)
        return client._build(
            "POST",
            f"http://127.0.0.1:8080/items/{n}",
            {"page": n},
            {"X-Trace": "abc"},
            b"payload",
            None,
            None,
            False,
        )

    benchmark(build)


class _Sink:
    head = None

    def on_head(self, head) -> None:
        self.head = head

    def on_body(self, chunk: bytes) -> None:
        pass

    def on_complete(self) -> None:
        pass


def _parsed_head():
    sink = _Sink()
    ResponseParser(sink).feed(RESPONSE)
    return sink.head


@pytest.mark.benchmark(group="response-building")
def test_response_status_and_body_only(benchmark) -> None:
    head = _parsed_head()

    def build() -> int:
        r = Response("GET", "u", head)
        r._content = b"x" * 100
        return r.status

    assert build() == 200
    benchmark(build)


@pytest.mark.benchmark(group="response-building")
def test_response_with_header_lookup(benchmark) -> None:
    head = _parsed_head()

    def build() -> str:
        r = Response("GET", "u", head)
        return r.headers["content-type"]

    assert build() == "text/plain"
    benchmark(build)
