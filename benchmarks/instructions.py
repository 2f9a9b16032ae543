"""Instructions per request, counted by callgrind (a noisy shared machine does not move them).

    python -m benchmarks.instructions                  # the plain client
    python -m benchmarks.instructions --variant hooks  # a request and a response hook
    python -m benchmarks.instructions --variant otel   # instrumented with OpenTelemetry
    python -m benchmarks.instructions --variant otel-noop  # the same, no-op providers

The workload is the one benchmarks/README.md describes: GETs at concurrency 64 over
loopback to an in-process uvloop server answering 100-byte bodies, one client. It
runs twice under ``valgrind --tool=callgrind`` (6,400 and 3,200 requests) and
prints the difference divided by 3,200, which cancels start-up and import costs.
``--run N`` is the workload itself (what valgrind runs).

    python -m benchmarks.instructions --concurrency 1024   # 1,024 connections

``--concurrency N`` runs N workers over N connections (64 by default); the two
counted runs then make ``max(6400, 20 N)`` requests and half as many, so each
connection serves at least 10 of the requests the difference counts. Under
valgrind every connection sits idle longer than the pool's poll() threshold
between its requests at any concurrency, so the count includes that check;
its syscall's kernel time is not in it (``--syscalls`` counts the syscalls).

    python -m benchmarks.instructions --separate-server --concurrency 1024

``--separate-server`` serves from ``python -m benchmarks.server`` in a child process
that neither valgrind nor perf follows: the client's own count, with its loop's
iterations as long as in the suite's runs. With ``--tls`` it serves over its TLS
listener (a trustme certificate made for the run): the client's TLS cost alone.
``--server go`` serves from Go's fasthttp server instead (benchmarks/gopeer.py; it
implies ``--separate-server``).

    python -m benchmarks.instructions --body 64k           # 64 KiB bodies instead
    python -m benchmarks.instructions --body 64k --faults  # page faults per request

``--faults`` runs the workload without valgrind and prints the process's minor page
faults per request (getrusage, over 6,400 requests after 3,200 to warm up): the
kernel's share of a large body's cost, which callgrind does not see. ``--loop``
picks uvloop (the default) or asyncio's own loop.

    python -m benchmarks.instructions --cpu --server go --concurrency 1024
    python -m benchmarks.instructions --cpu --server go --concurrency 1024 --variant ceiling

``--cpu`` runs it without valgrind too and prints the client process's user and
system CPU time per request (getrusage, over 200 requests per connection, at least
6,400, after 20 per connection): what instructions do not show, the time the
processor waits for memory. ``--variant ceiling`` drives the suite's ceiling client
(benchmarks/ceiling.py) instead, the floor to read any count against.

    python -m benchmarks.instructions --footprint --server go [--variant ceiling]

``--footprint`` prints the code a request runs through, in KiB, by object file and
by function (benchmarks/footprint.py): what the instruction cache has to hold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import tempfile
from typing import Any, NamedTuple

BODIES = {"small": b"x" * 100, "64k": bytes(range(256)) * 256}
RESPONSES = {
    name: b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\n"
    + b"Content-Length: %d\r\n\r\n" % len(body)
    + body
    for name, body in BODIES.items()
}
CONCURRENCY = 64


class _Server(asyncio.Protocol):
    response = RESPONSES["small"]

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        count = data.count(b"\r\n\r\n")
        for _ in range(count):  # not response * count: a large new object per read
            self.transport.write(self.response)


class _BufferedServer(_Server, asyncio.BufferedProtocol):
    buffer = memoryview(bytearray(1 << 18))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.buffer[:nbytes]))


class Usage(NamedTuple):
    """What the counted requests cost the client's process (getrusage)."""

    faults: int  # minor page faults
    user: float  # seconds of user CPU time
    system: float  # seconds of system CPU time


