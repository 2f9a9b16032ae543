"""The command line: ``aiofasthttp URL`` fetches; ``aiofasthttp doctor URL`` diagnoses.

``main(argv)`` parses, runs on a fresh event loop (uvloop when installed, or
as ``--loop`` says) and returns the exit code; ``python -m aiofasthttp`` and
the ``aiofasthttp`` script call it. The fetch command is one :class:`Client`:
with ``--repeat`` it sends the same request again on that client, so with
``-v`` the trace shows connections dialled, reused, closed by the server and
retired, and every retry with its reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from http.cookiejar import LoadError, MozillaCookieJar
from typing import IO, Any, TextIO

from .. import reasons
from .._version import __version__
from ..engine.client import Client
from ..errors import (
    ConnectError,
    ConnectionClosedError,
    HTTPError,
    InvalidHeader,
    InvalidURL,
    ProtocolError,
    TimeoutError,
)
from ..h1.auth import Auth, BasicAuth, DigestAuth
from ..h1.cookies import Cookies, RFC6265Policy
from ..h1.response import Response
from ..policy.retry import RetryPolicy
from .doctor import DoctorOptions, diagnose, render_json, render_text

# The trace's words for the reason vocabulary (aiofasthttp.reasons).
_RETIRED = {
    reasons.EXPIRED: "its idle or lifetime limit was reached",
    reasons.MAX_REQUESTS: "its request limit was reached",
}
_REPLAYED = {
    reasons.STALE: "stale connection",
    reasons.NOT_SENT: "request not sent",
    reasons.CONNECT: "connect failed",
    reasons.TIMEOUT: "timeout",
    reasons.STATUS: "retryable status",
    reasons.USER: "retry_if",
}

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONNECT = 3
EXIT_TIMEOUT = 4
EXIT_PROTOCOL = 5
EXIT_CLOSED = 6
EXIT_HTTP = 7
EXIT_INTERRUPTED = 130

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}    success
  {EXIT_FAILURE}    another failure (writing -o FILE, a body over a limit, ...)
  {EXIT_USAGE}    usage error: a bad option, URL or header
  {EXIT_CONNECT}    could not connect: refused, unreachable, DNS, TLS
  {EXIT_TIMEOUT}    timeout: connect, read, write or --timeout
  {EXIT_PROTOCOL}    protocol error: the response is not valid HTTP/1.x
  {EXIT_CLOSED}    the connection closed before the response was complete
  {EXIT_HTTP}    HTTP status 400-599, with --fail
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
With --repeat, every request is sent; the exit code is the first failure's.
"""

# --retry N: replay up to N times, in the safe cases, on timeouts, and on these statuses.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class UsageError(Exception):
    """Bad command-line input: exit code 2."""


def exit_code(exc: BaseException) -> int:
    """The exit code for an error a request or a probe raised."""
    if isinstance(exc, TimeoutError):  # ConnectTimeout too: a timeout first
        return EXIT_TIMEOUT
    if isinstance(exc, ConnectError):
        return EXIT_CONNECT
    if isinstance(exc, ProtocolError):
        return EXIT_PROTOCOL
    if isinstance(exc, ConnectionClosedError):
        return EXIT_CLOSED
    if isinstance(exc, InvalidURL | InvalidHeader):
        return EXIT_USAGE
    return EXIT_FAILURE


_ERROR_KIND = {
    EXIT_TIMEOUT: "timeout",
    EXIT_CONNECT: "cannot connect",
    EXIT_PROTOCOL: "protocol error",
    EXIT_CLOSED: "connection closed",
    EXIT_USAGE: "usage error",
    EXIT_FAILURE: "error",
}


# -- parsing ---------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse writing help and errors to the streams ``main`` was given."""

    out: IO[bytes]
    err: TextIO

    def _print_message(self, message: str, file: Any = None) -> None:
        if not message:
            return
        if file is sys.stderr:
            self.err.write(message)
        else:
            self.out.write(message.encode())


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"seconds must be 0 or more, not {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header; repeat for more",
    )
    parser.add_argument(
        "-k", "--insecure", action="store_true", help="https: do not verify the certificate"
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the event loop: uvloop when installed (auto), or asyncio's own",
    )


