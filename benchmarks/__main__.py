"""``python -m benchmarks``: measure aiofasthttp against its peers and a ceiling client.

See benchmarks/README.md ("Client benchmark suite") for what is measured and
how to read the table. ``--quick`` runs a small matrix (about three minutes here).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import chart, clients, gateway, gopeer, pipeline, report
from .routes import ROUTES
from .runner import (
    STALE_SCENARIOS,
    FirstContactPlan,
    IdleEdgePlan,
    LatencyPlan,
    MatrixPlan,
    Pinning,
    StalePlan,
    StaleScenario,
    run_latency,
    run_matrix,
    run_stale,
)
from .server import ROOT, ServerProcess

ROUTE_NAMES = {name: f"{r.method} {r.path}" for name, r in ROUTES.items()}

ALL_CLIENTS = list(clients.CLIENTS)
ALL_LOOPS = ["asyncio", "uvloop"]

FULL = {
    "loops": ALL_LOOPS,
    "concurrency": [1, 16, 64, 256, 1024],
    "routes": list(ROUTES),
    "tls_routes": ["small", "64k"],
    "tls_concurrency": [1, 16, 64],
    "latency_seconds": 3.0,
    "requests": 20_000,
    "repeat": 3,
    "cap": 0.75,
    "stale_bursts": 10,
    "stale_burst": 1500,
    "stale_cap": 20.0,
    "idle_edge_requests": 5000,
    "first_contact_bursts": 6,
    "first_contact_burst": 1000,
}
QUICK = {
    "loops": ["uvloop"],
    "concurrency": [1, 64],
    "routes": ["small"],
    "tls_routes": ["small"],  # one HTTPS cell
    "tls_concurrency": [64],
    "latency_seconds": 1.5,
    "requests": 5_000,
    "repeat": 3,
    "cap": 1.0,
    "stale_bursts": 6,
    "stale_burst": 1000,
    "stale_cap": 8.0,
    "idle_edge_requests": 800,
    "first_contact_bursts": 2,
    "first_contact_burst": 1000,
}
# First contact needs bursts of at least concurrency x request limit (16 x 50), so
# that every connection reaches the limit in the first: --quick runs fewer, not smaller.


def _csv(kind: type, choices: list[Any] | None = None):  # type: ignore[no-untyped-def]
    def parse(text: str) -> list[Any]:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
        bad = [v for v in values if choices is not None and v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"choose from {choices}, comma-separated")
        return values

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="HTTP/1.1 client benchmark: aiofasthttp, aiohttp, httpx, aiosonic and a "
        "ceiling client against an embedded uvloop+httptools server on loopback.",
    )
    p.add_argument("--quick", action="store_true", help="a small matrix, about 3 minutes")
    p.add_argument("--clients", type=_csv(str, ALL_CLIENTS), default=ALL_CLIENTS)
    p.add_argument("--loops", type=_csv(str, ALL_LOOPS))
    p.add_argument("--concurrency", type=_csv(int))
    p.add_argument("--routes", type=_csv(str, list(ROUTES)))
    p.add_argument("--tls-routes", type=_csv(str, list(ROUTES)), help="routes of the HTTPS cells")
    p.add_argument("--tls-concurrency", type=_csv(int), help="concurrency of the HTTPS cells")
    p.add_argument("--no-tls", action="store_true", help="skip the HTTPS cells")
    p.add_argument("--tls-only", action="store_true", help="skip the plain-HTTP cells")
    p.add_argument(
        "--latency-rate", type=float, default=5000.0, help="the latency view's fixed req/s"
    )
    p.add_argument("--latency-concurrency", type=int, default=64)
    p.add_argument("--latency-seconds", type=float, help="the latency view's measured window")
    p.add_argument("--no-latency", action="store_true", help="skip the latency view")
    p.add_argument(
        "--server",
        choices=("embedded", "go"),
        default="embedded",
        help="the matrix's server: embedded (uvloop+httptools) or go (Go's fasthttp; the "
        "stale scenario keeps the embedded one, which can close connections on cue)",
    )
    p.add_argument(
        "--no-go", action="store_true", help="leave out Go's fasthttp client even if it builds"
    )
    p.add_argument("--requests", type=int, help="requests per client, cell and round")
    p.add_argument("--repeat", type=int, help="rounds per cell (the median is reported)")
    p.add_argument("--cap", type=float, help="seconds a round may take before it is cut")
    p.add_argument(
        "--warmup-cap",
        type=float,
        default=0.3,
        help="seconds after which the warm-up ends once every coroutine has had a response",
    )
    p.add_argument(
        "--slow-cap",
        type=float,
        default=3.0,
        help="seconds a round may take when the cap leaves it with too few responses",
    )
    p.add_argument("--no-matrix", action="store_true", help="skip the throughput matrix")
    p.add_argument("--no-stale", action="store_true", help="skip the stale-connection scenario")
    p.add_argument("--no-gateway", action="store_true", help="skip the gateway scenario")
    p.add_argument("--no-pipeline", action="store_true", help="skip the pipelining scenario")
    p.add_argument("--stale-concurrency", type=int, default=16)
    p.add_argument(
        "--stale-routes",
        type=_csv(str, list(ROUTES)),
        default=["small", "post"],
        help="routes of the stale scenario (GET is replayable, POST is not)",
    )
    p.add_argument("--stale-idle", type=float, default=0.2, help="server idle close (s)")
    p.add_argument("--stale-max-requests", type=int, default=50, help="server closes after")
    p.add_argument(
        "--stale-scenarios",
        type=_csv(str, list(STALE_SCENARIOS)),
        default=list(STALE_SCENARIOS),
        help="parts of the stale scenario to run: "
        + "; ".join(f"{name}: {what}" for name, what in STALE_SCENARIOS.items()),
    )
    p.add_argument(
        "--skip-stale",
        type=_csv(str, list(STALE_SCENARIOS)),
        default=[],
        help="parts of the stale scenario not to run (comma-separated)",
    )
    p.add_argument("--idle-edge-requests", type=int, help="idle-edge: requests in all")
    p.add_argument("--first-contact-bursts", type=int, help="first-contact: bursts")
    p.add_argument("--first-contact-burst", type=int, help="first-contact: requests per burst")
    p.add_argument(
        "--pin",
        choices=("split", "none"),
        default="split",
        help="split: server on one CPU, clients on another (the default, with 2+ CPUs)",
    )
    p.add_argument("--json", type=Path, default=ROOT / "bench-results" / "results.json")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    names = ("loops", "concurrency", "routes", "tls_routes", "tls_concurrency", "requests")
    for name in (*names, "repeat", "cap", "latency_seconds"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    args.stale_bursts, args.stale_burst = preset["stale_bursts"], preset["stale_burst"]
    args.stale_cap = preset["stale_cap"]
    for name in ("idle_edge_requests", "first_contact_bursts", "first_contact_burst"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
        elif getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be positive")
    args.stale_scenarios = [s for s in args.stale_scenarios if s not in args.skip_stale]
    if args.requests < 1 or args.repeat < 1 or args.cap <= 0 or min(args.concurrency) < 1:
        p.error("--requests, --repeat, --cap and --concurrency must be positive")
    if min(args.tls_concurrency) < 1 or args.latency_rate <= 0 or args.latency_seconds <= 0:
        p.error("--tls-concurrency, --latency-rate and --latency-seconds must be positive")
    if args.no_tls:
        args.tls_routes, args.tls_concurrency = [], []
    if args.tls_only:
        if args.no_tls:
            p.error("--tls-only and --no-tls leave no cells")
        args.routes = []
    return args


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def parser_implementation() -> str | None:
    try:
        import aiofasthttp.parser

        return str(aiofasthttp.parser.IMPLEMENTATION)
    except Exception:
        return None


def machine_meta(args: argparse.Namespace, pinning: Pinning) -> dict[str, Any]:
    names = [*ALL_CLIENTS, "uvloop"]
    versions = {name: clients.version(name) for name in ALL_CLIENTS}
    versions["uvloop"] = _dist_version("uvloop")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {n: versions.get(n) for n in names},
        "aiofasthttp_parser": parser_implementation(),
        "pinning": pinning.note,
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }


def _dist_version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def header(meta: dict[str, Any], missing: list[str], notes: list[str]) -> str:
    v = meta["versions"]
    peers = ", ".join(f"{n} {v[n]}" for n in ALL_CLIENTS[1:] if v.get(n)) or "none"
    lines = [
        f"date {meta['date']}; {meta['nproc']} CPUs ({meta['cpu_model']}); "
        f"Python {meta['python']}; uvloop {v.get('uvloop')}; httptools {v.get('ceiling')}",
        f"clients: {peers}; aiofasthttp parser: {meta['aiofasthttp_parser']}",
        f"pinning: {meta['pinning']}",
    ]
    if v.get("go"):
        lines.append(f"Go's fasthttp ({gopeer.NAME}): {v['go']}, Debian's fasthttp sources")
    if meta.get("server") == "go":
        lines.append("server: Go's fasthttp (--server go) for the matrix and the latency view")
    load = meta.get("loadavg_at_start")
    if load and load[0] >= 0.5:
        lines.append(
            f"note: load average {load[0]:.2f} at the start: other work shares these CPUs, "
            "expect noisy figures"
        )
    lines += [f"not installed: {name} (pip install {name})" for name in missing]
    lines += notes
    return "\n".join(lines)


def plans(args: argparse.Namespace, wanted: list[str]) -> tuple[MatrixPlan, list[StaleScenario]]:
    matrix = MatrixPlan(
        clients=wanted,
        loops=args.loops,
        concurrency=args.concurrency,
        routes=args.routes,
        requests=args.requests,
        repeat=args.repeat,
        cap=args.cap,
        warmup_cap=args.warmup_cap,
        slow_cap=max(args.slow_cap, args.cap),
        tls_routes=args.tls_routes,
        tls_concurrency=args.tls_concurrency,
    )
    if args.no_stale:
        return matrix, []
    return matrix, stale_plans(args, wanted)


def stale_plans(args: argparse.Namespace, wanted: list[str]) -> list[StaleScenario]:
    common = {
        "clients": wanted,
        "loops": args.loops,
        "concurrency": args.stale_concurrency,
        "routes": args.stale_routes,
    }
    parts: dict[str, StaleScenario] = {
        "mixed": StalePlan(
            bursts=args.stale_bursts,
            burst=args.stale_burst,
            idle_close=args.stale_idle,
            max_requests=args.stale_max_requests,
            cap=max(args.cap, 2.0),
            total_cap=args.stale_cap,
            **common,
        ),
        "idle-edge": IdleEdgePlan(
            requests=args.idle_edge_requests, idle_close=args.stale_idle, **common
        ),
        "first-contact": FirstContactPlan(
            bursts=args.first_contact_bursts,
            burst=args.first_contact_burst,
            max_requests=args.stale_max_requests,
            **common,
        ),
    }
    return [parts[name] for name in STALE_SCENARIOS if name in args.stale_scenarios]


def latency_plan(args: argparse.Namespace, wanted: list[str]) -> LatencyPlan | None:
    if args.no_latency or not wanted:
        return None
    return LatencyPlan(
        clients=wanted,
        loops=args.loops,
        concurrency=args.latency_concurrency,
        rate=args.latency_rate,
        seconds=args.latency_seconds,
        warmup=0.5,
        repeat=args.repeat,
    )


def tls_material(matrix: MatrixPlan, workdir: Path, notes: list[str]) -> Path | None:
    """The run's CA and server certificate, when there are HTTPS cells and trustme."""
    if not (matrix.tls_routes and matrix.tls_concurrency):
        return None
    if _dist_version("trustme") is None:
        notes.append("trustme is not installed: the HTTPS cells are skipped (pip install trustme)")
        return None
    from .tls import CA_FILE, make_certificates

    directory = make_certificates(workdir / "tls")
    matrix.ca_file = str(directory / CA_FILE)
    return directory


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the server and worker by their handles
    if not clients.installed("ceiling"):
        sys.stderr.write(
            "httptools is missing: run  ./scripts/bench  (or: pip install -e . --group bench)\n"
        )
        return 2
    notes = []
    if "uvloop" in args.loops and _dist_version("uvloop") is None:
        args.loops = [lp for lp in args.loops if lp != "uvloop"]
        notes.append("uvloop is not installed: the uvloop cells are skipped")
    if not args.loops:
        sys.stderr.write("no event loop left to measure\n")
        return 2
    missing = [name for name in args.clients if not clients.installed(name)]
    wanted = [name for name in args.clients if name not in missing]
    pinning = Pinning.detect(args.pin)
    matrix, stale = plans(args, wanted)
    latency = latency_plan(args, wanted)
    go_binary = go_peer(args, matrix, notes)
    if latency is not None and matrix.go_client is not None:
        latency.clients = [*latency.clients, gopeer.NAME]
        latency.go_client = matrix.go_client
    if args.server == "go" and go_binary is None:
        sys.stderr.write("--server go: " + notes[-1] + "\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="aiofasthttp-bench-") as workdir:
        tls_dir = tls_material(matrix, Path(workdir), notes)
        servers = ServerChoice(args.server, go_binary, pinning.server_cpu, tls_dir)
        return run_all(args, pinning, wanted, missing, notes, matrix, stale, latency, servers)


def go_peer(args: argparse.Namespace, matrix: MatrixPlan, notes: list[str]) -> Path | None:
    """Build the Go peer if it can be; add its client to the matrix unless --no-go."""
    if args.no_go and args.server != "go":
        return None
    why = gopeer.missing()
    if why is not None:
        notes.append(f"Go's fasthttp skipped: {why}")
        return None
    try:
        binary = gopeer.build()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        notes.append(f"Go's fasthttp skipped: {exc}")
        return None
    if not args.no_go and matrix.clients:
        matrix.clients = [*matrix.clients, gopeer.NAME]
        matrix.go_client = gopeer.client_argv(binary)
    return binary


class ServerChoice:
    """Starts the matrix's server: the embedded one, or Go's fasthttp (``--server go``)."""

    def __init__(self, kind: str, binary: Path | None, cpu: int | None, tls: Path | None) -> None:
        self.kind, self.binary, self.cpu, self.tls = kind, binary, cpu, tls
        self.loop = "uvloop" if _dist_version("uvloop") else "asyncio"

    def start(self, tls: bool = True) -> Any:
        tls_dir = self.tls if tls else None
        if self.kind == "go" and self.binary is not None:
            return gopeer.GoServerProcess(self.binary, cpu=self.cpu, tls_dir=tls_dir)
        return ServerProcess(cpu=self.cpu, loop=self.loop, tls_dir=tls_dir)


def run_all(
    args: argparse.Namespace,
    pinning: Pinning,
    wanted: list[str],
    missing: list[str],
    notes: list[str],
    matrix: MatrixPlan,
    stale: list[StaleScenario],
    latency: LatencyPlan | None,
    servers: ServerChoice,
) -> int:
    meta = machine_meta(args, pinning)
    meta["server"] = servers.kind
    meta["versions"]["go"] = gopeer.go_version() if servers.binary is not None else None
    meta["not_installed"] = missing
    print(header(meta, missing, notes), flush=True)
    records: list[dict[str, Any]] = []
    latency_records: list[dict[str, Any]] = []
    stale_records: list[dict[str, Any]] = []
    started = time.monotonic()
    server_loop = "uvloop" if _dist_version("uvloop") else "asyncio"
    status = 0
    try:
        if wanted and not args.no_matrix:
            with servers.start() as server:
                run_matrix(matrix, pinning, server, records)
        if latency is not None:
            with servers.start(tls=False) as server:
                run_latency(latency, pinning, server, latency_records)
        for part in stale if wanted else []:
            options = part.server_options()
            with ServerProcess(cpu=pinning.server_cpu, loop=server_loop, **options) as server:
                run_stale(part, pinning, server, stale_records)
        if not args.no_gateway and clients.installed("aiohttp"):
            print("gateway scenario (examples/gateway.py, aiofasthttp vs aiohttp upstream)")
            requests = 2000 if args.quick else 5000
            result = gateway.run(requests, 64, 3, 32)
            meta["gateway"] = result
            print(gateway.report(result, 64), flush=True)
        if not args.no_pipeline and "aiofasthttp" in wanted:
            print("pipelining scenario (PipelineClient next to the plain Client)")
            piped = pipeline.run(5000 if args.quick else 20000, 64, 3, 2)
            meta["pipeline"] = piped
            print(pipeline.report(piped, 64, 2), flush=True)
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted: reporting what was measured\n")
        meta["interrupted"] = True
        status = 130
    meta["duration_s"] = round(time.monotonic() - started, 1)
    raw = {"matrix": records, "stale": stale_records, "latency": latency_records}
    finish(args, meta, matrix, stale, raw)
    return status


def finish(
    args: argparse.Namespace,
    meta: dict[str, Any],
    matrix: MatrixPlan,
    stale: list[StaleScenario],
    raw: dict[str, list[dict[str, Any]]],
) -> None:
    rows = report.build_rows(raw["matrix"], matrix.cap)
    stale_rows = report.build_stale_rows(raw["stale"])
    latency_rows = report.build_latency_rows(raw["latency"])
    summaries = report.build_stale_summary(stale_rows)
    if rows:
        print(
            f"\n{matrix.repeat} rounds per cell; a round: a fresh process, a warm-up, then "
            f"{matrix.requests:,} responses or {matrix.cap:g} s (up to {matrix.slow_cap:g} s "
            "for a slow client)"
        )
        print(report.text_table(rows))
    if latency_rows:
        print(report.latency_text_table(latency_rows))
    captions = stale_captions(stale)
    if stale_rows:
        print(report.stale_text_table(stale_rows, captions))
        print(report.stale_summary_text(summaries))
    print(report.error_details(rows))
    meta["stale_captions"] = captions
    path: Path = args.json
    report.write_json(path, meta, rows, stale_rows, raw, latency_rows)
    md = path.with_suffix(".md")
    md.write_text(markdown(meta, rows, stale_rows, captions, latency_rows))
    print(f"\nJSON: {path}\nMarkdown: {md}")
    if chart.available() and rows:
        png = path.with_suffix(".png")
        title = f"{meta['date']}, {meta['nproc']} CPUs {meta['cpu_model']}, Python {meta['python']}"
        mixed = [row for row in stale_rows if row.scenario == "mixed"]  # its panel's figures
        chart.draw(png, rows, mixed, title)
        print(f"chart: {png}")
    else:
        print("chart: skipped (matplotlib is not installed: pip install --group chart)")
    print(f"duration: {meta['duration_s']:.0f} s")


def stale_captions(parts: list[StaleScenario]) -> dict[str, str]:
    return {
        part.name: f"stale connections, {part.name}: {part.caption()}; concurrency "
        f"{part.concurrency}; routes: {', '.join(ROUTE_NAMES[r] for r in part.routes)}"
        for part in parts
    }


def markdown(
    meta: dict[str, Any],
    rows: list[Any],
    stale_rows: list[Any],
    captions: dict[str, str],
    latency_rows: list[Any] | None = None,
) -> str:
    parts = ["```", header(meta, meta.get("not_installed", []), []), "```", ""]
    if rows:
        parts.append(report.markdown_table(rows))
    if latency_rows:
        first = latency_rows[0]
        parts += ["", f"Latency at {first.rate:,.0f} req/s, concurrency {first.concurrency}:"]
        parts += ["", report.latency_markdown_table(latency_rows)]
    if stale_rows:
        parts += ["", "Stale connections:", ""]
        parts += [f"- {caption}" for caption in captions.values()]
        parts += ["", report.stale_markdown_table(stale_rows)]
        summaries = report.build_stale_summary(stale_rows)
        parts += ["", report.stale_summary_markdown(summaries)]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
