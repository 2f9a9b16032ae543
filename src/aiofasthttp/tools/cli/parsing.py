"""The argument parsers of ``aiofasthttp URL`` and ``aiofasthttp doctor URL``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any, TextIO

from ..._version import __version__
from .curl import add_curl_options
from .exits import EXIT_CODES, EXIT_HTTP


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
    add_curl_options(parser)
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


def parse(parser: _Parser, argv: Sequence[str], out: IO[bytes], err: TextIO) -> Any:
    parser.out, parser.err = out, err
    return parser.parse_args(argv)
