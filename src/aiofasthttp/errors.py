"""Every error aiofasthttp raises, in one flat module grouped by phase.

All of them derive from :class:`HTTPError`. OS and library errors are translated
into these at the boundary where they occur, so callers catch one family.

This module imports nothing from asyncio: the parser uses it too.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any


class HTTPError(Exception):
    """Base class of every error raised by aiofasthttp.

    ``errors``: on the error a request ended with, every attempt's error in
    order, this one last (a request that ran out of attempts raises its last
    attempt's error, so ``except ConnectionClosedError`` still catches it, with
    the earlier ones here and named in its message). Empty on other errors.
    """

    errors: Sequence[BaseException] = ()


# -- client usage ------------------------------------------------------------


class ClientClosedError(HTTPError):
    """The client was closed; requests can no longer be made with it."""


class InvalidURL(HTTPError, ValueError):
    """A URL that cannot be requested (no host, unsupported scheme, bad port)."""


class InvalidHeader(HTTPError, ValueError):
    """A request header that cannot be sent (CR, LF or NUL would split the head)."""


# -- response parsing --------------------------------------------------------


class ProtocolError(HTTPError):
    """The peer sent bytes that are not a valid HTTP/1.x response.

    ``reason`` is a short machine-readable name (``"invalid_status_line"``,
    ``"bare_lf"``, ...); ``offset`` is the byte offset in the connection's
    response stream at which parsing failed. The connection that produced it
    is closed and never reused.
    """

    reason = "protocol_error"

    def __init__(self, message: str, *, reason: str | None = None, offset: int = -1) -> None:
        if reason is not None:
            self.reason = reason
        self.offset = offset
        self.message = message
        super().__init__(f"{message} (at byte {offset})" if offset >= 0 else message)


class LimitExceeded(ProtocolError):
    """A configured parser limit was exceeded."""


class HeadTooLarge(LimitExceeded):
    """The status line and headers (or the trailers) exceed ``max_head_size``."""

    reason = "head_too_large"


class TooManyHeaders(LimitExceeded):
    """More header fields than ``max_headers``."""

    reason = "too_many_headers"


class ChunkLineTooLong(LimitExceeded):
    """A chunk-size line (size plus extensions) exceeds ``max_chunk_line_size``."""

    reason = "chunk_line_too_long"


class IncompleteResponse(ProtocolError):
    """The peer closed the connection before the response was complete."""

    reason = "incomplete_response"


# -- transport ---------------------------------------------------------------


class TransportError(HTTPError):
    """A failure of the connection underneath the request."""


class ConnectError(TransportError):
    """The connection could not be established (refused, unreachable, DNS, TLS)."""


class TLSError(ConnectError):
    """The TLS handshake failed, or the certificate or host name did not verify."""


class NameResolutionError(ConnectError):
    """A host name did not resolve (or the configured resolver failed)."""


class ProxyError(ConnectError):
    """The proxy refused or failed the handshake (CONNECT, SOCKS, TLS to the proxy).

    ``proxy`` names it (``scheme://host:port``, no credentials). ``refused``: the
    proxy answered no (a 4xx to CONNECT, a SOCKS refusal), which a replay would
    only hear again; otherwise it could not be reached or broke off.
    """

    def __init__(self, message: str, *, proxy: str = "", refused: bool = False) -> None:
        super().__init__(message)
        self.proxy = proxy
        self.refused = refused


class ConnectionClosedError(TransportError):
    """The server closed (or reset) the connection before the response was complete.

    The attributes are the facts needed to tell why; see
    :mod:`aiofasthttp.connection` for how they are collected.
    """

    def __init__(
        self,
        message: str,
        *,
        reused: bool = False,
        request_written: bool = False,
        response_bytes: int = 0,
        connection_age: float = 0.0,
        idle_time: float = 0.0,
        requests_served: int = 0,
        bytes_written: int = 0,
        connection_id: int = 0,
        keep_alive_hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reused = reused
        self.request_written = request_written
        self.response_bytes = response_bytes
        self.connection_age = connection_age
        self.idle_time = idle_time
        self.requests_served = requests_served
        self.bytes_written = bytes_written
        self.connection_id = connection_id
        self.keep_alive_hint = keep_alive_hint

    @property
    def may_have_been_processed(self) -> bool:
        """True when the server may have acted on the request before closing."""
        return self.request_written or self.response_bytes > 0


class ResponseTooLarge(HTTPError):
    """The response body exceeds ``max_response_body_size``."""


# -- timeouts ----------------------------------------------------------------


class TimeoutError(HTTPError, builtins.TimeoutError):
    """A deadline passed. Also an instance of the built-in TimeoutError."""


class ConnectTimeout(TimeoutError, ConnectError):
    """Establishing the connection took longer than ``connect_timeout``."""


class ReadTimeout(TimeoutError):
    """No response byte arrived for ``read_timeout`` seconds."""


class WriteTimeout(TimeoutError):
    """The request could not be written within ``write_timeout`` seconds."""


class HeadTimeout(TimeoutError):
    """The response head did not arrive within ``head_timeout`` seconds of the request
    being written (Go's ``ResponseHeaderTimeout``)."""


class PoolTimeout(TimeoutError):
    """No connection became free within ``max_conn_wait_timeout``."""


class RequestTimeout(TimeoutError):
    """The whole request, retries included, took longer than ``timeout``."""


# -- responses and retries ---------------------------------------------------


class HTTPStatusError(HTTPError):
    """Raised by ``Response.raise_for_status()`` for a 4xx or 5xx status.

    ``response`` is the Response that raised it: its status, headers and body
    (``content`` when it was read whole; a streamed one is read with
    ``await error.response.aread()`` inside its ``client.stream()`` block).
    """

    # Typed Any: this module is the base layer and may not name h1's Response.
    def __init__(self, message: str, *, status: int, response: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response


class TooManyRedirects(HTTPError):
    """More redirects than ``max_redirects``."""


class RedirectError(HTTPError):
    """A redirect that cannot be followed (no Location, a body that cannot be resent)."""


class UnaskedBytes(Exception):
    """Internal, never seen by callers: a protocol's parser callback found no request in
    flight, so the server sent bytes nobody asked for. The protocol catches it around
    ``feed()`` and closes the connection with the reason ``unsolicited_response``."""


__all__ = [
    "ChunkLineTooLong",
    "ClientClosedError",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionClosedError",
    "HTTPError",
    "HTTPStatusError",
    "HeadTimeout",
    "HeadTooLarge",
    "IncompleteResponse",
    "InvalidHeader",
    "InvalidURL",
    "LimitExceeded",
    "NameResolutionError",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadTimeout",
    "RedirectError",
    "RequestTimeout",
    "ResponseTooLarge",
    "TLSError",
    "TimeoutError",
    "TooManyHeaders",
    "TooManyRedirects",
    "TransportError",
    "WriteTimeout",
]
