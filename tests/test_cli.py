"""The fetch command: output, -v connection events, --repeat, -o, exit codes.

``cli.main(argv)`` runs its own event loop, so the in-process tests run it in a
worker thread (``asyncio.to_thread``) while the test's loop serves the
scripted server; every call carries ``--timeout`` so the thread is bounded.
One test runs ``python -m aiofasthttp`` as a subprocess against nginx.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aiofasthttp.tools import cli
from servers import (
    LOOPS,
    AsyncServer,
    ConnInfo,
    Handler,
    free_port,
    nginx,
    read_request,
    response,
    run,
    serve,
)


def run_cli(argv: list[str]) -> tuple[int, bytes, str]:
    """cli.main in-process: (exit code, stdout bytes, stderr text)."""
    out, err = io.BytesIO(), io.StringIO()
    if "--timeout" not in argv:
        argv = ["--timeout", "20", *argv]  # bounds the thread the CLI runs in
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def against(
    handler: Handler, argv: list[str], loop_kind: str = "asyncio"
) -> tuple[int, bytes, str, AsyncServer]:
    """Serve ``handler`` on the test's loop; run the CLI (URL appended) in a thread."""

    async def main() -> tuple[int, bytes, str, AsyncServer]:
        async with serve(handler) as server:
            args = ["--loop", loop_kind, *argv, server.url("/path")]
            code, out, err = await asyncio.to_thread(run_cli, args)
            return code, out, err, server

    return run(loop_kind, main)  # type: ignore[return-value]


# -- scripted servers ------------------------------------------------------------------


def closes_after(n: int, body: bytes = b"hello\n") -> Handler:
    """Keeps connections alive, but closes each after ``n`` responses without saying so."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while info.requests < n and await read_request(reader) is not None:
            info.requests += 1
            writer.write(response(body))
            await writer.drain()

    return handler


def echo() -> Handler:
    """Answers with the method, target, headers and body it received, as JSON."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            got = {
                "method": req.method,
                "target": req.target,
                "headers": req.headers,
                "body": req.body.decode(),
            }
            writer.write(response(json.dumps(got).encode()))
            await writer.drain()

    return handler


def answers(raw: bytes) -> Handler:
    """Reads one request, writes ``raw``, then waits for the client to go."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        if await read_request(reader) is not None:
            writer.write(raw)
            await writer.drain()
            await reader.read()

    return handler


def silent() -> Handler:
    """Reads the request and never answers (until the client closes)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await reader.read()

    return handler


