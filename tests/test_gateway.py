"""The example gateway: a uvloop+httptools server calling an upstream through one shared Client."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

import gateway
from aiofasthttp import Client
from servers import ConnInfo, read_request, response, run, serve, wait_until


def body_for(path: str) -> bytes:
    n = int(path.rsplit("/", 1)[1])
    return f"item-{n}:".encode() + b"x" * (n % 3000)


@pytest.mark.parametrize("upstream_client", ["aiofasthttp", "aiohttp"])
def test_gateway_under_load(upstream_client: str) -> None:
    open_now = 0
    open_max = 0

    async def upstream(reader, writer, info: ConnInfo) -> None:
        nonlocal open_now, open_max
        open_now += 1
        open_max = max(open_max, open_now)
        try:
            while (req := await read_request(reader)) is not None:
                writer.write(response(body_for(req.target)))
                await writer.drain()
        finally:
            open_now -= 1

    async def main() -> None:
        async with serve(upstream) as up:
            gw = gateway.Gateway(up.url(""), max_conns=16, client=upstream_client)
            port = await gw.start()
            try:
                async with Client(max_conns_per_host=64) as client:
                    sem = asyncio.Semaphore(64)

                    async def one(i: int) -> None:
                        async with sem:
                            r = await client.get(f"http://127.0.0.1:{port}/item/{i}")
                            assert r.status == 200 and r.content == body_for(f"/item/{i}")

                    await asyncio.gather(*(one(i) for i in range(5000)))
            finally:
                await gw.stop()
            assert 1 <= open_max <= 16  # never more upstream connections than allowed
            await wait_until(lambda: open_now == 0)  # nothing left open after shutdown

    run("uvloop", main, timeout=180)


def test_workers_share_the_port_and_bound_the_upstream_connections() -> None:
    """--workers 2 --max-conns 3: both workers serve, the upstream never sees more than 2 x 3."""
    open_now = 0
    open_max = 0
    script = Path(__file__).resolve().parents[1] / "examples" / "gateway.py"

    async def upstream(reader, writer, info: ConnInfo) -> None:
        nonlocal open_now, open_max
        open_now += 1
        open_max = max(open_max, open_now)
        try:
            while (req := await read_request(reader)) is not None:
                writer.write(response(body_for(req.target)))
                await writer.drain()
        finally:
            open_now -= 1

    async def main() -> None:
        async with serve(upstream) as up:
            argv = [str(script), "--upstream", up.url(""), "--port", "0"]
            argv += ["--workers", "2", "--max-conns", "3"]
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *argv, stdout=asyncio.subprocess.PIPE
            )
            assert proc.stdout is not None
            try:
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
                assert line.startswith("gateway on ") and "(2 workers" in line, line
                url = line.split()[2]
                async with Client(max_conns_per_host=32) as client:
                    sem = asyncio.Semaphore(32)

                    async def one(i: int) -> None:
                        async with sem:
                            r = await client.get(f"{url}/item/{i}")
                            assert r.status == 200 and r.content == body_for(f"/item/{i}")

                    await asyncio.gather(*(one(i) for i in range(2000)))
            finally:
                if proc.returncode is None:
                    proc.terminate()  # the parent stops its workers, each cleanly
                out = (await asyncio.wait_for(proc.stdout.read(), 30)).decode()
                assert await asyncio.wait_for(proc.wait(), 30) == 0
            served = [int(n) for n in re.findall(r"worker \d+ stopped: (\d+) requests", out)]
            assert len(served) == 2 and sum(served) == 2000 and min(served) > 0, out
            assert 3 < open_max <= 2 * 3  # both pools in use, each within its limit
            await wait_until(lambda: open_now == 0)  # the workers closed their clients

    run("uvloop", main, timeout=180)
