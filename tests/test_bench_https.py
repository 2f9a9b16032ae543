"""The benchmark suite's HTTPS cells and its latency view, run tiny the way
``python -m benchmarks`` runs them: a server process with a trustme certificate
on a second, TLS listener; a fresh worker process per client and cell, each
client verifying the certificate against the run's CA; every response checked."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from benchmarks import instructions, report, tls_layer_prototype
from benchmarks.__main__ import latency_plan, markdown, parse_args, plans
from benchmarks.routes import ROUTES
from benchmarks.runner import LatencyPlan, MatrixPlan, Pinning, run_latency, run_matrix
from benchmarks.server import ServerProcess
from benchmarks.tls import CA_FILE, make_certificates
from testkit import new_loop

CLIENTS = ["ceiling", "aiofasthttp"]


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.mark.timeout(60)
def test_https_cells_are_measured_over_verified_tls(tls_dir: Path) -> None:
    plan = MatrixPlan(
        clients=CLIENTS,
        loops=["uvloop"],
        concurrency=[],
        routes=[],
        requests=200,
        repeat=1,
        cap=0.3,
        warmup_cap=0.05,
        tls_routes=["small", "64k"],
        tls_concurrency=[2],
        ca_file=str(tls_dir / CA_FILE),
    )
    assert plan.cells() == [("uvloop", "https", "small", 2), ("uvloop", "https", "64k", 2)]
    records: list[dict[str, Any]] = []
    with ServerProcess(tls_dir=tls_dir) as server:
        assert server.tls_url is not None and server.tls_url.startswith("https://127.0.0.1:")
        run_matrix(plan, Pinning.detect("none"), server, records)
    assert [(r["scheme"], r["route"], r["client"]) for r in records] == [
        ("https", route, client) for route in ("small", "64k") for client in CLIENTS
    ]
    for record in records:
        (result,) = record["rounds"]
        assert result["status"] == "ok", result
        assert result["run"]["ok"] > 0 and result["run"]["errors"] == 0
        assert result["warmup"]["errors"] == 0 and not result["error_kinds"]
    rows = report.build_rows(records, plan.cap)
    assert {row.scheme for row in rows} == {"https"}
    assert all(row.vs_ceiling is not None for row in rows)
    text = report.text_table(rows)
    assert "uvloop | HTTPS GET /64k (64 KiB) | concurrency 2" in text
    assert "| uvloop | https | 64k | 2 | aiofasthttp |" in report.markdown_table(rows)


def test_the_tls_listener_serves_only_clients_that_trust_the_run_ca(tls_dir: Path) -> None:
    def fetch(context: ssl.SSLContext, port: int) -> bytes:
        address = ("127.0.0.1", port)
        with (
            socket.create_connection(address, timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            return tls.recv(65536)

    with ServerProcess(tls_dir=tls_dir) as server:
        port = server.ports[1]
        trusting = ssl.create_default_context(cafile=str(tls_dir / CA_FILE))
        head = fetch(trusting, port)
        assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 100" in head
        with pytest.raises(ssl.SSLCertVerificationError):
            fetch(ssl.create_default_context(), port)


@pytest.mark.timeout(60)
def test_the_latency_view_holds_the_rate_and_reports_the_tail() -> None:
    plan = LatencyPlan(CLIENTS, ["uvloop"], 4, rate=400.0, seconds=0.5, warmup=0.1, repeat=1)
    records: list[dict[str, Any]] = []
    with ServerProcess() as server:
        run_latency(plan, Pinning.detect("none"), server, records)
    for record in records:
        (result,) = record["rounds"]
        run = result["run"]
        assert result["status"] == "ok" and run["errors"] == 0
        assert run["due"] == 200 and run["ok"] == 200  # every request due after the warm-up
        assert not run["capped"] and run["cut"] == 0
        assert run["p50_ms"] <= run["p99_ms"] <= run["p999_ms"] <= run["max_ms"]
        # 400 req/s is far below what either does: the rate is the schedule's, give or take.
        assert 300 < run["rps"] < 500
    rows = report.build_latency_rows(records)
    assert [row.client for row in rows] == CLIENTS
    assert all(row.p999_ms is not None and row.late_pct is not None for row in rows)
    text = report.latency_text_table(rows)
    assert "400 req/s over 4 coroutines" in text and "p99.9 ms" in text
    table = report.latency_markdown_table(rows)
    assert table.count("| uvloop |") == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_instruction_count_reaches_a_separate_tls_server(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m benchmarks.instructions --tls --separate-server``'s workload: every
    response checked, over verified TLS to the suite's server in its own process."""
    drive = instructions._drive
    urls: list[str] = []

    async def checked(client: Any, url: str, *args: Any) -> int:
        urls.append(url)
        return await drive(client, url, *args)

    monkeypatch.setattr(instructions, "_drive", checked)
    running = new_loop(loop)
    try:
        running.run_until_complete(instructions._workload(64, "plain", "small", 0, True, 4, True))
    finally:
        running.close()
    assert len(urls) == 1 and urls[0].startswith("https://127.0.0.1:")


