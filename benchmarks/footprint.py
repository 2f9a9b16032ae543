"""The code a request runs through, in bytes: what the instruction cache has to hold.

    python -m benchmarks.instructions --footprint [--variant ceiling] [--server go] ...

callgrind records how often each instruction ran (``--dump-instr=yes``) in two runs of
the workload, of N and N/2 requests. An instruction whose count grows between them
by at least one for every ``SHARE`` requests is part of what a request runs: the
client's code and the interpreter's and the loop's under it, a loop iteration's own
code included (an iteration serves several requests). Its footprint is the number of
distinct 64-byte lines holding such instructions, by object file: code that does not
fit the core's level-1 instruction cache (64 KiB here, ``lscpu``) is fetched again
from level 2 on every request.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import NamedTuple

LINE = 64  # bytes in an instruction cache line
SHARE = 16  # run at least once per this many requests: part of every request's path

# Lines naming the object file or function that costs below belong to (ob=, fn=), or
# a call's target (cob=, cfn=): "fn=(12) name" defines id 12 of that kind of name and
# "fn=(12)" uses it (callgrind's name compression). Source files (fl=, fi=) are not read.
_NAME_KINDS = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn"}


class Site(NamedTuple):
    """An instruction: the object file it is in, and its address there."""

    object: str
    address: int


def instruction_counts(lines: Iterable[str]) -> tuple[Counter[Site], dict[Site, str]]:
    """Each instruction's own count (calls' inclusive costs left out) and its function,
    from a callgrind profile written with ``--dump-instr=yes``."""
    counts: Counter[Site] = Counter()
    functions: dict[Site, str] = {}
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    current = {"ob": "", "fn": ""}
    positions = 1  # position columns before the costs: "instr", or "instr line"
    last = [0, 0]  # subposition compression: "+4" and "*" are relative to these
    call_cost_next = False
    for raw in lines:
        line = raw.rstrip("\n")
        if not line:
            continue
        if line.startswith("positions:"):
            positions = len(line.split()) - 1
            continue
        key, eq, value = line.partition("=")
        if eq and key in _NAME_KINDS:
            kind = _NAME_KINDS[key]
            name = value
            if value.startswith("("):
                ident, _, name = value.partition(" ")
                if name:
                    names[kind][ident] = name
                name = names[kind].get(ident, ident)
            if key == kind:  # ob= and fn= set the current ones; cob= and cfn= name a callee
                current[kind] = name
            continue
        if line.startswith("calls="):
            call_cost_next = True  # the next cost line is the call's inclusive cost
            continue
        if line[0] not in "0123456789+-*":
            continue
        fields = line.split()
        for i in range(min(positions, 2)):
            last[i] = _position(fields[i], last[i])
        if call_cost_next:
            call_cost_next = False
            continue
        if len(fields) > positions:
            site = Site(current["ob"], last[0])
            counts[site] += int(fields[positions])
            functions[site] = current["fn"]
    return counts, functions


def _position(text: str, last: int) -> int:
    if text == "*":
        return last
    if text[0] == "+":
        return last + int(text[1:], 0)
    if text[0] == "-":
        return last - int(text[1:], 0)
    return int(text, 0)


class Footprint(NamedTuple):
    """Distinct cache lines of per-request code, by object file and by function."""

    by_object: dict[str, int]
    by_function: dict[tuple[str, str], int]

    @property
    def total(self) -> int:
        return sum(self.by_object.values())


def footprint(
    many: Counter[Site], few: Counter[Site], functions: dict[Site, str], requests: int
) -> Footprint:
    """What ``requests`` more requests ran (``many`` less ``few``), as cache lines."""
    objects: defaultdict[str, set[int]] = defaultdict(set)
    in_functions: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for site, count in many.items():
        if (count - few.get(site, 0)) * SHARE >= requests:
            name = os.path.basename(site.object)
            objects[name].add(site.address // LINE)
            in_functions[(name, functions.get(site, "?"))].add(site.address // LINE)
    return Footprint(
        {name: len(lines) for name, lines in objects.items()},
        {key: len(lines) for key, lines in in_functions.items()},
    )


def measure(workload: list[str], big: int, small: int) -> Footprint:
    """Run ``workload`` under callgrind with ``big`` and ``small`` requests."""
    profiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for requests in (big, small):
            out = os.path.join(tmp, f"callgrind.{requests}")
            command = ["valgrind", "--tool=callgrind", "--dump-instr=yes"]
            command += [f"--callgrind-out-file={out}", *workload, "--run", str(requests)]
            subprocess.run(command, check=True, capture_output=True)
            with open(out, errors="replace") as f:
                profiles.append(instruction_counts(f))
    (many, functions), (few, _) = profiles
    return footprint(many, few, functions, big - small)


def report(label: str, found: Footprint, functions: int = 12) -> str:
    kib = found.total * LINE / 1024
    lines = [f"{label}: {kib:.1f} KiB of code per request ({found.total} lines of {LINE} B)"]
    for name, count in sorted(found.by_object.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {count * LINE / 1024:6.1f} KiB  {name}")
    lines.append("  the largest functions:")
    largest = sorted(found.by_function.items(), key=lambda kv: -kv[1])[:functions]
    for (name, function), count in largest:
        lines.append(f"  {count * LINE / 1024:6.1f} KiB  {function}  ({name})")
    return "\n".join(lines)
