"""Instructions per request, counted by callgrind (a noisy shared machine does not move them).

    python -m benchmarks.instructions                  # the plain client
    python -m benchmarks.instructions --variant hooks  # a request and a response hook
    python -m benchmarks.instructions --variant otel   # instrumented with OpenTelemetry
    python -m benchmarks.instructions --variant otel-noop  # the same, no-op providers

The workload is the one benchmarks/README.md describes: GETs at concurrency 64 over
loopback to an in-process uvloop server answering 100-byte bodies, one client. It
runs twice under ``valgrind --tool=callgrind`` (6,400 and 3,200 requests) and
prints the difference divided by 3,200, which cancels start-up and import costs.
``--run N`` is the workload itself (what valgrind runs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 100\r\n\r\n" + b"x" * 100
)
CONCURRENCY = 64


class _Server(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        if count:
            self.transport.write(RESPONSE * count)


def _client(variant: str) -> Any:
    from aiofasthttp import Client

    if variant == "hooks":

        async def on_request(request: Any) -> None:
            request.headers["X-Signed"] = "1"

        async def on_response(response: Any) -> None:
            pass

        return Client(
            max_conns_per_host=CONCURRENCY,
            event_hooks={"request": [on_request], "response": [on_response]},
        )
    client = Client(max_conns_per_host=CONCURRENCY)
    if variant == "otel-noop":
        from opentelemetry import metrics, trace

        from aiofasthttp.integrations.opentelemetry import instrument

        # The API's no-op providers: what the instrumentation itself costs, the SDK apart.
        noop = {"tracer_provider": trace.NoOpTracerProvider()}
        instrument(client, meter_provider=metrics.NoOpMeterProvider(), **noop)
    if variant == "otel":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider

        from aiofasthttp.integrations.opentelemetry import instrument

        # Spans are made and ended, exported nowhere: the instrumentation and the SDK.
        instrument(
            client,
            tracer_provider=TracerProvider(),
            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        )
    return client


async def _workload(requests: int, variant: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Server, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/small"
    client = _client(variant)

    async def worker(count: int) -> None:
        for _ in range(count):
            resp = await client.get(url)
            assert resp.status == 200 and len(resp.content) == 100

    await asyncio.gather(*(worker(requests // CONCURRENCY) for _ in range(CONCURRENCY)))
    await client.aclose()
    server.close()
    await server.wait_closed()


def _count(requests: int, variant: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-m",
                "benchmarks.instructions",
                "--run",
                str(requests),
                "--variant",
                variant,
            ],
            check=True,
            capture_output=True,
        )
        with open(out) as f:
            found = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
        assert found, "no totals in callgrind's output"
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant", choices=["plain", "hooks", "otel", "otel-noop"], default="plain"
    )
    parser.add_argument("--run", type=int, help="run the workload only, with this many GETs")
    args = parser.parse_args()
    if args.run:
        import uvloop

        uvloop.run(_workload(args.run, args.variant))
        return
    # One run outside valgrind first, so both counted runs import cached bytecode: a
    # first run after an edit compiles the changed modules, millions of instructions
    # the difference would otherwise charge to the requests.
    workload = [sys.executable, "-m", "benchmarks.instructions", "--variant", args.variant]
    subprocess.run([*workload, "--run", str(CONCURRENCY)], check=True)
    big, small = _count(6400, args.variant), _count(3200, args.variant)
    print(f"{args.variant}: {(big - small) / 3200:,.0f} instructions per request")


if __name__ == "__main__":
    main()