def test_the_matrix_gains_https_and_1024_cells_and_quick_has_one_https_cell() -> None:
    full = parse_args([])
    matrix, _ = plans(full, CLIENTS)
    matrix.ca_file = "ca.pem"
    https = [cell for cell in matrix.cells() if cell[1] == "https"]
    assert https == [
        (loop, "https", route, c)
        for loop in ("asyncio", "uvloop")
        for route in ("small", "64k")
        for c in (1, 16, 64)
    ]
    assert 1024 in full.concurrency
    latency = latency_plan(full, CLIENTS)
    assert latency is not None and (latency.rate, latency.concurrency) == (5000.0, 64)

    quick, _ = plans(parse_args(["--quick"]), CLIENTS)
    quick.ca_file = "ca.pem"
    assert [cell for cell in quick.cells() if cell[1] == "https"] == [
        ("uvloop", "https", "small", 64)
    ]
    no_tls, _ = plans(parse_args(["--no-tls"]), CLIENTS)
    no_tls.ca_file = "ca.pem"
    assert all(cell[1] == "http" for cell in no_tls.cells())
    tls_only, _ = plans(parse_args(["--tls-only", "--tls-routes", "small"]), CLIENTS)
    tls_only.ca_file = "ca.pem"
    assert {cell[1:3] for cell in tls_only.cells()} == {("https", "small")}
    with pytest.raises(SystemExit):
        parse_args(["--tls-only", "--no-tls"])
    assert latency_plan(parse_args(["--no-latency"]), CLIENTS) is None
    # Without the run's CA (trustme missing) there are no HTTPS cells to run.
    matrix.ca_file = None
    assert all(cell[1] == "http" for cell in matrix.cells())
    assert set(ROUTES) >= {"small", "64k"}
    meta = {"date": "d", "nproc": 2, "cpu_model": "c", "python": "3", "versions": {}}
    meta |= {"aiofasthttp_parser": "c", "pinning": "p"}
    assert "Latency at" not in markdown(meta, [], [], {})


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_tls_layer_prototype_carries_the_count_workload(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """benchmarks/tls_layer_prototype.py, behind the README's asyncio TLS figures: the
    workload's responses (each checked) come through the prototype, and install() is
    undone."""
    import asyncio.base_events

    import uvloop

    original = asyncio.base_events.BaseEventLoop.create_connection
    reads: list[int] = []
    layer_read = tls_layer_prototype._Layer.buffer_updated

    def counted(self: Any, nbytes: int) -> None:
        reads.append(nbytes)
        layer_read(self, nbytes)

    monkeypatch.setattr(tls_layer_prototype._Layer, "buffer_updated", counted)
    undo = tls_layer_prototype.install()
    running = new_loop(loop)
    try:
        running.run_until_complete(instructions._workload(64, "plain", "small", 0, True, 4, True))
    finally:
        running.close()
        undo()
    assert len(reads) >= 64  # every response, besides the handshakes
    assert asyncio.base_events.BaseEventLoop.create_connection is original
    assert "create_connection" not in vars(uvloop.Loop)
