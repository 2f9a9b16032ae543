"""``aiofasthttp doctor``: what it finds about real servers, and how it brackets the idle timeout.

Each scripted server closes connections its own way (FIN or RST, after an idle
time or a number of requests, saying Connection: close or not); nginx runs with
known ``keepalive_timeout`` and ``keepalive_requests``. The doctor's idle waits
are its method of measurement; the tests pass a small ``max_idle`` to stay fast.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import ssl
import struct

import pytest
import trustme

from aiofasthttp.engine.explain import idle_timeout_words, lifetime_words, request_limit_words
from aiofasthttp.tools import cli
from aiofasthttp.tools.doctor import (
    FIN,
    MAX_ROUNDS,
    RST,
    SILENT,
    Bracket,
    DoctorOptions,
    Report,
    diagnose,
    first_gaps,
    render_json,
    render_text,
    tolerance,
)
from aiofasthttp.tools.doctor.measure import LIFETIME_GAP, SHORTEST_GAP, _Outcome, lifetime_gap
from aiofasthttp.tools.doctor.report import ANNOUNCED
from servers import LOOPS, ConnInfo, Handler, free_port, nginx, read_request, run, serve


def within_tolerance(measured: float | None, expected: float) -> bool:
    return measured is not None and abs(measured - expected) <= max(0.25, 0.1 * expected)


def doctor_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = cli.main(["doctor", *argv], stdout=out, stderr=err)
    return code, out.getvalue().decode(), err.getvalue()


# -- scripted servers ---------------------------------------------------------------


def keep_alive_server(
    *,
    idle: float | None = None,
    reset: bool = False,
    before_close: bytes = b"",
    max_requests: int | None = None,
    http10: bool = False,
    announce: bool = False,
    hint: str | None = None,
) -> Handler:
    """Answers "ok"; closes a connection idle ``idle`` s (with RST if ``reset``, after
    sending ``before_close``), or after ``max_requests`` (saying so if ``announce``).
    With ``http10`` it speaks HTTP/1.0 and keeps a connection only when asked;
    ``hint`` is sent as a Keep-Alive header."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while True:
            try:
                req = await asyncio.wait_for(read_request(reader), idle)
            except asyncio.TimeoutError:  # the server's idle timeout
                if before_close:
                    writer.write(before_close)
                    await writer.drain()
                if reset:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # serve() closes the socket: FIN, or RST with SO_LINGER 0
            if req is None:
                return
            info.requests += 1
            last = max_requests is not None and info.requests >= max_requests
            keep = req.headers.get("connection", "").lower() == "keep-alive" if http10 else True
            head = "HTTP/1.0 200 OK" if http10 else "HTTP/1.1 200 OK"
            extra = ""
            if http10 and keep:
                extra = "Connection: keep-alive\r\n"
            elif last and announce:
                extra = "Connection: close\r\n"
            if hint is not None:
                extra += f"Keep-Alive: {hint}\r\n"
            writer.write(f"{head}\r\nContent-Length: 2\r\n{extra}\r\nok".encode())
            await writer.drain()
            if last or not keep:
                return

    return handler


