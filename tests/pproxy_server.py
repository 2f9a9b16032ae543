"""pproxy (from PyPI) as the tests' real proxy server: HTTP, SOCKS5, and HTTP over TLS.

Each instance is its own process, started on a free loopback port and stopped
by its PID. pproxy picks uvloop when it can and then asks for a loop in a way
uvloop no longer allows, so it runs here on asyncio's own loop.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from servers import HOST, free_port

_LAUNCH = """
import asyncio, sys
sys.modules["uvloop"] = None
asyncio.set_event_loop(asyncio.new_event_loop())
from pproxy.server import main
sys.argv = ["pproxy", *sys.argv[1:]]
main()
"""


@dataclass
class RunningProxy:
    proc: subprocess.Popen[bytes]
    port: int
    schemes: str

    def url(self, scheme: str, userinfo: str = "") -> str:
        return f"{scheme}://{userinfo + '@' if userinfo else ''}{HOST}:{self.port}"

    def kill(self) -> None:
        """Stop it at once (SIGKILL): connections through it die with it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def pproxy(
    schemes: str = "http+socks5", auth: str | None = None, tls: tuple[str, str] | None = None
) -> Iterator[RunningProxy]:
    """Run ``pproxy -l schemes://127.0.0.1:port[#auth]`` until the block ends."""
    port = free_port()
    listen = f"{schemes}://{HOST}:{port}" + (f"#{auth}" if auth else "")
    args = [sys.executable, "-c", _LAUNCH, "-l", listen, "--auth", "0"]
    if tls is not None:
        args += ["--ssl", ",".join(tls)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    running = RunningProxy(proc, port, schemes)
    try:
        _wait_listening(port, proc)
        yield running
    finally:
        running.kill()
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"pproxy exited at start: {err}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError("pproxy did not start listening within 20 s")
