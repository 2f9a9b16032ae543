"""Walk the matrix: one fresh worker process per client, cell and round.

The order is fair to a noisy machine: for each cell, round 1 runs every client
once, then round 2, and so on, with the clients' order rotated each round, so
a burst of outside load lands on one round of several clients rather than on
every round of one. A worker that outlives its time budget is killed by its
own handle and reported as timed out; the suite goes on.

The stale scenario has three parts, each against a server of its own (see
``STALE_SCENARIOS``); ``run_stale`` walks any of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import gopeer
from .closedloop import GRACE
from .server import ROOT, ServerProcess

STARTUP_ALLOWANCE = 20.0  # seconds for a worker to import its client and connect


@dataclass
class MatrixPlan:
    clients: list[str]
    loops: list[str]
    concurrency: list[int]
    routes: list[str]
    requests: int
    repeat: int
    cap: float
    warmup_cap: float
    warmup_hard: float = 2.5
    slow_cap: float = 3.0
    # The HTTPS cells (the server's TLS listener; ca_file: the run's CA, None: no TLS)
    tls_routes: list[str] = field(default_factory=list)
    tls_concurrency: list[int] = field(default_factory=list)
    ca_file: str | None = None
    go_client: list[str] | None = None  # the Go peer's argv, when it is in ``clients``

    def cells(self) -> list[tuple[str, str, str, int]]:
        """(loop, scheme, route, concurrency): the plain cells, then the HTTPS ones."""
        plain = [("http", r, c) for r in self.routes for c in self.concurrency]
        tls = [("https", r, c) for r in self.tls_routes for c in self.tls_concurrency]
        if self.ca_file is None:
            tls = []
        return [(lp, *cell) for lp in self.loops for cell in plain + tls]


@dataclass
class LatencyPlan:
    """The latency view: each client held at a fixed request rate, p99 and p99.9."""

    clients: list[str]
    loops: list[str]
    concurrency: int
    rate: float  # requests per second, over all the coroutines
    seconds: float  # measured, after the warm-up
    warmup: float
    repeat: int
    route: str = "small"
    go_client: list[str] | None = None  # the Go peer's argv, when it is in ``clients``

    def budget(self) -> float:
        return STARTUP_ALLOWANCE + self.warmup + 2 * self.seconds + 2.0 + 3 * GRACE


STALE_SCENARIOS = {
    "mixed": "bursts with pauses around the idle close; the server closes on idle and on count",
    "idle-edge": "the poller at the idle edge: each worker pauses exactly the idle close",
    "first-contact": "a silent request limit that every connection reaches at once",
}


class StaleScenario(Protocol):
    """What ``run_stale`` needs from a part of the stale scenario."""

    name: str
    clients: list[str]
    loops: list[str]
    routes: list[str]
    concurrency: int

    def server_options(self) -> dict[str, Any]:
        """Keywords for the ServerProcess this part runs against."""
        ...

    def worker_spec(self) -> dict[str, Any]:
        """The part of a worker's spec that says what to send, and when."""
        ...

    def budget(self) -> float:
        """Seconds a worker may take before it is killed."""
        ...

    def caption(self) -> str:
        """What the server does and what is sent, for the report."""
        ...


