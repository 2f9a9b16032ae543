"""The benchmark suite's stale scenario, its two frontier parts run tiny: the poller
at the idle edge and first contact with a silent request limit. Each runs the way
``python -m benchmarks`` runs it (a server process with the part's closes, a fresh
worker process per client, loop and route), for aiofasthttp and aiohttp, POST and
GET; then the records, rows and summary must hold every request sent, once."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import report
from benchmarks.__main__ import parse_args, stale_captions, stale_plans
from benchmarks.closedloop import busy_time
from benchmarks.runner import (
    FirstContactPlan,
    IdleEdgePlan,
    Pinning,
    StaleScenario,
    run_stale,
)
from benchmarks.server import ServerProcess

CLIENTS = ["aiofasthttp", "aiohttp"]
ROUTES = ["post", "small"]
CONC = 4


def _run(plan: StaleScenario) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    pinning = Pinning.detect("none")
    with ServerProcess(**plan.server_options()) as server:
        run_stale(plan, pinning, server, records)
    return records


def _check_summary(records: list[dict[str, Any]], sent: int, bursts: int | None) -> None:
    rows = report.build_stale_rows(records)
    summaries = report.build_stale_summary(rows)
    assert [(s.client, s.loop) for s in summaries] == [(c, "uvloop") for c in CLIENTS]
    by_key = {(r["client"], r["route"]): r for r in records}
    for summary in summaries:
        for side, route in ((summary.post, "post"), (summary.get, "small")):
            assert side is not None
            run = by_key[(summary.client, route)]["run"]
            assert (side.lost, side.sent, side.ok) == (run["errors"], sent, run["ok"])
            assert side.rps is not None and side.rps > 0
            if bursts is not None:
                assert side.per_burst is not None and len(side.per_burst) == bursts
                assert sum(side.per_burst) == side.lost
    text = report.stale_summary_text(summaries)
    table = report.stale_summary_markdown(summaries)
    for summary in summaries:
        assert summary.post is not None
        cell = f"{summary.post.lost:,} of {sent:,}"
        assert f"{summary.client:<12}{cell:>16}" in text
        assert f"| {summary.client} | {cell} |" in table


@pytest.mark.timeout(180)
def test_idle_edge_part_counts_every_request() -> None:
    plan = IdleEdgePlan(CLIENTS, ["uvloop"], ROUTES, CONC, requests=50, idle_close=0.1, every=5)
    records = _run(plan)
    assert [(r["client"], r["route"]) for r in records] == [
        (c, route) for route in ROUTES for c in CLIENTS
    ]
    for record in records:
        assert record["status"] == "ok" and record["scenario"] == "idle-edge"
        run = record["run"]
        assert run["ok"] + run["errors"] == 50  # every request answered or lost, once
        assert not run["capped"] and run["cut"] == 0 and run["hung"] == 0
        assert sum(record["error_kinds"].values()) == run["errors"]
        # Each worker pauses twice (after its 5th and 10th of 12 or 13 requests); the
        # rate is over the time with a request in flight, which leaves the pauses out.
        assert run["wall_elapsed"] >= 2 * 0.1
        assert 0 < run["elapsed"] < run["wall_elapsed"]
    # Whether a pause this short crosses the server's close is a race (the point of the
    # part): how often it does is the full run's figure, not this test's.
    rows = report.build_stale_rows(records)
    assert [r.retries is not None for r in rows] == [c == "aiofasthttp" for c in CLIENTS] * 2
    _check_summary(records, 50, None)


@pytest.mark.timeout(180)
def test_first_contact_part_counts_every_request_per_burst() -> None:
    plan = FirstContactPlan(
        CLIENTS, ["uvloop"], ROUTES, CONC, bursts=2, burst=40, max_requests=5, gap=0.05
    )
    records = _run(plan)
    for record in records:
        assert record["status"] == "ok" and record["scenario"] == "first-contact"
        run = record["run"]
        assert record["bursts"] == 2 and len(record["lost_per_burst"]) == 2
        assert sum(record["lost_per_burst"]) == run["errors"]
        assert run["ok"] + run["errors"] == 80
        assert not run["capped"] and run["cut"] == 0
    stats = next(r for r in records if r["client"] == "aiofasthttp")["extra"]["stats"]
    (origin,) = stats.values()
    assert origin["created"] >= 80 // 5  # the server's limit was in force: 5 per connection
    _check_summary(records, 80, 2)


def test_busy_time_is_the_union_of_the_requests_in_flight() -> None:
    # Requests as (end, latency): [0, 1], [0.5, 1.5], [3, 4], and [3.2, 3.5] inside it.
    ends, latencies = [1.0, 1.5, 4.0, 3.5], [1.0, 1.0, 1.0, 0.3]
    assert busy_time(ends, latencies) == pytest.approx(2.5)
    assert busy_time([], []) == 0.0


def test_the_parts_are_chosen_on_the_command_line() -> None:
    args = parse_args([])
    assert args.stale_scenarios == ["mixed", "idle-edge", "first-contact"]
    plans = stale_plans(args, CLIENTS)
    edge, first = plans[1], plans[2]
    assert isinstance(edge, IdleEdgePlan) and isinstance(first, FirstContactPlan)
    assert (edge.requests, edge.idle_close, edge.every, edge.concurrency) == (5000, 0.2, 10, 16)
    assert (first.bursts, first.burst, first.max_requests) == (6, 1000, 50)
    assert edge.server_options() == {"idle_close": 0.2}  # no request limit
    assert first.server_options() == {"max_requests": 50}  # no idle close
    assert set(stale_captions(plans)) == {"mixed", "idle-edge", "first-contact"}

    quick = parse_args(["--quick", "--skip-stale", "mixed"])
    assert [p.name for p in stale_plans(quick, CLIENTS)] == ["idle-edge", "first-contact"]
    # First contact stays first contact: every connection reaches the limit in burst 1.
    (quick_first,) = stale_plans(parse_args(["--quick", "--stale-scenarios", "first-contact"]), [])
    assert isinstance(quick_first, FirstContactPlan)
    assert quick_first.burst >= quick_first.concurrency * quick_first.max_requests
    with pytest.raises(SystemExit):
        parse_args(["--stale-scenarios", "nope"])
