"""What a user installs is what was measured: the sdist and a wheel, each installed
in a fresh virtual environment, carry the compiled parser, and a build that cannot
compile it says so (or fails, when AIOFASTHTTP_REQUIRE_EXTENSIONS=1).

These tests build for real (isolated builds fetch setuptools and Cython from the
package index, as a user's pip does) and take about two minutes together.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import aiofasthttp

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# A venv's Python, told nothing about this checkout or the parser's switches.
CLEAN_ENV_DROP = (
    "PYTHONPATH",
    "AIOFASTHTTP_NO_EXTENSIONS",
    "AIOFASTHTTP_REQUIRE_EXTENSIONS",
    "CC",
    "PIP_REQUIRE_VIRTUALENV",
)

PROBE = """
import sys, aiofasthttp, aiofasthttp.parser as p
from importlib.metadata import metadata, files
meta = metadata("aiofasthttp")
print("IMPLEMENTATION", p.IMPLEMENTATION)
print("VERSION", aiofasthttp.__version__, meta["Version"])
print("LICENSE-FILE", meta.get_all("License-File"))
print("LICENSE-EXPRESSION", meta["License-Expression"])
print("URLS", len(meta.get_all("Project-URL") or []))
licence = [f for f in files("aiofasthttp") if f.name == "LICENSE"]
print("LICENSE-TEXT", licence and "MIT License" in licence[0].read_text())
print("FROM", p.__file__)
import aiofasthttp.engine.exchange as e, aiofasthttp.h1.response as r, aiofasthttp._slots
import aiofasthttp.engine.connection as c, aiofasthttp.engine.poolcore as pc
import aiofasthttp.policy.learning as lm, aiofasthttp.h1.request as rq
print("COMPILED", " ".join(m.__file__.rsplit(".", 1)[-1] for m in (e, r, c, pc, lm, rq)))
print("SLOTS", type(r.Response.__dict__["status"]).__name__)
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV_DROP}
    env.update(extra)
    return env


