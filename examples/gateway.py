"""A uvloop + httptools gateway that calls an upstream service through one shared Client.

    python examples/gateway.py --upstream http://127.0.0.1:8081 --port 8080

Every request's path is fetched from the upstream and streamed back to the
caller chunk by chunk: the gateway never holds a whole upstream body. The
Client is made once when the server starts and closed when it stops: one per
process and event loop, as the README says. Requests on one downstream
connection are answered in order (keep-alive and pipelining safe).

``--upstream-client aiohttp`` swaps the upstream client for aiohttp, so the
benchmark can compare the two under the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
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

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        kind = AiohttpUpstream if self.client_kind == "aiohttp" else AiofasthttpUpstream
        upstream = kind(self.upstream_url, self.max_conns)
        self.upstream = upstream
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Downstream(upstream), host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.upstream is not None:
            await self.upstream.aclose()


async def _main(args: argparse.Namespace) -> None:
    gateway = Gateway(args.upstream, max_conns=args.max_conns, client=args.upstream_client)
    port = await gateway.start(args.host, args.port)
    print(f"gateway on http://{args.host}:{port} -> {args.upstream}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--max-conns", type=int, default=32)
    parser.add_argument(
        "--upstream-client", choices=["aiofasthttp", "aiohttp"], default="aiofasthttp"
    )
    args = parser.parse_args()
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(_main(args))


if __name__ == "__main__":
    main()
