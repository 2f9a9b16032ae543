"""``main``: parse the command line, pick the command, run it on a new event loop."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import IO, Any, TextIO

from .doctor_command import doctor
from .exits import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from .fetch_command import fetch
from .parsing import doctor_parser, fetch_parser, parse
from .request import fetch_request_from


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """uvloop's loop when asked or (for ``auto``) installed, else asyncio's."""
    if kind != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if kind == "uvloop":
                raise UsageError("--loop uvloop: uvloop is not installed") from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run(kind: str, make: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``make()`` on a new loop of ``kind``; Ctrl-C cancels it and exits 130."""
    loop = new_loop(kind)
    try:
        task = loop.create_task(make())
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
            return EXIT_INTERRUPTED
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[bytes] | None = None,
    stderr: TextIO | None = None,
    stdin: IO[bytes] | None = None,
) -> int:
    """Run the command line; returns the exit code. Output goes to ``stdout`` (bytes)
    and ``stderr`` (text), by default the process's."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr
    try:
        if args[:1] == ["doctor"]:
            opts = parse(doctor_parser(), args[1:], out, err)
            return run(opts.loop, lambda: doctor(opts, out, err))
        opts = parse(fetch_parser(), args, out, err)
        req = fetch_request_from(opts, stdin)
        return run(opts.loop, lambda: fetch(opts, req, out, err))
    except SystemExit as exc:  # argparse: --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        err.write(f"aiofasthttp: usage error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
