"""The doctor's findings and options: plain dataclasses, rendered by :mod:`.render`."""

from __future__ import annotations

import ssl as ssllib
from dataclasses import dataclass, field

FIN = "FIN"
RST = "RST"
SILENT = "silent"  # no FIN or RST while idle; the next request failed


@dataclass(frozen=True)
class DoctorOptions:
    max_idle: float = 75.0
    max_requests: int = 1000
    parallel: int = 4
    timeout: float = 10.0  # connect, and each response
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    insecure: bool = False
    # How long one busy connection is kept busy to find the server's lifetime limit;
    # None: as long as max_idle (the doctor then takes about as long as before).
    max_lifetime: float | None = None
    ssl: ssllib.SSLContext | None = None  # https: the context to verify with (a private CA)

    @property
    def lifetime_bound(self) -> float:
        return self.max_idle if self.max_lifetime is None else self.max_lifetime


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
    keep_alive_timeout: int | None = None  # its timeout=, as the response parser read it
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
class Lifetime:
    """How long one busy connection lives, whatever its idle gaps: a connection kept
    busy (a request every ``gap`` seconds) until the server closes it, or ``bound``."""

    seconds: float | None  # the estimate; None when no such close was seen
    kept_until: float  # the latest age at which a request was still served and kept
    closed_at: float | None  # the age by which the server had closed it
    close: str | None  # "Connection: close", FIN, RST or "silent"
    bound: float  # the longest the connection was kept busy (max_lifetime)
    gap: float  # the pause between requests
    requests: int = 0  # requests served on it
    request_limit: bool = False  # its request limit ended it before any lifetime showed
    error: str | None = None


ANNOUNCED = "Connection: close"  # the server said so on a response


@dataclass
class Settings:
    max_idle_conn_duration: float | None
    max_requests_per_conn: int | None
    retry: str
    headers: dict[str, str] = field(default_factory=dict)
    fasthttp: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    max_conn_duration: float | None = None

    def client_call(self) -> str:
        args = []
        if self.max_idle_conn_duration is not None:
            args.append(f"max_idle_conn_duration={self.max_idle_conn_duration:g}")
        if self.max_conn_duration is not None:
            args.append(f"max_conn_duration={self.max_conn_duration:g}")
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
    lifetime: Lifetime | None = None

    @property
    def keeps_alive(self) -> bool:
        return self.http11.keeps_alive or self.http10.keeps_alive
