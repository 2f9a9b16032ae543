"""The gateway scenario: requests/s through examples/gateway.py with each upstream client.

    python -m benchmarks.gateway [--requests 5000] [--concurrency 64] [--repeat 3]

The embedded server is the upstream; the example gateway (uvloop + httptools)
runs in its own process with aiofasthttp, then aiohttp, as its upstream
client; this process drives it with aiofasthttp at a fixed concurrency and
checks every body. Each figure is the median of ``--repeat`` rounds, and the
two gateways' rounds alternate so outside load falls on both alike. It runs
with 1 worker and with as many workers as the machine has cores (``--workers``:
processes sharing the port, each with its own client and a pool of
``--max-conns``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from testkit import ServerProcess as ChildServer

from .routes import SMALL_BODY
from .server import ROOT, ServerProcess

UPSTREAM_CLIENTS = ("aiofasthttp", "aiohttp")


class GatewayProcess(ChildServer):
    """examples/gateway.py in a subprocess, stopped by its own handle."""

    def __init__(self, upstream: str, client: str, max_conns: int, workers: int = 1) -> None:
        argv = [
            sys.executable, str(ROOT / "examples" / "gateway.py"), "--upstream", upstream,
            "--port", "0", "--max-conns", str(max_conns), "--upstream-client", client,
            "--workers", str(workers),
        ]  # fmt: skip
        super().__init__(argv, ready="gateway")

    @property
    def url(self) -> str:
        return self.said[2]  # "gateway on http://HOST:PORT"


async def _drive(url: str, requests: int, concurrency: int) -> tuple[float, int]:
    from aiofasthttp import Client

    errors = 0
    async with Client(max_conns_per_host=concurrency, timeout=30) as client:
        per_worker = requests // concurrency

        async def worker() -> None:
            nonlocal errors
            for _ in range(per_worker):
                try:
                    r = await client.get(url + "/small")
                    if r.status != 200 or r.content != SMALL_BODY:
                        errors += 1
                except Exception:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return per_worker * concurrency / elapsed, errors


def worker_counts() -> list[int]:
    """1 worker, and as many as the machine has cores (when that is more)."""
    return sorted({1, os.cpu_count() or 1})


def run(
    requests: int, concurrency: int, repeat: int, max_conns: int, workers: list[int] | None = None
) -> dict[str, Any]:
    """Per worker count (as a string: the JSON's keys), per upstream client: req/s."""
    import uvloop

    counts = workers or worker_counts()
    cases = [(n, name) for n in counts for name in UPSTREAM_CLIENTS]
    rates: dict[tuple[int, str], list[float]] = {case: [] for case in cases}
    errors = dict.fromkeys(cases, 0)
    with ServerProcess() as upstream:
        for round_ in range(repeat):
            for n, name in cases:
                with GatewayProcess(upstream.base_url, name, max_conns, n) as gw:
                    rate, errs = uvloop.run(_drive(gw.url, requests, concurrency))
                rates[n, name].append(rate)
                errors[n, name] += errs
                print(
                    f"  round {round_ + 1}/{repeat}  {n} worker(s)  {name:12s} {rate:9,.0f} req/s",
                    flush=True,
                )
    return {
        str(n): {
            name: {
                "median": statistics.median(rates[n, name]),
                "min": min(rates[n, name]),
                "max": max(rates[n, name]),
                "errors": errors[n, name],
            }
            for name in UPSTREAM_CLIENTS
        }
        for n in counts
    }


def report(result: dict[str, Any], concurrency: int) -> str:
    lines = [
        f"gateway scenario: GET /small through examples/gateway.py, concurrency {concurrency}",
        "  workers  upstream client   req/s median (min to max)   x aiohttp  errors",
    ]
    for n, by_client in result.items():
        base = by_client["aiohttp"]["median"]
        for name, r in by_client.items():
            lines.append(
                f"  {n:>7}  {name:16s} {r['median']:9,.0f} ({r['min']:,.0f} to {r['max']:,.0f})"
                f"   {r['median'] / base:6.2f}x   {r['errors']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gateway", description=__doc__)
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-conns", type=int, default=32, help="each worker's upstream pool")
    p.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        help="worker counts to run, comma-separated (default: 1 and the number of cores)",
    )
    args = p.parse_args(argv)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp is not installed: the gateway comparison needs it", file=sys.stderr)
        return 2
    result = run(args.requests, args.concurrency, args.repeat, args.max_conns, args.workers)
    print(report(result, args.concurrency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
