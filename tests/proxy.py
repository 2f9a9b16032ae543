"""A small HTTP proxy for tests: absolute-form forwarding and CONNECT tunnels, with Basic auth.

It records what it saw (request lines, Proxy-Authorization values, tunnels
opened) so tests can check how the client used it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from servers import HOST, read_request


@dataclass
class ProxyLog:
    port: int = 0
    request_lines: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    tunnels: list[str] = field(default_factory=list)

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}{HOST}:{self.port}"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def run_proxy(require_auth: str | None = None) -> AsyncIterator[ProxyLog]:
    """Serve until the block ends. ``require_auth``: the Proxy-Authorization value to demand."""
    log = ProxyLog()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            while (req := await read_request(reader)) is not None:
                log.request_lines.append(f"{req.method} {req.target}")
                log.auth.append(req.headers.get("proxy-authorization"))
                if require_auth and req.headers.get("proxy-authorization") != require_auth:
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n"
                    )
                    await writer.drain()
                    continue
                if req.method == "CONNECT":
                    host, _, port = req.target.rpartition(":")
                    log.tunnels.append(req.target)
                    up_r, up_w = await asyncio.open_connection(host.strip("[]"), int(port))
                    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    await writer.drain()
                    await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
                    return
                # Absolute-form: forward in origin-form to the target, relay the answer.
                parts = urlsplit(req.target)
                if upstream is None:
                    up_r, upstream = await asyncio.open_connection(parts.hostname, parts.port)
                    relay = asyncio.ensure_future(_pipe(up_r, writer))
                    tasks.add(relay)  # type: ignore[arg-type]
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                head = [f"{req.method} {path} HTTP/1.1"]
                head += [f"{k}: {v}" for k, v in req.headers.items() if k != "proxy-authorization"]
                upstream.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + req.body)
                await upstream.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if upstream is not None:
                upstream.transport.abort()
            writer.transport.abort()
            tasks.discard(task)

    server = await asyncio.start_server(handle, HOST, 0)
    log.port = server.sockets[0].getsockname()[1]
    try:
        yield log
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)
        await server.wait_closed()
