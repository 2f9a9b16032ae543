"""``-v``: the client's trace hooks printed curl style, connection events in words."""

from __future__ import annotations

import time
from typing import TextIO

from ... import reasons
from ...engine.client import Client
from ...h1.response import Response
from .request import FetchRequest

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
