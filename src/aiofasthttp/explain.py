"""Explaining a failed exchange: the facts, and one plain sentence on the likely cause.

The seed of this project is a user asking why they got "connection closed".
Every connection error answers with what the connection knows: reused or
fresh, how long it sat idle, how many requests it had served, whether the
request was written and any response byte came back, and the server's
Keep-Alive hint. Where those facts point at a cause, the message says it and
names the option to change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .connection import Connection
    from .exchange import Exchange


def keep_alive_hint(conn: Connection) -> str | None:
    parts = []
    if conn.keep_alive_timeout is not None:
        parts.append(f"timeout={conn.keep_alive_timeout}")
    if conn.keep_alive_max is not None:
        parts.append(f"max={conn.keep_alive_max}")
    return ", ".join(parts) or None


def facts(conn: Connection, ex: Exchange) -> dict[str, Any]:
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


def describe(conn: Connection, ex: Exchange, what: str, *, explain: bool = True) -> str:
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


def likely_cause(conn: Connection, ex: Exchange) -> str | None:
    """One plain sentence on why, where the facts point at a cause."""
    if ex.response_bytes:
        return "The server began answering, so it probably processed the request."
    idle = ex.idle_before
    timeout = conn.keep_alive_timeout
    if ex.reused and timeout is not None and idle >= timeout:
        return (
            f"The server closed a connection idle for {idle:.1f} s while its hint said "
            f"timeout={timeout}: set max_idle_conn_duration below {timeout} s."
        )
    if ex.reused and idle >= 1.0:
        return (
            "The server, or a proxy, load balancer or NAT on the way, likely dropped this "
            f"connection after {idle:.1f} s idle: set max_idle_conn_duration below that."
        )
    if ex.reused:
        return (
            "The server closed a kept-alive connection just as it was reused; it may "
            f"limit requests per connection (this one had served {conn.requests_served})."
        )
    return (
        "The server closed a new connection without answering: it may be overloaded, "
        "restarting, or refusing the request."
    )
