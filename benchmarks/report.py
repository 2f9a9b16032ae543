"""Turn the workers' records into figures: the terminal table, Markdown, JSON.

Per client and cell: requests/s as the median over the rounds with the min and
max beside it, p50 and p99 latency (each the median over the rounds of that
round's percentile), and the ratio of the median to aiohttp's and to the
ceiling client's in the same cell. Only checked responses count: a round's
errors are shown next to its figures, never folded into them.

The stale scenario: one row per part, loop, route and client, then a summary
per part, loop and client: lost (failed) POSTs and GETs, and the rate of each.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

from .routes import ROUTES

ROUTE_LABELS = {
    "small": "GET /small (100 B)",
    "64k": "GET /64k (64 KiB)",
    "chunked": "GET /chunked (8 x 1 KiB chunks)",
    "post": "POST /post (4 KiB body)",
}


@dataclass
class Row:
    loop: str
    route: str
    concurrency: int
    client: str
    rps: float | None = None  # median over rounds
    rps_min: float | None = None
    rps_max: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    ok: int = 0
    errors: int = 0
    rounds: int = 0
    notes: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    vs_aiohttp: float | None = None
    vs_ceiling: float | None = None
    scheme: str = "http"  # "https": the same route over TLS
    vs_go: float | None = None  # to Go's fasthttp client in the same cell


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(record: dict[str, Any], cap: float) -> Row:
    row = Row(record["loop"], record["route"], record["concurrency"], record["client"])
    row.scheme = record.get("scheme", "http")
    runs = []
    for result in record["rounds"]:
        if result["status"] in ("timeout", "crashed"):
            row.notes.append(result["status"])
            kind = result["detail"][:200]
            row.error_kinds[kind] = row.error_kinds.get(kind, 0) + 1
            continue
        if result["status"] == "hung":
            row.notes.append("ignored cancellation")
        runs.append(result["run"])
        row.errors += result["warmup"]["errors"]
        for kind, count in result["error_kinds"].items():
            row.error_kinds[kind] = row.error_kinds.get(kind, 0) + count
    rates = [run["rps"] for run in runs]
    row.rounds = len(runs)
    row.rps = _median(rates)
    row.rps_min = min(rates, default=None)
    row.rps_max = max(rates, default=None)
    row.p50_ms = _median([r["p50_ms"] for r in runs if r["p50_ms"] is not None])
    row.p99_ms = _median([r["p99_ms"] for r in runs if r["p99_ms"] is not None])
    row.ok = sum(r["ok"] for r in runs)
    row.errors += sum(r["errors"] for r in runs)
    slow = max((r["elapsed"] for r in runs if r["capped"]), default=0.0)
    if slow > cap * 1.2:
        row.notes.append(f"slow: up to {slow:.1f} s per round")
    stuck = sum(r["stuck"] for r in runs)
    if stuck:
        row.notes.append(f"{stuck} requests stuck")
    if runs and row.ok == 0:
        row.notes.append("no good response")
    row.notes = sorted(set(row.notes))
    return row


def add_ratios(rows: list[Row]) -> None:
    by_cell: dict[tuple[str, str, str, int], dict[str, Row]] = {}
    for row in rows:
        cell = (row.loop, row.scheme, row.route, row.concurrency)
        by_cell.setdefault(cell, {})[row.client] = row
    for cell in by_cell.values():
        base, top, go = cell.get("aiohttp"), cell.get("ceiling"), cell.get("fasthttp-go")
        for row in cell.values():
            if row.rps is None:
                continue
            if base is not None and base.rps:
                row.vs_aiohttp = row.rps / base.rps
            if top is not None and top.rps:
                row.vs_ceiling = row.rps / top.rps
            if go is not None and go.rps:
                row.vs_go = row.rps / go.rps


def build_rows(records: list[dict[str, Any]], cap: float) -> list[Row]:
    """One row per client and cell; ``cap`` is the planned window, to flag longer ones."""
    rows = [summarize(record, cap) for record in records if record["rounds"]]
    add_ratios(rows)
    return rows


@dataclass
class StaleRow:
    loop: str
    route: str
    client: str
    concurrency: int
    rps: float | None = None
    ok: int = 0
    errors: int = 0
    per_10k: float | None = None
    notes: list[str] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)
    retries: int | None = None
    scenario: str = "mixed"
    elapsed: float = 0.0  # the seconds req/s is taken over
    lost_per_burst: list[int] | None = None


def build_stale_rows(records: list[dict[str, Any]]) -> list[StaleRow]:
    rows = []
    for record in records:
        row = StaleRow(record["loop"], record["route"], record["client"], record["concurrency"])
        row.scenario = record.get("scenario", "mixed")
        if record["status"] in ("timeout", "crashed"):
            row.notes.append(record["status"])
            row.error_kinds = {record["detail"][:200]: 1}
            rows.append(row)
            continue
        run = record["run"]
        row.rps, row.ok, row.errors = run["rps"], run["ok"], run["errors"]
        row.elapsed, row.lost_per_burst = run["elapsed"], record.get("lost_per_burst")
        attempts = row.ok + row.errors
        row.per_10k = row.errors * 10_000 / attempts if attempts else None
        row.error_kinds = record["error_kinds"]
        if run["capped"]:
            row.notes.append("time cap")
        if row.ok == 0:
            row.notes.append("no good response")
        if run["stuck"]:
            row.notes.append(f"{run['stuck']} requests stuck")
        if record["status"] == "hung":
            row.notes.append("ignored cancellation")
        stats = record.get("extra", {}).get("stats")
        if stats:
            row.retries = sum(origin.get("retries", 0) for origin in stats.values())
        rows.append(row)
    return rows


@dataclass
class Lost:
    """One method's figures in a stale summary: failed requests out of those sent."""

    lost: int = 0
    sent: int = 0
    ok: int = 0
    elapsed: float = 0.0
    per_burst: list[int] | None = None

    @property
    def rps(self) -> float | None:
        return self.ok / self.elapsed if self.elapsed > 0 else None

    def add(self, row: StaleRow) -> None:
        self.lost += row.errors
        self.sent += row.ok + row.errors
        self.ok += row.ok
        self.elapsed += row.elapsed
        if row.lost_per_burst is not None:  # two routes of one method: burst by burst
            mine = self.per_burst or []
            pairs = zip_longest(mine, row.lost_per_burst, fillvalue=0)
            self.per_burst = [a + b for a, b in pairs]