def closing_server() -> Handler:
    """Says Connection: close on every response, and closes."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        if await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()

    return handler


# -- against nginx ----------------------------------------------------------------


def test_nginx_idle_timeout_and_request_limit_through_the_command_line() -> None:
    with nginx(keepalive_timeout="2s", keepalive_requests=7) as base:
        code, out, err = doctor_main(["--max-idle", "5", "--json", f"{base}/small.txt"])
    assert code == 0, err
    report = json.loads(out)
    assert report["keeps_alive"] and report["http11"]["keeps_alive"]
    assert report["server"].startswith("nginx")
    idle = report["idle"]
    assert within_tolerance(idle["seconds"], 2.0), idle
    assert idle["close"] == FIN and idle["consistent"]
    assert idle["served_after"] < 2.0 <= idle["closed_after"] + 0.05
    requests = report["requests"]
    assert requests["max_requests"] == 7
    assert requests["announced"] is True and requests["close"] == FIN
    settings = report["settings"]
    assert 0 < settings["max_idle_conn_duration"] < idle["seconds"]
    assert settings["max_requests_per_conn"] == 7
    assert settings["fasthttp"]["MaxIdleConnDuration"].endswith("time.Millisecond")
    assert "max_requests_per_conn=7" in settings["client"]
    # The busy connection met the request limit (7) before any lifetime limit.
    lifetime = report["lifetime"]
    assert lifetime["request_limit"] and lifetime["requests"] == 7
    assert lifetime["seconds"] is None and settings["max_conn_duration"] is None
    assert settings["fasthttp"]["MaxConnDuration"] == "0"
    assert any(request_limit_words(7) in note for note in settings["notes"])
    assert report["elapsed"] < 15


# -- against scripted asyncio servers ------------------------------------------------------


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_server_that_resets_idle_connections_is_reported_as_rst(loop_kind: str) -> None:
    async def main() -> Report:
        server_kind = keep_alive_server(idle=1.0, reset=True, hint="timeout=5, max=100")
        async with serve(server_kind) as server:
            options = DoctorOptions(max_idle=3.0, max_requests=30)
            return await diagnose(server.url("/x"), options)

    report = run(loop_kind, main)
    assert isinstance(report, Report)
    idle = report.idle
    assert idle is not None
    assert idle.close == RST
    # The bracket holds the server's timeout whatever the delays: a late timer on the
    # server only moves its real close later (5%: a loop's timer may fire a tick early).
    assert idle.closed_after is not None
    assert idle.served_after < 1.0 < idle.closed_after + 0.05
    assert within_tolerance(idle.seconds, 1.0), idle
    assert report.requests is not None and report.requests.max_requests is None
    assert report.requests.bound == 30
    # The cause in the client's own words.
    assert any(idle_timeout_words(idle.seconds) in n for n in report.settings.notes)
    # Kept busy for max_idle (3 s), the connection was never closed for its age.
    lifetime = report.lifetime
    assert lifetime is not None and lifetime.error is None and lifetime.seconds is None
    assert lifetime.bound == 3.0 and lifetime.kept_until >= 3.0 - 2 * LIFETIME_GAP
    assert report.settings.max_conn_duration is None
    text = render_text(report)
    assert "reset with RST" in text and "no limit seen up to 30" in text
    assert any("it resets them (RST)" in note for note in report.settings.notes)
    assert any("Idempotency-Key" in note for note in report.settings.notes)
    assert report.keep_alive_hint == "timeout=5, max=100"
    said = f"hint says timeout=5 but it closes after {idle.seconds:.2f} s"
    assert any(said in n for n in report.settings.notes), report.settings.notes


def test_http10_only_server_keeps_alive_only_when_asked() -> None:
    async def main() -> Report:
        async with serve(keep_alive_server(idle=0.6, http10=True)) as server:
            return await diagnose(server.url(), DoctorOptions(max_idle=2.0, max_requests=20))

    report = run("asyncio", main)
    assert isinstance(report, Report)
    assert not report.http11.keeps_alive
    assert report.http11.response_version == "HTTP/1.0" and not report.http11.says_keep_alive
    assert report.http11.close == FIN
    assert report.http10.keeps_alive and report.http10.connection_header == "keep-alive"
    assert report.settings.headers == {"Connection": "keep-alive"}
    assert "headers={'Connection': 'keep-alive'}" in report.settings.client_call()
    assert report.idle is not None and within_tolerance(report.idle.seconds, 0.6)
    data = json.loads(render_json(report))
    assert data["http10"]["keeps_alive"] and not data["http11"]["keeps_alive"]


def test_server_without_keep_alive_is_reported_and_not_probed_further() -> None:
    async def main() -> tuple[int, str, str, int]:
        async with serve(closing_server()) as server:
            code, out, err = await asyncio.to_thread(
                doctor_main, ["--loop", "asyncio", "--max-idle", "2", server.url()]
            )
            return code, out, err, server.connections

    code, out, err, connections = run("asyncio", main)  # type: ignore[misc]
    assert code == 0, err
    assert "keep-alive, HTTP/1.1:    no (answered HTTP/1.1 200 with Connection: close" in out
    assert "keep-alive, HTTP/1.0:    no" in out
    assert "idle timeout:            not measured (no keep-alive)" in out
    assert "does not keep connections alive" in out
    assert connections == 2  # one request per version, no idle probes


def test_silent_close_after_requests_and_408_before_idle_close() -> None:
    server_kind = keep_alive_server(
        idle=0.5, max_requests=3, before_close=b"HTTP/1.1 408 Request Timeout\r\n\r\n"
    )

    async def main() -> Report:
        async with serve(server_kind) as server:
            return await diagnose(server.url(), DoctorOptions(max_idle=2.0, max_requests=50))

    report = run("asyncio", main)
    assert isinstance(report, Report)
    limit = report.requests
    assert limit is not None
    assert limit.max_requests == 3 and limit.announced is False and limit.close == FIN
    idle = report.idle
    assert idle is not None and within_tolerance(idle.seconds, 0.5)
    assert idle.sent_before_close == "HTTP/1.1 408 Request Timeout"
    settings = report.settings
    assert settings.max_requests_per_conn == 3
    assert any("without saying so" in n and "fasthttp" in n for n in settings.notes)


def test_announced_request_limit() -> None:
    async def main() -> Report:
        async with serve(keep_alive_server(max_requests=4, announce=True)) as server:
            return await diagnose(server.url(), DoctorOptions(max_idle=0.5, max_requests=50))

    report = run("asyncio", main)
    assert isinstance(report, Report)
    assert report.requests is not None
    assert report.requests.max_requests == 4 and report.requests.announced is True
    assert report.idle is not None and report.idle.seconds is None  # nothing within 0.5 s
    assert report.idle.served_after >= 0.5
    # Paced to reach 4 requests no sooner than 0.5 s, it met the request limit first.
    lifetime = report.lifetime
    assert lifetime is not None and lifetime.request_limit and lifetime.requests == 4
    assert "none seen before the request limit ended it" in render_text(report)
    assert any("says 'Connection: close'" in note for note in report.settings.notes)


def test_connect_refused_exits_with_the_connect_code() -> None:
    code, out, err = doctor_main(["--loop", "asyncio", f"http://127.0.0.1:{free_port()}/"])
    assert code == cli.EXIT_CONNECT
    assert out == "" and "cannot connect" in err


def test_usage_error() -> None:
    code, _, err = doctor_main(["--max-idle", "soon", "http://127.0.0.1:1/"])
    assert code == cli.EXIT_USAGE and "--max-idle" in err


# -- the connection's lifetime ------------------------------------------------------


def lifetime_server(lifetime: float, *, announce: bool) -> Handler:
    """Keeps connections alive with no idle timeout, but not past ``lifetime`` s of age:
    it says Connection: close on the first response after it (as nginx's keepalive_time),
    or (``announce`` False) closes the connection then, busy or not (a load balancer)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        loop = asyncio.get_running_loop()
        born = loop.time()
        while True:
            left = born + lifetime - loop.time()
            if announce:
                left = None
            elif left <= 0:
                return  # serve() closes it: a FIN
            try:
                req = await asyncio.wait_for(read_request(reader), left)
            except asyncio.TimeoutError:
                return
            if req is None:
                return
            old = loop.time() - born >= lifetime
            close = "Connection: close\r\n" if old else ""
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{close}\r\nok".encode())
            await writer.drain()
            if old:
                return

    return handler


def tls_pair() -> tuple[trustme.CA, ssl.SSLContext, ssl.SSLContext]:
    """A CA, a server context with its certificate for 127.0.0.1, a client trusting it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return ca, server, client


def assert_lifetime_bracket(report: Report, limit: float) -> None:
    """The lifetime found holds the server's limit: kept at an age at most it, closed at
    an age at least it (ages on the doctor's side bound the server's, whatever the
    delays); the estimate lies between, and the advice keeps under the age kept."""
    lifetime = report.lifetime
    assert lifetime is not None and lifetime.error is None, lifetime
    assert lifetime.closed_at is not None and lifetime.seconds is not None, lifetime
    assert lifetime.kept_until <= limit + 0.05 * limit < lifetime.closed_at + 0.05 * limit
    assert lifetime.kept_until <= lifetime.seconds <= lifetime.closed_at
    # Generous: 20% of the limit (the pace is a request every 0.1 s).
    assert abs(lifetime.seconds - limit) <= 0.2 * limit, lifetime
    value = report.settings.max_conn_duration
    assert value is not None and 0 < value < lifetime.kept_until
    assert f"max_conn_duration={value:g}" in report.settings.client_call()
    assert report.settings.fasthttp["MaxConnDuration"] != "0"
    assert any(lifetime_words(lifetime.seconds) in n for n in report.settings.notes)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_silent_lifetime_limit_over_https_prescribes_max_conn_duration(loop_kind: str) -> None:
    _, server_tls, client_tls = tls_pair()

    async def main() -> Report:
        async with serve(lifetime_server(2.5, announce=False), tls=server_tls) as server:
            assert server.url().startswith("https://")
            options = DoctorOptions(max_idle=1.0, max_requests=20, max_lifetime=8.0, ssl=client_tls)
            return await diagnose(server.url("/x"), options)

    report = run(loop_kind, main)
    assert isinstance(report, Report)
    assert report.http11.keeps_alive
    assert report.idle is not None and report.idle.seconds is None  # none within 1 s
    assert report.requests is not None and report.requests.max_requests is None
    assert report.lifetime is not None and report.lifetime.close == FIN
    assert_lifetime_bracket(report, 2.5)
    assert any("it closes with no warning (FIN)" in n for n in report.settings.notes)
    assert any("Idempotency-Key" in n for n in report.settings.notes)  # a silent close
    assert "connection lifetime:     2." in render_text(report)


def test_https_certificate_is_verified() -> None:
    _, server_tls, _ = tls_pair()

    async def main() -> None:
        async with serve(lifetime_server(5.0, announce=True), tls=server_tls) as server:
            code, out, err = await asyncio.to_thread(
                doctor_main, ["--loop", "asyncio", "--max-idle", "0.5", server.url()]
            )
            assert code == cli.EXIT_CONNECT and out == "", (code, err)
            assert "certificate" in err.lower()
            # -k: not verified, and the probing goes on over https.
            report = await diagnose(
                server.url(), DoctorOptions(max_idle=0.5, max_requests=5, insecure=True)
            )
            assert report.http11.keeps_alive

    run("asyncio", main)


def test_nginx_keepalive_time_over_tls() -> None:
    ca, _, client_tls = tls_pair()
    with nginx(keepalive_timeout="30s", keepalive_time="3s", tls=ca) as base:
        assert base.startswith("https://")
        options = DoctorOptions(max_idle=1.0, max_requests=20, max_lifetime=10.0, ssl=client_tls)
        report = run("asyncio", lambda: diagnose(f"{base}/small.txt", options))
    assert isinstance(report, Report)
    assert report.server is not None and report.server.startswith("nginx")
    assert report.http11.keeps_alive
    assert report.requests is not None and report.requests.max_requests is None
    assert report.lifetime is not None and report.lifetime.close == ANNOUNCED
    assert_lifetime_bracket(report, 3.0)
    assert any(
        "says 'Connection: close' on the response that passes it" in n
        for n in report.settings.notes
    )
    data = json.loads(render_json(report))
    assert data["lifetime"]["close"] == ANNOUNCED
    assert data["settings"]["max_conn_duration"] == report.settings.max_conn_duration


def test_lifetime_pace_stays_under_a_request_limit() -> None:
    assert lifetime_gap(60.0, None) == LIFETIME_GAP
    assert lifetime_gap(1.0, 1000) == LIFETIME_GAP  # 1000 requests take 100 s
    assert lifetime_gap(1.1, 11) == pytest.approx(0.11)  # 10 gaps span the bound
    assert lifetime_gap(600.0, 100) == SHORTEST_GAP / 2  # never near an idle timeout


# -- the bracket, without a server ------------------------------------------------------------


def test_first_round_gaps_grow_by_doubling_up_to_max_idle() -> None:
    assert first_gaps(5.0) == [0.3125, 0.625, 1.25, 2.5, 5.0]
    assert first_gaps(75.0)[-1] == 75.0 and first_gaps(75.0)[0] >= 0.25
    assert first_gaps(0.1) == [0.1]


def model_round(gaps: list[float], timeout: float, watched: bool) -> list[_Outcome]:
    """What probes of a server with this idle timeout report: served before it; after it,
    closed as it happens (watched) or only found failed by the next request (silent)."""
    return [
        _Outcome(g, "served", g)
        if g < timeout
        else _Outcome(g, "closed", timeout, FIN)
        if watched
        else _Outcome(g, "failed", g, RST)
        for g in gaps
    ]


@pytest.mark.parametrize("watched", [True, False], ids=["close-seen", "silent-drop"])
@pytest.mark.parametrize("timeout", [0.3, 1.0, 2.0, 4.25, 7.9, 60.0])
def test_bracket_finds_the_timeout_within_tolerance_in_few_rounds(
    timeout: float, watched: bool
) -> None:
    bracket = Bracket(75.0)
    gaps, rounds = first_gaps(75.0), 0
    while gaps:
        rounds += 1
        assert rounds <= MAX_ROUNDS
        bracket.add(model_round(gaps, timeout, watched))
        gaps = bracket.next_gaps(4)
    result = bracket.result(rounds, 0)
    assert within_tolerance(result.seconds, timeout), result
    assert result.close == (FIN if watched else SILENT)
    assert result.served_after < timeout <= (result.closed_after or 0)
    assert rounds <= (2 if watched else 4)


def test_bracket_reports_no_timeout_when_max_idle_was_served() -> None:
    bracket = Bracket(5.0)
    bracket.add(model_round(first_gaps(5.0), 30.0, True))
    assert bracket.next_gaps(4) == []
    result = bracket.result(1, 5)
    assert result.seconds is None and result.served_after == 5.0 and result.close is None


def test_bracket_confirms_just_below_a_close_seen_as_it_came() -> None:
    bracket = Bracket(8.0)
    bracket.add([_Outcome(1.0, "served", 1.0), _Outcome(8.0, "closed", 3.0, RST)])
    gaps = bracket.next_gaps(4)
    assert all(3.0 - tolerance(3.0) < g < 3.0 for g in gaps)
    bracket.add([_Outcome(2.9, "closed", 2.8, RST)])  # one closed sooner than a later one?
    bracket.add([_Outcome(2.95, "served", 2.95)])
    result = bracket.result(rounds=2, connections=4)
    assert not result.consistent and result.seconds == pytest.approx(2.8)


def test_probe_requests_are_encoded_and_checked_as_the_clients_are() -> None:
    from aiofasthttp import InvalidHeader
    from aiofasthttp.tools.doctor.probe import _Site

    site = _Site.parse("http://u:p@h:8080/x?y=1", DoctorOptions(headers=(("X-A", "1"),)))
    assert site.request11.startswith(b"GET /x?y=1 HTTP/1.1\r\nHost: h:8080\r\n")
    assert b"\r\nAuthorization: Basic dTpw\r\nX-A: 1\r\n\r\n" in site.request11
    assert site.request10.startswith(b"GET /x?y=1 HTTP/1.0\r\nHost: h:8080\r\n")
    assert site.request10.endswith(b"X-A: 1\r\nConnection: keep-alive\r\n\r\n")
    for bad in (("X-A", "a\x01b"), ("Bad Name", "v"), ("X-B", "a\r\nX-C: 1")):
        with pytest.raises(InvalidHeader):
            _Site.parse("http://h/", DoctorOptions(headers=(bad,)))
