"""The command line's exit codes, and the code for each error a request raises."""

from __future__ import annotations

from ...errors import (
    ConnectError,
    ConnectionClosedError,
    InvalidHeader,
    InvalidURL,
    ProtocolError,
    TimeoutError,
)

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


ERROR_KIND = {
    EXIT_TIMEOUT: "timeout",
    EXIT_CONNECT: "cannot connect",
    EXIT_PROTOCOL: "protocol error",
    EXIT_CLOSED: "connection closed",
    EXIT_USAGE: "usage error",
    EXIT_FAILURE: "error",
}
