"""The fetch command's curl habits: -L -i -I -s -S -A -x --trust-env -m -f, the -v head
as sent, and the -o progress bar (on a fake terminal), against loopback servers."""

from __future__ import annotations

import asyncio
import io
import json
import re
from pathlib import Path
from typing import TextIO

import pytest

from aiofasthttp.tools import cli
from proxy import run_proxy
from servers import (
    LOOPS,
    AsyncServer,
    ConnInfo,
    Handler,
    free_port,
    read_request,
    response,
    run,
    serve,
)


class TerminalBytes(io.BytesIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class TerminalText(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def call(
    argv: list[str], out: io.BytesIO | None = None, err: TextIO | None = None
) -> tuple[int, bytes, str]:
    out = out if out is not None else io.BytesIO()
    err = err if err is not None else io.StringIO()
    code = cli.main(["--timeout", "20", *argv], stdout=out, stderr=err)  # bounds the thread
    return code, out.getvalue(), err.getvalue()


def against(
    handler: Handler,
    argv: list[str],
    *,
    out: io.BytesIO | None = None,
    err: TextIO | None = None,
    loop_kind: str = "asyncio",
    path: str = "/path",
) -> tuple[int, bytes, str, AsyncServer]:
    """Serve ``handler``; run cli.main (URL appended) in a thread meanwhile."""

    async def main() -> tuple[int, bytes, str, AsyncServer]:
        async with serve(handler) as server:
            args = ["--loop", loop_kind, *argv, server.url(path)]
            code, got, said = await asyncio.to_thread(call, args, out, err)
            return code, got, said, server

    return run(loop_kind, main)  # type: ignore[return-value]


def routes(table: dict[str, bytes]) -> Handler:
    """Answers each request with the raw response its target maps to (404 otherwise),
    recording the requests on the server's log."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            log.append(req)
            writer.write(table.get(req.target, response(b"missing", 404)))
            await writer.drain()

    log: list = []
    handler.log = log  # type: ignore[attr-defined]
    return handler


def echo_headers() -> Handler:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            writer.write(response(json.dumps(req.headers).encode()))
            await writer.drain()

    return handler


REDIRECTING = {
    "/path": response(b"", 302, {"Location": "/final"}),
    "/final": response(b"done", 200, {"X-Final": "yes"}),
}


# -- -L, -i, -I ------------------------------------------------------------------------


def test_location_follows_and_include_prints_every_head() -> None:
    code, out, err, _ = against(routes(REDIRECTING), [])
    assert (code, out) == (0, b"")  # not followed: the 302's empty body
    code, out, err, _ = against(routes(REDIRECTING), ["-L"])
    assert (code, out) == (0, b"done"), err
    code, out, err, _ = against(routes(REDIRECTING), ["-L", "-i"])
    assert code == 0, err
    first, second, body = out.split(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 302 X\r\n") and b"Location: /final" in first
    assert second.startswith(b"HTTP/1.1 200 X\r\n") and b"X-Final: yes" in second
    assert body == b"done"


def test_include_with_output_puts_the_head_in_the_file(tmp_path: Path) -> None:
    target = tmp_path / "page"
    code, out, err, _ = against(routes(REDIRECTING), ["-i", "-o", str(target)], path="/final")
    assert (code, out) == (0, b""), err
    assert target.read_bytes() == b"HTTP/1.1 200 X\r\nX-Final: yes\r\nContent-Length: 4\r\n\r\ndone"


def test_head_sends_head_and_prints_the_head_only() -> None:
    handler = routes({"/path": response(b"", 200, {"Content-Length": "1234", "X-A": "1"})})
    code, out, err, _ = against(handler, ["-I"])
    assert code == 0, err
    assert handler.log[0].method == "HEAD"  # type: ignore[attr-defined]
    assert out.startswith(b"HTTP/1.1 200 X\r\n") and out.endswith(b"X-A: 1\r\n\r\n")
    assert b"Content-Length: 1234" in out
    code, _, err = call(["-I", "-d", "x", "http://127.0.0.1:1/"])
    assert code == cli.EXIT_USAGE and "-I" in err


# -- -A, -v ------------------------------------------------------------------------------


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_verbose_shows_the_head_actually_sent(loop_kind: str) -> None:
    argv = ["-v", "-A", "probe/1.0", "-H", "X-One: 1", "-d", "a=b"]
    code, out, err, server = against(echo_headers(), argv, loop_kind=loop_kind)
    assert code == 0, err
    sent = json.loads(out)
    assert sent["user-agent"] == "probe/1.0"
    head = [line[2:] for line in err.splitlines() if line.startswith("> ")]
    assert head[0] == "POST /path HTTP/1.1"
    # What the server received, field for field, in the order written.
    assert {line.split(": ", 1)[0].lower() for line in head[1:-1]} == set(sent)
    assert f"Host: 127.0.0.1:{server.port}" in head
    assert "User-Agent: probe/1.0" in head and "X-One: 1" in head
    assert any(line.startswith("Accept-Encoding: gzip") for line in head)
    assert head[-1] == "[3 bytes of body]"


def test_default_user_agent_is_the_clients() -> None:
    code, out, err, _ = against(echo_headers(), [])
    assert code == 0, err
    assert json.loads(out)["user-agent"].startswith("aiofasthttp/")


def test_verbose_body_ends_its_line_on_a_terminal_only() -> None:
    plain = routes({"/path": response(b"no newline")})
    code, out, err, _ = against(plain, ["-v"], out=TerminalBytes())
    assert (code, out) == (0, b"no newline\n")
    code, out, err, _ = against(plain, ["-v"])  # piped: byte for byte
    assert (code, out) == (0, b"no newline")
    code, out, err, _ = against(plain, [], out=TerminalBytes())  # no trace follows
    assert (code, out, err) == (0, b"no newline", "")


# -- -m, -f, -s, -S ----------------------------------------------------------------------


def test_max_time_is_the_whole_request_timeout() -> None:
    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await reader.read()

    code, _, err, _ = against(silent, ["-m", "0.3"])
    assert code == cli.EXIT_TIMEOUT and "timeout" in err


def test_fail_and_silent_and_show_error() -> None:
    missing = routes({})
    code, out, err, _ = against(missing, ["-f"])
    assert (code, out) == (cli.EXIT_HTTP, b"") and "HTTP 404" in err
    code, out, err, _ = against(missing, ["-f", "-s"])
    assert (code, out, err) == (cli.EXIT_HTTP, b"", "")
    code, out, err, _ = against(missing, ["-f", "-s", "-S"])
    assert code == cli.EXIT_HTTP and "HTTP 404" in err
    port = free_port()
    code, out, err = call(["--retry", "0", "-s", f"http://127.0.0.1:{port}/"])
    assert (code, out, err) == (cli.EXIT_CONNECT, b"", "")


# -- -x, --trust-env ---------------------------------------------------------------------


def through_proxy(argv: list[str]) -> tuple[int, bytes, str, list[str]]:
    async def main() -> tuple[int, bytes, str, list[str]]:
        async with serve(routes({"/path": response(b"via")})) as server, run_proxy() as proxy:
            args = [a.replace("PROXY", proxy.url()) for a in argv]
            code, out, err = await asyncio.to_thread(call, [*args, server.url("/path")])
            return code, out, err, proxy.request_lines

    return run("asyncio", main)  # type: ignore[return-value]


def test_proxy_option_and_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    code, out, err, seen = through_proxy(["-x", "PROXY"])
    assert (code, out) == (0, b"via"), err
    assert len(seen) == 1 and seen[0].startswith("GET http://127.0.0.1:")
    code, out, err, seen = through_proxy([])
    assert (code, out, seen) == (0, b"via", [])  # no proxy in the environment: direct

    async def with_env(argv: list[str]) -> tuple[int, bytes, str, list[str]]:
        async with serve(routes({"/path": response(b"via")})) as server, run_proxy() as proxy:
            monkeypatch.setenv("http_proxy", proxy.url())
            code, out, err = await asyncio.to_thread(call, [*argv, server.url("/path")])
            return code, out, err, proxy.request_lines

    code, out, err, seen = run("asyncio", lambda: with_env([]))  # type: ignore[misc]
    assert (code, out, len(seen)) == (0, b"via", 1), err  # as curl: http_proxy is used
    code, out, err, seen = run("asyncio", lambda: with_env(["--no-trust-env"]))  # type: ignore[misc]
    assert (code, out, seen) == (0, b"via", [])


def test_a_bad_proxy_url_is_a_usage_error() -> None:
    code, _, err = call(["-x", "ftp://nowhere", "http://127.0.0.1:1/"])
    assert code == cli.EXIT_USAGE and "usage error" in err


# -- the -o progress bar ----------------------------------------------------------------

BIG = bytes(range(256)) * 800  # 200 KiB


def chunked_big() -> Handler:
    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            writer.write(response(b"", headers={"Transfer-Encoding": "chunked"}))
            for start in range(0, len(BIG), 16384):
                piece = BIG[start : start + 16384]
                writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return handler


def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    code, out, err, _ = against(
        routes({"/path": response(BIG)}), ["-o", str(target)], err=TerminalText()
    )
    assert (code, out) == (0, b"") and target.read_bytes() == BIG
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith(str(target)) and "100%" in final
    assert "200k/200k" in final  # bytes done of the Content-Length, in KiB
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, +[\d.]+\s?[kMG]?B/s\]", final), final  # ETA, rate


def test_progress_bar_without_a_length_counts_bytes_and_rate(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    code, _, err, _ = against(chunked_big(), ["-o", str(target)], err=TerminalText())
    assert code == 0 and target.read_bytes() == BIG
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "200k" in final and "B/s" in final and "%" not in final


def test_no_progress_bar_when_not_a_terminal_or_silent(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    handler = routes({"/path": response(BIG)})
    code, _, err, _ = against(handler, ["-o", str(target)])
    assert (code, err) == (0, "")
    code, _, err, _ = against(handler, ["-s", "-o", str(target)], err=TerminalText())
    assert (code, err) == (0, "")
    assert target.read_bytes() == BIG
