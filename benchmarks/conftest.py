"""Collect ``bench_*.py`` here, so ``python -m pytest benchmarks --benchmark-only`` works.

pytest's ``python_files`` (test_*.py) would skip them when the directory is
named; a file named on the command line is collected by pytest itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
