"""``python -m benchmarks.soak``: a bounded mixed workload that checks invariants as it runs.

::

    python -m benchmarks.soak --requests 50000 --concurrency 64 --seed 1 [--loop uvloop]
    python -m benchmarks.soak --memory [--loop asyncio]

The soak starts its own loopback server in a child process (two ports: origin A
keeps connections open; origin B closes any connection idle for half a second,
as a keep-alive timeout does, without saying so, and gets half the traffic in
one block of 8000 requests and almost none in the next, so its connections do
sit idle that long), runs ``--requests`` requests from ``--concurrency``
workers, stops the server by its PID, and prints a summary. Each request draws
its kind from a generator seeded with ``--seed`` and its own index, so a run
replays the same requests whatever the scheduling:

- GET, HEAD and POST (bytes, JSON, a form, a chunked upload), echoed back with
  the request id the client sent, so a response that reaches the wrong caller is
  counted (it must never happen);
- streamed responses read piece by piece, some left before their end;
- requests cancelled at a random moment (``wait_for`` on a slow answer);
- ``Connection: close`` answers;
- server faults: garbage instead of a status line, a bad header line, a body
  shorter than its Content-Length, a reset half-way through the body, a request
  read and dropped unanswered (a GET or a keyed POST must then succeed by replay;
  a plain POST must fail and must not be processed twice), a body past
  ``max_response_body_size``, a server that never answers (``timeout=``).

Every kind has the errors it may end in; any other error, or a success where a
fault must fail, is *unexpected*. The run fails (exit status 1) when a response
reaches the wrong caller, an error is unexpected, the server processed a POST
twice, a descriptor leaked (``/proc/self/fd`` before and after), the pool is not
clean at the end, or RSS grew by 10% or more between the end of the warm-up
(the first fifth of the requests) and the end (both after ``gc.collect()`` and
``malloc_trim(0)``, so that a leak shows, not the heap's high-water mark).

``--memory`` measures the memory of an idle pooled connection and of an
in-flight request instead (README, "Soak and memory").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import itertools
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiofasthttp import Client, ConnectionClosedError, HTTPError, RetryPolicy
from testkit import ServerProcess as ChildServer
from testkit import new_loop

ROOT = Path(__file__).resolve().parent.parent
IDLE_TIMEOUT_B = 0.5  # origin B closes connections idle this long, without warning
MAX_BODY = 1 << 20  # the client's max_response_body_size
STALL_TIMEOUT = 0.25  # the whole-request timeout of requests to a server that never answers

# -- the server (a child process) ------------------------------------------------------


def _response(rid: str, body: bytes, extra: str = "", status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\nX-Request-Id: {rid}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


def stream_body(rid: str, size: int) -> bytes:
    """The body ``/stream`` sends for an id: the id repeated, cut to ``size``."""
    unit = rid.encode() + b"."
    return (unit * (size // len(unit) + 1))[:size]


def digest(body: bytes) -> str:
    return f"{len(body)}:{zlib.crc32(body):08x}"


class SoakServer:
    """The soak's HTTP/1.1 server: each route echoes the request id; /fault/* misbehave."""

    def __init__(self, idle_timeout: float | None) -> None:
        self.idle_timeout = idle_timeout
        self.posts: Counter[str] = Counter()  # POSTs processed, by request id
        self.dropped: set[str] = set()
        self.connections = 0
        self.held = 0  # /slow requests waiting for their answer now

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        loop = asyncio.get_running_loop()
        idle: asyncio.TimerHandle | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if idle is not None:
                    idle.cancel()
                method, target, headers = _parse_head(head)
                body = await _read_body(reader, headers)
                keep = await self.answer(method, target, headers, body, reader, writer)
                if not keep:
                    return
                if self.idle_timeout is not None:
                    idle = loop.call_later(self.idle_timeout, writer.transport.abort)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            if idle is not None:
                idle.cancel()
            writer.transport.abort()

    async def answer(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False when the connection must end."""
        parts = target.split("/")
        route, rid = parts[1], parts[-1]
        if route == "fault":
            return await self.fault(parts[2], method, rid, body, headers, reader, writer)
        if route == "stats":
            payload = json.dumps({"dup_posts": sum(n > 1 for n in self.posts.values())})
            writer.write(_response(rid, payload.encode()))
        elif route == "held":
            writer.write(_response(rid, str(self.held).encode()))
        elif route == "slow":
            self.held += 1
            try:
                await asyncio.sleep(int(parts[2]) / 1000)
            finally:
                self.held -= 1
            writer.write(_response(rid, rid.encode()))
        elif route == "stream":
            await self.stream(rid, int(parts[2]), int(parts[3]), writer)
        elif route == "close":
            writer.write(_response(rid, rid.encode(), "Connection: close\r\n"))
            await writer.drain()
            return False
        elif method == "POST":
            self.posts[rid] += 1
            writer.write(_response(rid, f"{rid}:{digest(body)}".encode()))
        elif method == "HEAD":
            writer.write(_head_only(rid))
        else:
            writer.write(_response(rid, rid.encode()))
        await writer.drain()
        return True

    async def stream(self, rid: str, size: int, piece: int, writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 200 OK\r\nX-Request-Id: {rid}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        data = stream_body(rid, size)
        for i in range(0, size, piece):
            chunk = data[i : i + piece]
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def fault(
        self,
        kind: str,
        method: str,
        rid: str,
        body: bytes,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        if kind in ("drop", "dropkeyed") and rid in self.dropped:
            if method == "POST":
                self.posts[rid] += 1
                writer.write(_response(rid, f"{rid}:{digest(body)}".encode()))
            else:
                writer.write(_response(rid, rid.encode()))
            await writer.drain()
            return True
        if kind in ("drop", "dropkeyed", "droppost"):
            self.dropped.add(rid)
            return False  # read, not processed, closed unanswered
        if kind == "garbage":
            writer.write(b"SOAK GARBAGE " + rid.encode() + b"\r\n\r\n")
        elif kind == "badheader":
            writer.write(
                b"HTTP/1.1 200 OK\r\nX-Request-Id: " + rid.encode() + b"\r\nno colon\r\n\r\n"
            )
        elif kind == "short":
            writer.write(
                b"HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: 100\r\n\r\n0123456789"
                % rid.encode()
            )
        elif kind == "reset":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + b"r" * 10000)
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        elif kind == "big":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * MAX_BODY))
            block = b"b" * 65536
            for _ in range(2 * MAX_BODY // len(block)):
                writer.write(block)
                await writer.drain()
        elif kind == "stall":
            await reader.read()  # never answers; the client gives up and closes
            return False
        await writer.drain()
        return False


def _head_only(rid: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nX-Request-Id: {rid}\r\nContent-Length: {len(rid)}\r\n\r\n".encode()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return b""
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return b"".join(parts)
        parts.append(data[:-2])


async def _serve_forever() -> None:
    loop = asyncio.get_running_loop()
    a = await asyncio.start_server(SoakServer(None).handle, "127.0.0.1", 0, backlog=1024)
    b = await asyncio.start_server(SoakServer(IDLE_TIMEOUT_B).handle, "127.0.0.1", 0, backlog=1024)
    ports = [s.sockets[0].getsockname()[1] for s in (a, b)]
    print("READY", *ports, flush=True)
    # The parent holds our stdin: when it closes it (or dies), stop.
    done = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: done.done() or done.set_result(None))
    await done
    a.close()
    b.close()


def serve_main() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve_forever())


class ServerProcess(ChildServer):
    """The soak server in a child process: it says READY and its ports, and ends when
    its stdin closes."""

    def __init__(self) -> None:
        argv = [sys.executable, "-m", "benchmarks.soak", "--serve"]
        super().__init__(argv, ready="READY", grace=10.0)


# -- the workload ----------------------------------------------------------------------

# kind: (weight, errors it may end in; "success" when a success is also fine)
KINDS: dict[str, tuple[int, frozenset[str]]] = {
    "get": (300, frozenset()),
    "head": (30, frozenset()),
    "post": (120, frozenset()),
    "post_json": (30, frozenset()),
    "post_form": (20, frozenset()),
    "post_chunked": (30, frozenset()),
    "stream": (80, frozenset()),
    "stream_early": (30, frozenset()),
    "cancel": (100, frozenset({"Cancelled", "success"})),
    "close": (40, frozenset()),
    "garbage": (20, frozenset({"ProtocolError"})),
    "badheader": (15, frozenset({"ProtocolError"})),
    "short": (20, frozenset({"ConnectionClosedError"})),
    "reset": (20, frozenset({"ConnectionClosedError"})),
    "drop": (20, frozenset()),
    "dropkeyed": (15, frozenset()),
    "droppost": (15, frozenset({"ConnectionClosedError"})),
    "big": (3, frozenset({"ResponseTooLarge"})),
    "stall": (5, frozenset({"RequestTimeout"})),
}
_NAMES = list(KINDS)
_WEIGHTS = list(itertools.accumulate(w for w, _ in KINDS.values()))


class WrongCaller(Exception):
    """A response that belongs to another request."""


@dataclasses.dataclass
class SoakResult:
    requests: int = 0
    ok: int = 0
    cancelled: int = 0
    errors: Counter[str] = dataclasses.field(default_factory=Counter)  # "kind: Error"
    unexpected: list[str] = dataclasses.field(default_factory=list)
    wrong_caller: int = 0
    dup_posts: int = -1
    fds_before: int = 0
    fds_after: int = 0
    rss_warm: int = 0
    rss_end: int = 0
    duration: float = 0.0
    pool: dict[str, Any] = dataclasses.field(default_factory=dict)
    pool_clean: bool = False
    loop_errors: list[str] = dataclasses.field(default_factory=list)  # the loop's handler got

    def failures(self) -> list[str]:
        """Every broken invariant, in words; empty when the soak passed."""
        out = []
        if self.wrong_caller:
            out.append(f"{self.wrong_caller} responses reached the wrong caller")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} unexpected outcomes, e.g. {self.unexpected[:3]}")
        if self.ok + self.cancelled + sum(self.errors.values()) != self.requests:
            out.append("requests unaccounted for")
        if self.dup_posts != 0:
            out.append(f"the server processed {self.dup_posts} POSTs more than once")
        if self.fds_after > self.fds_before:
            out.append(f"descriptors leaked: {self.fds_before} before, {self.fds_after} after")
        if not self.pool_clean:
            out.append(f"the pool was not clean at the end: {self.pool}")
        if self.loop_errors:
            out.append(f"{len(self.loop_errors)} errors reached the event loop's handler")
        if self.rss_end >= self.rss_warm * 1.10:
            growth = 100 * (self.rss_end - self.rss_warm) / self.rss_warm
            out.append(f"RSS grew {growth:.1f}% after the warm-up (limit 10%)")
        return out

    def summary(self) -> str:
        mib = 1 << 20
        growth = 100 * (self.rss_end - self.rss_warm) / max(1, self.rss_warm)
        by_type: Counter[str] = Counter()
        for key, n in self.errors.items():
            by_type[key.split(": ")[1]] += n
        lines = [
            f"requests        {self.requests} in {self.duration:.1f} s "
            f"({self.requests / max(self.duration, 1e-9):.0f}/s)",
            f"ok              {self.ok}",
            f"cancelled       {self.cancelled}",
            "errors by type  "
            + (", ".join(f"{k} {v}" for k, v in sorted(by_type.items())) or "none"),
            "errors by kind  "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.errors.items())) or "none"),
            f"unexpected      {len(self.unexpected)}",
            f"wrong caller    {self.wrong_caller}",
            f"loop errors     {len(self.loop_errors)}",
            f"POSTs twice     {self.dup_posts}",
            f"fds             {self.fds_before} before, {self.fds_after} after",
            f"RSS             {self.rss_warm / mib:.1f} MiB after warm-up, "
            f"{self.rss_end / mib:.1f} MiB at the end ({growth:+.1f}%)",
            "pool            " + ", ".join(f"{k}={v}" for k, v in self.pool.items()),
        ]
        failures = self.failures()
        lines.append(
            "result          " + ("PASS" if not failures else "FAIL: " + "; ".join(failures))
        )
        for line in self.unexpected[:10]:
            lines.append(f"  unexpected: {line}")
        for line in self.loop_errors[:10]:
            lines.append(f"  loop error: {line}")
        return "\n".join(lines)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


try:
    _malloc_trim: Callable[[int], int] | None = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def settled_rss() -> int:
    """RSS once garbage is collected and the C heap has handed its free pages back.

    Without the trim, RSS follows the heap's high-water mark: the largest number
    of big bodies ever alive at once, which creeps up as a long run meets rarer
    peaks. A leak is memory still in use, which no trim gives back.
    """
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    return rss_bytes()


def draw(seed: int, index: int) -> tuple[str, random.Random]:
    """The kind of request ``index``, and its own generator for the details."""
    rng = random.Random(seed * 1_000_003 + index)
    pick = rng.randrange(_WEIGHTS[-1])
    for name, edge in zip(_NAMES, _WEIGHTS, strict=True):
        if pick < edge:
            return name, rng
    raise AssertionError("unreachable")


class Workload:
    def __init__(self, client: Client, ports: list[int], seed: int, result: SoakResult) -> None:
        self.client = client
        self.bases = [f"http://127.0.0.1:{p}" for p in ports]
        self.seed = seed
        self.result = result

    async def one(self, index: int) -> None:
        kind, rng = draw(self.seed, index)
        rid = f"{self.seed}-{index}"
        # Origin B takes half the requests in one block of 8000, 0.5% in the next: its
        # connections then sit idle past its timeout, and it closes them.
        share_b = 0.5 if (index // 8000) % 2 == 0 else 0.005
        base = self.bases[1] if rng.random() < share_b else self.bases[0]
        result = self.result
        expected = KINDS[kind][1]
        try:
            await getattr(self, kind)(rng, base, rid)
        except WrongCaller as exc:
            result.wrong_caller += 1
            result.unexpected.append(f"{kind} {rid}: {exc}")
            result.errors[f"{kind}: WrongCaller"] += 1
        except HTTPError as exc:
            # (before asyncio.TimeoutError: the client's timeouts are TimeoutErrors too)
            name = type(exc).__name__
            names = {cls.__name__ for cls in type(exc).__mro__}
            if self.closed_while_idle(kind, base, exc):
                name = "ClosedWhileIdle"
            elif not names & expected:
                result.unexpected.append(f"{kind} {rid}: {exc!r}"[:400])
            result.errors[f"{kind}: {name}"] += 1
        except asyncio.TimeoutError:  # wait_for() cancelled the request
            if "Cancelled" not in expected:
                result.unexpected.append(f"{kind} {rid}: cancelled")
            result.cancelled += 1
        except Exception as exc:  # not the client's error type at all: always unexpected
            result.unexpected.append(f"{kind} {rid}: {exc!r}"[:400])
            result.errors[f"{kind}: {type(exc).__name__}"] += 1
        else:
            if expected and "success" not in expected:
                result.unexpected.append(f"{kind} {rid}: succeeded, but the fault must fail")
            result.ok += 1

    def closed_while_idle(self, kind: str, base: str, exc: HTTPError) -> bool:
        """Origin B closes idle connections unannounced: a POST written on one just as
        it closes fails unreplayed (docs/design.md's rule), which is not a fault of the client."""
        return (
            kind.startswith("post")
            and base == self.bases[1]
            and isinstance(exc, ConnectionClosedError)
            and exc.reused
            and not exc.response_bytes
        )

    # -- the kinds: each raises on a failure and WrongCaller on someone else's answer --

    def check(self, resp: Any, rid: str, body: bytes | None) -> None:
        got = resp.headers.get("x-request-id")
        if got != rid:
            raise WrongCaller(f"got the response of {got}")
        if body is not None and resp.content != body:
            raise WrongCaller(f"body {resp.content[:60]!r} is not {body[:60]!r}")

    async def get(self, rng: random.Random, base: str, rid: str) -> None:
        self.check(await self.client.get(f"{base}/echo/{rid}"), rid, rid.encode())

    async def head(self, rng: random.Random, base: str, rid: str) -> None:
        self.check(await self.client.head(f"{base}/echo/{rid}"), rid, b"")

    async def post(self, rng: random.Random, base: str, rid: str) -> None:
        body = rng.randbytes(rng.choice((0, 10, 1000, 20_000, 100_000)))
        resp = await self.client.post(f"{base}/echo/{rid}", content=body)
        self.check(resp, rid, f"{rid}:{digest(body)}".encode())

    async def post_json(self, rng: random.Random, base: str, rid: str) -> None:
        payload = {"id": rid, "n": [rng.random() for _ in range(rng.randrange(50))]}
        body = json.dumps(payload, separators=(",", ":")).encode()
        resp = await self.client.post(f"{base}/echo/{rid}", json=payload)
        self.check(resp, rid, f"{rid}:{digest(body)}".encode())

    async def post_form(self, rng: random.Random, base: str, rid: str) -> None:
        resp = await self.client.post(f"{base}/echo/{rid}", data={"id": rid, "x": "a b&c"})
        body = f"id={rid}&x=a+b%26c".encode()
        self.check(resp, rid, f"{rid}:{digest(body)}".encode())

    async def post_chunked(self, rng: random.Random, base: str, rid: str) -> None:
        pieces = [rng.randbytes(rng.randrange(1, 5000)) for _ in range(rng.randrange(1, 6))]

        async def body() -> Any:
            for piece in pieces:
                yield piece

        resp = await self.client.post(f"{base}/echo/{rid}", content=lambda: body())
        self.check(resp, rid, f"{rid}:{digest(b''.join(pieces))}".encode())

    async def stream(self, rng: random.Random, base: str, rid: str, early: bool = False) -> None:
        size = rng.choice((1, 1000, 30_000, 200_000))
        piece = rng.choice((100, 4096, 65536))
        got = []
        async with self.client.stream("GET", f"{base}/stream/{size}/{piece}/{rid}") as resp:
            self.check(resp, rid, None)
            async for chunk in resp.iter_bytes():
                got.append(chunk)
                if early:
                    break
        data = b"".join(got)
        expected = stream_body(rid, size)
        if (early and not expected.startswith(data)) or (not early and data != expected):
            raise WrongCaller(f"streamed body {data[:60]!r} is not {expected[:60]!r}")

    async def stream_early(self, rng: random.Random, base: str, rid: str) -> None:
        await self.stream(rng, base, rid, early=True)

    async def cancel(self, rng: random.Random, base: str, rid: str) -> None:
        url = f"{base}/slow/{rng.randrange(0, 20)}/{rid}"
        resp = await asyncio.wait_for(self.client.get(url), rng.uniform(0, 0.02))
        self.check(resp, rid, rid.encode())

    async def close(self, rng: random.Random, base: str, rid: str) -> None:
        self.check(await self.client.get(f"{base}/close/{rid}"), rid, rid.encode())

    async def _fault(self, kind: str, base: str, rid: str, **kwargs: Any) -> None:
        self.check(await self.client.get(f"{base}/fault/{kind}/{rid}", **kwargs), rid, None)

    async def garbage(self, rng: random.Random, base: str, rid: str) -> None:
        await self._fault("garbage", base, rid)

    async def badheader(self, rng: random.Random, base: str, rid: str) -> None:
        await self._fault("badheader", base, rid)

    async def short(self, rng: random.Random, base: str, rid: str) -> None:
        await self._fault("short", base, rid)

    async def reset(self, rng: random.Random, base: str, rid: str) -> None:
        await self._fault("reset", base, rid)

    async def big(self, rng: random.Random, base: str, rid: str) -> None:
        await self._fault("big", base, rid)

    async def stall(self, rng: random.Random, base: str, rid: str) -> None:
        await self._fault("stall", base, rid, timeout=STALL_TIMEOUT)

    async def drop(self, rng: random.Random, base: str, rid: str) -> None:
        # Dropped unanswered the first time: replayed (it is a GET) and answered.
        self.check(await self.client.get(f"{base}/fault/drop/{rid}"), rid, rid.encode())

    async def dropkeyed(self, rng: random.Random, base: str, rid: str) -> None:
        body = rid.encode() * 3
        resp = await self.client.post(
            f"{base}/fault/dropkeyed/{rid}", content=body, headers={"Idempotency-Key": rid}
        )
        self.check(resp, rid, f"{rid}:{digest(body)}".encode())

    async def droppost(self, rng: random.Random, base: str, rid: str) -> None:
        await self.client.post(f"{base}/fault/droppost/{rid}", content=b"once")


async def soak(requests: int, concurrency: int, seed: int, ports: list[int]) -> SoakResult:
    """Run the workload in this process's running loop, against a running server."""
    result = SoakResult(requests=requests)
    # Errors nobody awaited (a future's exception never retrieved, a callback that
    # raised) go to the loop's handler: kept and counted, each one a failure.
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: result.loop_errors.append(
            f"{context['message']}: {context.get('exception')!r}"[:400]
        )
    )
    # Warm up what is made once per process or loop (uvloop's own descriptors, the
    # parser, the caches) before counting descriptors.
    async with Client() as client:
        await client.get(f"http://127.0.0.1:{ports[0]}/echo/warm")
    gc.collect()
    result.fds_before = open_fds()
    warm_at = requests // 5
    start = time.perf_counter()
    policy = RetryPolicy(backoff_base=0.01)
    client = Client(max_response_body_size=MAX_BODY, read_timeout=30, retry=policy)
    try:
        work = Workload(client, ports, seed, result)
        counter = itertools.count()
        warm = asyncio.Event()

        async def worker() -> None:
            while (index := next(counter)) < requests:
                await work.one(index)
                if index == warm_at:
                    warm.set()

        async def measure_warm() -> None:
            await warm.wait()
            result.rss_warm = settled_rss()

        watcher = asyncio.ensure_future(measure_warm())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        await watcher
        stats = json.loads((await client.get(f"http://127.0.0.1:{ports[0]}/stats/x")).content)
        result.dup_posts = stats["dup_posts"]
        result.duration = time.perf_counter() - start
        result.rss_end = settled_rss()
        result.pool, result.pool_clean = await _settled_pool_state(client)
    finally:
        await client.aclose()
    for _ in range(1000):  # closed transports release their sockets on the next turns
        if open_fds() <= result.fds_before:
            break
        await asyncio.sleep(0.01)
    gc.collect()  # a future dropped with its exception unretrieved reports it now
    result.fds_after = open_fds()
    return result


async def _settled_pool_state(client: Client, within: float = 2.0) -> tuple[dict[str, Any], bool]:
    """``_pool_state`` once the loop has read what is already in the sockets.

    Origin B closes idle connections on its own timer: a FIN that reached an idle
    connection just before the check is the server's close racing it, and the
    connection's own eof_received takes it out of the pool on the next turns. What
    the check is for (bytes no callback will read: a connection pooled with reading
    paused, or with unread response bytes) does not go away by waiting: bounded.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        state, clean = _pool_state(client)
        if clean or loop.time() >= deadline:
            return state, clean
        await asyncio.sleep(0.01)


def _pool_state(client: Client) -> tuple[dict[str, Any], bool]:
    """Counters summed over origins, and whether every pool is clean: nothing active or
    waiting, and no idle connection with a byte (or a FIN) waiting on its socket."""
    total: Counter[str] = Counter()
    keys = ("open", "idle", "active", "waiting", "created", "reused", "retries")
    for s in client.stats().values():
        for key in (*keys, "closed_by_server_idle", "expired"):
            total[key] += s[key]
        for why, n in s["close_reasons"].items():
            total[f"closed:{why}"] += n
    clean = total["active"] == 0 and total["waiting"] == 0
    for pool in client._pools.values():
        clean = clean and all(c.is_idle and c.socket_is_quiet() for c in pool._idle)
    return dict(total), clean


def run_in_loop(kind: str, main: Callable[[], Awaitable[Any]], timeout: float = 600) -> Any:
    loop = new_loop(kind)
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_soak(
    requests: int, concurrency: int, seed: int, loop: str = "uvloop", timeout: float = 600
) -> SoakResult:
    """Start the server, run the soak on a new loop of the given kind, stop the server."""
    with ServerProcess() as server:
        return run_in_loop(  # type: ignore[no-any-return]
            loop, lambda: soak(requests, concurrency, seed, server.ports), timeout
        )


# -- memory per idle connection and per in-flight request ---------------------------------

# Each figure is measured in a fresh child process (``--probe``), so memory freed by
# one measurement is not reused, unseen, by the next: once with RSS (after
# gc.collect() and malloc_trim(0)), once with tracemalloc (Python objects only).


async def _probe(what: str, port: int, count: int, traced: bool) -> float:
    """Bytes per connection: ``count`` idle pooled ones, or ``count`` each carrying a
    request the server holds unanswered ("busy"). Counted from after a warm-up."""
    base = f"http://127.0.0.1:{port}"
    control = Client()  # asks the server how many requests it holds; made before counting
    async with Client() as warm:  # what is made once per process, not per connection
        await asyncio.gather(*(warm.get(f"{base}/slow/20/w{i}") for i in range(32)))
        await warm.get(f"{base}/stream/1000/100/w")
    await control.get(f"{base}/held/x")
    if traced:
        tracemalloc.start()
    measure = _python_bytes if traced else settled_rss
    client = Client(max_conns_per_host=count)
    try:
        before = measure()
        if what == "idle":
            # Concurrent slow requests force one connection each; they then sit idle.
            # (One URL for all: the client's URL and head caches are not per connection.)
            await asyncio.gather(*(client.get(f"{base}/slow/300/i") for _ in range(count)))
            # One turn of the loop: the handle that woke us holds the gathered results.
            await asyncio.sleep(0)
            after = measure()
        else:
            flight = [client.get(f"{base}/slow/5000/f") for _ in range(count)]
            tasks = [asyncio.ensure_future(request) for request in flight]
            for _ in range(500):  # until every request is written and held by the server
                if int((await control.get(f"{base}/held/x")).content) >= count:
                    break
                await asyncio.sleep(0.01)
            after = measure()
            await asyncio.gather(*tasks)
    finally:
        await client.aclose()
        await control.aclose()
        if traced:
            tracemalloc.stop()
    return (after - before) / count


def _python_bytes() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def measure_memory(loop: str, count: int = 1000) -> dict[str, float]:
    """Bytes per idle pooled connection, per connection with a request in flight,
    and their difference, the request itself; by RSS and by tracemalloc."""
    out = {}
    with ServerProcess() as server:
        for traced in (False, True):
            got = {}
            for what in ("idle", "busy"):
                argv = ["--probe", what, "--port", str(server.ports[0]), "--count", str(count)]
                argv += ["--loop", loop] + (["--traced"] if traced else [])
                proc = subprocess.run(
                    [sys.executable, "-m", "benchmarks.soak", *argv],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=True,
                )
                got[what] = float(proc.stdout)
            prefix = "python" if traced else "rss"
            out[f"{prefix}_idle_connection"] = got["idle"]
            out[f"{prefix}_busy_connection"] = got["busy"]
            out[f"{prefix}_in_flight_request"] = got["busy"] - got["idle"]
    return out


# -- the command ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--memory", action="store_true", help="measure memory per connection")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--probe", choices=["idle", "busy"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_main()
        return 0
    if args.probe:
        probe = _probe(args.probe, args.port, args.count, args.traced)
        print(run_in_loop(args.loop, lambda: probe))
        return 0
    if args.memory:
        got = measure_memory(args.loop)
        for key, value in got.items():
            print(f"{key:32s} {value / 1024:8.2f} KiB")
        return 0
    result = run_soak(args.requests, args.concurrency, args.seed, args.loop)
    if args.json:
        print(json.dumps(dataclasses.asdict(result)))
    else:
        print(result.summary())
    return 1 if result.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
