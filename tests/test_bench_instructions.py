"""``python -m benchmarks.instructions``'s uncounted modes: ``--cpu`` (CPU time per
request) and ``--variant ceiling`` (the suite's ceiling client in the same
workload), run tiny against the suite's server on loopback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import instructions
from testkit import new_loop

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
@pytest.mark.parametrize("variant", ["plain", "ceiling"])
@pytest.mark.parametrize("separate", [False, True], ids=["in-process", "separate-server"])
def test_each_client_is_driven_and_every_reply_checked(
    variant: str, separate: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    replies: list[Any] = []
    replied = instructions._replied

    def recorded(response: Any, length: int) -> bool:
        replies.append(response)
        return replied(response, length)

    monkeypatch.setattr(instructions, "_replied", recorded)
    running = new_loop("uvloop")
    try:
        usage = running.run_until_complete(
            instructions._workload(64, variant, "small", 16, False, 4, separate)
        )
    finally:
        running.close()
    assert len(replies) == 16 + 64
    if variant == "ceiling":
        assert all(reply == (200, 100) for reply in replies)
    else:
        assert all(reply.status == 200 and len(reply.content) == 100 for reply in replies)
    assert usage.user + usage.system > 0 and usage.faults >= 0


def test_a_wrong_reply_is_not_taken() -> None:
    assert not instructions._replied((200, 99), 100)
    assert not instructions._replied((500, 100), 100)
    assert instructions._replied((200, 100), 100)


@pytest.mark.timeout(120)
def test_cpu_prints_the_time_per_request() -> None:
    """The command as benchmarks/README.md gives it, at concurrency 4."""
    command = [sys.executable, "-m", "benchmarks.instructions", "--cpu", "--concurrency", "4"]
    command += ["--variant", "ceiling"]
    out = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=100,
    ).stdout
    found = re.fullmatch(
        r"ceiling, small, uvloop, c=4: CPU per request: user ([\d.]+) µs, system ([\d.]+) µs\n",
        out,
    )
    assert found, out
    assert float(found.group(1)) + float(found.group(2)) > 0
