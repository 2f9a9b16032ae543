"""``python -m fuzz --seconds N [--target coverage|differential] [--seed S]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz")
    parser.add_argument("--target", choices=["differential", "coverage"], default="differential")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the run is repeatable)")
    parser.add_argument(
        "--findings", type=Path, default=None, help="where findings go (default fuzz/findings/)"
    )
    parser.add_argument(
        "--mode",
        choices=["auto", "instrumented", "python"],
        default="auto",
        help="coverage target: the ASan+sancov build of the C parser, or the fallback",
    )
    parser.add_argument("--corpus", type=Path, default=None, help="coverage target: corpus dir")
    parser.add_argument("--build", action="store_true", help="only build the instrumented module")
    parser.add_argument(
        "--replay", type=Path, nargs="+", default=None, help="check saved findings again"
    )
    args, extra = parser.parse_known_args(argv)
    extra = [arg for arg in extra if arg != "--"]  # the rest goes to libFuzzer

    if args.build:
        from .coverage_target import build_instrumented

        build_instrumented()
        return 0
    if args.replay:
        return _replay(args.replay)
    if args.target == "coverage":
        from .coverage_target import FINDINGS, launch

        return launch(
            args.seconds, args.seed, args.findings or FINDINGS, args.corpus, args.mode, extra
        )
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from .differential import FINDINGS as DIFF_FINDINGS
    from .differential import supervise

    totals = supervise(args.seconds, args.seed, args.findings or DIFF_FINDINGS)
    print(json.dumps(totals, indent=1))
    return 1 if totals["findings"] else 0


def _replay(paths: list[Path]) -> int:
    from .differential import replay

    status = 0
    for path in paths:
        if path.suffix != ".json":
            print(f"{path}: not a differential finding (replay libFuzzer artifacts with atheris)")
            continue
        verdict = replay(path)
        if verdict is None:
            print(f"{path}: no longer reproduces")
        else:
            status = 1
            print(f"{path}: {verdict.kind} {verdict.signature}\n{verdict.detail}")
    return status


if __name__ == "__main__":
    sys.exit(main())
