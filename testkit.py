"""What the tests and the benchmarks share: event loops by name, and servers in child processes.

Importable from both without editing ``sys.path``: the benchmarks run as
``python -m benchmarks...`` from the repository's root, and pytest puts the root
on the path (``pythonpath`` in pyproject.toml).
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind named: ``"uvloop"`` or ``"asyncio"``."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class ServerProcess:
    """A server in a child process, stopped by its own handle, never by name.

    It is ready when it prints its first line, starting with the word ``ready``
    (its words are kept in ``said``; the numbers among them are its ports). It is
    stopped by closing its stdin (a server that ends on that gets ``grace``
    seconds to do so), then SIGTERM, then SIGKILL.
    """

    def __init__(self, argv: list[str], *, ready: str, grace: float = 0.0) -> None:
        self.argv = argv
        self.ready = ready
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None
        self.said: list[str] = []
        self.ports: list[int] = []

    @property
    def port(self) -> int:
        return self.ports[0] if self.ports else 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        # A new session: Ctrl-C reaches only the parent, which stops us in order.
        self.proc = proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        words = proc.stdout.readline().decode("latin-1").split() if ready else []
        if not words or words[0] != self.ready:
            self.stop()
            raise RuntimeError(f"the server did not start: {self.argv} said {words!r}")
        self.said = words
        self.ports = [int(w) for w in words[1:] if w.isdigit()]
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self.grace:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.grace)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
