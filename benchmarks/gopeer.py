"""Go's fasthttp as an optional peer: a load client row, and a server (``--server go``).

Both are one small program of ours, benchmarks/go/fasthttpbench.go, built in
GOPATH mode against Debian's ``golang-github-valyala-fasthttp-dev`` sources
(``GO111MODULE=off``, nothing downloaded) into benchmarks/go/build/ (git-ignored),
and rebuilt when the source is newer than the binary. ``scripts/bench --with-go``
installs ``golang-go`` and that package with apt when run as root.

The client takes the same JSON spec on stdin as benchmarks/worker.py and prints the
same JSON result, so the runner treats it as one more worker: c goroutines in a
closed loop sharing one ``fasthttp.Client`` (MaxConnsPerHost = c), each response
checked, the same warm-up and window rules; pinned like the Python workers, with
GOMAXPROCS=1 when pinned (one CPU, as a Python client has).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from testkit import ServerProcess as ChildServer

from .routes import ROUTES

NAME = "fasthttp-go"
SOURCE = Path(__file__).resolve().parent / "go" / "fasthttpbench.go"
BUILD = SOURCE.parent / "build"
BINARY = BUILD / "fasthttpbench"
DEBIAN_GOPATH = Path("/usr/share/gocode")
FASTHTTP_SOURCES = DEBIAN_GOPATH / "src" / "github.com" / "valyala" / "fasthttp"


def missing() -> str | None:
    """Why the Go peer cannot be built here, or None."""
    if shutil.which("go") is None:
        return "go is not installed (apt-get install golang-go, or scripts/bench --with-go)"
    if not FASTHTTP_SOURCES.is_dir():
        return (
            "Debian's fasthttp sources are not installed (apt-get install "
            "golang-github-valyala-fasthttp-dev, or scripts/bench --with-go)"
        )
    return None


def build() -> Path:
    """The binary, built if it is missing or older than its source; raises on failure."""
    if BINARY.exists() and BINARY.stat().st_mtime >= SOURCE.stat().st_mtime:
        return BINARY
    BUILD.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOPATH": str(DEBIAN_GOPATH),
        "GO111MODULE": "off",
        "GOFLAGS": "",
        "GOCACHE": str(BUILD / "cache"),
        "CGO_ENABLED": "0",
    }
    proc = subprocess.run(
        ["go", "build", "-o", str(BINARY), str(SOURCE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go build failed: {proc.stderr.strip()[-400:]}")
    return BINARY


def go_version() -> str | None:
    try:
        out = subprocess.run(["go", "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    words = out.stdout.split()
    return words[2] if len(words) > 2 else None


def client_argv(binary: Path) -> list[str]:
    return [str(binary), "client"]


def route_fields(route_name: str) -> dict[str, Any]:
    """What the Go client needs to know of a route (the Python workers look it up)."""
    route = ROUTES[route_name]
    body = 0 if route.body is None else len(route.body)
    return {
        "path": route.path,
        "method": route.method,
        "body_len": body,
        "expect": route.expect_length,
    }


class GoServerProcess(ChildServer):
    """The Go fasthttp server with the suite's routes, stopped by its own handle."""

    def __init__(
        self, binary: Path, *, cpu: int | None = None, tls_dir: Path | None = None
    ) -> None:
        argv = [str(binary), "server"]
        if cpu is not None:
            argv += ["-cpu", str(cpu)]
        if tls_dir is not None:
            argv += ["-tls-dir", str(tls_dir)]
        super().__init__(argv, ready="PORT")

    @property
    def tls_url(self) -> str | None:
        return f"https://127.0.0.1:{self.ports[1]}" if len(self.ports) > 1 else None


if __name__ == "__main__":  # python -m benchmarks.gopeer: build, and say where
    why = missing()
    if why:
        sys.exit(why)
    print(build())
