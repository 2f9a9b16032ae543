"""One measurement in a fresh process: one client, one event loop, one cell.

``python -m benchmarks.worker`` reads a JSON spec on stdin and prints one JSON
result line on stdout. The parent starts a new worker for every client, cell
and round, so no loop, pool or import leaks from one measurement to the next.
How a run is timed and checked is in closedloop.py.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

from testkit import new_loop

from .clients import Adapter, open_adapter
from .closedloop import (
    GRACE,
    SteadyPlan,
    burst,
    describe,
    fixed_rate,
    merge_bursts,
    paced,
    steady,
)
from .routes import ROUTES


async def measure(spec: dict[str, Any], adapter: Adapter) -> dict[str, Any]:
    route = ROUTES[spec["route"]]
    conc = spec["concurrency"]
    plan = SteadyPlan(
        warmup=spec["warmup"],
        warmup_cap=spec["warmup_cap"],
        warmup_hard=spec["warmup_hard"],
        requests=spec["requests"],
        cap=spec["cap"],
        min_samples=spec["min_samples"],
        slow_cap=spec["slow_cap"],
    )
    gc.collect()
    return await steady(adapter.call_for(route), route.expect_length, conc, plan)


async def stale(spec: dict[str, Any], adapter: Adapter) -> dict[str, Any]:
    """Bursts separated by gaps, so the server's idle close and its request limit both bite."""
    route = ROUTES[spec["route"]]
    call = adapter.call_for(route)
    bursts: list[dict[str, Any]] = []
    deadline = time.monotonic() + spec["total_cap"]
    for gap in spec["gaps"]:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        cap = min(spec["cap"], left)
        result = await burst(call, route.expect_length, spec["concurrency"], spec["burst"], cap)
        bursts.append(result)
        if result["run"]["hung"]:
            break
        await asyncio.sleep(gap)
    lost = [b["run"]["errors"] for b in bursts]
    return {**merge_bursts(bursts), "bursts": len(bursts), "lost_per_burst": lost}


async def idle_edge(spec: dict[str, Any], adapter: Adapter) -> dict[str, Any]:
    """The poller at the idle edge: pauses exactly as long as the server's idle close."""
    route = ROUTES[spec["route"]]
    call = adapter.call_for(route)
    conc, every, pause = spec["concurrency"], spec["every"], spec["pause"]
    return await paced(call, route.expect_length, conc, spec["requests"], every, pause, spec["cap"])


async def rate(spec: dict[str, Any], adapter: Adapter) -> dict[str, Any]:
    """The latency view: a fixed request rate, latencies from when each request was due."""
    route = ROUTES[spec["route"]]
    call = adapter.call_for(route)
    gc.collect()
    conc, seconds, warmup = spec["concurrency"], spec["seconds"], spec["warmup"]
    return await fixed_rate(call, route.expect_length, conc, spec["rate"], seconds, warmup)


MODES = {"closed": measure, "stale": stale, "idle-edge": idle_edge, "rate": rate}


async def main_async(spec: dict[str, Any]) -> dict[str, Any]:
    adapter = open_adapter(
        spec["client"], spec["base_url"], spec["concurrency"], spec.get("ca_file")
    )
    try:
        result = await MODES[spec["mode"]](spec, adapter)
        result["extra"] = adapter.extra()
    finally:
        try:
            await asyncio.wait_for(adapter.aclose(), GRACE)
        except Exception as exc:
            sys.stderr.write(f"closing {spec['client']} failed: {describe(exc)}\n")
    return result


def run_on_loop(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    loop = new_loop(name)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main_async(spec))
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.close()


def main() -> None:
    spec = json.loads(sys.stdin.read())
    if spec.get("cpu") is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {spec["cpu"]})
    result = run_on_loop(spec["loop"], spec)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    if result["run"]["hung"]:
        os._exit(0)  # tasks that ignored cancellation: do not wait for them at exit


if __name__ == "__main__":
    main()