class _Ceiling:
    """The suite's ceiling client, through its adapter (benchmarks/clients.py), behind
    the workload's ``get(url)``: it returns the ``(status, body length)`` that client
    answers with."""

    def __init__(self, tls: Any) -> None:
        self._tls = tls
        self._adapter: Any = None
        self._call: Any = None

    async def get(self, url: str) -> tuple[int, int]:
        if self._call is None:
            from urllib.parse import urlsplit

            from .clients import CeilingAdapter
            from .routes import ROUTES

            parts = urlsplit(url)
            route = next(r for r in ROUTES.values() if r.path == parts.path)
            self._adapter = CeilingAdapter(f"{parts.scheme}://{parts.netloc}", 0, self._tls)
            self._call = self._adapter.call_for(route)
        result: tuple[int, int] = await self._call()
        return result

    async def aclose(self) -> None:
        if self._adapter is not None:
            await self._adapter.aclose()


def _replied(response: Any, length: int) -> bool:
    if isinstance(response, tuple):  # the ceiling client's (status, body length)
        return response == (200, length)
    return bool(response.status == 200 and len(response.content) == length)


def _client(variant: str, concurrency: int, tls: Any = None) -> Any:
    from aiofasthttp import Client

    if variant == "ceiling":
        return _Ceiling(tls)
    if tls is not None:
        return Client(max_conns_per_host=concurrency, ssl=tls)

    if variant == "hooks":

        async def on_request(request: Any) -> None:
            request.headers["X-Signed"] = "1"

        async def on_response(response: Any) -> None:
            pass

        return Client(
            max_conns_per_host=concurrency,
            event_hooks={"request": [on_request], "response": [on_response]},
        )
    client = Client(max_conns_per_host=concurrency)
    if variant == "otel-noop":
        from opentelemetry import metrics, trace

        from aiofasthttp.integrations.opentelemetry import instrument

        # The API's no-op providers: what the instrumentation itself costs, the SDK apart.
        noop = {"tracer_provider": trace.NoOpTracerProvider()}
        instrument(client, meter_provider=metrics.NoOpMeterProvider(), **noop)
    if variant == "otel":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider

        from aiofasthttp.integrations.opentelemetry import instrument

        # Spans are made and ended, exported nowhere: the instrumentation and the SDK.
        instrument(
            client,
            tracer_provider=TracerProvider(),
            meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        )
    return client


async def _workload(
    requests: int,
    variant: str,
    body: str = "small",
    warm: int = 0,
    tls: bool = False,
    concurrency: int = CONCURRENCY,
    separate: bool = False,
    go: bool = False,
) -> Usage:
    """Run ``warm`` then ``requests`` GETs; what the second part cost the process.

    ``separate``: against the suite's server in a process of its own (see main());
    ``go``: against Go's fasthttp server in a process of its own.
    """
    if separate or go:
        return await _against_separate_server(requests, variant, body, warm, concurrency, tls, go)
    loop = asyncio.get_running_loop()
    _Server.response = RESPONSES[body]
    length = len(BODIES[body])
    server_tls = client_tls = None
    if tls:  # a throwaway CA (trustme); the server decrypts into a shared buffer
        import ssl

        import trustme

        ca = trustme.CA()
        server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(server_tls)
        client_tls = ssl.create_default_context()
        ca.configure_trust(client_tls)
    kind = _BufferedServer if tls else _Server
    # A backlog for every connection dialled at once: with asyncio's 100, the ACKs
    # of the rest are dropped, and one whose SYN-ACK retries run out waits 60 s.
    server = await loop.create_server(
        kind, "127.0.0.1", 0, ssl=server_tls, backlog=max(100, concurrency)
    )
    scheme = "https" if tls else "http"
    url = f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}/small"
    client = _client(variant, concurrency, client_tls)
    usage = await _drive(client, url, length, requests, warm, concurrency)
    server.close()
    await server.wait_closed()
    return usage