def hangs_up() -> Handler:
    """Reads the request, then closes without a byte of response."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await read_request(reader)

    return handler


# -- output and connection events --------------------------------------------------------


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_verbose_repeat_shows_dial_reuse_and_server_close(loop_kind: str) -> None:
    code, out, err, server = against(
        closes_after(2), ["-v", "--repeat", "5", "--interval", "0.2"], loop_kind
    )
    assert code == 0, err
    assert out == b"hello\n" * 5
    assert server.connections == 3
    lines = err.splitlines()
    dialled = [line for line in lines if "dialled to" in line]
    reused = [line for line in lines if "reused after" in line]
    closed = [line for line in lines if "closed by the server after" in line]
    assert len(dialled) == 3 and len(reused) == 2, err
    assert "(1 request served on it)" in reused[0]
    assert len(closed) == 2 and "(2 requests served on it)" in closed[0], err
    assert "] GET http" in err and "(request 5 of 5)" in err
    assert err.count("> GET /path HTTP/1.1") == 5
    assert "< HTTP/1.1 200 X" in err and "< Content-Length: 6" in err
    assert "3 connections dialled, 2 reused" in lines[-1]
    # Two separate closes after 2 requests each: the pool learned the server's limit.
    assert "; learned: 2 requests per connection" in lines[-1]
    # the first server close is seen before the third request dials the second connection
    assert lines.index(closed[0]) < lines.index(dialled[1])


def test_verbose_shows_connections_the_client_retires() -> None:
    argv = ["-v", "--repeat", "2", "--max-requests-per-conn", "1"]
    code, _, err, server = against(closes_after(5), argv)
    assert code == 0, err
    assert err.count("retired by the client: its request limit was reached") == 2
    assert server.connections == 2
    # The pool's expiry timer fires at 0.05 s, inside the 0.3 s interval.
    argv = ["-v", "--repeat", "2", "--interval", "0.3", "--max-idle-conn-duration", "0.05"]
    code, _, err, server = against(closes_after(5), argv)
    assert code == 0, err
    assert "connection #" in err and "its idle or lifetime limit was reached" in err
    assert "reused after" not in err and server.connections == 2


def test_without_verbose_only_the_body_is_printed() -> None:
    code, out, err, _ = against(closes_after(5), ["--repeat", "2"])
    assert (code, out, err) == (0, b"hello\n" * 2, "")


def test_method_headers_and_bodies_are_sent() -> None:
    code, out, err, _ = against(
        echo(), ["-X", "put", "-H", "X-One: 1", "-H", "x-two:2", "-d", "a=b"]
    )
    assert code == 0, err
    got = json.loads(out)
    assert got["method"] == "PUT" and got["target"] == "/path" and got["body"] == "a=b"
    assert got["headers"]["x-one"] == "1" and got["headers"]["x-two"] == "2"
    assert got["headers"]["content-type"] == "application/x-www-form-urlencoded"

    code, out, err, _ = against(echo(), ["--json", '{"k": [1, 2]}'])
    got = json.loads(out)
    assert got["method"] == "POST" and json.loads(got["body"]) == {"k": [1, 2]}
    assert got["headers"]["content-type"] == "application/json"


def test_data_from_a_file(tmp_path: Path) -> None:
    body = tmp_path / "body.bin"
    body.write_bytes(b"from a file")
    code, out, err, _ = against(echo(), ["-d", f"@{body}", "-H", "Content-Type: text/plain"])
    assert code == 0, err
    got = json.loads(out)
    assert got["body"] == "from a file" and got["headers"]["content-type"] == "text/plain"


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    code, out, err, _ = against(closes_after(5, b"\x00\x01binary"), ["-o", str(target)])
    assert (code, out, err) == (0, b"", "")
    assert target.read_bytes() == b"\x00\x01binary"


def test_output_file_that_cannot_be_written(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "out.bin"
    code, out, err, _ = against(closes_after(5), ["-o", str(target)])
    assert (code, out) == (cli.EXIT_FAILURE, b"") and "cannot write" in err


# -- exit codes ---------------------------------------------------------------------------


def test_fail_on_404_exits_7_without_the_body() -> None:
    not_found = response(b"no such thing", status=404)
    code, out, err, _ = against(answers(not_found), ["--fail"])
    assert (code, out) == (cli.EXIT_HTTP, b"")
    assert "HTTP 404" in err
    code, out, err, _ = against(answers(not_found), [])
    assert (code, out) == (0, b"no such thing")


def test_connect_refused_exits_3_after_the_retries_it_shows() -> None:
    port = free_port()
    code, out, err = run_cli(["--loop", "asyncio", "-v", f"http://127.0.0.1:{port}/"])
    assert code == cli.EXIT_CONNECT and out == b""
    assert "attempt 1 failed (connect failed)" in err
    assert "gave up after attempt 5" in err
    assert "aiofasthttp: cannot connect:" in err
    code, _, err = run_cli(["--loop", "asyncio", "--retry", "0", f"127.0.0.1:{port}"])
    assert code == cli.EXIT_CONNECT
    assert "[attempt 1 of 1]" in err and "earlier attempts" not in err


def test_read_timeout_and_whole_timeout_exit_4() -> None:
    code, _, err, _ = against(silent(), ["--read-timeout", "0.3"])
    assert code == cli.EXIT_TIMEOUT and "read_timeout=0.3" in err
    code, _, err, _ = against(silent(), ["--timeout", "0.3"])
    assert code == cli.EXIT_TIMEOUT and "timeout" in err


def test_protocol_error_exits_5() -> None:
    code, _, err, _ = against(answers(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), [])
    assert code == cli.EXIT_PROTOCOL and "protocol error" in err


def test_connection_closed_exits_6() -> None:
    code, _, err, server = against(hangs_up(), ["--retry", "0"])
    assert code == cli.EXIT_CLOSED and "connection closed" in err
    assert server.connections == 1


def test_retry_replays_and_says_why() -> None:
    code, _, err, server = against(hangs_up(), ["-v", "--retry", "2"])
    assert code == cli.EXIT_CLOSED
    assert server.connections == 3
    assert err.count("failed (") == 2 and "gave up after attempt 3" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["-H", "no colon here", "http://127.0.0.1:1/"],
        ["--json", "{not json", "http://127.0.0.1:1/"],
        ["--repeat", "0", "http://127.0.0.1:1/"],
        ["--no-such-option", "http://127.0.0.1:1/"],
        ["ftp://127.0.0.1:1/"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    out, err = io.BytesIO(), io.StringIO()
    assert cli.main(argv, stdout=out, stderr=err) == cli.EXIT_USAGE
    assert err.getvalue() and out.getvalue() == b""


def test_help_documents_the_exit_codes() -> None:
    out, err = io.BytesIO(), io.StringIO()
    assert cli.main(["--help"], stdout=out, stderr=err) == 0
    text = out.getvalue().decode()
    for code in (3, 4, 5, 6, 7):
        assert f"\n  {code}    " in text
    assert "aiofasthttp doctor URL" in text


# -- as a program ------------------------------------------------------------------------------


def test_python_m_aiofasthttp_against_nginx() -> None:
    with nginx(keepalive_requests=2) as base:
        proc = subprocess.run(
            [sys.executable, "-m", "aiofasthttp", "-v", "--repeat", "3", f"{base}/small.txt"],
            capture_output=True,
            timeout=30,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        missing = subprocess.run(
            [sys.executable, "-m", "aiofasthttp", "--fail", f"{base}/missing"],
            capture_output=True,
            timeout=30,
        )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert proc.stdout == b"x" * 300
    assert err.count("dialled to") == 2 and err.count("reused after") == 1
    assert "closed: the server said 'Connection: close' after 2 requests" in err
    assert missing.returncode == cli.EXIT_HTTP and missing.stdout == b""


def test_doctor_passes_its_bounds_to_the_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    """--max-idle, --max-requests and --max-lifetime reach DoctorOptions as given."""
    seen: list[cli.DoctorOptions] = []

    async def diagnose(url: str, options: cli.DoctorOptions) -> object:
        seen.append(options)
        raise cli.HTTPError("stopped here: only the options are under test")

    monkeypatch.setattr(cli, "diagnose", diagnose)
    argv = ["doctor", "http://127.0.0.1:9/", "--max-idle", "3", "--max-requests", "7"]
    for extra in (["--max-lifetime", "12"], []):
        code = cli.main([*argv, *extra], stdout=io.BytesIO(), stderr=io.StringIO())
        assert code != 0  # the stand-in diagnosis failed, as it was told to
    assert [(o.max_idle, o.max_requests, o.max_lifetime) for o in seen] == [
        (3.0, 7, 12.0),
        (3.0, 7, None),  # None: as long as --max-idle (DoctorOptions' rule)
    ]
