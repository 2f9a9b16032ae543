"""Faults against real loopback servers: each a typed error, the failing connection
closed and never reused, and requests on the other connections untouched.

Most scenarios share one harness, ``fault_is_contained``: a request to ``/fault``
meets the scripted misbehaviour while other requests are in flight on other
connections (held by the server until the fault is over) and more run beside it.
The server logs the targets each connection received, so "never reused" and
"not replayed" are read off what the server saw, not off the client's word.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiofasthttp import (
    Client,
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    HeadTooLarge,
    LimitExceeded,
    ProtocolError,
    ReadTimeout,
    RequestTimeout,
    ResponseTooLarge,
    RetryPolicy,
    WriteTimeout,
    reasons,
)
from servers import HOST, LOOPS, ConnInfo, FullAcceptQueue, response, run, serve, wait_until

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)

Send = Callable[[Client, str], Awaitable[Any]]


def stats_of(client: Client) -> dict[str, Any]:
    (only,) = client.stats().values()
    return only


async def read_head(reader: asyncio.StreamReader) -> tuple[str, int] | None:
    """A request head: its target and Content-Length; None once the client has gone."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return lines[0].split(" ")[1], length


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) whatever comes until the client closes the connection."""
    while await reader.read(65536):
        pass


class FaultServer:
    """``/ok/<id>`` answers at once, ``/hold/<id>`` once ``release_holds`` is set,
    and ``/fault`` runs the scenario. Both answers carry the id back."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.go = asyncio.Event()  # the scenario may start misbehaving
        self.client_failed = asyncio.Event()  # the client has raised its error
        self.release_holds = asyncio.Event()
        self.targets: dict[int, list[str]] = defaultdict(list)  # per connection, in order
        self.alive: set[int] = set()  # connections whose handler still runs
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.holding = 0

    def index_of(self, target: str) -> int | None:
        for index, targets in self.targets.items():
            if target in targets:
                return index
        return None

    def count(self, target: str) -> int:
        return sum(t.count(target) for t in self.targets.values())

    async def handler(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        self.alive.add(info.index)
        self.writers[info.index] = writer
        try:
            while (head := await read_head(reader)) is not None:
                target, length = head
                self.targets[info.index].append(target)
                if target.startswith("/fault"):
                    await self.fault(reader, writer, self)
                    return
                if length:
                    await reader.readexactly(length)
                if target.startswith("/hold/"):
                    self.holding += 1
                    await self.release_holds.wait()
                rid = target.rsplit("/", 1)[1]
                writer.write(response(rid.encode(), headers={"X-Request-Id": rid}))
                await writer.drain()
        finally:
            self.alive.discard(info.index)


Fault = Callable[[asyncio.StreamReader, asyncio.StreamWriter, FaultServer], Awaitable[None]]


async def get_own(client: Client, url: str) -> None:
    """A request whose response must be its own: the id in the URL comes back."""
    rid = url.rsplit("/", 1)[1]
    r = await client.get(url)
    assert r.status == 200
    assert r.headers["x-request-id"] == rid and r.content == rid.encode()


async def traffic_beside(client: Client, server: FaultServer, base: str, failing: Any) -> int:
    """Requests in rounds of four while the failing request runs (bounded); how many."""
    made = 0
    for _ in range(50):
        await asyncio.gather(*(get_own(client, f"{base}/ok/t{made + i}") for i in range(4)))
        made += 4
        if failing.done():
            break
    return made


async def fault_is_contained(
    fault: Fault,
    expect: type[BaseException],
    *,
    send: Send | None = None,
    holds: int = 4,
    retries: int | None = 0,
    clean_loop: bool = True,
    **options: Any,
) -> BaseException:
    """Run ``send`` against ``/fault`` beside other requests; check the fault stayed
    on its own connection, and (``clean_loop``) left no error for the event loop's
    handler, such as a future whose exception nobody retrieved; return the error."""
    loop_errors = record_loop_errors()
    server = FaultServer(fault)
    send = send or (lambda client, url: client.get(url))
    async with serve(server.handler) as srv, Client(**options) as client:
        failing = asyncio.ensure_future(send(client, srv.url("/fault")))
        await wait_until(lambda: server.index_of("/fault") is not None)
        held = [
            asyncio.ensure_future(get_own(client, srv.url(f"/hold/h{i}"))) for i in range(holds)
        ]
        await wait_until(lambda: server.holding == holds)
        beside = asyncio.ensure_future(
            traffic_beside(client, server, f"http://{HOST}:{srv.port}", failing)
        )
        server.go.set()
        with pytest.raises(expect) as info:
            await asyncio.wait_for(failing, 30)
        server.client_failed.set()
        assert await beside >= 4
        fault_index = server.index_of("/fault")
        # The client closed the failing connection (the server saw it go) while the
        # held requests were still in flight on theirs.
        await wait_until(lambda: fault_index not in server.alive)
        assert all(not h.done() for h in held)
        server.release_holds.set()
        await asyncio.gather(*held)
        await asyncio.gather(*(get_own(client, srv.url(f"/ok/a{i}")) for i in range(16)))
        assert server.targets[fault_index] == ["/fault"], "the failing connection was reused"
        assert server.count("/fault") == 1, "the failed request was replayed"
        s = stats_of(client)
        assert s["active"] == 0 and s["open"] == s["idle"] == len(server.alive)
        if retries is not None:  # (None: requests beside it may time out and be replayed)
            assert s["retries"] == retries
            assert sum(s["close_reasons"].values()) == 1  # the failing connection, only it
    error = info.value
    del info, failing
    forget_tracebacks(error)  # they hold the frames, and the frames the failed exchange
    gc.collect()
    if clean_loop:
        assert [context["message"] for context in loop_errors] == []
    return error


def record_loop_errors() -> list[dict[str, Any]]:
    """What reaches the running loop's exception handler, kept instead of logged."""
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    return errors


def forget_tracebacks(error: BaseException | None) -> None:
    while error is not None:
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


# -- the scenarios -------------------------------------------------------------------


def test_head_sent_one_byte_every_100ms_hits_the_read_timeout(loop_kind: str) -> None:
    sent = []

    async def trickle(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
            if server.client_failed.is_set():
                break
            writer.write(bytes([byte]))
            sent.append(byte)
            await writer.drain()
            await asyncio.sleep(0.1)  # the trickle is the scenario, not synchronisation
        await until_closed(reader)

    # read_timeout is the silence allowed between bytes: under the 100 ms gaps.
    # The requests beside it run under the same 80 ms, so a stall of the machine
    # may time one out: those (GETs) are replayed; the failing POST never is.
    policy = RetryPolicy(retry_timeouts=True, backoff_base=0.001)

    async def main() -> None:
        err = await fault_is_contained(
            trickle,
            ReadTimeout,
            send=lambda client, url: client.post(url, content=b"x"),
            holds=0,
            retries=None,
            read_timeout=0.08,
            retry=policy,
        )
        assert "read_timeout=0.08" in str(err)

    run(loop_kind, main)
    assert 0 < len(sent) < 10  # it fired while the head was still coming


def test_head_trickled_faster_than_the_read_timeout_is_bounded_by_timeout(
    loop_kind: str,
) -> None:
    # read_timeout bounds the silence between bytes, not the head's total time
    # (README: "silence between received bytes"): timeout= bounds a slow drip.
    async def trickle(reader, writer, server: FaultServer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):  # bounded: 4 s at most
            if server.client_failed.is_set():
                break
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(0.02)
        await until_closed(reader)

    async def main() -> None:
        await fault_is_contained(
            trickle,
            RequestTimeout,
            send=lambda client, url: client.get(url, timeout=0.6),
            holds=0,
            read_timeout=0.5,
        )

    run(loop_kind, main)


def test_endless_headers_hit_a_limit(loop_kind: str) -> None:
    async def endless(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for i in range(50_000):  # bounded: 1.6 MB at most; the client stops far earlier
            writer.write(b"X-Filler-%d: %s\r\n" % (i, b"v" * 20))
            if i % 64 == 0:
                await writer.drain()  # raises once the client has closed
        await until_closed(reader)

    async def main() -> None:
        err = await fault_is_contained(endless, LimitExceeded)
        assert err.reason in ("too_many_headers", "head_too_large")

    run(loop_kind, main)


def test_header_line_past_the_head_limit(loop_kind: str) -> None:
    async def long_line(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        writer.write(
            b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        await until_closed(reader)

    async def main() -> None:
        err = await fault_is_contained(long_line, HeadTooLarge)
        assert err.reason == "head_too_large"
        err = await fault_is_contained(long_line, HeadTooLarge, max_response_head_size=4096)
        assert 0 < err.offset <= 4096

    run(loop_kind, main)


async def endless_chunked(reader, writer, server: FaultServer) -> None:
    await server.go.wait()
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"4000\r\n" + b"c" * 0x4000 + b"\r\n"
    for _ in range(4096):  # bounded: 64 MiB at most
        writer.write(chunk)
        await writer.drain()
    await until_closed(reader)


def test_endless_chunked_body_hits_max_response_body_size(loop_kind: str) -> None:
    async def main() -> None:
        err = await fault_is_contained(
            endless_chunked, ResponseTooLarge, max_response_body_size=256 << 10
        )
        assert "max_response_body_size=262144" in str(err)

    run(loop_kind, main)


def test_endless_chunked_body_streamed_hits_max_response_body_size(loop_kind: str) -> None:
    got = []

    async def stream(client: Client, url: str) -> None:
        async with client.stream("GET", url) as resp:
            async for chunk in resp.iter_bytes():
                got.append(len(chunk))

    async def main() -> None:
        await fault_is_contained(
            endless_chunked, ResponseTooLarge, send=stream, max_response_body_size=256 << 10
        )

    run(loop_kind, main)
    assert 0 < sum(got) <= 256 << 10


def test_content_length_longer_than_the_body_then_close(loop_kind: str) -> None:
    async def short(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"s" * 400)
        await writer.drain()
        writer.close()  # a FIN, 600 bytes short

    async def main() -> None:
        err = await fault_is_contained(short, ConnectionClosedError)
        assert isinstance(err, ConnectionClosedError)
        # Response bytes arrived: the server acted on the GET, so it is not replayed.
        assert err.response_bytes >= 400 and err.request_written and not err.reused
        assert "not replayed: the server may have processed the request" in str(err)

    run(loop_kind, main)


def test_garbage_instead_of_a_status_line(loop_kind: str) -> None:
    async def garbage(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await until_closed(reader)

    async def main() -> None:
        err = await fault_is_contained(garbage, ProtocolError)
        assert err.reason == "invalid_status_line"
        assert "GET http://" in str(err)

    run(loop_kind, main)


def test_server_that_accepts_and_never_answers(loop_kind: str) -> None:
    async def silent(reader, writer, server: FaultServer) -> None:
        await until_closed(reader)

    async def main() -> None:
        # Timeouts are not replayed unless the policy names them.
        err = await fault_is_contained(silent, ReadTimeout, holds=0, read_timeout=0.5)
        assert "no response byte for read_timeout=0.5" in str(err)

    run(loop_kind, main)


def test_reset_after_half_the_body(loop_kind: str) -> None:
    async def reset(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"r" * 50_000)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # returning aborts the transport: with SO_LINGER 0 that is a reset

    async def main() -> None:
        err = await fault_is_contained(reset, ConnectionClosedError)
        assert isinstance(err, ConnectionClosedError)
        assert err.response_bytes > 0
        assert "not replayed" in str(err)

    run(loop_kind, main)


def test_reset_after_half_the_body_of_a_stream(loop_kind: str) -> None:
    got = []

    async def reset(reader, writer, server: FaultServer) -> None:
        await server.go.wait()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"r" * 50_000)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async def stream(client: Client, url: str) -> None:
        async with client.stream("GET", url) as resp:
            async for chunk in resp.iter_bytes():
                got.append(len(chunk))

    async def main() -> None:
        err = await fault_is_contained(reset, ConnectionClosedError, send=stream)
        assert isinstance(err, ConnectionClosedError) and err.response_bytes > 0

    run(loop_kind, main)
    assert sum(got) <= 50_000


UPLOAD = os.urandom(16 << 20)  # more than the kernel buffers of both ends hold


async def stops_reading(reader, writer, server: FaultServer) -> None:
    await server.client_failed.wait()  # never reads the upload while the client writes
    await until_closed(reader)


def test_server_that_stops_reading_the_upload(loop_kind: str) -> None:
    async def main() -> None:
        err = await fault_is_contained(
            stops_reading,
            WriteTimeout,
            send=lambda client, url: client.post(url, content=UPLOAD),
            write_timeout=0.5,
        )
        assert "write_timeout=0.5" in str(err) and "POST http://" in str(err)

    run(loop_kind, main)


async def upload_in_pieces() -> Any:
    for i in range(0, len(UPLOAD), 1 << 20):
        yield UPLOAD[i : i + (1 << 20)]


def test_server_that_stops_reading_a_streamed_upload(loop_kind: str) -> None:
    async def main() -> None:
        await fault_is_contained(
            stops_reading,
            WriteTimeout,
            send=lambda client, url: client.put(url, content=lambda: upload_in_pieces()),
            write_timeout=0.5,
            clean_loop=False,  # see the next test
        )

    run(loop_kind, main)


def test_a_streamed_upload_write_timeout_leaves_no_unretrieved_exception(
    loop_kind: str,
) -> None:
    async def main() -> None:
        await fault_is_contained(
            stops_reading,
            WriteTimeout,
            send=lambda client, url: client.put(url, content=lambda: upload_in_pieces()),
            write_timeout=0.5,
        )

    run(loop_kind, main)


# -- unsolicited bytes on an idle connection --------------------------------------------


def unsolicited_bytes_on_idle(loop_kind: str, while_loop_busy: bool) -> dict[str, Any]:
    """A response nobody asked for lands on an idle connection while requests run on
    others; the connection is closed, the next request is fine. The pool's stats."""
    server = FaultServer(lambda r, w, s: until_closed(r))

    async def main() -> dict[str, Any]:
        async with serve(server.handler) as srv, Client() as client:
            # Five connections; four then carry held requests, one stays idle.
            await asyncio.gather(*(get_own(client, srv.url(f"/ok/w{i}")) for i in range(5)))
            assert server.count("/ok/w0") == 1 and len(server.targets) == 5
            held = [
                asyncio.ensure_future(get_own(client, srv.url(f"/hold/h{i}"))) for i in range(4)
            ]
            await wait_until(lambda: server.holding == 4)
            (first,) = [i for i, t in server.targets.items() if len(t) == 1]
            assert stats_of(client)["idle"] == 1
            server.writers[first].write(response(b"unasked"))
            if while_loop_busy:
                # The loop is stuck in a long step (the scenario itself): the bytes sit
                # unread, so the pool's check before reuse has to catch them.
                time.sleep(0.05)  # noqa: ASYNC251
            else:
                await wait_until(lambda: first not in server.alive)
            await get_own(client, srv.url("/ok/next"))
            await wait_until(lambda: first not in server.alive)
            server.release_holds.set()
            await asyncio.gather(*held)
            for i in range(8):  # one after another: each may reuse the last one's connection
                await get_own(client, srv.url(f"/ok/s{i}"))
            assert len(server.targets[first]) == 1, "a dirty connection was reused"
            s = stats_of(client)
            assert s["retries"] == 0 and s["active"] == 0
            assert s["open"] == s["idle"] == len(server.alive)
            return s

    return run(loop_kind, main)  # type: ignore[return-value]


def test_unsolicited_bytes_on_an_idle_connection_close_it(loop_kind: str) -> None:
    s = unsolicited_bytes_on_idle(loop_kind, while_loop_busy=False)
    assert s["close_reasons"] == {reasons.UNSOLICITED_RESPONSE: 1}
    assert s["closed_by_server_idle"] == 0


def test_unsolicited_bytes_while_the_loop_was_busy_are_caught_before_reuse(
    loop_kind: str,
) -> None:
    s = unsolicited_bytes_on_idle(loop_kind, while_loop_busy=True)
    assert sum(s["close_reasons"].values()) == 1  # the dirty connection, and only it


def test_unsolicited_bytes_caught_before_reuse_teach_the_pool_nothing(loop_kind: str) -> None:
    s = unsolicited_bytes_on_idle(loop_kind, while_loop_busy=True)
    assert s["learned_idle_timeout"] is None and s["learned_max_requests"] is None
    assert sum(s["close_reasons"].values()) == 1  # the dirty connection, and only it
    assert s["expired"] == 0 and s["reused"] >= 11  # 4 holds + 8 one after another - 1


def test_a_server_restart_closing_idle_connections_does_not_end_reuse(loop_kind: str) -> None:
    server = FaultServer(lambda r, w, s: until_closed(r))

    async def main() -> dict[str, Any]:
        async with serve(server.handler) as srv, Client() as client:
            await asyncio.gather(*(get_own(client, srv.url(f"/ok/w{i}")) for i in range(4)))
            for writer in server.writers.values():  # a restart: every connection closed
                writer.close()
            await wait_until(lambda: stats_of(client)["open"] == 0)
            for i in range(20):
                await get_own(client, srv.url(f"/ok/s{i}"))
            return stats_of(client)

    s = run(loop_kind, main)
    assert s["closed_by_server_idle"] == 4  # type: ignore[index]
    assert s["reused"] >= 19, s  # type: ignore[index]


# -- connecting ------------------------------------------------------------------------


def refused_port() -> socket.socket:
    """A port bound but not listening: connecting to it is refused, and no other
    test can take it while this socket is open."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    return sock


def test_connect_refused_is_retried_per_policy(loop_kind: str) -> None:
    sock = refused_port()
    url = f"http://{HOST}:{sock.getsockname()[1]}/"

    async def main() -> None:
        policy = RetryPolicy(attempts=3, backoff_base=0.01)
        async with Client(retry=policy) as client:
            # Nothing reached the server: a POST is replayed as safely as a GET.
            for send in (client.get, client.post):
                with pytest.raises(ConnectError) as info:
                    await send(url)
                err = info.value
                assert not isinstance(err, ConnectTimeout)
                assert "cannot connect to" in str(err) and "attempt 3 of 3" in str(err)
                assert len(err.errors) == 3
                assert all(isinstance(e, ConnectError) for e in err.errors)
            s = stats_of(client)
            assert s["retries"] == 4 and s["created"] == 0 and s["open"] == 0
        async with Client(retry=False) as client:
            with pytest.raises(ConnectError) as info:
                await client.get(url)
            assert len(info.value.errors) == 1
            assert stats_of(client)["retries"] == 0

    try:
        run(loop_kind, main)
    finally:
        sock.close()


def test_connect_timeout_to_an_address_that_drops_packets(loop_kind: str) -> None:
    queue = FullAcceptQueue()
    url = f"http://{HOST}:{queue.port}/"

    async def main() -> None:
        async with Client(connect_timeout=0.2, retry=False) as client:
            with pytest.raises(ConnectTimeout, match=r"connect_timeout=0\.2") as info:
                await client.get(url)
            assert isinstance(info.value, ConnectError)
            assert len(info.value.errors) == 1
        policy = RetryPolicy(attempts=2, retry_timeouts=True, backoff_base=0.01)
        async with Client(connect_timeout=0.2, retry=policy) as client:
            with pytest.raises(ConnectTimeout) as info:
                await client.get(url)
            assert len(info.value.errors) == 2
            assert stats_of(client)["retries"] == 1 and stats_of(client)["created"] == 0

    try:
        run(loop_kind, main)
    finally:
        queue.close()


def test_connect_timeout_is_replayed_as_a_connect_failure(loop_kind: str) -> None:
    queue = FullAcceptQueue()
    url = f"http://{HOST}:{queue.port}/"

    async def main() -> None:
        # The request never left: docs/design.md replays connect failures always, POST
        # included, whether or not the policy names timeouts.
        policy = RetryPolicy(attempts=2, backoff_base=0.01)
        async with Client(connect_timeout=0.2, retry=policy) as client:
            with pytest.raises(ConnectTimeout) as info:
                await client.post(url, content=b"x")
            assert len(info.value.errors) == 2

    try:
        run(loop_kind, main)
    finally:
        queue.close()


# -- DNS and dropped packets, inside a network namespace ---------------------------------

# Run in a child under `unshare -n`: a namespace of its own holding only a loopback
# interface and a veth pair, so nothing it sends can reach a real network. Its
# resolver's name servers are given to that loopback, where a stub answers every
# query NXDOMAIN; a permanent neighbour entry on the veth sends SYNs to a MAC
# nobody has, where they are silently dropped.
NETNS_CHILD = textwrap.dedent(
    """
    import asyncio, ipaddress, json, socket, struct, subprocess, sys, threading, time
    from aiofasthttp import Client, ConnectError, ConnectTimeout, RetryPolicy

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("link", "set", "lo", "up")
    queries = []

    def nxdomain(sock):
        while True:
            try:
                data, peer = sock.recvfrom(4096)
            except OSError:
                return
            queries.append(data[12:].split(b"\\0", 1)[0])
            end = data.index(b"\\0", 12) + 5  # the question: name, type, class
            flags = 0x8183 | (struct.unpack("!H", data[2:4])[0] & 0x0100)
            reply = data[:2] + struct.pack("!HHHHH", flags, 1, 0, 0, 0) + data[12:end]
            sock.sendto(reply, peer)

    with open("/etc/resolv.conf") as f:
        servers = [l.split()[1] for l in f if l.startswith("nameserver")]
    for addr in servers:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        if not ipaddress.ip_address(addr).is_loopback:
            ip("addr", "add", addr + ("/128" if ":" in addr else "/32"), "dev", "lo")
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((addr, 53))
        threading.Thread(target=nxdomain, args=(sock,), daemon=True).start()

    ip("link", "add", "fault0", "type", "veth", "peer", "name", "fault1")
    ip("addr", "add", "10.77.0.1/24", "dev", "fault0")
    ip("link", "set", "fault0", "up")
    ip("link", "set", "fault1", "up")
    mac = "02:00:00:00:00:02"  # nobody's: frames to it are dropped
    ip("neigh", "add", "10.77.0.2", "lladdr", mac, "dev", "fault0", "nud", "permanent")

    async def main():
        out = {}
        policy = RetryPolicy(attempts=2, backoff_base=0.01)
        async with Client(retry=policy, connect_timeout=10) as client:
            t = time.monotonic()
            try:
                await client.get("http://no-such-host.invalid/")
            except ConnectError as exc:
                out["dns"] = [type(exc).__name__, str(exc), len(exc.errors)]
            out["dns_seconds"] = time.monotonic() - t
            out["dns_retries"] = next(iter(client.stats().values()))["retries"]
        async with Client(connect_timeout=0.3, retry=False) as client:
            t = time.monotonic()
            try:
                await client.get("http://10.77.0.2:8080/")
            except ConnectError as exc:
                out["drop"] = [type(exc).__name__, str(exc), len(exc.errors)]
            out["drop_seconds"] = time.monotonic() - t
        out["queries"] = [q.decode("latin-1") for q in queries]
        return out

    if sys.argv[1] == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    print(json.dumps(loop.run_until_complete(asyncio.wait_for(main(), 60))))
    """
)


def unshare_works() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-n", "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def test_dns_not_found_and_dropped_packets_in_a_network_namespace(loop_kind: str) -> None:
    if not unshare_works():
        pytest.skip("needs `unshare -n` and veth pairs (root or CAP_NET_ADMIN + CAP_SYS_ADMIN)")
    proc = subprocess.Popen(
        ["unshare", "-n", sys.executable, "-c", NETNS_CHILD, loop_kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    facts = json.loads(out)
    # The name went to the resolver, which asked the stub on the namespace's loopback.
    assert any(q.endswith("invalid") for q in facts["queries"]), facts
    kind, text, attempts = facts["dns"]
    assert kind == "NameResolutionError" and "cannot resolve host 'no-such-host.invalid'" in text
    assert attempts == 2 and facts["dns_retries"] == 1  # a connect failure: replayed
    assert facts["dns_seconds"] < 5
    kind, text, attempts = facts["drop"]
    assert kind == "ConnectTimeout" and "connect_timeout=0.3" in text
    assert attempts == 1  # retry=False
    assert 0.25 < facts["drop_seconds"] < 5
