"""OpenTelemetry instrumentation against a loopback server, read back through the SDK's
in-memory span exporter and metric reader."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from aiofasthttp import Client, ConnectError
from servers import HOST, LOOPS, ConnInfo, read_request, response, run, serve

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

from aiofasthttp.integrations.opentelemetry import instrument, uninstrument

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, client: Client) -> None:
        instrument(client, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def durations(self) -> list[Any]:
        data = self.reader.get_metrics_data()
        points = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "http.client.request.duration":
                        assert metric.unit == "s"
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry()
    yield t
    t.tracer_provider.shutdown()
    t.meter_provider.shutdown()


def traceparent_of(span: Any) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


def recorder(seen: dict[str, str | None]):
    """Answers /fail with 500, others with 200; records each target's traceparent."""

    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            info.requests += 1
            seen[req.target] = req.headers.get("traceparent")
            if req.target == "/stale" and info.requests == 2:
                return  # closed without an answer, as a server timing out a kept connection
            writer.write(response(b"ok", status=500 if req.target == "/fail" else 200))
            await writer.drain()

    return handler


def test_one_client_span_per_request_with_semantic_attributes(
    loop_kind: str, telemetry: Telemetry
) -> None:
    seen: dict[str, str | None] = {}

    async def main() -> None:
        async with serve(recorder(seen)) as srv, Client() as client:
            telemetry.instrument(client)
            url = f"http://user:secret@{HOST}:{srv.port}/a?sig=abc&page=2"
            assert (await client.get(url)).status == 200
            assert (await client.post(srv.url("/fail"), content=b"x")).status == 500
            first, second = telemetry.spans()
            assert first.kind is SpanKind.CLIENT and first.name == "GET"
            assert dict(first.attributes) == {
                "url.scheme": "http",
                "http.request.method": "GET",
                "server.address": HOST,
                "server.port": srv.port,
                "url.full": f"http://REDACTED:REDACTED@{HOST}:{srv.port}/a?sig=REDACTED&page=2",
                "http.response.status_code": 200,
                "network.protocol.version": "1.1",
            }
            assert [e.name for e in first.events] == ["aiofasthttp.connection.dialled"]
            assert seen["/a?sig=abc&page=2"] == traceparent_of(first)
            assert second.name == "POST" and second.attributes["error.type"] == "500"
            assert second.status.status_code is StatusCode.ERROR
            assert [e.name for e in second.events] == ["aiofasthttp.connection.reused"]
            assert seen["/fail"] == traceparent_of(second)
            points = telemetry.durations()
            assert sum(p.count for p in points) == 2
            by_status = {p.attributes["http.response.status_code"]: p for p in points}
            assert by_status[500].attributes["error.type"] == "500"
            assert by_status[200].attributes["http.request.method"] == "GET"
            assert all(0 < p.sum < 10 for p in points)

    run(loop_kind, main)


def test_a_replayed_request_counts_its_resends_and_shows_the_stale_replay(
    loop_kind: str, telemetry: Telemetry
) -> None:
    seen: dict[str, str | None] = {}

    async def main() -> None:
        async with serve(recorder(seen)) as srv, Client() as client:
            telemetry.instrument(client)
            await client.get(srv.url("/first"))
            assert (await client.get(srv.url("/stale"))).status == 200
            stale = telemetry.spans()[-1]
            assert stale.attributes["http.request.resend_count"] == 1
            names = [e.name for e in stale.events]
            assert names == [
                "aiofasthttp.connection.reused",
                "aiofasthttp.stale_replay",
                "aiofasthttp.connection.dialled",
            ]
            replay = stale.events[1].attributes
            assert replay["aiofasthttp.attempt"] == 1 and "closed" in replay["aiofasthttp.error"]
            assert "http.request.resend_count" not in telemetry.spans()[0].attributes

    run(loop_kind, main)


