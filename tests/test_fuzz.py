"""A short, bounded run of both fuzzers on every test run (fuzz/README.md has the long ones).

The differential fuzzer runs for 20 s with a fixed seed, so a run repeats the
same cases (as many as the machine gets through); the coverage-guided target
runs for 10 s when atheris is installed (instrumented when it can be built
here, else with the twin's Python coverage). Either finding anything fails the
test, with the finding saved under the test's temporary directory and its
explanation in the output. The fuzzers' own machinery is checked first, on a
planted difference, so a quiet run means the parsers agreed, not that the
harness saw nothing.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from aiofasthttp.errors import ProtocolError
from aiofasthttp.h1 import _pyparser
from fuzz import coverage_target, differential, harness
from fuzz.harness import Case
from fuzz.inputs import Mutator, all_seeds

ROOT = Path(__file__).resolve().parent.parent

DIFFERENTIAL_SECONDS = 20
COVERAGE_SECONDS = 10
SEED = 20240601


class OffByOne(_pyparser.ResponseParser):
    """A planted bug: the twin, but a chunk-size error is reported one byte late."""

    def feed(self, data: Any) -> None:
        try:
            super().feed(data)
        except ProtocolError as exc:
            if exc.reason == "invalid_chunk_size":
                exc.offset += 1
            raise


def test_seeds_cover_the_corpus_and_the_split_cases() -> None:
    names = [seed.name for seed in all_seeds()]
    assert sum(name.startswith("splits:") for name in names) >= 40
    assert sum(name.startswith(("llhttp:", "http-parser:", "h11:")) for name in names) >= 150


def test_the_differential_check_finds_and_minimises_a_planted_difference() -> None:
    planted = types.SimpleNamespace(ResponseParser=OffByOne)
    rng = random.Random(SEED)
    seeds = all_seeds()
    mutator = Mutator(rng, seeds)
    for _ in range(50_000):
        case, _ = differential.make_case(mutator, seeds)
        verdict = differential.check(case, _pyparser, planted)
        if verdict is not None:
            break
    else:
        pytest.fail("50,000 cases never reached a chunk-size error")
    assert verdict.signature[:2] == ("disagreement", "offset")

    def still(candidate: Case) -> bool:
        again = differential.check(candidate, _pyparser, planted)
        return again is not None and again.signature == verdict.signature

    small = differential.minimise(case, still, seconds=10)
    assert still(small)
    assert len(small.data) < 60, small


def test_a_crash_is_recorded_not_raised() -> None:
    class Broken(_pyparser.ResponseParser):
        def feed_eof(self) -> None:
            raise IndexError("planted")

    trace = harness.run(types.SimpleNamespace(ResponseParser=Broken), Case(b"HTTP/1.1 200 OK\r\n"))
    assert trace.crash is not None and "IndexError: planted" in trace.crash


def test_every_seed_passes_the_coverage_targets_crash_check(both_parser_impls: Any) -> None:
    _, compiled = both_parser_impls
    for seed in all_seeds():
        for opts, split in ((0, 0), (0x13, 255), (0x6E, 37)):
            coverage_target.feed_compiled(
                compiled, ProtocolError, coverage_target.encode(seed.data, opts, split)
            )


def test_differential_fuzzer_short_run(both_parser_impls: Any, tmp_path: Path) -> None:
    totals = differential.supervise(DIFFERENTIAL_SECONDS, SEED, tmp_path, log=sys.stdout)
    print(totals)
    assert totals["cases"] > 1000
    assert totals["findings"] == {}, _saved(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed")
def test_coverage_target_short_run(both_parser_impls: Any, tmp_path: Path) -> None:
    status = coverage_target.launch(COVERAGE_SECONDS, SEED, tmp_path / "findings")
    assert status == 0, _saved(tmp_path / "findings")


def _saved(directory: Path) -> str:
    if not directory.exists():
        return "nothing saved"
    return "\n".join(f"{p}:\n{p.read_text(errors='replace')[:3000]}" for p in directory.iterdir())
