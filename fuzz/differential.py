"""The differential fuzzer: the compiled parser against its pure-Python twin.

Each case is a mutated seed (see :mod:`fuzz.inputs`) cut into feeds at random
places, with random ``expect()`` methods, limits and EOF. Both parsers read
it; their traces (:mod:`fuzz.harness`) must be equal: the same events (heads
with all attributes, headers and trailers included; body bytes; completions;
informational heads), the same ``in_message``, ``upgraded``,
``upgraded_data()``, ``messages_completed`` and ``upgrade_offset`` after every
feed, or the same error class, reason and offset, and the same refusal of
input after it. Three more checks ride along on the compiled parser's run:
it must be the same when the bytes come in one feed, its events must follow
the sink grammar, and one run must not take longer than ``SLOW_SECONDS``.

A finding is saved to the findings directory as JSON (the case, both traces,
the explanation), after a bounded greedy minimisation, once per signature.

The fuzzing runs in a worker process; the supervisor in this process watches
it through a small shared file the worker writes each case into before
running it. A worker that dies (a segfault in the C code) or stops making
progress for ``HANG_SECONDS`` leaves its last case there: the supervisor saves
it as a ``crash`` or ``hang`` finding and starts a new worker for the time left.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
import os
import pickle
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from . import harness
from .harness import Case, Trace
from .inputs import ROOT, Mutator, Seed, all_seeds

FINDINGS = Path(__file__).resolve().parent / "findings"
HANG_SECONDS = 10.0
SLOW_SECONDS = 0.5
MINIMISE_SECONDS = 20.0
BEACON_SIZE = 1 << 20
_HEADER = struct.Struct("<QI")  # cases started, length of the pickled case


def load_impls() -> tuple[ModuleType, ModuleType]:
    from aiofasthttp import _cparser  # type: ignore[attr-defined]
    from aiofasthttp.h1 import _pyparser

    return _pyparser, _cparser


# -- checking one case ------------------------------------------------------------


@dataclasses.dataclass
class Verdict:
    kind: str  # "disagreement", "crash", "split", "grammar", "slow"
    signature: tuple[Any, ...]
    detail: str
    traces: dict[str, Trace]


def _first_difference(a: Trace, b: Trace) -> str:
    if a.error is None or b.error is None:
        if a.error != b.error:
            return "error"
    elif a.error[:2] != b.error[:2]:
        return "error"
    elif a.error != b.error:
        return "offset"
    if a.events != b.events:
        return "events"
    if a.steps != b.steps:
        return "steps"
    return "after_error"


def _reason(trace: Trace) -> str | None:
    return None if trace.error is None else trace.error[1]


def _crash_line(trace: Trace) -> str:
    assert trace.crash is not None
    return trace.crash.strip().splitlines()[-1][:120]


def _end_state(trace: Trace) -> tuple[Any, ...]:
    """What must not depend on the split: events, the error, and the state after the last feed."""
    last = trace.steps[-1:] if trace.error is None else None
    return (trace.events, trace.error, trace.after_error, last)


def check(case: Case, python: ModuleType, compiled: ModuleType) -> Verdict | None:
    """Run ``case`` on both parsers; a Verdict when something is wrong, else None."""
    py = harness.run(python, case)
    started = time.perf_counter()
    c = harness.run(compiled, case)
    elapsed = time.perf_counter() - started
    traces = {"python": py, "c": c}
    for name, trace in traces.items():
        if trace.crash:
            return Verdict("crash", ("crash", name, _crash_line(trace)), trace.crash, traces)
    if py != c:
        where = _first_difference(py, c)
        return Verdict(
            "disagreement",
            ("disagreement", where, _reason(py), _reason(c)),
            harness.explain(py, c),
            traces,
        )
    if (case.cuts or case.piece_types) and not case.raise_at:
        whole = harness.run(compiled, dataclasses.replace(case, cuts=(), piece_types=()))
        if _end_state(whole) != _end_state(c):
            traces["c_whole"] = whole
            return Verdict(
                "split",
                ("split", _first_difference(whole, c), _reason(whole), _reason(c)),
                harness.explain(whole, c, ("whole", "split")),
                traces,
            )
    fault = None if case.raise_at else harness.event_order_fault(c.events)
    if fault:
        return Verdict("grammar", ("grammar", fault), fault, traces)
    if elapsed > SLOW_SECONDS:
        return Verdict("slow", ("slow", len(case.data) // 1024), f"{elapsed:.3f} s", traces)
    return None


# -- minimising a finding -----------------------------------------------------------


def _without(case: Case, start: int, end: int) -> Case:
    """``case`` with ``data[start:end]`` removed and its cuts moved to match."""
    gone = end - start
    cuts = tuple(c if c <= start else max(start, c - gone) for c in case.cuts)
    return dataclasses.replace(case, data=case.data[:start] + case.data[end:], cuts=cuts)


def minimise(case: Case, still: Callable[[Case], bool], seconds: float = MINIMISE_SECONDS) -> Case:
    """Greedily drop bytes, cuts, methods, limits and piece types while ``still`` holds."""
    deadline = time.monotonic() + seconds

    def attempt(candidate: Case) -> bool:
        nonlocal case
        if candidate != case and time.monotonic() < deadline and still(candidate):
            case = candidate
            return True
        return False

    def simplify() -> None:
        for field, plain in (
            ("piece_types", ()), ("limits", ()), ("methods", ()), ("eof", False),
            ("lazy_heads", False), ("raise_at", 0),
        ):  # fmt: skip
            attempt(dataclasses.replace(case, **{field: plain}))

    simplify()
    size = max(1, len(case.data) // 2)
    while size >= 1 and time.monotonic() < deadline:
        start = 0
        while start < len(case.data) and time.monotonic() < deadline:
            if not attempt(_without(case, start, start + size)):
                start += size
        size //= 2
    for cut in sorted(set(case.cuts), reverse=True):
        attempt(dataclasses.replace(case, cuts=tuple(c for c in case.cuts if c != cut)))
    attempt(dataclasses.replace(case, cuts=tuple(sorted(set(case.cuts)))))
    simplify()
    return case


# -- saving -------------------------------------------------------------------------


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip()
    except OSError:
        return ""


def save_finding(
    directory: Path, kind: str, case: Case, detail: str, extra: dict[str, Any] | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    blob = json.dumps(case.to_json(), sort_keys=True).encode()
    path = directory / f"{kind}-{hashlib.sha1(blob).hexdigest()[:12]}.json"
    record = {"kind": kind, "case": case.to_json(), "detail": detail, "commit": _git_head()}
    record.update(extra or {})
    path.write_text(json.dumps(record, indent=1, default=repr) + "\n")
    return path


def replay(path: Path) -> Verdict | None:
    """Check a saved finding again on the parsers installed now."""
    record = json.loads(path.read_text())
    python, compiled = load_impls()
    return check(Case.from_json(record["case"]), python, compiled)


# -- the worker ---------------------------------------------------------------------


class Beacon:
    """The case being run, written where the supervisor can read it if the worker dies."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "r+b")  # noqa: SIM115 - kept open for the worker's life
        self._map = mmap.mmap(self._file.fileno(), BEACON_SIZE)
        self.count = 0

    def write(self, case: Case) -> None:
        blob = pickle.dumps(case, protocol=pickle.HIGHEST_PROTOCOL)
        if len(blob) > BEACON_SIZE - _HEADER.size:
            blob = b""
        self.count += 1
        self._map[_HEADER.size : _HEADER.size + len(blob)] = blob
        self._map[: _HEADER.size] = _HEADER.pack(self.count, len(blob))

    @staticmethod
    def read(path: str) -> tuple[int, Case | None]:
        with open(path, "rb") as f:
            raw = f.read(BEACON_SIZE)
        count, size = _HEADER.unpack_from(raw)
        if not size:
            return count, None
        try:
            return count, pickle.loads(raw[_HEADER.size : _HEADER.size + size])
        except Exception:
            return count, None


