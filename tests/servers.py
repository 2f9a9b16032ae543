"""Loopback servers the engine tests script: asyncio, a socket thread, and nginx.

Every server binds 127.0.0.1 on a free port and is stopped by the test that
started it, through its own handle or PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from testkit import new_loop

HOST = "127.0.0.1"


@dataclass
class ReceivedRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


async def read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    """One request off the stream (Content-Length or chunked body), None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    return ReceivedRequest(method, target, headers, body)


def response(
    body: bytes = b"ok", status: int = 200, headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    extra = dict(headers or {})
    if "Transfer-Encoding" not in extra:
        extra.setdefault("Content-Length", str(len(body)))
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "ConnInfo"], Awaitable[None]]


@dataclass
class ConnInfo:
    index: int  # 0 for the first connection the server accepted
    requests: int = 0


@dataclass
class AsyncServer:
    """An asyncio server running ``handler`` for each connection."""

    port: int
    connections: int = 0
    requests: list[ReceivedRequest] = field(default_factory=list)
    scheme: str = "http"

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{HOST}:{self.port}{path}"


@contextlib.asynccontextmanager
async def serve(
    handler: Handler, *, rcvbuf: int | None = None, tls: ssl.SSLContext | None = None
) -> AsyncIterator[AsyncServer]:
    """Serve ``handler`` on 127.0.0.1. ``rcvbuf`` fixes the accepted sockets' receive
    buffer (no kernel autotuning), so a test knows how much a stalled server absorbs.
    ``tls``: serve https with this server context."""
    state = AsyncServer(port=0, scheme="http" if tls is None else "https")
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info = ConnInfo(state.connections)
        state.connections += 1
        writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer, info)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is stopping the server
        finally:
            tasks.discard(task)
            writers.discard(writer)
            writer.transport.abort()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:  # set before listen(): accepted sockets inherit it
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    listener.bind((HOST, 0))
    server = await asyncio.start_server(on_connect, sock=listener, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for writer in list(writers):
            writer.transport.abort()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)
        await server.wait_closed()


def keep_alive_handler(
    body: bytes = b"hello", headers: dict[str, str] | None = None, log: AsyncServer | None = None
) -> Handler:
    """Answers every request on a connection with ``body``, keeping it open."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            info.requests += 1
            writer.write(response(body, headers=headers))
            await writer.drain()

    return handler


def echo_handler() -> Handler:
    """Answers with the method, target and body it received, and an id header echoed back."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            info.requests += 1
            body = f"{req.method} {req.target} ".encode() + req.body
            rid = req.headers.get("x-request-id", "")
            writer.write(response(body, headers={"X-Request-Id": rid, "X-Conn": str(info.index)}))
            await writer.drain()

    return handler


# -- a plain-socket server in a thread, for when the test's own loop must be blocked --


class ThreadServer:
    """Answers one request per connection, then closes it when ``close_now`` is set."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.close_now = threading.Event()
        self.closed = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(response(b"first"))
                self.close_now.wait(10)
                self.close_now.clear()
            self.closed.set()

    def shutdown(self) -> None:
        self.stop.set()
        self.close_now.set()
        self.sock.close()
        self.thread.join(5)


class FullAcceptQueue:
    """A listener that never accepts, its queue full: the kernel drops further SYNs,
    so a connect hangs as to a host that drops packets (all on loopback)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind((HOST, 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((HOST, self.port))
            self.fillers.append(s)

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


# -- nginx ------------------------------------------------------------------------


def find_nginx() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx(
    keepalive_timeout: str = "75s",
    keepalive_requests: int = 1000,
    *,
    keepalive_time: str | None = None,
    tls: trustme.CA | None = None,
) -> Iterator[str]:
    """nginx on a free loopback port with its own config; yields its base URL.

    ``keepalive_time``: its limit on a connection's lifetime (nginx's default is 1h).
    ``tls``: serve https with a certificate for 127.0.0.1 from this CA."""
    binary = find_nginx()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is required in CI (scripts/install installs it)")
        pytest.skip("nginx is not installed (scripts/install installs it)")
    port = free_port()
    with tempfile.TemporaryDirectory() as root:
        listen = f"127.0.0.1:{port}"
        if tls is not None:
            cert = tls.issue_cert(HOST, "localhost")
            cert.private_key_pem.write_to_path(f"{root}/key.pem")
            cert.cert_chain_pems[0].write_to_path(f"{root}/cert.pem")
            for extra in cert.cert_chain_pems[1:]:
                extra.write_to_path(f"{root}/cert.pem", append=True)
            listen += f" ssl; ssl_certificate {root}/cert.pem; ssl_certificate_key {root}/key.pem"
        lifetime = "" if keepalive_time is None else f"keepalive_time {keepalive_time};"
        os.makedirs(f"{root}/html")
        with open(f"{root}/html/small.txt", "wb") as f:
            f.write(b"x" * 100)
        with open(f"{root}/html/big.bin", "wb") as f:
            f.write(bytes(range(256)) * 1024)
        conf = f"""
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_timeout {keepalive_timeout};
    keepalive_requests {keepalive_requests};
    {lifetime}
    server {{
        listen {listen};
        root {root}/html;
        location = /chunked {{ gzip on; gzip_min_length 1; gzip_types *;
                               default_type text/plain; return 200 "chunked-ish"; }}
        location = /204 {{ return 204; }}
        location = /echo {{ return 200 "$request_method $request_uri"; }}
    }}
}}
"""
        with open(f"{root}/nginx.conf", "w") as f:
            f.write(conf)
        proc = subprocess.Popen(
            [binary, "-c", f"{root}/nginx.conf", "-p", root],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_listening(port, proc)
            yield f"{'http' if tls is None else 'https'}://{HOST}:{port}"
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stderr is not None:
                proc.stderr.close()


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nginx exited: {err}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError("nginx did not start listening within 15 s")


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition the loop makes true (bounded; not a sleep for ordering)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


LOOPS = ["asyncio", "uvloop"]


def run(loop_kind: str, main: Callable[[], Awaitable[object]], timeout: float = 60.0) -> object:
    """Run ``main()`` on a new loop of the given kind, bounded in time, then close the loop."""
    loop = new_loop(loop_kind)
    try:
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))  # type: ignore[arg-type]
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def stats_of(client: Any) -> dict[str, Any]:
    """The stats of a client's only pool."""
    (only,) = client.stats().values()
    return dict(only)
