"""The pipelining scenario: PipelineClient next to the plain Client, same server, same load.

    python -m benchmarks.pipeline [--requests 20000] [--concurrency 64] [--repeat 3]

GET /small from the embedded server (which answers pipelined requests in
order): the plain Client with a pool of ``--concurrency`` connections, and
PipelineClient with ``--pipeline-conns`` connections carrying up to
``--concurrency`` requests in flight between them. Medians of ``--repeat``
alternating rounds; every body is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from .routes import SMALL_BODY
from .server import ServerProcess

MODES = ("plain", "pipelined")


async def _drive(url: str, mode: str, requests: int, concurrency: int, conns: int) -> float:
    from aiofasthttp import Client, PipelineClient

    client: Any
    if mode == "plain":
        client = Client(max_conns_per_host=concurrency)
    else:
        client = PipelineClient(url, max_conns=conns, max_pending_requests=concurrency)
    per_worker = requests // concurrency

    async def worker(n: int) -> None:
        for _ in range(n):
            r = await client.get(url + "/small")
            if r.status != 200 or r.content != SMALL_BODY:
                raise AssertionError(f"{mode}: a wrong response: {r!r}")

    try:
        await asyncio.gather(*(worker(max(1, per_worker // 10)) for _ in range(concurrency)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(per_worker) for _ in range(concurrency)))
        return per_worker * concurrency / (time.perf_counter() - started)
    finally:
        await client.aclose()


def run(requests: int, concurrency: int, repeat: int, conns: int) -> dict[str, Any]:
    import uvloop

    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    with ServerProcess() as server:
        for round_ in range(repeat):
            for mode in MODES:
                rate = uvloop.run(_drive(server.base_url, mode, requests, concurrency, conns))
                rates[mode].append(rate)
                print(f"  round {round_ + 1}/{repeat}  {mode:10s} {rate:9,.0f} req/s", flush=True)
    return {
        mode: {"median": statistics.median(r), "min": min(r), "max": max(r)}
        for mode, r in rates.items()
    }


def report(result: dict[str, Any], concurrency: int, conns: int) -> str:
    base = result["plain"]["median"]
    lines = [
        f"pipelining: GET /small, {concurrency} requests in flight; plain: {concurrency} "
        f"connections, pipelined: {conns}",
        "  mode         req/s median (min to max)   x plain",
    ]
    for mode, r in result.items():
        lines.append(
            f"  {mode:11s} {r['median']:9,.0f} ({r['min']:,.0f} to {r['max']:,.0f})"
            f"   {r['median'] / base:5.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__)
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--pipeline-conns", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    result = run(args.requests, args.concurrency, args.repeat, args.pipeline_conns)
    print(report(result, args.concurrency, args.pipeline_conns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
