"""httpbin served by gunicorn on a free loopback port: a real peer for the everyday features.

One server per test session (gunicorn takes a second or two to start); it is
stopped through its own process handle at the end.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest

from servers import HOST, free_port


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 60  # a loaded 2-core machine imports Flask slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log, encoding="utf-8", errors="replace") as f:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}: {f.read()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("gunicorn did not start listening within 60 s")


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    """The base URL of httpbin (gunicorn, one sync worker) on 127.0.0.1."""
    missing = [name for name in ("httpbin", "gunicorn") if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} missing: httpbin and gunicorn are in the test extra")
        pytest.skip(f"not installed: {missing}")
    port = free_port()
    with tempfile.TemporaryDirectory() as root:
        log = os.path.join(root, "gunicorn.log")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--bind",
                    f"{HOST}:{port}",
                    "--workers",
                    "1",
                    "--worker-tmp-dir",
                    root,
                    "httpbin:app",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
        try:
            _wait_listening(port, proc, log)
            yield f"http://{HOST}:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