def run(args: list[str | Path], *, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(**extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def fresh_venv(where: Path) -> Path:
    """A new venv (with pip, nothing else) outside the checkout; returns its python."""
    checked(run([sys.executable, "-m", "venv", where], cwd=where.parent))
    return where / "bin" / "python"


def private_copy(archive: Path, where: Path) -> Path:
    """The archive under a new path, so pip's wheel cache cannot answer for it."""
    where.mkdir()
    return Path(shutil.copy(archive, where))


def probe(python: Path, cwd: Path, *flags: str) -> dict[str, str]:
    """Import the installed package (never this checkout's src/) and read its facts."""
    out = checked(run([python, *flags, "-c", PROBE], cwd=cwd)).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    checked(run([sys.executable, "-m", "build", "--sdist", "--outdir", out, ROOT], cwd=ROOT))
    (archive,) = out.glob("aiofasthttp-*.tar.gz")
    return archive


def test_sdist_carries_the_cython_source_the_generated_c_and_the_licence(sdist: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    assert {"cext/_cparser.pyx", "cext/_cparser.c", "LICENSE", "setup.py"} <= names
    compiled_too = {
        "cext/_slots.pyx",
        "cext/_slots.c",
        "src/aiofasthttp/engine/exchange.pxd",
        "src/aiofasthttp/engine/exchange.c",
        "src/aiofasthttp/engine/connection.pxd",
        "src/aiofasthttp/engine/connection.c",
        "src/aiofasthttp/engine/poolcore.pxd",
        "src/aiofasthttp/engine/poolcore.c",
        "src/aiofasthttp/policy/learning.pxd",
        "src/aiofasthttp/policy/learning.c",
        "src/aiofasthttp/h1/response.pxd",
        "src/aiofasthttp/h1/response.c",
        "src/aiofasthttp/h1/request.pxd",
        "src/aiofasthttp/h1/request.c",
    }
    assert compiled_too <= names, compiled_too - names
    assert not [n for n in names if n.endswith((".so", ".pyc"))], names


def test_the_sdist_installs_the_compiled_parser_in_a_fresh_venv(
    sdist: Path, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv")
    archive = private_copy(sdist, tmp_path / "dl")
    checked(run([python, "-m", "pip", "install", "-q", archive], cwd=tmp_path))

    # -W error: importing the installed package warns about nothing.
    facts = probe(python, tmp_path, "-W", "error")
    assert facts["IMPLEMENTATION"] == "c"
    # exchange.py, response.py, connection.py, poolcore.py, learning.py and request.py,
    # with their .pxd
    assert facts["COMPILED"] == "so so so so so so"
    assert facts["SLOTS"] == "member_descriptor"
    assert str(tmp_path / "venv") in facts["FROM"]
    assert facts["VERSION"] == f"{aiofasthttp.__version__} {aiofasthttp.__version__}"
    assert facts["LICENSE-FILE"] == "['LICENSE']"
    assert facts["LICENSE-EXPRESSION"] == "MIT"
    assert facts["LICENSE-TEXT"] == "True"
    assert int(facts["URLS"]) >= 3


def test_without_a_compiler_the_build_warns_and_the_import_warns(
    sdist: Path, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path / "venv")
    archive = private_copy(sdist, tmp_path / "dl")
    # CC=false: the compiler "runs" and fails, as a missing one would.
    result = checked(run([python, "-m", "pip", "install", "-v", archive], cwd=tmp_path, CC="false"))
    log = result.stdout + result.stderr
    assert "WARNING: aiofasthttp's compiled parser (aiofasthttp._cparser) was NOT built" in log
    assert "AIOFASTHTTP_REQUIRE_EXTENSIONS=1" in log

    # Under -W default the import says why it is slower, once, with its category.
    facts = checked(
        run(
            [
                python,
                "-W",
                "default",
                "-c",
                "import aiofasthttp.parser as p; print(p.IMPLEMENTATION)",
            ],
            cwd=tmp_path,
        )
    )
    assert facts.stdout.strip() == "python"
    # The six compiled modules (exchange.py, response.py, connection.py, poolcore.py,
    # learning.py, request.py) run as they are: the same behaviour, no warning of
    # their own (the variable silences the parser's, above).
    plain = checked(
        run(
            [
                python,
                "-W",
                "error",
                "-c",
                "import aiofasthttp.engine.exchange as e, aiofasthttp.h1.response as r; "
                "import aiofasthttp.engine.connection as c; "
                "import aiofasthttp.engine.poolcore as pc, aiofasthttp.policy.learning as lm; "
                "import aiofasthttp.h1.request as rq; "
                "print(e.__file__[-3:], r.__file__[-3:], c.__file__[-3:], "
                "pc.__file__[-3:], lm.__file__[-3:], rq.__file__[-3:], "
                "type(r.Response.__dict__['status']).__name__)",
            ],
            cwd=tmp_path,
            AIOFASTHTTP_NO_EXTENSIONS="1",
        )
    )
    assert plain.stdout.split() == [".py"] * 6 + ["member_descriptor"]
    assert re.search(
        r"ParserFallbackWarning: aiofasthttp: the compiled parser did not import", facts.stderr
    ), facts.stderr
    assert facts.stderr.count("ParserFallbackWarning") == 1

    # Asking for the pure-Python parser on purpose is silent, even under -W error.
    chosen = checked(
        run(
            [
                python,
                "-W",
                "error",
                "-c",
                "import aiofasthttp.parser as p; print(p.IMPLEMENTATION)",
            ],
            cwd=tmp_path,
            AIOFASTHTTP_NO_EXTENSIONS="1",
        )
    )
    assert (chosen.stdout.strip(), chosen.stderr) == ("python", "")


def test_require_extensions_turns_a_failed_build_into_an_error(sdist: Path, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    archive = private_copy(sdist, tmp_path / "dl")
    result = run(
        [python, "-m", "pip", "install", archive],
        cwd=tmp_path,
        CC="false",
        AIOFASTHTTP_REQUIRE_EXTENSIONS="1",
    )
    assert result.returncode != 0
    assert "AIOFASTHTTP_REQUIRE_EXTENSIONS=1 makes this an error" in result.stdout + result.stderr
    installed = run([python, "-c", "import aiofasthttp"], cwd=tmp_path)
    assert installed.returncode != 0, "a failed required build still installed something"


def test_scripts_wheels_makes_a_manylinux_wheel_that_installs_the_compiled_parser(
    tmp_path: Path,
) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    result = checked(
        run([ROOT / "scripts" / "wheels", sys.executable], cwd=ROOT, WHEELHOUSE=str(wheelhouse))
    )
    (wheel,) = wheelhouse.glob("aiofasthttp-*.whl")
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    # auditwheel names the legacy alias too: ...-manylinux2014_x86_64.manylinux_2_17_x86_64.whl
    assert re.search(rf"-{tag}-{tag}-([\w.]*\.)?manylinux_\d+_\d+_x86_64\.whl$", wheel.name), (
        wheel.name
    )
    assert "is consistent with the following platform tag" in result.stdout, result.stdout
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith(f"aiofasthttp/_cparser.cpython-{tag[2:]}") for n in names), names

    python = fresh_venv(tmp_path / "venv")
    # With its dependencies (aiohappyeyeballs), as a user installs it.
    checked(run([python, "-m", "pip", "install", "-q", wheel], cwd=tmp_path))
    facts = probe(python, tmp_path, "-W", "error")
    assert facts["IMPLEMENTATION"] == "c"
    # exchange.py, response.py, connection.py, poolcore.py, learning.py, request.py
    assert facts["COMPILED"] == "so so so so so so"
    assert facts["LICENSE-FILE"] == "['LICENSE']"
    assert facts["LICENSE-TEXT"] == "True"