async def _drive(
    client: Any, url: str, length: int, requests: int, warm: int, concurrency: int
) -> Usage:
    async def worker(count: int) -> None:
        for _ in range(count):
            response = await client.get(url)
            assert _replied(response, length)

    if warm:
        await asyncio.gather(*(worker(warm // concurrency) for _ in range(concurrency)))
    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    after = resource.getrusage(resource.RUSAGE_SELF)
    await client.aclose()
    return Usage(
        after.ru_minflt - before.ru_minflt,
        after.ru_utime - before.ru_utime,
        after.ru_stime - before.ru_stime,
    )


async def _against_separate_server(
    requests: int, variant: str, body: str, warm: int, concurrency: int, tls: bool, go: bool
) -> Usage:
    """The workload against ``python -m benchmarks.server`` (uvloop and httptools) in a
    child process: valgrind and ``perf stat --no-inherit`` then count the client alone,
    and its loop runs as in the suite (at c=1,024 longer than 5 ms an iteration).
    ``tls``: over its TLS listener, with the suite's trustme certificate; ``go``: Go's
    fasthttp server (benchmarks/gopeer.py) instead, pinned to CPU 0."""
    from .routes import ROUTES
    from .tls import CA_FILE, client_context

    route = ROUTES[body]
    with tempfile.TemporaryDirectory() as tmp:
        argv = _server_argv(go)
        if tls:
            _make_certificates(tmp)
            argv += ["-tls-dir" if go else "--tls-dir", tmp]
        # stdin a pipe: Go's server exits when its stdin closes.
        server = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            assert server.stdout is not None
            ports = (await server.stdout.readline()).split()[1:]
            port, scheme = (int(ports[-1]), "https") if tls else (int(ports[0]), "http")
            context = client_context(os.path.join(tmp, CA_FILE)) if tls else None
            client = _client(variant, concurrency, context)
            url = f"{scheme}://127.0.0.1:{port}{route.path}"
            return await _drive(client, url, route.expect_length, requests, warm, concurrency)
        finally:
            server.terminate()
            await server.wait()


def _server_argv(go: bool) -> list[str]:
    if not go:
        return [sys.executable, "-m", "benchmarks.server"]
    from . import gopeer

    why = gopeer.missing()
    if why is not None:
        raise SystemExit(f"--server go: {why}")
    return [str(gopeer.build()), "server", "-cpu", "0"]


def _make_certificates(directory: str) -> None:
    """The run's CA and certificate, made in a child process: trustme imports
    ``cryptography``, whose extension carries an OpenSSL of its own; loaded into the
    counted process, callgrind charged some of the ``ssl`` module's OpenSSL calls to
    it (on asyncio's loop, about 10,600 instructions per request), which muddles a
    profile though not the total."""
    code = "import sys; from pathlib import Path; from benchmarks.tls import "
    code += "make_certificates as m; m(Path(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, directory], check=True)


def _count(workload: list[str], requests: int) -> int:
    """Instructions of one run of ``workload`` with ``requests`` GETs, under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *workload]
        subprocess.run([*command, "--run", str(requests)], check=True, capture_output=True)
        with open(out) as f:
            found = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
        assert found, "no totals in callgrind's output"
        return int(found.group(1))


# The syscalls a request may make (perf's tracepoints): the loop's wait, the socket
# reads and writes of the client and of the in-process server (one read and one write
# per request are the server's), and the pool's poll() before a reuse.
SYSCALLS = ("epoll_wait", "epoll_pwait", "poll", "ppoll", "read", "recvfrom", "write", "sendto")


def _syscalls(workload: list[str], requests: int) -> dict[str, int]:
    """Syscalls of one run of ``workload`` by name (all of them as "total"), by perf;
    of the workload's process alone (not a separate server's)."""
    events = ["raw_syscalls:sys_enter", *(f"syscalls:sys_enter_{n}" for n in SYSCALLS)]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "perf.csv")
        command = ["perf", "stat", "--no-inherit", "-x", ",", "-o", out, "-e", ",".join(events)]
        command += workload
        subprocess.run([*command, "--run", str(requests)], check=True, capture_output=True)
        counts = {}
        with open(out) as f:
            for line in f:  # "count,,event,..."; raw_syscalls:sys_enter counts them all
                fields = line.strip().split(",")
                if len(fields) > 2 and "sys_enter" in fields[2]:
                    counts[fields[2].partition("sys_enter_")[2] or "total"] = int(fields[0])
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variant", choices=["plain", "hooks", "otel", "otel-noop", "ceiling"], default="plain"
    )
    parser.add_argument("--run", type=int, help="run the workload only, with this many GETs")
    parser.add_argument("--body", choices=list(BODIES), default="small")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, metavar="N")
    parser.add_argument("--faults", action="store_true", help="page faults, not instructions")
    parser.add_argument(
        "--syscalls", action="store_true", help="syscalls per request (perf), not instructions"
    )
    parser.add_argument(
        "--cpu", action="store_true", help="user and system CPU time per request (getrusage)"
    )
    parser.add_argument(
        "--footprint",
        action="store_true",
        help="the code a request runs through, in KiB (callgrind), not instructions",
    )
    parser.add_argument("--tls", action="store_true", help="over TLS (a trustme certificate)")
    parser.add_argument(
        "--separate-server",
        action="store_true",
        help="the suite's server in its own process: counts the client alone",
    )
    parser.add_argument(
        "--server",
        choices=["embedded", "go"],
        default="embedded",
        help="go: Go's fasthttp server in its own process (implies --separate-server)",
    )
    args = parser.parse_args()
    run = asyncio.run
    if args.loop == "uvloop":
        import uvloop

        run = uvloop.run
    go = args.server == "go"
    concurrency, separate = args.concurrency, args.separate_server or go
    common = (args.variant, args.body)
    if args.run:
        run(_workload(args.run, *common, 0, args.tls, concurrency, separate, go))
        return
    where = f"{args.variant}, {args.body}, {args.loop}" + (", TLS" if args.tls else "")
    if args.faults:
        usage = run(_workload(6400, *common, 3200, args.tls, concurrency, separate, go))
        print(f"{where}: {usage.faults / 6400:.2f} minor faults per request")
        return
    if args.cpu:
        requests = max(6400, 200 * concurrency)
        usage = run(
            _workload(requests, *common, 20 * concurrency, args.tls, concurrency, separate, go)
        )
        where += f", c={concurrency}" + (", client alone" if separate else "")
        user, system = usage.user * 1e6 / requests, usage.system * 1e6 / requests
        print(f"{where}: CPU per request: user {user:.2f} µs, system {system:.2f} µs")
        return
    workload = [sys.executable, "-m", "benchmarks.instructions", "--variant", args.variant]
    workload += ["--body", args.body, "--loop", args.loop, *(["--tls"] if args.tls else [])]
    workload += ["--concurrency", str(concurrency)]
    workload += ["--separate-server"] if separate else []
    workload += ["--server", "go"] if go else []
    # Each connection serves at least 10 of the counted requests (the difference).
    big = max(6400, 20 * concurrency) // concurrency * concurrency
    small = big // 2
    label = ", ".join(
        [args.variant, args.body, args.loop, *(["TLS"] if args.tls else [])]
        + ([f"c={concurrency}"] if concurrency != CONCURRENCY else [])
        + (["client alone"] if separate else [])
        + (["Go's server"] if go else [])
    )
    plain = ("small", "uvloop", False, CONCURRENCY, False)
    if (args.body, args.loop, args.tls, concurrency, separate) == plain:
        label = args.variant
    if args.syscalls:
        calls, fewer = _syscalls(workload, big), _syscalls(workload, small)
        per = ", ".join(
            f"{name} {(calls[name] - fewer.get(name, 0)) / (big - small):.2f}"
            for name in ("total", *SYSCALLS)
            if name in calls
        )
        print(f"{label}: syscalls per request: {per}")
        return
    # One run outside valgrind first, so both counted runs import cached bytecode: a
    # first run after an edit compiles the changed modules, millions of instructions
    # the difference would otherwise charge to the requests.
    subprocess.run([*workload, "--run", str(concurrency)], check=True)
    if args.footprint:
        from . import footprint

        print(footprint.report(label, footprint.measure(workload, big, small)))
        return
    many, few = _count(workload, big), _count(workload, small)
    print(f"{label}: {(many - few) / (big - small):,.0f} instructions per request")


if __name__ == "__main__":
    main()
