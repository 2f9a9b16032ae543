"""The request methods' signatures under mypy: tests/typing/ is checked, strict."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent
CHECKED = HERE / "typing" / "client_kwargs.py"


def _mypy(*paths: Path) -> tuple[str, int]:
    out, err, status = api.run(
        ["--strict", "--warn-unused-ignores", "--no-incremental", "--cache-dir", "/dev/null"]
        + [str(p) for p in paths]
    )
    return out + err, status


def test_typed_keywords_pass_and_every_typo_is_an_error() -> None:
    report, status = _mypy(CHECKED)
    assert status == 0, report


def test_a_misspelt_keyword_fails_without_an_ignore(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from aiofasthttp import Client\n"
        "async def f(client: Client) -> None:\n"
        "    await client.get('/', read_timout=1.0)\n"
        "    await client.post('/', file={'f': b''})\n"
    )
    report, status = _mypy(probe)
    assert status == 1
    assert 'Unexpected keyword argument "read_timout"' in report
    assert 'Unexpected keyword argument "file"' in report