@dataclass
class StaleSummary:
    """Per part, loop and client: POSTs and GETs lost, and the rate of each."""

    scenario: str
    loop: str
    client: str
    post: Lost | None = None
    get: Lost | None = None
    notes: list[str] = field(default_factory=list)


def build_stale_summary(rows: list[StaleRow]) -> list[StaleSummary]:
    out: dict[tuple[str, str, str], StaleSummary] = {}
    for row in rows:
        key = (row.scenario, row.loop, row.client)
        summary = out.setdefault(key, StaleSummary(*key))
        if row.rps is None:  # the worker timed out or crashed: nothing to count
            summary.notes += [f"{_route(row.route)}: {note}" for note in row.notes]
            continue
        side = "post" if ROUTES[row.route].method == "POST" else "get"
        lost = getattr(summary, side) or Lost()
        lost.add(row)
        setattr(summary, side, lost)
        summary.notes += [f"{_route(row.route)}: {note}" for note in row.notes]
    return list(out.values())


# -- text ----------------------------------------------------------------------------------


def _num(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _route(name: str) -> str:
    route = ROUTES[name]
    return f"{route.method} {route.path}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _rate(row: Row) -> str:
    if row.rps is None:
        return "-"
    return f"{row.rps:,.0f} ({row.rps_min:,.0f} to {row.rps_max:,.0f})"


def _note(row: Row) -> str:
    notes = list(row.notes)
    if row.errors:
        notes.append(f"{row.errors:,} errors")
    return ", ".join(notes)


def _label(row: Row) -> str:
    label = ROUTE_LABELS[row.route]
    return f"HTTPS {label}" if row.scheme == "https" else label


def text_table(rows: list[Row]) -> str:
    out = []
    header = (
        f"  {'client':<12}{'req/s median (min to max)':>30}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'x aiohttp':>11}{'x ceiling':>11}{'x Go':>8}  notes"
    )
    cell = None
    for row in rows:
        key = (row.loop, row.scheme, row.route, row.concurrency)
        if key != cell:
            cell = key
            out.append("")
            out.append(f"{row.loop} | {_label(row)} | concurrency {row.concurrency}")
            out.append(header)
        out.append(
            f"  {row.client:<12}{_rate(row):>30}{_num(row.p50_ms, '.2f'):>9}"
            f"{_num(row.p99_ms, '.2f'):>9}{_ratio(row.vs_aiohttp):>11}"
            f"{_ratio(row.vs_ceiling):>11}{_ratio(row.vs_go):>8}  {_note(row)}"
        )
    return "\n".join(out)


def stale_text_table(rows: list[StaleRow], captions: dict[str, str]) -> str:
    out = []
    for scenario, caption in captions.items():
        mine = [row for row in rows if row.scenario == scenario]
        if not mine:
            continue
        out += ["", caption]
        out.append(
            f"  {'client':<12}{'loop':<9}{'route':<13}{'req/s':>9}{'errors/10k':>12}"
            f"{'requests':>10}  notes"
        )
        for row in mine:
            out.append(
                f"  {row.client:<12}{row.loop:<9}{_route(row.route):<13}{_num(row.rps):>9}"
                f"{_num(row.per_10k, '.1f'):>12}"
                f"{row.ok + row.errors:>10,}  {'; '.join(_stale_notes(row, 110))}"
            )
    return "\n".join(out)


def _stale_notes(row: StaleRow, width: int | None) -> list[str]:
    notes = list(row.notes)
    if row.lost_per_burst is not None and row.errors:
        notes.append("lost per burst " + ",".join(map(str, row.lost_per_burst)))
    if row.retries is not None:
        notes.append(f"{row.retries} retries")
    if row.error_kinds:
        notes.append("e.g. " + next(iter(row.error_kinds))[:width])
    return notes


def _lost(side: Lost | None) -> str:
    return "-" if side is None else f"{side.lost:,} of {side.sent:,}"


def _rate_of(side: Lost | None) -> str:
    return _num(None if side is None else side.rps)


def _summary_notes(summary: StaleSummary) -> str:
    notes = list(summary.notes)
    for method, side in (("POST", summary.post), ("GET", summary.get)):
        if side is not None and side.per_burst is not None and side.lost:
            notes.append(f"{method} lost per burst " + ",".join(map(str, side.per_burst)))
    return "; ".join(notes)


def stale_summary_text(summaries: list[StaleSummary]) -> str:
    out = [
        "",
        "stale connections, lost requests (failed, out of those sent) and req/s per part",
        f"  {'part':<15}{'loop':<9}{'client':<12}{'lost POSTs':>16}{'lost GETs':>16}"
        f"{'POST req/s':>12}{'GET req/s':>11}  notes",
    ]
    for s in summaries:
        out.append(
            f"  {s.scenario:<15}{s.loop:<9}{s.client:<12}{_lost(s.post):>16}{_lost(s.get):>16}"
            f"{_rate_of(s.post):>12}{_rate_of(s.get):>11}  {_summary_notes(s)}"
        )
    return "\n".join(out)


def error_details(rows: list[Row]) -> str:
    lines = []
    for row in rows:
        for kind, count in row.error_kinds.items():
            lines.append(
                f"  {row.loop} {row.scheme} {row.route} c={row.concurrency} {row.client}: "
                f"{count} x {kind}"
            )
    return "\nErrors seen:\n" + "\n".join(lines) if lines else ""


# -- Markdown -----------------------------------------------------------------------------


def markdown_table(rows: list[Row]) -> str:
    out = [
        "| loop | scheme | route | c | client | req/s median (min to max) | p50 ms | p99 ms "
        "| x aiohttp | x ceiling | x Go | notes |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        out.append(
            f"| {row.loop} | {row.scheme} | {row.route} | {row.concurrency} | {row.client} "
            f"| {_rate(row)} "
            f"| {_num(row.p50_ms, '.2f')} | {_num(row.p99_ms, '.2f')} "
            f"| {_ratio(row.vs_aiohttp)} | {_ratio(row.vs_ceiling)} | {_ratio(row.vs_go)} "
            f"| {_note(row)} |"
        )
    return "\n".join(out)


def stale_markdown_table(rows: list[StaleRow]) -> str:
    out = [
        "| part | loop | route | c | client | req/s | errors per 10k | requests | notes |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        notes = "; ".join(_stale_notes(row, None)).replace("|", "/")
        out.append(
            f"| {row.scenario} | {row.loop} | {_route(row.route)} | {row.concurrency} "
            f"| {row.client} | {_num(row.rps)} | {_num(row.per_10k, '.1f')} "
            f"| {row.ok + row.errors:,} | {notes} |"
        )
    return "\n".join(out)


def stale_summary_markdown(summaries: list[StaleSummary]) -> str:
    out = [
        "| part | loop | client | lost POSTs | lost GETs | POST req/s | GET req/s | notes |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for s in summaries:
        out.append(
            f"| {s.scenario} | {s.loop} | {s.client} | {_lost(s.post)} | {_lost(s.get)} "
            f"| {_rate_of(s.post)} | {_rate_of(s.get)} | {_summary_notes(s).replace('|', '/')} |"
        )
    return "\n".join(out)


# -- files ----------------------------------------------------------------------------------


def write_json(
    path: Path,
    meta: dict[str, Any],
    rows: list[Row],
    stale: list[StaleRow],
    raw: dict[str, Any],
    latency: list[LatencyRow] | None = None,
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "meta": meta,
        "routes": {
            name: {"method": r.method, "path": r.path, "body_length": r.expect_length}
            for name, r in ROUTES.items()
        },
        "results": [asdict(row) for row in rows],
        "stale": [asdict(row) for row in stale],
        "stale_summary": [asdict(summary) for summary in build_stale_summary(stale)],
        "latency": [asdict(row) for row in latency or []],
        "raw": raw,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")


# -- the latency view --------------------------------------------------------------------------


@dataclass
class LatencyRow:
    """One client on one loop at the fixed rate: medians over the rounds."""

    loop: str
    client: str
    concurrency: int
    rate: float = 0.0
    rps: float | None = None  # achieved
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None  # the worst over every round
    late_pct: float | None = None  # requests sent more than 1 ms after they were due
    errors: int = 0
    rounds: int = 0
    notes: list[str] = field(default_factory=list)


def build_latency_rows(records: list[dict[str, Any]]) -> list[LatencyRow]:
    rows = []
    for record in records:
        row = LatencyRow(record["loop"], record["client"], record["concurrency"])
        runs = []
        for result in record["rounds"]:
            if result["status"] in ("timeout", "crashed"):
                row.notes.append(f"{result['status']}: {result['detail'][:120]}")
            else:
                runs.append(result["run"])
        row.rounds = len(runs)
        if runs:
            row.rate = runs[0]["rate"]
            row.rps = _median([r["rps"] for r in runs])
            for name in ("p50_ms", "p99_ms", "p999_ms"):
                setattr(row, name, _median([r[name] for r in runs if r[name] is not None]))
            row.max_ms = max((r["max_ms"] for r in runs if r["max_ms"] is not None), default=None)
            late = sum(r["sent_late"] for r in runs)
            if any(r["ok"] for r in runs):  # else none of the measured requests was sent
                row.late_pct = 100 * late / max(1, sum(r["due"] for r in runs))
            row.errors = sum(r["errors"] for r in runs)
            if any(r["capped"] for r in runs):
                row.notes.append("could not keep up: cut at the time cap")
        if row.errors:
            row.notes.append(f"{row.errors:,} errors")
        rows.append(row)
    return rows


def _ms(value: float | None) -> str:
    return _num(value, ".2f")


def latency_text_table(rows: list[LatencyRow]) -> str:
    if not rows:
        return ""
    first = rows[0]
    out = [
        "",
        f"latency at a fixed rate: {first.rate:,.0f} req/s over {first.concurrency} coroutines, "
        "GET /small; latency from when each request was due (medians over the rounds)",
        f"  {'loop':<9}{'client':<19}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}"
        f"{'max ms':>9}{'late %':>8}  notes",
    ]
    for r in rows:
        out.append(
            f"  {r.loop:<9}{r.client:<19}{_num(r.rps):>9}{_ms(r.p50_ms):>9}{_ms(r.p99_ms):>9}"
            f"{_ms(r.p999_ms):>10}{_ms(r.max_ms):>9}{_num(r.late_pct, '.1f'):>8}  "
            + ", ".join(r.notes)
        )
    return "\n".join(out)


def latency_markdown_table(rows: list[LatencyRow]) -> str:
    out = [
        "| loop | client | rate | c | req/s | p50 ms | p99 ms | p99.9 ms | max ms | late % "
        "| notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.loop} | {r.client} | {r.rate:,.0f} | {r.concurrency} | {_num(r.rps)} "
            f"| {_ms(r.p50_ms)} | {_ms(r.p99_ms)} | {_ms(r.p999_ms)} | {_ms(r.max_ms)} "
            f"| {_num(r.late_pct, '.1f')} | {', '.join(r.notes)} |"
        )
    return "\n".join(out)