def fetch_parser() -> _Parser:
    parser = _Parser(
        prog="aiofasthttp",
        description=(
            "Send an HTTP/1.1 request with aiofasthttp and print the response body. "
            "With -v, also the status line, the headers and every connection event. "
            "See also: aiofasthttp doctor URL (why a server closes connections)."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", metavar="URL", help="http:// or https:// URL (default http://)")
    parser.add_argument(
        "-X", "--request", dest="method", metavar="METHOD", help="GET, or POST with a body"
    )
    parser.add_argument(
        "-I", "--head", action="store_true", help="send HEAD; print the response head only"
    )
    parser.add_argument("-L", "--location", action="store_true", help="follow redirects")
    parser.add_argument("-A", "--user-agent", metavar="NAME", help="the User-Agent to send")
    parser.add_argument(
        "-x", "--proxy", metavar="URL", help="http://, https://, socks5:// or socks5h:// proxy"
    )
    parser.add_argument(
        "--trust-env",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="as curl: proxies from http_proxy, https_proxy, all_proxy, no_proxy "
        "(default; -x wins)",
    )
    _common(parser)
    body = parser.add_mutually_exclusive_group()
    body.add_argument(
        "-d", "--data", metavar="DATA", help="request body; @FILE reads a file, @- stdin"
    )
    body.add_argument("--json", metavar="JSON", help="a JSON request body")
    parser.add_argument(
        "-m",
        "--timeout",
        "--max-time",
        dest="timeout",
        type=_seconds,
        metavar="S",
        help="whole request, retries in",
    )
    parser.add_argument("--connect-timeout", type=_seconds, default=10.0, metavar="S")
    parser.add_argument(
        "--read-timeout", type=_seconds, default=60.0, metavar="S", help="silence while reading"
    )
    parser.add_argument(
        "--retry",
        type=_count,
        metavar="N",
        help="replay up to N times: when safe (see docs/design.md), on timeouts, and on "
        "429/502/503/504 (default: the client's policy, safe replays only; 0: none)",
    )
    parser.add_argument("--max-idle-conn-duration", type=_seconds, default=10.0, metavar="S")
    parser.add_argument("--max-requests-per-conn", type=_positive, metavar="N")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the body to FILE (a progress bar on a terminal, with tqdm installed)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="the request head sent, the response head and connection events",
    )
    parser.add_argument(
        "-i", "--include", action="store_true", help="print the response head before the body"
    )
    parser.add_argument(
        "-s", "--silent", action="store_true", help="no progress bar, no error messages"
    )
    parser.add_argument(
        "-S", "--show-error", action="store_true", help="with -s, still print error messages"
    )
    parser.add_argument(
        "--repeat", type=_positive, default=1, metavar="N", help="send it N times, one client"
    )
    parser.add_argument(
        "--interval", type=_seconds, default=0.0, metavar="S", help="wait between repeats"
    )
    parser.add_argument(
        "-f", "--fail", action="store_true", help=f"exit {EXIT_HTTP} on HTTP 4xx/5xx, no body"
    )
    _auth_form_cookie_options(parser)
    parser.add_argument("--version", action="version", version=f"aiofasthttp {__version__}")
    return parser


def doctor_parser() -> _Parser:
    parser = _Parser(
        prog="aiofasthttp doctor",
        description=(
            "Why does my client get 'connection closed'? Probes the server at URL: "
            "keep-alive (HTTP/1.1 and 1.0), its Keep-Alive hint, the idle timeout it "
            "applies, requests served per connection, FIN or RST, Connection: close; "
            "then the client settings to use. Point it at a small resource. It takes "
            "about twice the server's idle timeout (at most about 2 x --max-idle)."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", metavar="URL")
    _common(parser)
    parser.add_argument(
        "--max-idle", type=_seconds, default=75.0, metavar="S", help="longest idle tried (75)"
    )
    parser.add_argument(
        "--max-requests",
        type=_positive,
        default=1000,
        metavar="N",
        help="most requests tried on one connection (1000)",
    )
    parser.add_argument(
        "--max-lifetime",
        type=_seconds,
        default=None,
        metavar="S",
        help="longest a busy connection is kept to measure its lifetime (as --max-idle)",
    )
    parser.add_argument(
        "--parallel", type=_positive, default=4, metavar="N", help="connections per bisection"
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=10.0, metavar="S", help="connect, and each response"
    )
    parser.add_argument("-X", "--request", dest="method", choices=("GET", "HEAD"), default="GET")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    return parser


def _parse(parser: _Parser, argv: Sequence[str], out: IO[bytes], err: TextIO) -> Any:
    parser.out, parser.err = out, err
    return parser.parse_args(argv)


def _headers(items: Sequence[str]) -> list[tuple[str, str]]:
    headers = []
    for item in items:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            raise UsageError(f"-H wants 'Name: value', not {item!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def _url(text: str) -> str:
    return text if "://" in text else f"http://{text}"


# -- -u/--digest, -F, -b/-c: auth, multipart forms and cookie files, as curl has them --


def _auth_form_cookie_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--user", metavar="USER:PASSWORD", help="Basic auth (see --digest)")
    parser.add_argument("--digest", action="store_true", help="with -u: Digest auth, not Basic")
    parser.add_argument(
        "-F",
        "--form",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a multipart/form-data field (POST); NAME=@FILE sends a file; repeat for more",
    )
    parser.add_argument(
        "-b", "--cookie", metavar="FILE|NAME=VALUE", help="send cookies: a cookies.txt file"
    )
    parser.add_argument("-c", "--cookie-jar", metavar="FILE", help="write the cookies to FILE")


@dataclass
class CurlExtras:
    """What -u, -F, -b and -c ask of the client and of each request."""

    auth: Auth | None
    jar: Cookies | bool
    cookie_values: dict[str, str]
    fields: list[tuple[str, str]]
    files: list[tuple[str, IO[bytes]]]
    save_to: str | None

    @classmethod
    def from_args(cls, args: Any, req: FetchRequest) -> CurlExtras:
        if args.form and req.body is not None:
            raise UsageError("-F cannot go with -d or --json")
        auth = _auth(args.user, args.digest)
        jar, values = _cookies_from(args.cookie, args.cookie_jar)
        fields, files = _form(args.form)
        return cls(auth, jar, values, fields, files, args.cookie_jar)

    def form(self) -> dict[str, Any]:
        """The request's own keywords: files (sent from their start each time), cookies."""
        extra: dict[str, Any] = {}
        if self.fields or self.files:
            for _, f in self.files:
                f.seek(0)
            extra.update(data=self.fields, files=self.files)
        if self.cookie_values:
            extra["cookies"] = self.cookie_values
        return extra

    def close(self) -> None:
        for _, f in self.files:
            f.close()
        jar = self.jar.jar if isinstance(self.jar, Cookies) else None
        if self.save_to is not None and isinstance(jar, MozillaCookieJar):
            try:
                jar.save(self.save_to, ignore_discard=True, ignore_expires=True)
            except OSError as exc:
                raise UsageError(f"-c {self.save_to}: {exc.strerror or exc}") from None


def _auth(user: str | None, digest: bool) -> Auth | None:
    if user is None:
        return None
    name, colon, password = user.partition(":")
    if not colon:
        raise UsageError("-u takes USER:PASSWORD")
    return DigestAuth(name, password) if digest else BasicAuth(name, password)


def _cookies_from(given: str | None, save_to: str | None) -> tuple[Cookies | bool, dict[str, str]]:
    """The jar (a cookies.txt file's, kept as curl keeps it) and -b NAME=VALUE cookies.
    Without -b or -c, as in curl, no cookies are kept."""
    values: dict[str, str] = {}
    if given is None and save_to is None:
        return False, values
    jar = MozillaCookieJar()
    jar.set_policy(RFC6265Policy())
    if given is not None and "=" in given:
        for item in given.split(";"):
            name, _, value = item.strip().partition("=")
            if name:
                values[name] = value
    elif given is not None:
        try:
            jar.load(given, ignore_discard=True, ignore_expires=True)
        except FileNotFoundError:
            pass  # as curl: no file, no cookies
        except (OSError, LoadError) as exc:
            raise UsageError(f"-b {given}: {exc}") from None
    return Cookies(jar), values


def _form(items: Sequence[str]) -> tuple[list[tuple[str, str]], list[tuple[str, IO[bytes]]]]:
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, IO[bytes]]] = []
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise UsageError(f"-F {item!r}: use NAME=VALUE or NAME=@FILE")
        if not value.startswith("@"):
            fields.append((name, value))
            continue
        try:
            files.append((name, open(value[1:], "rb")))  # noqa: SIM115 (closed by close())
        except OSError as exc:
            for _, f in files:
                f.close()
            raise UsageError(f"-F {item}: {exc.strerror or exc}") from None
    return fields, files


# -- fetch -----------------------------------------------------------------------


@dataclass
class FetchRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None


def fetch_request_from(args: Any, stdin: IO[bytes] | None = None) -> FetchRequest:
    headers = _headers(args.header)
    names = {name.lower() for name, _ in headers}
    body: bytes | None = None
    if args.json is not None:
        try:
            json.loads(args.json)
        except ValueError as exc:
            raise UsageError(f"--json is not valid JSON: {exc}") from None
        body = args.json.encode()
        for name, value in (("Content-Type", "application/json"), ("Accept", "application/json")):
            if name.lower() not in names:
                headers.append((name, value))
    elif args.data is not None:
        body = _read_data(args.data, stdin)
        if "content-type" not in names:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    posts = body is not None or bool(args.form)
    if args.head and posts:
        raise UsageError("-I (HEAD) sends no body: drop -d/--json/-F")
    default = "HEAD" if args.head else "POST" if posts else "GET"
    method = (args.method or default).upper()
    return FetchRequest(method, _url(args.url), headers, body)


def _read_data(data: str, stdin: IO[bytes] | None) -> bytes:
    if not data.startswith("@"):
        return data.encode()
    if data == "@-":
        return (stdin or sys.stdin.buffer).read()
    try:
        with open(data[1:], "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"-d {data}: {exc.strerror or exc}") from None


def _retry(n: int | None) -> RetryPolicy | None:
    if n is None:
        return None  # the client's default policy
    return RetryPolicy(attempts=n + 1, retry_timeouts=True, statuses=RETRY_STATUSES)


class VerboseTrace:
    """The client's trace hooks, printed curl -v style: ``*`` events, ``>`` sent, ``<`` got."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self.started = time.monotonic()
        self.connection: int | None = None  # the connection of the request in flight
        self.written: dict[int, int] = {}  # requests written per connection
        self.body_size: int | None = None  # the request body's, shown after each head sent

    def line(self, prefix: str, text: str) -> None:
        self.err.write(f"{prefix} {text}\n")

    def event(self, text: str) -> None:
        self.line("*", f"[{time.monotonic() - self.started:7.3f}s] {text}")

    # -- the hooks (see aiofasthttp.trace) --

    def connection_dialled(self, *, origin: str, connection_id: int) -> None:
        self.event(f"connection #{connection_id} dialled to {origin}")

    def connection_reused(
        self, *, origin: str, connection_id: int, idle_time: float, requests_served: int
    ) -> None:
        self.event(
            f"connection #{connection_id} reused after {idle_time:.3f} s idle "
            f"({_requests(requests_served)} served on it)"
        )

    def connection_closed_idle(
        self, *, origin: str, connection_id: int, idle_time: float, requests_served: int
    ) -> None:
        self.event(
            f"connection #{connection_id} closed by the server after {idle_time:.3f} s idle "
            f"({_requests(requests_served)} served on it)"
        )

    def connection_expired(self, *, origin: str, connection_id: int, why: str) -> None:
        what = _RETIRED.get(why, why)
        self.event(f"connection #{connection_id} retired by the client: {what}")

    def request_head(self, *, method: str, url: str, connection_id: int, head: bytes) -> None:
        """The head as the client encoded and wrote it, each attempt's and each hop's."""
        for field in head.decode("latin-1").split("\r\n"):
            if field:
                self.line(">", field)
        if self.body_size is not None:
            self.line(">", f"[{self.body_size} bytes of body]")
        self.err.write(">\n")

    def request_written(
        self, *, method: str, url: str, connection_id: int, bytes_written: int, reused: bool
    ) -> None:
        self.connection = connection_id
        self.written[connection_id] = self.written.get(connection_id, 0) + 1
        kind = "reused" if reused else "new"
        self.event(f"request written on {kind} connection #{connection_id} ({bytes_written} bytes)")

    def retry_scheduled(
        self, *, method: str, url: str, attempt: int, reason: str, delay: float, error: str
    ) -> None:
        failure = f": {error}" if error else ""
        said = _REPLAYED.get(reason, reason)
        self.event(
            f"attempt {attempt} failed ({said}){failure}; attempt {attempt + 1} in {delay:.3f} s"
        )

    def gave_up(self, *, method: str, url: str, attempt: int, error: str) -> None:
        self.event(f"gave up after attempt {attempt}")

    # -- around each request --

    def request(self, req: FetchRequest, number: int, repeat: int) -> None:
        """Before a request: what is asked; the head sent follows (request_head)."""
        self.connection = None
        self.body_size = None if req.body is None else len(req.body)
        of = f" (request {number} of {repeat})" if repeat > 1 else ""
        self.event(f"{req.method} {req.url}{of}")

    def response(self, resp: Response) -> None:
        self.line("<", f"{resp.http_version} {resp.status} {resp.reason}")
        for name, value in resp.raw_headers:
            self.line("<", f"{name.decode('latin-1')}: {value.decode('latin-1')}")
        self.err.write("<\n")

    def response_done(self, resp: Response) -> None:
        if self.connection is None or not _closes(resp):
            return
        served = _requests(self.written.get(self.connection, 0))
        said = (
            "said 'Connection: close'"
            if resp.http_version == "HTTP/1.1"
            else "answered HTTP/1.0 without keep-alive"
        )
        self.event(f"connection #{self.connection} closed: the server {said} after {served}")

    def stats(self, client: Client) -> None:
        for origin, s in client.stats().items():
            learned = ""
            if s["learned_idle_timeout"] is not None:
                learned += f"; learned: idle timeout {s['learned_idle_timeout']:.3f} s"
            if s["learned_max_requests"] is not None:
                learned += f"{'; learned:' if not learned else ','} "
                learned += f"{_requests(s['learned_max_requests'])} per connection"
            self.event(
                f"{origin}: {s['created']} connections dialled, {s['reused']} reused, "
                f"{s['closed_by_server_idle']} closed by the server while idle, "
                f"{s['expired']} expired, {s['retries']} retries{learned}"
            )


def _requests(n: int) -> str:
    return f"{n} request{'' if n == 1 else 's'}"


def _closes(resp: Response) -> bool:
    tokens = {t.strip().lower() for t in ",".join(resp.headers.get_all("connection")).split(",")}
    if "close" in tokens:
        return True
    return resp.http_version == "HTTP/1.0" and "keep-alive" not in tokens


async def fetch(args: Any, req: FetchRequest, out: IO[bytes], err: TextIO) -> int:
    trace = VerboseTrace(err) if args.verbose else None
    extras = CurlExtras.from_args(args, req)
    extra: dict[str, Any] = {}
    if args.user_agent is not None:
        extra["user_agent"] = args.user_agent
    try:
        client = Client(
            cookies=extras.jar,
            auth=extras.auth,
            connect_timeout=args.connect_timeout,
            read_timeout=args.read_timeout,
            timeout=args.timeout,
            retry=_retry(args.retry),
            max_idle_conn_duration=args.max_idle_conn_duration,
            max_requests_per_conn=args.max_requests_per_conn,
            ssl=False if args.insecure else None,
            trace=trace,
            follow_redirects=args.location,
            proxy=args.proxy,
            trust_env=args.trust_env,
            **extra,
        )
    except (HTTPError, ValueError) as exc:  # a bad -x URL or -A value
        _complain(args, err, f"aiofasthttp: usage error: {exc}\n")
        return EXIT_USAGE
    first_failure = EXIT_OK
    try:
        async with client:
            for number in range(1, args.repeat + 1):
                if number > 1 and args.interval:
                    await asyncio.sleep(args.interval)
                code = await _fetch_once(client, args, req, number, out, err, trace, extras)
                first_failure = first_failure or code
            if trace is not None:
                trace.stats(client)
    finally:
        extras.close()
    return first_failure


async def _fetch_once(
    client: Client,
    args: Any,
    req: FetchRequest,
    number: int,
    out: IO[bytes],
    err: TextIO,
    trace: VerboseTrace | None,
    extras: CurlExtras | None = None,
) -> int:
    if trace is not None:
        trace.request(req, number, args.repeat)
    form = extras.form() if extras is not None else {}
    try:
        async with client.stream(
            req.method, req.url, headers=req.headers, content=req.body, **form
        ) as resp:
            if trace is not None:
                for hop in (*resp.history, resp):
                    trace.response(hop)
            if args.fail and resp.status >= 400:
                await resp.aread()  # read to the end, so the connection stays reusable
                code = EXIT_HTTP
                _complain(
                    args,
                    err,
                    f"aiofasthttp: HTTP {resp.status} {resp.reason} for {req.method} {req.url}\n",
                )
            else:
                await _write_body(resp, args, out, err)
                code = EXIT_OK
        if trace is not None:
            trace.response_done(resp)
        return code
    except HTTPError as exc:
        code = exit_code(exc)
        _complain(args, err, f"aiofasthttp: {_ERROR_KIND.get(code, 'error')}: {exc}\n")
        return code
    except OSError as exc:
        _complain(args, err, f"aiofasthttp: cannot write {args.output}: {exc.strerror or exc}\n")
        return EXIT_FAILURE


def _complain(args: Any, err: TextIO, text: str) -> None:
    """An error message, unless -s (and not -S) silenced it."""
    if not args.silent or args.show_error:
        err.write(text)


def _head_bytes(resp: Response) -> bytes:
    """The response head as received, as -i and -I print it (CRLF line ends, as curl)."""
    lines = [f"{resp.http_version} {resp.status} {resp.reason}".encode("latin-1")]
    lines += [name + b": " + value for name, value in resp.raw_headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _write_body(resp: Response, args: Any, out: IO[bytes], err: TextIO) -> None:
    """The body to stdout or -o FILE; with -i or -I, the heads first (every hop's with
    -L), into the same place, as curl."""
    output = args.output
    heads = b""
    if args.include or args.head:
        heads = b"".join(_head_bytes(hop) for hop in (*resp.history, resp))
    if output is None or output == "-":
        out.write(heads)
        last = heads[-1:]
        async for chunk in resp.iter_bytes():
            out.write(chunk)
            last = chunk[-1:]
        # On a terminal the trace lines that follow (-v) start on a line of their own;
        # a body piped or redirected stays byte for byte what the server sent.
        if args.verbose and last and last != b"\n" and _is_terminal(out):
            out.write(b"\n")
        out.flush()
        return
    show = not args.silent and not args.verbose and _is_terminal(err)
    with _open_output(output) as f, progress_bar(resp, output, err, show) as advance:
        f.write(heads)
        async for chunk in resp.iter_bytes():
            f.write(chunk)
            advance(len(chunk))


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # closed
        return False


@contextlib.contextmanager
def progress_bar(
    resp: Response, name: str, err: TextIO, show: bool
) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(nbytes)``: a tqdm bar on ``err`` (bytes, rate, ETA), or nothing.

    tqdm (the ``cli`` extra) draws it: maintained, pure Python, no dependencies of
    its own; without it, or when ``show`` is false, ``advance`` does nothing.
    """
    tqdm = _tqdm() if show else None
    if tqdm is None:
        yield _ignore
        return
    length = resp.headers.get("content-length")
    # The body counted is the decoded one: a Content-Length of encoded bytes is no total.
    encoded = resp.headers.get("content-encoding", "identity").lower() != "identity"
    total = int(length) if length is not None and length.isdigit() and not encoded else None
    bar = tqdm(
        total=total,
        desc=name,
        file=err,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        miniters=1,
        mininterval=0.1,
        dynamic_ncols=True,
        leave=True,
    )
    try:
        yield bar.update
    finally:
        bar.close()


def _ignore(nbytes: int) -> None:
    pass


def _tqdm() -> Any:
    try:
        module = importlib.import_module("tqdm")
    except ImportError:
        return None
    # No monitor thread: a bar updated on every chunk needs no watchdog.
    module.tqdm.monitor_interval = 0
    return module.tqdm


def _open_output(path: str) -> IO[bytes]:
    # A local file, opened once the head is in, and written chunk by chunk: for a
    # command line, blocking on a local disk is fine (the loop serves nothing else).
    return open(path, "wb")


# -- doctor ----------------------------------------------------------------------


async def doctor(args: Any, out: IO[bytes], err: TextIO) -> int:
    options = DoctorOptions(
        max_idle=args.max_idle,
        max_requests=args.max_requests,
        max_lifetime=args.max_lifetime,
        parallel=args.parallel,
        timeout=args.timeout,
        method=args.method,
        headers=tuple(_headers(args.header)),
        insecure=args.insecure,
    )
    url = _url(args.url)
    if not args.json:
        err.write(
            f"aiofasthttp doctor: probing {url} (idle gaps up to {args.max_idle:g} s, "
            f"up to {args.max_requests} requests on one connection)...\n"
        )
    try:
        report = await diagnose(url, options)
    except HTTPError as exc:
        code = exit_code(exc)
        err.write(f"aiofasthttp doctor: {_ERROR_KIND.get(code, 'error')}: {exc}\n")
        return code
    text = render_json(report) + "\n" if args.json else render_text(report)
    out.write(text.encode())
    out.flush()
    return EXIT_OK


# -- running -----------------------------------------------------------------------


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """uvloop's loop when asked or (for ``auto``) installed, else asyncio's."""
    if kind != "asyncio":
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if kind == "uvloop":
                raise UsageError("--loop uvloop: uvloop is not installed") from None
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def run(kind: str, make: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``make()`` on a new loop of ``kind``; Ctrl-C cancels it and exits 130."""
    loop = new_loop(kind)
    try:
        task = loop.create_task(make())
        try:
            return loop.run_until_complete(task)
        except KeyboardInterrupt:
            task.cancel()
            with contextlib.suppress(BaseException):
                loop.run_until_complete(task)
            return EXIT_INTERRUPTED
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: IO[bytes] | None = None,
    stderr: TextIO | None = None,
    stdin: IO[bytes] | None = None,
) -> int:
    """Run the command line; returns the exit code. Output goes to ``stdout`` (bytes)
    and ``stderr`` (text), by default the process's."""
    args = list(sys.argv[1:] if argv is None else argv)
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr
    try:
        if args[:1] == ["doctor"]:
            opts = _parse(doctor_parser(), args[1:], out, err)
            return run(opts.loop, lambda: doctor(opts, out, err))
        opts = _parse(fetch_parser(), args, out, err)
        req = fetch_request_from(opts, stdin)
        return run(opts.loop, lambda: fetch(opts, req, out, err))
    except SystemExit as exc:  # argparse: --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except UsageError as exc:
        err.write(f"aiofasthttp: usage error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
