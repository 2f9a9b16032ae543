"""The closed loop: ``concurrency`` coroutines share one client, each sending its
next request as soon as its last one is answered.

Every response is checked (status 200 and the route's body length); a failed
or wrong one is an error, with its time, and adds nothing to the speed or the
latencies. Completions are stamped, and figures come only from completions
inside the measured window, so a client that ignores cancellation and keeps
going after its cap gains nothing from it.

``steady()`` runs one loop without a pause: a warm-up, then the measured
window, then stop. The warm-up ends after ``warmup`` good responses, or after
``warmup_cap`` seconds once each coroutine has had a response (a slow client
is measured warm, not while its first wave is still in flight), or at
``warmup_hard``. The window ends after ``requests`` good responses, or after
``cap`` seconds once it holds ``min_samples`` of them, or at ``slow_cap``: a
slow client costs a few seconds, never minutes. Then the coroutines stop
sending, what is in flight is cancelled, and a request in flight for longer
than ``STUCK`` seconds and ten times the window's p99 is reported as stuck.

``burst()`` sends exactly ``requests`` requests (the stale scenario's bursts),
within ``cap`` seconds. ``paced()`` sends exactly ``requests`` requests too,
each coroutine pausing after every few of its own (the poller at the idle edge);
its rate is over the time a request was in flight, not the pauses.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .clients import Call

GRACE = 5.0  # seconds for cancelled requests to finish
POLL = 0.005  # how often the controller looks at the counts
STUCK = 1.0  # in flight this long at the stop (and 10 times the p99): stuck


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    text = text.splitlines()[0][:160] if text else ""
    name = f"{type(exc).__module__.split('.')[0]}.{type(exc).__name__}"
    return f"{name}: {text}" if text else name


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass(frozen=True)
class SteadyPlan:
    warmup: int
    warmup_cap: float
    warmup_hard: float
    requests: int
    cap: float
    min_samples: int
    slow_cap: float


class Loop:
    """The coroutines and what they saw: completion times, latencies, errors."""

    def __init__(self, call: Call, expect: int, conc: int, budget: int | None) -> None:
        self.call = call
        self.expect = expect
        self.conc = conc
        self.remaining = budget  # None: until stopped
        self.stopping = False
        self.ends: list[float] = []  # completion time of each good response
        self.latencies: list[float] = []
        self.errors: list[tuple[float, str]] = []
        self.in_flight: list[float | None] = [None] * conc
        self.warm_slots = 0  # coroutines that have had a good response
        self.tasks: list[asyncio.Future[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.ensure_future(self._worker(i)) for i in range(self.conc)]

    async def _worker(self, slot: int) -> None:
        call, expect, clock = self.call, self.expect, time.perf_counter
        ends, latencies, errors, in_flight = self.ends, self.latencies, self.errors, self.in_flight
        cold = True
        while not self.stopping:
            if self.remaining is not None:
                if self.remaining <= 0:
                    return
                self.remaining -= 1
            start = in_flight[slot] = clock()
            try:
                status, length = await call()
            except Exception as exc:
                errors.append((clock(), describe(exc)))
                continue
            finally:
                in_flight[slot] = None
            end = clock()
            if status == 200 and length == expect:
                ends.append(end)
                latencies.append(end - start)
                if cold:
                    cold = False
                    self.warm_slots += 1
            else:
                errors.append((end, f"wrong response: status {status}, {length} body bytes"))

    def done(self) -> bool:
        return all(task.done() for task in self.tasks)

    async def stop(self, stuck_after: float = STUCK) -> dict[str, int]:
        """Stop sending, cancel what is in flight; count what was stuck and what ignored us."""
        self.stopping = True
        now = time.perf_counter()
        stuck = sum(1 for t in self.in_flight if t is not None and now - t >= stuck_after)
        cut = sum(1 for t in self.in_flight if t is not None)
        pending = [task for task in self.tasks if not task.done()]
        for task in pending:
            task.cancel()
        hung = 0
        if pending:
            _, still = await asyncio.wait(pending, timeout=GRACE)
            hung = len(still)
        return {"cut": cut, "stuck": stuck, "hung": hung}


class Window:
    """The figures of the completions between two moments."""

    def __init__(self, loop: Loop, start: float, first: int) -> None:
        self.loop = loop
        self.start = start
        self.first = first
        self.end = start
        self.last = first

    def close(self, end: float) -> None:
        self.end = end
        self.last = len(self.loop.ends)

    @property
    def ok(self) -> int:
        return len(self.loop.ends) - self.first

    def summary(self, extra: dict[str, Any]) -> dict[str, Any]:
        lat = sorted(self.loop.latencies[self.first : self.last])
        elapsed = self.end - self.start
        errors = sum(1 for t, _ in self.loop.errors if self.start < t <= self.end)
        p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
        return {
            "ok": len(lat),
            "errors": errors,
            "elapsed": round(elapsed, 6),
            "rps": len(lat) / elapsed if elapsed > 0 else 0.0,
            "p50_ms": None if p50 is None else p50 * 1e3,
            "p99_ms": None if p99 is None else p99 * 1e3,
            **extra,
        }


async def _until(predicate: Any, poll: float = POLL) -> float:
    # A poll, not an Event: the coroutines stay free of any per-request signalling.
    while True:
        if predicate():
            return time.perf_counter()
        await asyncio.sleep(poll)


async def steady(call: Call, expect: int, conc: int, plan: SteadyPlan) -> dict[str, Any]:
    loop = Loop(call, expect, conc, None)
    clock = time.perf_counter
    began = clock()
    loop.start()

    def warm() -> bool:
        # Every coroutine answered at least once: its connection is open (with TLS, its
        # handshake done), so no dial falls inside the measured window.
        t, everyone = clock() - began, loop.warm_slots >= conc
        return (
            (everyone and (len(loop.ends) >= plan.warmup or t >= plan.warmup_cap))
            or t >= plan.warmup_hard
            or loop.done()
        )

    window = Window(loop, await _until(warm), len(loop.ends))
    warmup = {"ok": window.first, "elapsed": round(window.start - began, 6)}

    def measured() -> bool:
        t, n = clock() - window.start, window.ok
        return (
            n >= plan.requests
            or (t >= plan.cap and n >= plan.min_samples)
            or t >= plan.slow_cap
            or loop.done()
        )

    end = await _until(measured)
    window.close(end)
    p99 = percentile(sorted(loop.latencies[window.first : window.last]), 0.99) or 0.0
    outcome = await loop.stop(max(STUCK, 10 * p99))
    capped = window.ok < plan.requests
    run = window.summary({"capped": capped, **outcome})
    warmup["errors"] = sum(1 for t, _ in loop.errors if t <= window.start)
    seen = [e for e in loop.errors if e[0] <= window.end]
    return {"warmup": warmup, "run": run, "error_kinds": _kinds(seen)}


async def burst(call: Call, expect: int, conc: int, requests: int, cap: float) -> dict[str, Any]:
    loop = Loop(call, expect, conc, requests)
    window = Window(loop, time.perf_counter(), 0)
    loop.start()
    _, pending = await asyncio.wait(loop.tasks, timeout=cap)
    window.close(time.perf_counter())
    outcome = await loop.stop()
    run = window.summary({"capped": bool(pending), **outcome})
    seen = [e for e in loop.errors if e[0] <= window.end]
    return {"run": run, "latencies": loop.latencies[: window.last], "errors": seen}


class PacedLoop(Loop):
    """Each coroutine sends its share of ``requests`` and sleeps ``pause`` seconds
    before each further ``every`` requests, as a poller does."""

    def __init__(
        self, call: Call, expect: int, conc: int, requests: int, every: int, pause: float
    ) -> None:
        super().__init__(call, expect, conc, None)
        self.shares = [requests // conc + (slot < requests % conc) for slot in range(conc)]
        self.every = every
        self.pause = pause

    async def _worker(self, slot: int) -> None:
        clock, in_flight = time.perf_counter, self.in_flight
        for i in range(self.shares[slot]):
            if i and i % self.every == 0:
                await asyncio.sleep(self.pause)  # the workload's own pacing
            if self.stopping:
                return
            start = in_flight[slot] = clock()
            try:
                status, length = await self.call()
            except Exception as exc:
                self.errors.append((clock(), describe(exc)))
                continue
            finally:
                in_flight[slot] = None
            end = clock()
            if status == 200 and length == self.expect:
                self.ends.append(end)
                self.latencies.append(end - start)
            else:
                self.errors.append((end, f"wrong response: status {status}, {length} body bytes"))


def busy_time(ends: list[float], latencies: list[float]) -> float:
    """Seconds during which at least one of these requests was in flight."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted((e - lat, e) for e, lat in zip(ends, latencies, strict=True)):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


