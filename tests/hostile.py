"""A hostile HTTP/1.1 server for retry tests: it drops connections in every way a real one does.

Seeded, so a failing run replays exactly. Each connection draws a behaviour:

- ``idle_close``: answers, then closes the connection once idle after a random pause;
- ``close_after_n``: answers N requests, then closes without ``Connection: close``;
- ``reset``: answers some requests, then resets the connection (SO_LINGER 0) when idle;
- ``drop_request``: reads a request and closes without answering (not processed).

Every processed request is logged by its ``X-Request-Id`` so a test can check
that nothing was processed twice and that each response reached its caller.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections import Counter

from servers import ConnInfo, read_request, response


class HostileServer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.processed: Counter[str] = Counter()
        self.dropped = 0

    async def handler(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        behaviour = self.rng.choice(["idle_close", "close_after_n", "reset", "drop_request"])
        limit = self.rng.randint(1, 6)
        served = 0
        while True:
            req = await read_request(reader)
            if req is None:
                return
            rid = req.headers.get("x-request-id", "")
            if behaviour == "drop_request" and served == limit - 1:
                self.dropped += 1
                return  # read, not processed, closed without an answer
            self.processed[rid] += 1
            writer.write(response(f"{req.method} {rid}".encode(), headers={"X-Request-Id": rid}))
            await writer.drain()
            served += 1
            if behaviour == "close_after_n" and served >= limit:
                return
            if behaviour in ("idle_close", "reset") and served >= limit:
                await asyncio.sleep(self.rng.uniform(0, 0.02))
                if behaviour == "reset":
                    _reset(writer)
                return


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
