"""``aiofasthttp doctor URL``: why does my client get "connection closed" from this server?

It measures the server, not the client, so it talks to it over raw asyncio
streams and reads the answers with the package's own response parser:

1. **Keep-alive at all.** One HTTP/1.1 request, then a second on the same
   connection; the same as HTTP/1.0 with ``Connection: keep-alive``. The
   response's ``Connection`` and ``Keep-Alive`` headers are kept.
2. **The idle timeout it really applies.** Connections are held idle for
   gaps, then asked a second request; meanwhile each one watches its socket,
   so a close (FIN, or RST) is seen the moment it comes. The first round
   holds gaps growing by halves up to ``max_idle``, all in parallel; later
   rounds bisect the bracket [longest gap still served, shortest closed] with
   ``parallel`` connections, until it is within 10% or 0.25 s.
3. **Requests per connection.** Requests one after another on one
   connection, up to ``max_requests``, until the server closes it: saying
   ``Connection: close`` on the last response, or silently (then one more
   connection finds out whether the close is a FIN or an RST).
4. **The settings to use**, for this client and for fasthttp's.

:func:`diagnose` returns a :class:`Report` (plain dataclasses);
:func:`render_text` and :func:`render_json` turn it into the report shown.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl as ssllib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from .._version import __version__
from ..errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectTimeout,
    IncompleteResponse,
    InvalidHeader,
    ReadTimeout,
    TLSError,
)
from ..h1.parser import ResponseHead, ResponseParser
from ..h1.url import resolve_url

# How long to wait for the server to close a connection it said it would close.
CLOSE_WAIT = 2.0
# The idle timeout is measured to within this fraction of it, or this many seconds.
TOLERANCE_FRACTION = 0.1
TOLERANCE_SECONDS = 0.25
# The first round's shortest gap; and a bound on the bisection rounds.
SHORTEST_GAP = 0.25
MAX_ROUNDS = 6
# The client default this report measures against (Client(max_idle_conn_duration=...)).
CLIENT_DEFAULT_IDLE = 10.0
DEFAULT_ATTEMPTS = 5

FIN = "FIN"
RST = "RST"
SILENT = "silent"  # no FIN or RST while idle; the next request failed

_BAD_HEADER = re.compile(r"[\x00\r\n]")
_HINT_TIMEOUT = re.compile(r"timeout\s*=\s*(\d+)", re.I)


@dataclass(frozen=True)
class DoctorOptions:
    max_idle: float = 75.0
    max_requests: int = 1000
    parallel: int = 4
    timeout: float = 10.0  # connect, and each response
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    insecure: bool = False


# -- the report ----------------------------------------------------------------


@dataclass
class KeepAliveCheck:
    """One request, and a second one on the same connection if the first allowed it."""

    request: str  # "HTTP/1.1", or "HTTP/1.0 with Connection: keep-alive"
    status: int | None = None
    response_version: str | None = None
    says_keep_alive: bool = False  # the response left the connection open (RFC 9112 9.3)
    connection_header: str | None = None
    keep_alive_header: str | None = None
    server: str | None = None
    second_request_served: bool = False
    close: str | None = None  # how the connection ended when it was not reused: FIN or RST
    error: str | None = None

    @property
    def keeps_alive(self) -> bool:
        return self.says_keep_alive and self.second_request_served


@dataclass
class IdleTimeout:
    """The idle time after which the server closes a connection, bracketed by probes."""

    seconds: float | None  # the estimate; None when none was seen up to max_idle
    served_after: float  # the longest idle after which a request was still served
    closed_after: float | None  # the shortest idle after which one was closed or failed
    close: str | None  # FIN, RST, or "silent" (nothing seen; the next request failed)
    sent_before_close: str | None  # the first line of anything sent before closing (a 408)
    max_idle: float
    consistent: bool = True  # False: some connections were served after others were closed
    rounds: int = 0
    connections: int = 0
    error: str | None = None


@dataclass
class RequestLimit:
    """How many requests the server answers on one connection before closing it."""

    max_requests: int | None  # None: no close within `bound`
    bound: int
    announced: bool | None = None  # the last response said Connection: close
    close: str | None = None  # FIN or RST
    error: str | None = None


@dataclass
class Settings:
    max_idle_conn_duration: float | None
    max_requests_per_conn: int | None
    retry: str
    headers: dict[str, str] = field(default_factory=dict)
    fasthttp: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def client_call(self) -> str:
        args = []
        if self.max_idle_conn_duration is not None:
            args.append(f"max_idle_conn_duration={self.max_idle_conn_duration:g}")
        if self.max_requests_per_conn is not None:
            args.append(f"max_requests_per_conn={self.max_requests_per_conn}")
        if self.headers:
            args.append(f"headers={self.headers!r}")
        args.append(f"retry={self.retry}")
        return f"Client({', '.join(args)})"


@dataclass
class Report:
    url: str
    server: str | None
    http11: KeepAliveCheck
    http10: KeepAliveCheck
    keep_alive_hint: str | None  # the Keep-Alive header of the HTTP/1.1 response
    idle: IdleTimeout | None
    requests: RequestLimit | None
    settings: Settings
    elapsed: float

    @property
    def keeps_alive(self) -> bool:
        return self.http11.keeps_alive or self.http10.keeps_alive


# -- probing one connection ------------------------------------------------------------


@dataclass(frozen=True)
class _Site:
    host: str
    port: int
    tls: ssllib.SSLContext | None
    request11: bytes
    request10: bytes
    method: str

    @classmethod
    def parse(cls, url: str, options: DoctorOptions) -> _Site:
        target = resolve_url(url)
        origin = target.origin
        lines = [
            f"Host: {target.host_header}",
            f"User-Agent: aiofasthttp-doctor/{__version__}",
            "Accept: */*",
        ]
        if target.authorization:
            lines.append(f"Authorization: {target.authorization}")
        for name, value in options.headers:
            if _BAD_HEADER.search(name) or _BAD_HEADER.search(value) or ":" in name:
                raise InvalidHeader(f"invalid header {name!r}: {value!r}")
            lines.append(f"{name}: {value}")
        method = options.method.upper()
        start = f"{method} {target.target} HTTP/1."
        head = "".join(f"{line}\r\n" for line in lines)
        tls = None
        if origin.scheme == "https":
            tls = ssllib.create_default_context()
            if options.insecure:
                tls.check_hostname = False
                tls.verify_mode = ssllib.CERT_NONE
        return cls(
            origin.host,
            origin.port,
            tls,
            f"{start}1\r\n{head}\r\n".encode("latin-1"),
            f"{start}0\r\n{head}Connection: keep-alive\r\n\r\n".encode("latin-1"),
            method,
        )


@dataclass
class _Reply:
    head: ResponseHead
    done_at: float  # loop time the response was complete
    keep_alive: bool  # the response's version, headers and framing leave the connection open

    def header(self, name: bytes) -> str | None:
        values = [v for k, v in self.head.headers if k.lower() == name]
        return b", ".join(values).decode("latin-1") if values else None


@dataclass
class _Close:
    kind: str  # FIN or RST
    at: float  # loop time it was seen
    sent: bytes = b""  # bytes that came while the connection was idle


class _PeerClosed(Exception):
    """The server closed the connection before a complete response."""

    def __init__(self, kind: str, response_bytes: int) -> None:
        super().__init__(f"closed with {kind} after {response_bytes} response bytes")
        self.kind = kind
        self.response_bytes = response_bytes


class _Sink:
    __slots__ = ("done", "head")

    def __init__(self) -> None:
        self.head: ResponseHead | None = None
        self.done = False

    def on_head(self, head: ResponseHead) -> None:
        self.head = head

    def on_body(self, chunk: bytes) -> None:
        pass

    def on_complete(self) -> None:
        self.done = True

    def on_informational(self, head: ResponseHead) -> None:
        pass


class _Probe:
    """One raw connection: send the request, parse the response, watch for the close."""

    def __init__(self, site: _Site, options: DoctorOptions, http10: bool) -> None:
        self.site = site
        self.timeout = options.timeout
        self.request = site.request10 if http10 else site.request11
        self.loop = asyncio.get_running_loop()
        self.sink = _Sink()
        self.parser = ResponseParser(self.sink)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        site = self.site
        where = f"{site.host}:{site.port}"
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(
                    site.host,
                    site.port,
                    ssl=site.tls,
                    server_hostname=site.host if site.tls else None,
                ),
                self.timeout,
            )
        except asyncio.TimeoutError:
            raise ConnectTimeout(
                f"connecting to {where} took longer than {self.timeout:g} s"
            ) from None
        except ssllib.SSLError as exc:
            raise TLSError(f"TLS handshake with {where} failed: {exc}") from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None

    async def exchange(self) -> _Reply:
        """One request and its whole response. Raises _PeerClosed or ProtocolError."""
        assert self.writer is not None
        if self.site.method != "GET":
            self.parser.expect(self.site.method)
        self.sink.done = False
        self.sink.head = None
        self.writer.write(self.request)
        try:
            return await asyncio.wait_for(self._read_response(), self.timeout)
        except asyncio.TimeoutError:
            raise ReadTimeout(
                f"no complete response from {self.site.host}:{self.site.port} "
                f"within {self.timeout:g} s"
            ) from None

    async def _read_response(self) -> _Reply:
        assert self.reader is not None
        sink, received = self.sink, 0
        while not sink.done:
            try:
                data = await self.reader.read(65536)
            except OSError:
                raise _PeerClosed(RST, received) from None
            if not data:
                try:
                    self.parser.feed_eof()  # ends a body delimited by the close
                except IncompleteResponse:
                    raise _PeerClosed(FIN, received) from None
                if not sink.done:
                    raise _PeerClosed(FIN, received)
                break
            received += len(data)
            self.parser.feed(data)
        head = sink.head
        assert head is not None
        return _Reply(head, self.loop.time(), head.keep_alive)

    async def watch(self, seconds: float) -> _Close | None:
        """Wait up to ``seconds`` for the server to close; None if it is still open."""
        assert self.reader is not None
        deadline = self.loop.time() + seconds
        sent = b""
        while True:
            left = deadline - self.loop.time()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except asyncio.TimeoutError:
                return None
            except OSError:
                return _Close(RST, self.loop.time(), sent)
            if not data:
                return _Close(FIN, self.loop.time(), sent)
            sent += data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None


# -- 1. keep-alive at all ----------------------------------------------------------


async def check_keep_alive(site: _Site, options: DoctorOptions, http10: bool) -> KeepAliveCheck:
    """Whether a second request is served on the connection of a first one."""
    check = KeepAliveCheck("HTTP/1.0 with Connection: keep-alive" if http10 else "HTTP/1.1")
    probe = _Probe(site, options, http10)
    try:
        await probe.open()
        try:
            reply = await probe.exchange()
        except _PeerClosed as exc:
            raise ConnectionClosedError(
                f"{site.host}:{site.port} closed the connection ({exc.kind}) before a "
                f"complete response to {check.request} {site.method}"
            ) from None
        head = reply.head
        check.status = head.status
        check.response_version = f"HTTP/{head.version[0]}.{head.version[1]}"
        check.says_keep_alive = reply.keep_alive
        check.connection_header = reply.header(b"connection")
        check.keep_alive_header = reply.header(b"keep-alive")
        check.server = reply.header(b"server")
        if reply.keep_alive:
            try:
                await probe.exchange()
                check.second_request_served = True
            except _PeerClosed:
                check.close = await _close_after(site, options, http10, 1)
        else:
            closed = await probe.watch(CLOSE_WAIT)
            check.close = closed.kind if closed is not None else None
    finally:
        probe.close()
    return check


# -- 2. the idle timeout -----------------------------------------------------------


@dataclass
class _Outcome:
    gap: float
    kind: str  # "served", "closed" (seen while idle), "failed" (the request after), "error"
    idle: float  # the idle time at which the outcome was seen
    close: str | None = None
    sent: bytes = b""
    error: str | None = None


async def _idle_probe(site: _Site, options: DoctorOptions, http10: bool, gap: float) -> _Outcome:
    """Hold a connection idle for ``gap`` seconds (watching it), then send a request."""
    probe = _Probe(site, options, http10)
    try:
        await probe.open()
        reply = await probe.exchange()
        if not reply.keep_alive:
            return _Outcome(gap, "error", 0.0, error="the response did not keep the connection")
        start = reply.done_at
        closed = await probe.watch(gap - (probe.loop.time() - start))
        if closed is not None:
            return _Outcome(gap, "closed", closed.at - start, closed.kind, closed.sent)
        idle = probe.loop.time() - start
        try:
            await probe.exchange()
        except _PeerClosed as exc:
            return _Outcome(gap, "failed", idle, exc.kind)
        except ReadTimeout:
            return _Outcome(gap, "failed", idle, "no answer")
        return _Outcome(gap, "served", idle)
    except Exception as exc:  # a connection that failed to set up tells nothing of idleness
        return _Outcome(gap, "error", 0.0, error=str(exc) or type(exc).__name__)
    finally:
        probe.close()


def tolerance(seconds: float) -> float:
    return max(TOLERANCE_SECONDS, TOLERANCE_FRACTION * seconds)


def first_gaps(max_idle: float) -> list[float]:
    """``max_idle``, its half, its quarter, ... down to SHORTEST_GAP, shortest first."""
    gaps = [max_idle]
    while gaps[-1] / 2 >= SHORTEST_GAP:
        gaps.append(gaps[-1] / 2)
    return sorted(gaps)


class Bracket:
    """What the idle probes found: the longest idle still served, the shortest closed."""

    def __init__(self, max_idle: float) -> None:
        self.max_idle = float(max_idle)
        self.served_after = 0.0
        self.closed_after: float | None = None
        self.seen_close: _Outcome | None = None  # the earliest close seen while idle
        self.failed: _Outcome | None = None  # the earliest request that failed after a gap
        self.errors: list[str] = []

    def add(self, outcomes: Iterable[_Outcome]) -> None:
        for o in outcomes:
            if o.kind == "served":
                self.served_after = max(self.served_after, o.idle)
            elif o.kind == "error":
                self.errors.append(o.error or "error")
            else:
                if self.closed_after is None or o.idle < self.closed_after:
                    self.closed_after = o.idle
                if o.kind == "closed":
                    if self.seen_close is None or o.idle < self.seen_close.idle:
                        self.seen_close = o
                elif self.failed is None or o.idle < self.failed.idle:
                    self.failed = o

    @property
    def consistent(self) -> bool:
        return self.closed_after is None or self.served_after < self.closed_after

    @property
    def closed_while_watched(self) -> bool:
        """The upper bound is a close seen as it happened, not a request that failed."""
        seen = self.seen_close
        return seen is not None and seen.idle == self.closed_after

    def next_gaps(self, parallel: int) -> list[float]:
        """The gaps of the next round; none when the bracket is tight (or cannot be)."""
        hi, lo = self.closed_after, self.served_after
        if hi is None or not self.consistent or hi - lo <= tolerance(hi):
            return []
        # A close seen as it came puts the timeout just below it: confirm that much.
        low = max(lo, hi - tolerance(hi)) if self.closed_while_watched else lo
        return [low + (hi - low) * k / (parallel + 1) for k in range(1, parallel + 1)]

    def result(self, rounds: int, connections: int) -> IdleTimeout:
        hi, lo = self.closed_after, self.served_after
        if hi is None:
            seconds = None
        elif not self.consistent or self.closed_while_watched:
            seconds = hi
        else:
            seconds = (lo + hi) / 2
        close = self.seen_close.close if self.seen_close is not None else None
        if close is None and self.failed is not None:
            close = SILENT
        sent = self.seen_close.sent if self.seen_close is not None else b""
        error = None
        if hi is None and lo < self.max_idle and self.errors:
            error = f"idle probes failed: {self.errors[0]}"
        return IdleTimeout(
            seconds=_r(seconds),
            served_after=round(lo, 3),
            closed_after=_r(hi),
            close=close,
            sent_before_close=_first_line(sent),
            max_idle=self.max_idle,
            consistent=self.consistent,
            rounds=rounds,
            connections=connections,
            error=error,
        )


async def _idle_round(
    site: _Site, options: DoctorOptions, http10: bool, gaps: Sequence[float]
) -> list[_Outcome]:
    """Probe every gap in parallel; a gap past an idle already seen to close is dropped."""
    tasks = {asyncio.ensure_future(_idle_probe(site, options, http10, g)): g for g in gaps}
    outcomes: list[_Outcome] = []
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            outcomes += [t.result() for t in done]
            bound = min((o.idle for o in outcomes if o.kind in ("closed", "failed")), default=None)
            if bound is not None:
                moot = {t for t in pending if tasks[t] > bound}
                for task in moot:
                    task.cancel()
                pending -= moot
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcomes


async def measure_idle_timeout(site: _Site, options: DoctorOptions, http10: bool) -> IdleTimeout:
    bracket = Bracket(options.max_idle)
    gaps = first_gaps(options.max_idle)
    rounds = connections = 0
    while gaps and rounds < MAX_ROUNDS:
        rounds += 1
        connections += len(gaps)
        bracket.add(await _idle_round(site, options, http10, gaps))
        gaps = bracket.next_gaps(max(1, options.parallel))
    return bracket.result(rounds, connections)


# -- 3. requests per connection ---------------------------------------------------------


async def count_requests(site: _Site, options: DoctorOptions, http10: bool) -> RequestLimit:
    """Requests one after another on one connection, until the server closes it."""
    bound = options.max_requests
    probe = _Probe(site, options, http10)
    served = 0
    try:
        await probe.open()
        while served < bound:
            try:
                reply = await probe.exchange()
            except _PeerClosed:
                close = await _close_after(site, options, http10, served)
                return RequestLimit(served, bound, announced=False, close=close)
            served += 1
            if not reply.keep_alive:
                closed = await probe.watch(CLOSE_WAIT)
                kind = closed.kind if closed is not None else None
                return RequestLimit(served, bound, announced=True, close=kind)
    finally:
        probe.close()
    return RequestLimit(None, bound)


async def _close_after(
    site: _Site, options: DoctorOptions, http10: bool, served: int
) -> str | None:
    """Replay ``served`` requests on a new connection and watch how the server closes it.

    The connection that found the close cannot tell: its next request may have
    crossed the FIN, and the server's kernel answers such data with an RST.
    """
    if served == 0:
        return None
    probe = _Probe(site, options, http10)
    try:
        await probe.open()
        for _ in range(served):
            await probe.exchange()
        closed = await probe.watch(CLOSE_WAIT)
        return closed.kind if closed is not None else None
    except (_PeerClosed, OSError):
        return None
    finally:
        probe.close()


# -- 4. the settings to use ----------------------------------------------------------------


def recommend(
    http11: KeepAliveCheck,
    http10: KeepAliveCheck,
    idle: IdleTimeout | None,
    requests: RequestLimit | None,
) -> Settings:
    """The client settings (and fasthttp's) that keep clear of this server's closes."""
    notes: list[str] = []
    headers: dict[str, str] = {}
    if not http11.keeps_alive and not http10.keeps_alive:
        notes.append(
            "the server does not keep connections alive: every request dials a new "
            "connection, and no setting changes that; a connection-closed error then "
            "means it closed before answering"
        )
        return Settings(
            None,
            1,
            "RetryPolicy()",
            fasthttp={"MaxIdemponentCallAttempts": str(DEFAULT_ATTEMPTS)},
            notes=notes,
        )
    if not http11.keeps_alive:
        headers["Connection"] = "keep-alive"
        notes.append(
            "the server keeps only HTTP/1.0 connections alive, and only when asked: send "
            "'Connection: keep-alive' (headers= above) or every request dials anew"
        )
    max_idle = _idle_setting(idle, notes)
    _hint_note(http10 if not http11.keeps_alive else http11, idle, notes)
    max_requests = None
    if requests is not None and requests.max_requests is not None:
        max_requests = requests.max_requests
        if requests.announced:
            notes.append(
                f"the server closes a connection after {max_requests} requests and says "
                "'Connection: close' on the last response; the client stops there too"
            )
        else:
            notes.append(
                f"the server closes a connection after {max_requests} requests without "
                "saying so: the next request on it would fail, so retire it first with "
                f"max_requests_per_conn={max_requests}; fasthttp has no such limit, so "
                "there only its retries (MaxIdemponentCallAttempts, RetryIf) cover it"
            )
    notes.append(_retry_note(idle, requests))
    return Settings(
        max_idle,
        max_requests,
        "RetryPolicy()",
        headers,
        _fasthttp(max_idle),
        notes,
    )


def _idle_setting(idle: IdleTimeout | None, notes: list[str]) -> float | None:
    if idle is None or idle.error is not None:
        return None
    if idle.seconds is None:
        value = min(CLIENT_DEFAULT_IDLE, idle.max_idle)
        notes.append(
            f"no idle close within {idle.max_idle:g} s (--max-idle): "
            f"max_idle_conn_duration={value:g} stays within what was measured"
        )
        return value
    # Retire well before the server: by 20% or 0.5 s, but keep at least half of it, and
    # never past an idle that was seen served.
    t = idle.seconds
    value = _round_down(min(idle.served_after, max(t / 2, t - max(0.5, 0.2 * t))))
    how = {FIN: "closes idle connections (FIN)", RST: "resets idle connections (RST)"}.get(
        idle.close or "", "drops idle connections without a FIN or RST"
    )
    notes.append(
        f"the server {how} after {idle.seconds:.2f} s; the pool drops a connection the "
        "moment its FIN or RST arrives, but one that crosses a request on the wire fails "
        f"that request: retire connections first, max_idle_conn_duration={value:g}"
    )
    if not idle.consistent:
        notes.append(
            "some connections were served after a longer idle than others were closed "
            "after: the server's idle timeout varies (a periodic sweep?); the setting "
            "uses the shortest"
        )
    return value


def _hint_note(check: KeepAliveCheck, idle: IdleTimeout | None, notes: list[str]) -> None:
    """Compare the server's Keep-Alive: timeout= hint with what it did."""
    found = _HINT_TIMEOUT.search(check.keep_alive_header or "")
    if found is None or idle is None or idle.seconds is None:
        return
    hint = int(found.group(1))
    if hint > idle.seconds + tolerance(idle.seconds):
        notes.append(
            f"its Keep-Alive hint says timeout={hint} but it closes after "
            f"{idle.seconds:.2f} s: the client trusts the hint, so max_idle_conn_duration "
            "must say otherwise"
        )
    else:
        notes.append(
            f"its Keep-Alive hint (timeout={hint}) is honest: the client already retires "
            "connections a margin before it"
        )


def _retry_note(idle: IdleTimeout | None, requests: RequestLimit | None) -> str:
    silent = (idle is not None and idle.close in (RST, SILENT)) or (
        requests is not None and requests.max_requests is not None and not requests.announced
    )
    base = (
        "RetryPolicy() (5 attempts) replays idempotent requests (GET HEAD OPTIONS TRACE PUT "
        "DELETE, or any with an Idempotency-Key header) on a fresh connection when a reused "
        "one closes before the response"
    )
    if silent:
        return (
            base + "; this server closes without notice, so non-idempotent requests (POST, "
            "PATCH) need an Idempotency-Key header or retry_if to be replayed"
        )
    return base + "; it covers the rare race the settings above leave"


def _fasthttp(max_idle: float | None) -> dict[str, str]:
    """The same settings as fasthttp.Client fields, as Go expressions."""
    out = {}
    if max_idle is not None:
        out["MaxIdleConnDuration"] = _go_duration(max_idle)
    out["MaxConnDuration"] = "0"  # no limit: a lifetime limit is not something measured here
    out["MaxIdemponentCallAttempts"] = str(DEFAULT_ATTEMPTS)
    return out


# -- the whole diagnosis ----------------------------------------------------------------------


async def diagnose(url: str, options: DoctorOptions | None = None) -> Report:
    """Probe the server at ``url``. Raises ConnectError, TimeoutError or ProtocolError
    when the first request cannot be made at all."""
    options = options or DoctorOptions()
    site = _Site.parse(url, options)
    loop = asyncio.get_running_loop()
    started = loop.time()
    http11 = await check_keep_alive(site, options, http10=False)
    try:
        http10 = await check_keep_alive(site, options, http10=True)
    except Exception as exc:  # a server may refuse HTTP/1.0 outright
        http10 = KeepAliveCheck("HTTP/1.0 with Connection: keep-alive", error=str(exc))
    idle: IdleTimeout | None = None
    requests: RequestLimit | None = None
    if http11.keeps_alive or http10.keeps_alive:
        use10 = not http11.keeps_alive
        idle, requests = await asyncio.gather(
            measure_idle_timeout(site, options, use10),
            _guarded_count(site, options, use10),
        )
    else:
        requests = RequestLimit(1, options.max_requests, announced=not http11.says_keep_alive)
        requests.close = http11.close
    return Report(
        url=url,
        server=http11.server,
        http11=http11,
        http10=http10,
        keep_alive_hint=http11.keep_alive_header,
        idle=idle,
        requests=requests,
        settings=recommend(http11, http10, idle, requests),
        elapsed=round(loop.time() - started, 3),
    )


async def _guarded_count(site: _Site, options: DoctorOptions, http10: bool) -> RequestLimit:
    try:
        return await count_requests(site, options, http10)
    except Exception as exc:
        return RequestLimit(None, options.max_requests, error=str(exc) or type(exc).__name__)


# -- rendering --------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    data = asdict(report)
    data["keeps_alive"] = report.keeps_alive
    data["http11"]["keeps_alive"] = report.http11.keeps_alive
    data["http10"]["keeps_alive"] = report.http10.keeps_alive
    data["settings"]["client"] = report.settings.client_call()
    return json.dumps(data, indent=2)


def render_text(report: Report) -> str:
    lines = [f"aiofasthttp doctor {report.url}"]
    if report.server:
        lines.append(f"  server:                  {report.server}")
    lines.append(f"  keep-alive, HTTP/1.1:    {_describe_check(report.http11)}")
    lines.append(f"  keep-alive, HTTP/1.0:    {_describe_check(report.http10)}")
    lines.append(f"  Keep-Alive hint:         {report.keep_alive_hint or 'none'}")
    lines.append(f"  idle timeout:            {_describe_idle(report.idle)}")
    lines.append(f"  requests per connection: {_describe_requests(report.requests)}")
    settings = report.settings
    lines.append("")
    lines.append("settings to use:")
    lines.append(f"  aiofasthttp: {settings.client_call()}")
    fast = ", ".join(f"{k}: {v}" for k, v in settings.fasthttp.items())
    lines.append(f"  fasthttp:    &fasthttp.Client{{{fast}}}")
    lines.append("")
    lines.append("why:")
    lines += [f"  - {note}" for note in settings.notes]
    idle = report.idle
    probes = f" with {idle.connections} idle probe connections" if idle else ""
    lines.append(f"\nmeasured in {report.elapsed:.1f} s{probes}")
    return "\n".join(lines) + "\n"


def _describe_check(check: KeepAliveCheck) -> str:
    if check.error is not None:
        return f"unknown ({check.error})"
    said = f"answered {check.response_version} {check.status}"
    headers = []
    if check.connection_header is not None:
        headers.append(f"Connection: {check.connection_header}")
    if check.keep_alive_header is not None:
        headers.append(f"Keep-Alive: {check.keep_alive_header}")
    if headers:
        said += " with " + ", ".join(headers)
    if check.keeps_alive:
        return f"yes ({said}; a second request was served on the connection)"
    if check.says_keep_alive:
        return f"no: {said}, then closed ({check.close}) instead of serving a second request"
    closed = f", then closed ({check.close})" if check.close else ""
    return f"no ({said}{closed})"


def _describe_idle(idle: IdleTimeout | None) -> str:
    if idle is None:
        return "not measured (no keep-alive)"
    if idle.seconds is None:
        if idle.error:
            return f"unknown ({idle.error})"
        return f"none seen: a connection idle {idle.served_after:.2f} s was still served"
    how = {
        FIN: "closed with FIN",
        RST: "reset with RST",
        SILENT: "dropped silently (no FIN or RST; the next request failed)",
    }.get(idle.close or "", "closed")
    sent = f", after sending {idle.sent_before_close!r}" if idle.sent_before_close else ""
    text = (
        f"{idle.seconds:.2f} s ({how}{sent}; a connection idle {idle.served_after:.2f} s was "
        f"still served, one idle {idle.closed_after:.2f} s was not)"
    )
    if not idle.consistent:
        text += "; varies between connections"
    return text


def _describe_requests(limit: RequestLimit | None) -> str:
    if limit is None:
        return "not measured"
    if limit.error is not None:
        return f"unknown ({limit.error})"
    if limit.max_requests is None:
        return f"no limit seen up to {limit.bound} (--max-requests)"
    said = "says 'Connection: close' on the last one" if limit.announced else "no warning"
    how = f", then {limit.close}" if limit.close else ""
    return f"{limit.max_requests} ({said}{how})"


# -- helpers --------------------------------------------------------------------------------


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _round_down(seconds: float) -> float:
    """To whole seconds from 10 s, tenths below, hundredths below 1 s."""
    step = 1.0 if seconds >= 10 else 0.1 if seconds >= 1 else 0.01
    return max(0.01, round(int(seconds / step + 1e-9) * step, 2))


def _go_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)} * time.Second"
    return f"{round(seconds * 1000)} * time.Millisecond"


def _first_line(data: bytes) -> str | None:
    if not data:
        return None
    return data.split(b"\r\n", 1)[0][:200].decode("latin-1")
