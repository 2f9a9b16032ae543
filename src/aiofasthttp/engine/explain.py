"""Explaining a failed exchange: the facts, and one plain sentence on the likely cause.

The seed of this project is a user asking why they got "connection closed".
Every connection error answers with what the connection knows: reused or
fresh, how long it sat idle, how many requests it had served, whether the
request was written and any response byte came back, and the server's
Keep-Alive hint. Where those facts point at a cause, the message says it and
names the option to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .. import reasons
from ..policy.learning import AGREE

if TYPE_CHECKING:
    from .interfaces import ConnectionFacts


class ExchangeFacts(Protocol):
    """What one request on a connection can say about itself: an Exchange's fields,
    or a pipelined request's."""

    method: str
    url: str
    reused: bool
    idle_before: float  # how long the connection sat idle before this request
    request_written: bool
    response_bytes: int
    bytes_written: int


# What an error message says for a reason the connection was closed with (the words a
# message used before reasons became tokens); others are said as they are.
_PROSE = {
    reasons.CLIENT_CLOSED: "closed by the client",
    reasons.CANCELLED: "request cancelled while in flight",
    reasons.ABANDONED: "request cancelled or failed while in flight",
    reasons.REDIRECT_BODY_UNREAD: "redirect body not read",
    reasons.STREAM_LEFT_EARLY: "streamed response left before its end",
    reasons.RETRYING_STATUS: "retrying a status",
    reasons.ALREADY_CLOSED: "the connection was already closed",
    reasons.MAKING_ROOM: "making room for a fresh connection",
    reasons.SERVER_CLOSED: "the server closed the connection",
    reasons.CONNECTION_RESET: "the connection was reset",
}


# The causes in words, as the client's errors say them; the doctor's advice says the
# same (tools/doctor/advise.py), so a user who reads both reads one diagnosis.


def idle_timeout_words(seconds: float) -> str:
    return f"the server closes connections idle for about {seconds:.3f} s (its idle timeout)"


def request_limit_words(limit: int) -> str:
    return f"the server closes connections after {limit} requests"


def lifetime_words(seconds: float) -> str:
    return (
        f"the server closes connections that have lived about {seconds:.3f} s, however "
        "busy (a connection lifetime limit, such as nginx's keepalive_time or a load "
        "balancer's)"
    )


def middlebox_words(idle: float) -> str:
    return (
        "the server, or a proxy, load balancer or NAT on the way, likely dropped this "
        f"connection after {idle:.1f} s idle"
    )


def set_below(option: str, value: float | int) -> str:
    """The advice that follows a cause: the option and the bound to keep under."""
    figure = f"{value:.3f} s" if isinstance(value, float) else str(value)
    return f"set {option} below {figure}"


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def prose(reason: str) -> str:
    """A close reason in words, for an error message."""
    return _PROSE.get(reason, reason)


def keep_alive_hint(conn: ConnectionFacts) -> str | None:
    parts = []
    if conn.keep_alive_timeout is not None:
        parts.append(f"timeout={conn.keep_alive_timeout}")
    if conn.keep_alive_max is not None:
        parts.append(f"max={conn.keep_alive_max}")
    return ", ".join(parts) or None


def facts(conn: ConnectionFacts, ex: ExchangeFacts) -> dict[str, Any]:
    """The keyword arguments of ConnectionClosedError."""
    return {
        "reused": ex.reused,
        "request_written": ex.request_written,
        "response_bytes": ex.response_bytes,
        "connection_age": conn.loop.time() - conn.created_at,
        "idle_time": ex.idle_before,
        "requests_served": conn.requests_served,
        "bytes_written": ex.bytes_written,
        "connection_id": conn.id,
        "keep_alive_hint": keep_alive_hint(conn),
    }


def describe(conn: ConnectionFacts, ex: ExchangeFacts, what: str, *, explain: bool = True) -> str:
    """``what`` happened, with the facts and (for a close) the likely cause."""
    age = conn.loop.time() - conn.created_at
    if ex.reused:
        where = (
            f"reused connection #{conn.id} (idle {ex.idle_before:.3f} s before this request, "
            f"{conn.requests_served} requests served, age {age:.3f} s)"
        )
    else:
        where = f"new connection #{conn.id}"
    if conn.via is not None:
        where += f" through the proxy {conn.via}"
    written = (
        "after the request was written"
        if ex.request_written
        else "before the request was fully written"
    )
    got = (
        f"{ex.response_bytes} response bytes received"
        if ex.response_bytes
        else "no response byte received"
    )
    text = f"{ex.method} {ex.url}: {what} on {where} {written}; {got}"
    hint = keep_alive_hint(conn)
    if hint:
        text += f"; the server's Keep-Alive hint was {hint}"
    cause = likely_cause(conn, ex) if explain else None
    return f"{text}. {cause}" if cause else text


def likely_cause(conn: ConnectionFacts, ex: ExchangeFacts) -> str | None:
    """One plain sentence on why, where the facts point at a cause.

    The sentence comes from the evidence: the idle time is compared with the idle
    closes this server was seen making and with its Keep-Alive hint, the requests
    served with the request counts after which it was seen closing.
    """
    if ex.response_bytes:
        return "The server began answering, so it probably processed the request."
    if not ex.reused:
        return (
            "The server closed a new connection without answering: it may be overloaded, "
            "restarting, or refusing the request."
        )
    idle = ex.idle_before
    served = conn.requests_served
    memory = conn.server_memory
    now = conn.loop.time()
    seen_idle = memory.shortest_idle_close(now) if memory is not None else None
    if seen_idle is not None and idle >= seen_idle * (1 - AGREE):
        return (
            f"{sentence(idle_timeout_words(seen_idle))}, seen before, and this one had been "
            f"idle {idle:.3f} s: {set_below('max_idle_conn_duration', seen_idle)}."
        )
    timeout = conn.keep_alive_timeout
    if timeout is not None and idle >= timeout:
        return (
            f"The server closed a connection idle for {idle:.1f} s while its hint said "
            f"timeout={timeout}: set max_idle_conn_duration below {timeout} s."
        )
    seen_limit = memory.request_limit_seen(now) if memory is not None else None
    if seen_limit is not None and served >= seen_limit:
        return (
            f"{sentence(request_limit_words(seen_limit))} (seen before), and this one had "
            f"served {served}: {set_below('max_requests_per_conn', seen_limit)}."
        )
    if idle >= 1.0:
        return f"{sentence(middlebox_words(idle))}: set max_idle_conn_duration below that."
    return (
        "The server closed a kept-alive connection just as it was reused; it may "
        f"limit requests per connection (this one had served {served}) or close "
        "idle ones on a timer."
    )
