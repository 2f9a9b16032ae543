"""``aiofasthttp URL``: send the request (``--repeat`` times, on one client) and write
the response to stdout or ``-o FILE``, with a progress bar on a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import IO, Any, TextIO

from ...engine.client import Client
from ...errors import HTTPError
from ...h1.response import Response
from ...policy.retry import RetryPolicy
from .curl import CurlExtras
from .exits import ERROR_KIND, EXIT_FAILURE, EXIT_HTTP, EXIT_OK, EXIT_USAGE, exit_code
from .request import FetchRequest
from .trace import VerboseTrace

# --retry N: replay up to N times, in the safe cases, on timeouts, and on these statuses.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def _retry(n: int | None) -> RetryPolicy | None:
    if n is None:
        return None  # the client's default policy
    return RetryPolicy(attempts=n + 1, retry_timeouts=True, statuses=RETRY_STATUSES)


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
        _complain(args, err, f"aiofasthttp: {ERROR_KIND.get(code, 'error')}: {exc}\n")
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
