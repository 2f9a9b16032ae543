"""A uvloop + httptools gateway that calls an upstream service through one shared Client.

    python examples/gateway.py --upstream http://127.0.0.1:8081 --port 8080

Every request's path is fetched from the upstream and streamed back to the
caller chunk by chunk: the gateway never holds a whole upstream body. The
Client is made once when the server starts and closed when it stops: one per
process and event loop, as the README says. Requests on one downstream
connection are answered in order (keep-alive and pipelining safe).

``--upstream-client aiohttp`` swaps the upstream client for aiohttp, so the
benchmark can compare the two under the same server.

``--workers N`` runs N processes sharing the port (SO_REUSEPORT: the kernel
spreads incoming connections over them), each with its own event loop and its
own Client: a uvloop server uses one core per process. Each worker's pool is
bounded by ``--max-conns``, so the upstream sees at most N x ``--max-conns``
connections: to keep the upstream's total at T, give each worker T // N. The
parent starts the workers, waits until every one listens, and on SIGTERM or
Ctrl-C stops them (each closes its server and its Client) and waits for them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httptools

from aiofasthttp import Client, HTTPError

_REASONS = {200: b"OK", 404: b"Not Found", 502: b"Bad Gateway"}


class Upstream(Protocol):
    def fetch(
        self, path: str
    ) -> contextlib.AbstractAsyncContextManager[tuple[int, AsyncIterator[bytes]]]: ...

    async def aclose(self) -> None: ...


class AiofasthttpUpstream:
    def __init__(self, base_url: str, max_conns: int) -> None:
        self.client = Client(base_url=base_url, max_conns_per_host=max_conns, timeout=30)

    @contextlib.asynccontextmanager
    async def fetch(self, path: str) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        async with self.client.stream("GET", path) as resp:
            yield resp.status, resp.iter_bytes()

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpUpstream:
    def __init__(self, base_url: str, max_conns: int) -> None:
        import aiohttp

        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit_per_host=max_conns)
        )

    @contextlib.asynccontextmanager
    async def fetch(self, path: str) -> AsyncIterator[tuple[int, AsyncIterator[bytes]]]:
        async with self.session.get(self.base_url + path) as resp:
            yield resp.status, resp.content.iter_any()

    async def aclose(self) -> None:
        await self.session.close()


class _Downstream(asyncio.Protocol):
    """One caller's connection: parse requests, answer each in order."""

    def __init__(self, upstream: Upstream, gateway: Gateway) -> None:
        self.upstream = upstream
        self.gateway = gateway
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.previous: asyncio.Future[None] | None = None
        self.drained = asyncio.Event()
        self.drained.set()
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        self.gateway.served += 1
        task = asyncio.ensure_future(self.answer(self.url.decode("latin-1"), self.previous))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        self.previous = task

    def pause_writing(self) -> None:
        self.drained.clear()

    def resume_writing(self) -> None:
        self.drained.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.drained.set()
        for task in self.tasks:
            task.cancel()

    async def answer(self, path: str, previous: asyncio.Future[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous  # answers leave in request order
        try:
            async with self.upstream.fetch(path) as (status, body):
                self.write(
                    b"HTTP/1.1 %d %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                    % (status, _REASONS.get(status, b"X"))
                )
                async for chunk in body:
                    if chunk:
                        self.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        await self.drained.wait()
                self.write(b"0\r\n\r\n")
        except (HTTPError, OSError) as exc:
            if self.transport is not None:
                text = f"upstream failed: {exc}".encode()
                self.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: %d\r\n\r\n" % len(text))
                self.write(text)

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


class Gateway:
    """The server and its one shared upstream client; start() and stop() bound their lives."""

    def __init__(self, upstream: str, *, max_conns: int = 32, client: str = "aiofasthttp") -> None:
        self.upstream_url = upstream
        self.max_conns = max_conns
        self.client_kind = client
        self.upstream: Upstream | None = None
        self.server: asyncio.AbstractServer | None = None
        self.served = 0  # requests received

    async def start(self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False) -> int:
        kind = AiohttpUpstream if self.client_kind == "aiohttp" else AiofasthttpUpstream
        upstream = kind(self.upstream_url, self.max_conns)
        self.upstream = upstream
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: _Downstream(upstream, self), host, port, reuse_port=reuse_port or None
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.upstream is not None:
            await self.upstream.aclose()


async def _serve(args: argparse.Namespace) -> None:
    """One process: the gateway until SIGTERM or SIGINT, then a clean stop."""
    gateway = Gateway(args.upstream, max_conns=args.max_conns, client=args.upstream_client)
    port = await gateway.start(args.host, args.port, reuse_port=args.ready_fd is not None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.ready_fd is not None:  # a worker: tell the parent it listens
        os.write(args.ready_fd, b"1")
        os.close(args.ready_fd)
    else:
        print(f"gateway on http://{args.host}:{port} -> {args.upstream}", flush=True)
    try:
        await stop.wait()
    finally:
        await gateway.stop()
        if args.ready_fd is not None:
            # One write per line: the workers share the parent's stdout, and print()
            # writes the text and the newline apart, so two lines could run together.
            sys.stdout.write(f"worker {os.getpid()} stopped: {gateway.served} requests\n")
            sys.stdout.flush()


def _reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it fixes the port the workers share
    (port 0 picks a free one) and takes no connection."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _run_workers(args: argparse.Namespace) -> int:
    """Start ``args.workers`` processes on one port, stop them on SIGTERM or Ctrl-C."""
    reserved = _reserve_port(args.host, args.port)
    port = reserved.getsockname()[1]
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, os.path.abspath(__file__), "--upstream", args.upstream]
    argv += ["--host", args.host, "--port", str(port), "--max-conns", str(args.max_conns)]
    argv += ["--upstream-client", args.upstream_client, "--ready-fd", str(write_fd)]
    workers = [
        subprocess.Popen(argv, pass_fds=(write_fd,), start_new_session=True)
        for _ in range(args.workers)
    ]
    os.close(write_fd)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        ready = _wait_ready(read_fd, len(workers), timeout=30.0)
        reserved.close()
        if ready < len(workers):
            print(f"only {ready} of {len(workers)} workers started", file=sys.stderr)
            return 1
        print(
            f"gateway on http://{args.host}:{port} -> {args.upstream} "
            f"({len(workers)} workers, up to {len(workers) * args.max_conns} upstream connections)",
            flush=True,
        )
        while not stopping and all(w.poll() is None for w in workers):
            time.sleep(0.2)  # a worker that dies stops the others too
        return 0
    finally:
        os.close(read_fd)
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)


def _wait_ready(read_fd: int, count: int, timeout: float) -> int:
    """How many workers said they listen (one byte each) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    got = 0
    os.set_blocking(read_fd, False)
    while got < count and time.monotonic() < deadline:
        ready = select.select([read_fd], [], [], deadline - time.monotonic())[0]
        if not ready:
            break
        data = os.read(read_fd, count - got)
        if not data:
            break  # every worker has exited or closed its end
        got += len(data)
    return got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-conns", type=int, default=32, help="per worker")
    parser.add_argument(
        "--upstream-client", choices=["aiofasthttp", "aiohttp"], default="aiofasthttp"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)  # set for workers
    args = parser.parse_args()
    if args.workers > 1:
        sys.exit(_run_workers(args))
    import uvloop

    uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