async def paced(
    call: Call, expect: int, conc: int, requests: int, every: int, pause: float, cap: float
) -> dict[str, Any]:
    loop = PacedLoop(call, expect, conc, requests, every, pause)
    window = Window(loop, time.perf_counter(), 0)
    loop.start()
    _, pending = await asyncio.wait(loop.tasks, timeout=cap)
    window.close(time.perf_counter())
    outcome = await loop.stop()
    run = window.summary({"capped": bool(pending), **outcome})
    busy = busy_time(loop.ends[: window.last], loop.latencies[: window.last])
    run["wall_rps"], run["wall_elapsed"] = run["rps"], run["elapsed"]
    run["elapsed"], run["rps"] = round(busy, 6), (run["ok"] / busy if busy > 0 else 0.0)
    seen = [e for e in loop.errors if e[0] <= window.end]
    return {"run": run, "error_kinds": _kinds(seen)}


def _kinds(errors: list[tuple[float, str]], most: int = 5) -> dict[str, int]:
    return dict(Counter(kind for _, kind in errors).most_common(most))


def merge_bursts(bursts: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary for the stale scenario: all bursts' responses over all bursts' time."""
    lat = sorted(x for b in bursts for x in b["latencies"])
    runs = [b["run"] for b in bursts]
    elapsed = sum(r["elapsed"] for r in runs)
    ok = sum(r["ok"] for r in runs)
    p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
    return {
        "run": {
            "ok": ok,
            "errors": sum(r["errors"] for r in runs),
            "elapsed": round(elapsed, 6),
            "rps": ok / elapsed if elapsed > 0 else 0.0,
            "p50_ms": None if p50 is None else p50 * 1e3,
            "p99_ms": None if p99 is None else p99 * 1e3,
            "capped": any(r["capped"] for r in runs),
            "cut": sum(r["cut"] for r in runs),
            "stuck": sum(r["stuck"] for r in runs),
            "hung": sum(r["hung"] for r in runs),
        },
        "error_kinds": _kinds([e for b in bursts for e in b["errors"]]),
    }


class RateLoop(Loop):
    """A fixed request rate over ``conc`` coroutines: request k is due at
    ``start + k / rate``, coroutine k mod ``conc`` sends it (at once, if it is late).

    A latency runs from when the request was due, not from when it was sent: a
    client that falls behind is charged for the wait its users would see (no
    coordinated omission). Responses due before ``record_from`` are the warm-up.
    """

    def __init__(self, call: Call, expect: int, conc: int, rate: float, due: int) -> None:
        super().__init__(call, expect, conc, None)
        self.rate = rate
        self.due = due  # requests in all, warm-up included
        self.t0 = 0.0
        self.record_from = 0
        self.sent_late = 0  # sent more than a millisecond after it was due
        self.due_at: list[float] = []  # per good response, in the order of ``ends``

    async def _worker(self, slot: int) -> None:
        clock, in_flight = time.perf_counter, self.in_flight
        for k in range(slot, self.due, self.conc):
            due = self.t0 + k / self.rate
            wait = due - clock()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -1e-3:
                self.sent_late += k >= self.record_from
            if self.stopping:
                return
            in_flight[slot] = clock()
            try:
                status, length = await self.call()
            except Exception as exc:
                self.errors.append((clock(), describe(exc)))
                continue
            finally:
                in_flight[slot] = None
            end = clock()
            if k < self.record_from:
                continue
            if status == 200 and length == self.expect:
                self.ends.append(end)
                self.latencies.append(end - due)
            else:
                self.errors.append((end, f"wrong response: status {status}, {length} body bytes"))


async def fixed_rate(
    call: Call, expect: int, conc: int, rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    """Send ``rate`` requests/s for ``warmup + seconds``; latency percentiles of the
    requests due after the warm-up, measured from when each was due."""
    loop = RateLoop(call, expect, conc, rate, round(rate * (warmup + seconds)))
    loop.record_from = round(rate * warmup)
    loop.t0 = time.perf_counter() + 0.01
    loop.start()
    cap = warmup + seconds + max(2.0, seconds)  # a client far behind is cut, not waited for
    _, pending = await asyncio.wait(loop.tasks, timeout=cap)
    end = time.perf_counter()
    outcome = await loop.stop()
    lat = sorted(loop.latencies)
    recorded = loop.due - loop.record_from
    began = loop.t0 + warmup
    q = {name: percentile(lat, p) for name, p in LATENCY_POINTS.items()}
    run = {
        "ok": len(lat),
        "errors": len(loop.errors),
        "due": recorded,
        "rate": rate,
        "rps": len(lat) / max(end - began, 1e-9) if lat else 0.0,  # achieved
        "sent_late": loop.sent_late,
        "elapsed": round(end - began, 6),
        "capped": bool(pending),
        **{f"{name}_ms": None if v is None else v * 1e3 for name, v in q.items()},
        "max_ms": lat[-1] * 1e3 if lat else None,
        **outcome,
    }
    return {"run": run, "error_kinds": _kinds(loop.errors)}


LATENCY_POINTS = {"p50": 0.50, "p99": 0.99, "p999": 0.999}