@dataclass
class StalePlan:
    """The mixed part: bursts separated by pauses, against both of the server's closes."""

    clients: list[str]
    loops: list[str]
    concurrency: int
    bursts: int
    burst: int
    idle_close: float
    max_requests: int
    cap: float  # per burst
    total_cap: float  # per client, loop and route
    routes: list[str] = field(default_factory=lambda: ["small"])
    name: str = "mixed"

    # The pauses after each burst, in units of the server's idle close: mostly past
    # it (every idle connection is closed), some right at it (the close races the
    # next request), one short of it (the connections are still good).
    GAP_FACTORS = (1.5, 1.0, 2.0, 0.9, 1.25, 1.05)

    def gaps(self) -> list[float]:
        factors = self.GAP_FACTORS
        return [round(self.idle_close * factors[i % len(factors)], 3) for i in range(self.bursts)]

    def server_options(self) -> dict[str, Any]:
        return {"idle_close": self.idle_close, "max_requests": self.max_requests}

    def worker_spec(self) -> dict[str, Any]:
        return {
            "mode": "stale",
            "burst": self.burst,
            "gaps": self.gaps(),
            "cap": self.cap,
            "total_cap": self.total_cap,
        }

    def budget(self) -> float:
        return STARTUP_ALLOWANCE + self.total_cap + self.cap + max(self.gaps()) + 3 * GRACE

    def caption(self) -> str:
        gaps = self.gaps()
        return (
            f"the server closes a connection idle {self.idle_close:g} s and after "
            f"{self.max_requests} requests, without Connection: close; {self.bursts} bursts "
            f"of {self.burst:,} requests, pauses {min(gaps):g} to {max(gaps):g} s"
        )


@dataclass
class IdleEdgePlan:
    """The poller at the idle edge: a server that closes connections idle ``idle_close``
    seconds (and has no request limit), and workers that each pause exactly that long
    after every ``every`` requests, so each pause ends as the server's timer fires."""

    clients: list[str]
    loops: list[str]
    routes: list[str]
    concurrency: int
    requests: int  # in all, shared by the workers
    idle_close: float
    every: int = 10
    cap: float = 90.0  # per client, loop and route (httpx needs 15 to 30 s here under load)
    name: str = "idle-edge"

    def server_options(self) -> dict[str, Any]:
        return {"idle_close": self.idle_close}

    def worker_spec(self) -> dict[str, Any]:
        return {
            "mode": "idle-edge",
            "requests": self.requests,
            "every": self.every,
            "pause": self.idle_close,
            "cap": self.cap,
        }

    def budget(self) -> float:
        return STARTUP_ALLOWANCE + self.cap + 3 * GRACE

    def caption(self) -> str:
        return (
            f"the server closes a connection idle {self.idle_close:g} s (no request limit); "
            f"{self.requests:,} requests, each worker pausing {self.idle_close:g} s after "
            f"every {self.every}; req/s counts the time with a request in flight"
        )


@dataclass
class FirstContactPlan:
    """First contact: a server that closes every connection silently after
    ``max_requests`` responses (no idle close), met by bursts large enough that all
    the connections reach that count at once in the first burst."""

    clients: list[str]
    loops: list[str]
    routes: list[str]
    concurrency: int
    bursts: int
    burst: int
    max_requests: int
    gap: float = 0.3  # the pause after each burst
    cap: float = 15.0  # per burst
    total_cap: float = 90.0  # per client, loop and route (httpx needs 30 s here under load)
    name: str = "first-contact"

    def server_options(self) -> dict[str, Any]:
        return {"max_requests": self.max_requests}

    def worker_spec(self) -> dict[str, Any]:
        return {
            "mode": "stale",
            "burst": self.burst,
            "gaps": [self.gap] * self.bursts,
            "cap": self.cap,
            "total_cap": self.total_cap,
        }

    def budget(self) -> float:
        return STARTUP_ALLOWANCE + self.total_cap + self.cap + self.gap + 3 * GRACE

    def caption(self) -> str:
        return (
            f"the server closes each connection after {self.max_requests} responses, "
            f"silently (no idle close); {self.bursts} bursts of {self.burst:,} requests, "
            f"{self.gap:g} s apart; lost per burst in the notes"
        )


@dataclass
class Pinning:
    server_cpu: int | None
    client_cpu: int | None
    note: str

    @classmethod
    def detect(cls, mode: str = "split") -> Pinning:
        if mode == "none":
            return cls(None, None, "not pinned (--pin none): the OS scheduler places both")
        if not hasattr(os, "sched_getaffinity"):
            return cls(None, None, "no CPU pinning on this OS")
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return cls(None, None, f"{len(cpus)} CPU available: server and client share it")
        return cls(
            cpus[0],
            cpus[1],
            f"server pinned to CPU {cpus[0]}, each client worker to CPU {cpus[1]}",
        )


