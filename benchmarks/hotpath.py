"""The hot-path workload counted with callgrind: N GETs of /small at concurrency 64.

The client and the benchmark server share one uvloop loop in this process, so
callgrind counts both. Run it twice and subtract, to cancel the start-up::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.hotpath 6400     # "Collected : A"
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m benchmarks.hotpath 3200     # "Collected : B"

(A - B) / 3200 is the instruction count per request. Compile the sources first
(``python -m compileall -q src benchmarks``), or the first run also counts that.
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop

from aiofasthttp import Client

from .server import HttpServerProtocol, ServerConfig

CONCURRENCY = 64


async def workload(requests: int) -> None:
    loop = asyncio.get_running_loop()
    config = ServerConfig(None, None)
    server = await loop.create_server(lambda: HttpServerProtocol(config, loop), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/small"
    async with Client(max_conns_per_host=CONCURRENCY) as client:

        async def worker() -> None:
            for _ in range(requests // CONCURRENCY):
                resp = await client.get(url)
                assert resp.status == 200 and resp.content

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpath")
    parser.add_argument("requests", type=int, help="a multiple of 64")
    uvloop.run(workload(parser.parse_args().requests))


if __name__ == "__main__":
    main()