def make_case(mutator: Mutator, pool: list[Seed]) -> tuple[Case, Seed]:
    rng = mutator.rng
    seed = rng.choice(pool)
    count = rng.choice([0, 1, 1, 1, 2, 2, 3, 4, 6, 8]) if rng.random() < 0.95 else 0
    data = mutator.mutate(seed.data, count)[:32768]
    case = Case(
        data=data,
        cuts=mutator.cuts(len(data)),
        methods=mutator.methods(seed),
        limits=mutator.limits(seed),
        eof=rng.random() < 0.7,
        piece_types=mutator.piece_types(),
        lazy_heads=rng.random() < 0.3,
        raise_at=rng.randint(1, 6) if rng.random() < 0.1 else 0,
    )
    return case, seed


def _outcome_signature(trace: Trace) -> tuple[Any, ...]:
    kinds = tuple(dict.fromkeys(kind for kind, _ in trace.events))
    return (_reason(trace), kinds, trace.steps[-1][3] if trace.steps else None)


def fuzz_loop(
    seconds: float, seed: int, findings: Path, beacon: Beacon | None = None, log: Any = None
) -> dict[str, Any]:
    """Fuzz until ``seconds`` have passed; return the statistics."""
    python, compiled = load_impls()
    rng = random.Random(seed)
    seeds = all_seeds()
    pool = list(seeds)
    mutator = Mutator(rng, seeds)
    seen_outcomes: set[tuple[Any, ...]] = set()
    found: Counter[tuple[Any, ...]] = Counter()
    saved: list[str] = []
    stats: Counter[str] = Counter()
    started = time.monotonic()
    deadline = started + seconds
    next_report = started + 60
    while (now := time.monotonic()) < deadline:
        if now > next_report:
            next_report = now + 60
            _say(
                log, f"... {stats['cases']} cases, pool {len(pool)}, findings {sum(found.values())}"
            )
        case, origin = make_case(mutator, pool)
        if beacon is not None:
            beacon.write(case)
        verdict = check(case, python, compiled)
        stats["cases"] += 1
        if verdict is None:
            # Keep inputs that reached an outcome not seen before as seeds of their own.
            outcome = _outcome_signature(harness.run(compiled, case))
            data = case.data
            if outcome not in seen_outcomes and len(pool) < 4 * len(seeds) and len(data) <= 4096:
                seen_outcomes.add(outcome)
                pool.append(dataclasses.replace(origin, name="grown", data=case.data))
            continue
        stats[verdict.kind] += 1
        found[verdict.signature] += 1
        if found[verdict.signature] > 1:
            continue

        def still(candidate: Case, signature: tuple[Any, ...] = verdict.signature) -> bool:
            if beacon is not None:
                beacon.write(candidate)
            again = check(candidate, python, compiled)
            return again is not None and again.signature == signature

        small = minimise(case, still) if verdict.kind != "slow" else case
        final = check(small, python, compiled) or verdict
        path = save_finding(
            findings,
            verdict.kind,
            small,
            final.detail,
            {
                "signature": list(verdict.signature),
                "seed": seed,
                "original_case": case.to_json(),
                "traces": {k: harness.trace_json(t) for k, t in final.traces.items()},
            },
        )
        saved.append(str(path))
        _say(log, f"FINDING {verdict.kind} {verdict.signature} -> {path}\n{final.detail}")
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 1),
        "seed": seed,
        "cases": stats["cases"],
        "cases_per_second": round(stats["cases"] / max(elapsed, 1e-9)),
        "pool": len(pool),
        "findings": {repr(k): v for k, v in found.items()},
        "saved": saved,
    }


