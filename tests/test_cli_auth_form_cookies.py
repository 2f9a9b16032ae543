"""The CLI's curl flags -u/--digest, -F and -b/-c, through cli.main against httpbin."""

from __future__ import annotations

import io
import json
from http.cookiejar import MozillaCookieJar
from pathlib import Path

import pytest

from aiofasthttp.tools import cli
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)


def run_cli(*argv: str) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = cli.main(["--timeout", "20", "--loop", "asyncio", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_user_basic_and_digest(httpbin_url: str) -> None:  # noqa: F811
    code, out, err = run_cli("-u", "ann:pw", f"{httpbin_url}/basic-auth/ann/pw")
    assert code == 0, err
    assert json.loads(out) == {"authenticated": True, "user": "ann"}
    code, out, err = run_cli("--fail", "-u", "ann:bad", f"{httpbin_url}/basic-auth/ann/pw")
    assert code == cli.EXIT_HTTP
    url = f"{httpbin_url}/digest-auth/auth/ann/pw/SHA-256"
    assert run_cli("--fail", "-u", "ann:pw", url)[0] == cli.EXIT_HTTP  # Basic is not Digest
    code, out, err = run_cli("--digest", "-u", "ann:pw", url)
    assert code == 0, err
    assert json.loads(out)["authenticated"] is True


def test_form_fields_and_files(httpbin_url: str, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "report.txt"
    path.write_bytes(b"line\n" * 500)
    code, out, err = run_cli(
        "-F", "kind=weekly", "-F", f"doc=@{path}", "--repeat", "2", f"{httpbin_url}/post"
    )
    assert code == 0, err
    # --repeat: two JSON bodies; the file is sent whole both times.
    first, second = (json.loads(part) for part in out.decode().replace("}\n{", "}\0{").split("\0"))
    for got in (first, second):
        assert got["form"] == {"kind": "weekly"}
        assert got["files"] == {"doc": "line\n" * 500}
        assert got["headers"]["Content-Type"].startswith("multipart/form-data")


@pytest.mark.parametrize(
    "argv", [["-F", "novalue"], ["-F", "a=@/nonexistent/x"], ["-F", "a=1", "-d", "x"], ["-u", "x"]]
)
def test_bad_auth_and_form_flags_are_usage_errors(argv: list[str]) -> None:
    code, _, err = run_cli(*argv, "http://127.0.0.1:9/")
    assert code == cli.EXIT_USAGE and "usage error" in err


def test_cookie_jar_written_then_read(httpbin_url: str, tmp_path: Path) -> None:  # noqa: F811
    jar_file = tmp_path / "cookies.txt"
    code, _, err = run_cli("-c", str(jar_file), f"{httpbin_url}/cookies/set?tea=green&n=1")
    assert code == 0, err
    saved = MozillaCookieJar()
    saved.load(str(jar_file), ignore_discard=True)
    assert sorted(c.name for c in saved) == ["n", "tea"]
    code, out, err = run_cli("-b", str(jar_file), f"{httpbin_url}/cookies")
    assert code == 0, err
    assert json.loads(out) == {"cookies": {"tea": "green", "n": "1"}}
    code, out, err = run_cli("-b", "x=1; y=2", f"{httpbin_url}/cookies")
    assert json.loads(out) == {"cookies": {"x": "1", "y": "2"}}
    # A -b file that is not there: no cookies, as in curl.
    code, out, err = run_cli("-b", str(tmp_path / "missing.txt"), f"{httpbin_url}/cookies")
    assert code == 0 and json.loads(out) == {"cookies": {}}