@dataclass
class Progress:
    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self, text: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        sys.stderr.write(
            f"[{self.done:>3}/{self.total}] {elapsed:5.0f}s (~{eta:4.0f}s left) {text}\n"
        )
        sys.stderr.flush()


def run_worker(
    spec: dict[str, Any], budget: float, argv: list[str] | None = None
) -> dict[str, Any]:
    """Run one worker (the Python one, or ``argv``: the Go peer's); its result, or a
    status saying how it failed."""
    proc = subprocess.Popen(
        argv or [sys.executable, "-m", "benchmarks.worker"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(json.dumps(spec), timeout=budget)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"status": "timeout", "detail": f"no result within {budget:.0f} s; killed"}
    finally:
        if proc.poll() is None:  # Ctrl-C or another error while waiting
            proc.kill()
            proc.wait()
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {"status": "crashed", "detail": f"exit {proc.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    result["status"] = "hung" if result["run"]["hung"] else "ok"
    return result


def _describe(result: dict[str, Any]) -> str:
    if result["status"] not in ("ok", "hung"):
        return f"{result['status'].upper()}: {result['detail']}"
    run = result["run"]
    text = f"{run['rps']:>9,.0f} req/s"
    if run["p50_ms"] is not None:
        text += f"  p50 {run['p50_ms']:6.2f} ms"
    if run["capped"]:
        text += f"  ({run['ok']:,} in the {run['elapsed']:.2f} s cap)"
    errors = run["errors"] + result.get("warmup", {}).get("errors", 0)
    if errors:
        text += f"  {errors:,} ERRORS"
    if run["stuck"]:
        text += f"  {run['stuck']} STUCK"
    if result["status"] == "hung":
        text += "  HUNG"
    per_burst = result.get("lost_per_burst")
    if errors and per_burst:
        text += f" (per burst {','.join(map(str, per_burst))})"
    return text


class Server(Protocol):
    """The server a matrix runs against: the embedded one, or Go's (``--server go``)."""

    @property
    def base_url(self) -> str: ...

    @property
    def tls_url(self) -> str | None: ...

    def alive(self) -> bool: ...


def run_matrix(
    plan: MatrixPlan, pinning: Pinning, server: Server, sink: list[dict[str, Any]]
) -> None:
    """Append one record per client and cell to ``sink`` (so Ctrl-C keeps what is done)."""
    cells = plan.cells()
    progress = Progress(len(cells) * plan.repeat * len(plan.clients))
    budget = STARTUP_ALLOWANCE + plan.warmup_hard + plan.slow_cap + 3 * GRACE
    for loop, scheme, route, conc in cells:
        where = {"loop": loop, "scheme": scheme, "route": route, "concurrency": conc}
        records = {name: {**where, "client": name, "rounds": []} for name in plan.clients}
        tls = scheme == "https"
        sink.extend(records.values())
        for round_no in range(plan.repeat):
            shift = round_no % len(plan.clients)
            for name in plan.clients[shift:] + plan.clients[:shift]:
                if not server.alive():
                    raise RuntimeError("the benchmark server died; see its messages above")
                spec = {
                    "mode": "closed",
                    "client": name,
                    "loop": loop,
                    "base_url": server.tls_url if tls else server.base_url,
                    "ca_file": plan.ca_file if tls else None,
                    "route": route,
                    "concurrency": conc,
                    "warmup": max(200, 2 * conc),
                    "warmup_cap": plan.warmup_cap,
                    "warmup_hard": plan.warmup_hard,
                    "requests": plan.requests,
                    "cap": plan.cap,
                    "min_samples": max(100, conc),
                    "slow_cap": plan.slow_cap,
                    "cpu": pinning.client_cpu,
                }
                argv = None
                if name == gopeer.NAME:
                    argv = plan.go_client
                    spec |= gopeer.route_fields(route)
                result = run_worker(spec, budget, argv)
                records[name]["rounds"].append(result)
                shown = f"https {route}" if tls else route
                label = f"{loop:<7} {shown:<11} c={conc:<4} round {round_no + 1}/{plan.repeat}"
                progress.line(f"{label} {name:<11} {_describe(result)}")


def run_stale(
    plan: StaleScenario, pinning: Pinning, server: ServerProcess, sink: list[dict[str, Any]]
) -> None:
    """One worker per loop, route and client against ``server`` (started with
    ``plan.server_options()``); one record each, tagged with the part's name."""
    progress = Progress(len(plan.loops) * len(plan.routes) * len(plan.clients))
    budget = plan.budget()
    for loop in plan.loops:
        for route in plan.routes:
            for name in plan.clients:
                if not server.alive():
                    raise RuntimeError("the stale-scenario server died; see its messages above")
                spec = {
                    "client": name,
                    "loop": loop,
                    "base_url": server.base_url,
                    "route": route,
                    "concurrency": plan.concurrency,
                    "cpu": pinning.client_cpu,
                    **plan.worker_spec(),
                }
                result = run_worker(spec, budget)
                where = {"loop": loop, "route": route, "client": name}
                sink.append(
                    {"scenario": plan.name, **where, "concurrency": plan.concurrency} | result
                )
                label = f"{plan.name:<13} {loop:<7} {route:<7} c={plan.concurrency:<3}"
                progress.line(f"{label} {name:<11} {_describe(result)}")


def run_latency(
    plan: LatencyPlan, pinning: Pinning, server: Server, sink: list[dict[str, Any]]
) -> None:
    """One record per loop and client; its rounds interleaved across clients as in the matrix."""
    progress = Progress(len(plan.loops) * plan.repeat * len(plan.clients))
    for loop in plan.loops:
        where = {"loop": loop, "route": plan.route, "concurrency": plan.concurrency}
        records = {name: {**where, "client": name, "rounds": []} for name in plan.clients}
        sink.extend(records.values())
        for round_no in range(plan.repeat):
            shift = round_no % len(plan.clients)
            for name in plan.clients[shift:] + plan.clients[:shift]:
                if not server.alive():
                    raise RuntimeError("the benchmark server died; see its messages above")
                spec = {
                    "mode": "rate",
                    "client": name,
                    "loop": loop,
                    "base_url": server.base_url,
                    "route": plan.route,
                    "concurrency": plan.concurrency,
                    "rate": plan.rate,
                    "seconds": plan.seconds,
                    "warmup": plan.warmup,
                    "cpu": pinning.client_cpu,
                }
                argv = None
                if name == gopeer.NAME:
                    argv = plan.go_client
                    spec |= gopeer.route_fields(plan.route)
                result = run_worker(spec, plan.budget(), argv)
                records[name]["rounds"].append(result)
                label = f"latency {loop:<7} {plan.rate:,.0f}/s c={plan.concurrency:<3}"
                progress.line(
                    f"{label} round {round_no + 1}/{plan.repeat} {name:<11} "
                    f"{_describe_rate(result)}"
                )


def _describe_rate(result: dict[str, Any]) -> str:
    if result["status"] not in ("ok", "hung"):
        return f"{result['status'].upper()}: {result['detail']}"
    run = result["run"]
    text = f"{run['rps']:>8,.0f} req/s"
    for name in ("p50", "p99", "p999"):
        value = run[f"{name}_ms"]
        text += f"  {name} {'-' if value is None else format(value, '.2f')} ms"
    if run["errors"]:
        text += f"  {run['errors']:,} ERRORS"
    return text