def _say(log: Any, text: str) -> None:
    if log is not None:
        print(text, file=log, flush=True)


def worker_main(argv: list[str]) -> int:
    """``python -m fuzz.differential --worker SECONDS SEED FINDINGS BEACON STATS LOG``"""
    seconds, seed, findings, beacon_path, stats_path, log_path = argv
    with open(log_path, "a") as log:
        stats = fuzz_loop(float(seconds), int(seed), Path(findings), Beacon(beacon_path), log)
    Path(stats_path).write_text(json.dumps(stats))
    return 0


# -- the supervisor -----------------------------------------------------------------


def supervise(
    seconds: float, seed: int, findings: Path = FINDINGS, log: Any = sys.stdout
) -> dict[str, Any]:
    """Run workers for ``seconds`` in all; save what kills or stalls one. Returns totals."""
    deadline = time.monotonic() + seconds
    totals: dict[str, Any] = {"seed": seed, "cases": 0, "workers": 0, "findings": {}, "saved": []}
    with tempfile.TemporaryDirectory(prefix="aiofasthttp-fuzz-") as tmp:
        files = {name: os.path.join(tmp, name) for name in ("beacon", "stats", "log")}
        worker_seed = seed
        while deadline - time.monotonic() > 0.5:
            with open(files["beacon"], "wb") as f:
                f.truncate(BEACON_SIZE)
            for name in ("stats", "log"):
                Path(files[name]).write_text("")
            trouble = _run_worker(deadline - time.monotonic(), worker_seed, findings, files, log)
            totals["workers"] += 1
            text = Path(files["stats"]).read_text()
            if text:
                stats = json.loads(text)
                totals["cases"] += stats["cases"]
                totals["saved"] += stats["saved"]
                for key, n in stats["findings"].items():
                    totals["findings"][key] = totals["findings"].get(key, 0) + n
            if trouble is None:
                break
            kind, detail = trouble
            count, case = Beacon.read(files["beacon"])
            if count == 0:
                raise RuntimeError(f"the fuzz worker failed before its first case ({detail})")
            totals["cases"] += count
            key = repr((kind, detail))
            totals["findings"][key] = totals["findings"].get(key, 0) + 1
            if case is None:
                _say(log, f"FINDING {kind} with no case recorded: {detail}")
            else:
                path = save_finding(findings, kind, case, detail, {"seed": worker_seed})
                totals["saved"].append(str(path))
                _say(log, f"FINDING {kind}: {detail} -> {path}")
            worker_seed += 1_000_003  # go on with other cases
    totals["seconds"] = round(seconds - max(0.0, deadline - time.monotonic()), 1)
    return totals


