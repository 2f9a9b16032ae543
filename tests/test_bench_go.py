"""Go's fasthttp as the suite's optional peer, run tiny: its client as one more row
of the matrix (plain and HTTPS, every response checked by the Go worker, figures in
the Python workers' shape) and its server under the Python clients (``--server
go``). Needs ``go`` and Debian's golang-github-valyala-fasthttp-dev (``scripts/bench
--with-go`` installs both); the binary is built once into benchmarks/go/build/."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks import gopeer, instructions, report
from benchmarks.runner import LatencyPlan, MatrixPlan, Pinning, run_latency, run_matrix
from benchmarks.server import ServerProcess
from benchmarks.tls import CA_FILE, make_certificates
from testkit import new_loop

# An optional peer for a developer; in CI scripts/install installs it, so it must run.
_MISSING = gopeer.missing()
if _MISSING is not None and os.environ.get("CI") == "true":
    raise RuntimeError(f"the Go peer is required in CI (scripts/install): {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


@pytest.fixture(scope="module")
def binary() -> Path:
    return gopeer.build()


def _plan(clients: list[str], binary: Path, ca: Path | None) -> MatrixPlan:
    return MatrixPlan(
        clients=clients,
        loops=["uvloop"],
        concurrency=[4],
        routes=["small", "post"],
        requests=300,
        repeat=1,
        cap=0.3,
        warmup_cap=0.05,
        tls_routes=["64k"],
        tls_concurrency=[2],
        ca_file=None if ca is None else str(ca),
        go_client=gopeer.client_argv(binary),
    )


def _check(records: list[dict[str, Any]], cells: int, clients: list[str]) -> None:
    assert len(records) == cells * len(clients)
    for record in records:
        (result,) = record["rounds"]
        assert result["status"] == "ok", result
        run = result["run"]
        assert run["ok"] > 0 and run["errors"] == 0 and not result["error_kinds"]
        assert run["p50_ms"] is not None and run["p50_ms"] <= run["p99_ms"]
        assert run["hung"] == 0


@pytest.mark.timeout(120)
def test_the_go_client_is_a_row_of_the_matrix(binary: Path, tmp_path: Path) -> None:
    tls = make_certificates(tmp_path / "tls")
    clients = ["ceiling", gopeer.NAME]
    plan = _plan(clients, binary, tls / CA_FILE)
    records: list[dict[str, Any]] = []
    with ServerProcess(tls_dir=tls) as server:
        run_matrix(plan, Pinning.detect("none"), server, records)
    _check(records, 3, clients)  # small, post, and 64k over HTTPS
    rows = report.build_rows(records, plan.cap)
    go_rows = [row for row in rows if row.client == gopeer.NAME]
    assert [(r.scheme, r.route) for r in go_rows] == [
        ("http", "small"),
        ("http", "post"),
        ("https", "64k"),
    ]
    assert all(r.vs_go == pytest.approx(1.0) for r in go_rows)
    assert all(r.vs_go is not None for r in rows)
    assert "x Go" in report.text_table(rows)


@pytest.mark.timeout(120)
def test_python_clients_against_the_go_server(binary: Path, tmp_path: Path) -> None:
    tls = make_certificates(tmp_path / "tls")
    clients = ["ceiling", "aiofasthttp"]
    plan = _plan(clients, binary, tls / CA_FILE)
    records: list[dict[str, Any]] = []
    with gopeer.GoServerProcess(binary, tls_dir=tls) as server:
        assert server.tls_url is not None
        run_matrix(plan, Pinning.detect("none"), server, records)
    _check(records, 3, clients)


@pytest.mark.timeout(60)
def test_the_go_client_in_the_latency_view(binary: Path) -> None:
    plan = LatencyPlan([gopeer.NAME], ["uvloop"], 4, rate=400.0, seconds=0.5, warmup=0.1, repeat=1)
    plan.go_client = gopeer.client_argv(binary)
    records: list[dict[str, Any]] = []
    with ServerProcess() as server:
        run_latency(plan, Pinning.detect("none"), server, records)
    ((result,),) = [record["rounds"] for record in records]
    run = result["run"]
    assert result["status"] == "ok" and run["errors"] == 0
    assert run["due"] == 200 and run["ok"] == 200
    assert run["p50_ms"] <= run["p99_ms"] <= run["p999_ms"] <= run["max_ms"]
    assert 300 < run["rps"] < 500
    (row,) = report.build_latency_rows(records)
    assert row.client == gopeer.NAME and row.p999_ms is not None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_instruction_count_reaches_the_go_server(
    binary: Path, tls: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m benchmarks.instructions --server go [--tls]``'s workload: every
    response checked, from Go's server (fasthttp dates its responses; the suite's
    embedded server does not)."""
    drive = instructions._drive
    dated: list[bool] = []

    async def checked(client: Any, url: str, *args: Any) -> int:
        dated.append("date" in (await client.get(url)).headers)
        assert url.startswith("https://" if tls else "http://")
        return await drive(client, url, *args)

    monkeypatch.setattr(instructions, "_drive", checked)
    running = new_loop("uvloop")
    try:
        running.run_until_complete(
            instructions._workload(64, "plain", "small", 0, tls, 4, True, go=True)
        )
    finally:
        running.close()
    assert dated == [True]