def test_a_failed_request_ends_its_span_with_the_error(
    loop_kind: str, telemetry: Telemetry
) -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]  # bound, not listening: refused

    async def main() -> None:
        async with Client(retry=False) as client:
            telemetry.instrument(client)
            with pytest.raises(ConnectError):
                await client.get(f"http://{HOST}:{port}/down")
        (span,) = telemetry.spans()
        assert span.attributes["error.type"] == "aiofasthttp.errors.ConnectError"
        assert span.status.status_code is StatusCode.ERROR
        assert [e.name for e in span.events] == ["aiofasthttp.gave_up", "exception"]
        (point,) = telemetry.durations()
        assert point.attributes["error.type"] == "aiofasthttp.errors.ConnectError"
        assert "http.response.status_code" not in point.attributes

    run(loop_kind, main)


def test_concurrent_requests_each_get_their_own_span(loop_kind: str, telemetry: Telemetry) -> None:
    seen: dict[str, str | None] = {}

    async def main() -> None:
        async with serve(recorder(seen)) as srv, Client() as client:
            telemetry.instrument(client)
            paths = [f"/c{i}" for i in range(16)]
            await asyncio.gather(*(client.get(srv.url(p)) for p in paths))
            spans = telemetry.spans()
            assert len(spans) == 16
            by_url = {s.attributes["url.full"].rsplit("/", 1)[1]: s for s in spans}
            for path in paths:
                span = by_url[path[1:]]
                assert seen[path] == traceparent_of(span)
                # Each span has exactly the connection events of its own request.
                assert len(span.events) == 1

    run(loop_kind, main)


def test_uninstrument_restores_the_plain_client_and_keeps_the_users_hooks(
    loop_kind: str, telemetry: Telemetry
) -> None:
    seen: dict[str, str | None] = {}
    events: list[str] = []
    hooked: list[str] = []

    class Trace:
        def head_received(self, **facts: Any) -> None:
            events.append(facts["url"])

    async def hook(request: Any) -> None:
        hooked.append(request.url)

    async def main() -> None:
        async with serve(recorder(seen)) as srv, Client(trace=Trace()) as client:
            telemetry.instrument(client)
            telemetry.instrument(client)  # twice is once
            client.event_hooks = {"request": [hook]}
            await client.get(srv.url("/on"))
            uninstrument(client)
            await client.get(srv.url("/off"))
            assert len(telemetry.spans()) == 1
            assert seen["/off"] is None
            assert events == [srv.url("/on"), srv.url("/off")]
            assert hooked == [srv.url("/on"), srv.url("/off")]
            client.event_hooks = {}
        async with Client() as plain:
            telemetry.instrument(plain)
            uninstrument(plain)
            assert plain._hooks is None and plain._coordinator.tracer is None

    run(loop_kind, main)


def test_importing_without_opentelemetry_names_the_extra(loop_kind: str) -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import aiofasthttp.integrations.opentelemetry\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "aiofasthttp[opentelemetry]" in out.stdout, out.stderr


def test_a_stream_span_ends_at_the_head_and_a_raising_hook_is_the_error(
    loop_kind: str, telemetry: Telemetry
) -> None:
    seen: dict[str, str | None] = {}

    async def refuse(resp: Any) -> None:
        raise LookupError("refused by a hook")

    async def main() -> None:
        async with serve(recorder(seen)) as srv, Client() as client:
            telemetry.instrument(client)
            async with client.stream("PURGE", srv.url("/s")) as resp:
                assert len(telemetry.spans()) == 1  # ended once the head came
                assert await resp.aread() == b"ok"
            (span,) = telemetry.spans()
            assert span.name == "HTTP" and span.attributes["http.request.method"] == "_OTHER"
            assert span.attributes["http.request.method_original"] == "PURGE"
            assert seen["/s"] == traceparent_of(span)
            client.event_hooks = {"response": [refuse]}
            with pytest.raises(LookupError):
                await client.get(srv.url("/r"))
            failed = telemetry.spans()[-1]
            assert failed.attributes["error.type"] == "builtins.LookupError"
            assert failed.status.status_code is StatusCode.ERROR

    run(loop_kind, main)