def _run_worker(
    seconds: float, seed: int, findings: Path, files: dict[str, str], log: Any
) -> tuple[str, str] | None:
    """Run one worker to its end; ("crash"|"hang", detail) if it died or stalled."""
    cmd = [
        sys.executable,
        "-m",
        "fuzz.differential",
        "--worker",
        str(seconds),
        str(seed),
        str(findings),
        files["beacon"],
        files["stats"],
        files["log"],
    ]
    proc = subprocess.Popen(cmd, cwd=str(ROOT))
    last_count, last_change, relayed = -1, time.monotonic(), 0
    trouble = None
    while trouble is None and proc.poll() is None:
        time.sleep(0.25)
        relayed = _relay(files["log"], relayed, log)
        count, _ = Beacon.read(files["beacon"])
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change > HANG_SECONDS:
            proc.kill()
            trouble = ("hang", f"no progress for {HANG_SECONDS:.0f} s on one case")
    proc.wait()
    _relay(files["log"], relayed, log)
    if trouble is None and proc.returncode != 0:
        trouble = ("crash", f"worker exited with status {proc.returncode}")
    return trouble


def _relay(path: str, done: int, log: Any) -> int:
    """Copy the worker's log lines written since ``done`` bytes to ``log``."""
    with open(path, "rb") as f:
        f.seek(done)
        text = f.read()
    if text and log is not None:
        log.write(text.decode("utf-8", "replace"))
        log.flush()
    return done + len(text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit("use: python -m fuzz --target differential --seconds N [--seed S]")
