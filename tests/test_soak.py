"""The soak (benchmarks/soak.py) in this process: 50,000 mixed requests at
concurrency 64 against loopback servers that misbehave. Every response reaches
its caller, every fault ends in its own error, no descriptor leaks, and memory
settles after the warm-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.soak import KINDS, SoakResult, open_fds, run_soak
from servers import LOOPS
from testkit import ROOT

REQUESTS = 50_000
CONCURRENCY = 64
FAULTS_THAT_FAIL = {
    kind for kind, (_, errors) in KINDS.items() if errors - {"Cancelled", "success"}
}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("loop_kind", LOOPS)
def test_soak_50000_mixed_requests_at_concurrency_64(loop_kind: str) -> None:
    run_soak(200, 8, seed=1, loop=loop_kind)  # uvloop opens descriptors of its own once
    before = open_fds()
    result = run_soak(REQUESTS, CONCURRENCY, seed=6, loop=loop_kind, timeout=280)
    summary = result.summary()
    print(summary)  # shown with -s, or when the test fails
    assert result.failures() == [], summary
    assert result.requests == REQUESTS and result.wrong_caller == 0
    assert result.fds_after <= result.fds_before
    assert result.rss_end < result.rss_warm * 1.10
    # Every fault ran, and each ended only in its own error (else it is "unexpected").
    # Apart from that, a POST may meet origin B's idle close in the instant between the
    # pool's poll and the write (not replayed: it may have been processed). The pool's
    # checks for such requests make it rare: at most 2 in the run (issue 12's target).
    raced = sum(n for key, n in result.errors.items() if key.endswith(": ClosedWhileIdle"))
    assert raced <= 2, summary
    failed_kinds = {
        key.split(":")[0] for key in result.errors if not key.endswith(": ClosedWhileIdle")
    }
    assert failed_kinds == FAULTS_THAT_FAIL, summary
    assert result.cancelled > 1000 and result.ok > 0.75 * REQUESTS
    pool = result.pool
    assert pool["retries"] > 0  # dropped GETs and keyed POSTs were replayed
    assert pool["closed_by_server_idle"] + pool["expired"] > 0  # origin B's idle closes
    assert result.duration < 180, f"the soak took {result.duration:.0f} s"
    assert open_fds() <= before  # the server's pipes too


def test_soak_command_prints_a_summary_and_its_exit_status() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--requests", "3000", "--seed", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for label in ("requests", "errors by type", "wrong caller    0", "fds", "RSS", "PASS"):
        assert label in proc.stdout


def test_soak_result_fails_on_each_broken_invariant() -> None:
    good = SoakResult(requests=10, ok=10, dup_posts=0, fds_before=9, fds_after=9)
    good.rss_warm = good.rss_end = 100 << 20
    good.pool_clean = True
    assert good.failures() == []
    broken = {
        "wrong_caller": 1,
        "dup_posts": 1,
        "fds_after": 10,
        "pool_clean": False,
        "rss_end": 111 << 20,
        "ok": 9,
    }
    for name, value in broken.items():
        result = SoakResult(**{**good.__dict__, name: value})
        assert len(result.failures()) == 1, name
    unexpected = SoakResult(**{**good.__dict__, "unexpected": ["get 1: boom"]})
    assert "unexpected" in unexpected.failures()[0]
