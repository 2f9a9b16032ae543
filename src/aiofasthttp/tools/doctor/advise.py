"""The settings that keep clear of what was measured, for this client and for fasthttp's."""

from __future__ import annotations

from ...engine.explain import (
    idle_timeout_words,
    lifetime_words,
    middlebox_words,
    request_limit_words,
    set_below,
)
from ...engine.poolcore import DEFAULT_MAX_IDLE
from ...policy.retry import RetryPolicy
from .measure import tolerance
from .report import (
    ANNOUNCED,
    FIN,
    RST,
    SILENT,
    IdleTimeout,
    KeepAliveCheck,
    Lifetime,
    RequestLimit,
    Settings,
)

# The client's defaults this report measures against: the engine's own.
CLIENT_DEFAULT_IDLE = DEFAULT_MAX_IDLE
DEFAULT_POLICY = RetryPolicy()
DEFAULT_ATTEMPTS = DEFAULT_POLICY.attempts


# -- 4. the settings to use ----------------------------------------------------------------


def recommend(
    http11: KeepAliveCheck,
    http10: KeepAliveCheck,
    idle: IdleTimeout | None,
    requests: RequestLimit | None,
    lifetime: Lifetime | None = None,
) -> Settings:
    """The client settings (and fasthttp's) that keep clear of this server's closes.

    Each cause is named in the words the client's errors use (engine/explain.py)."""
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
        said = request_limit_words(max_requests)
        if requests.announced:
            notes.append(
                f"{said}, and says 'Connection: close' on the last response; the client "
                "stops there too"
            )
        else:
            notes.append(
                f"{said}, without saying so: the next request on it would fail, so "
                f"retire it first with max_requests_per_conn={max_requests}; fasthttp has "
                "no such limit, so "
                "there only its retries (MaxIdemponentCallAttempts, RetryIf) cover it"
            )
    max_conn = _lifetime_setting(lifetime, notes)
    notes.append(_retry_note(idle, requests, lifetime))
    return Settings(
        max_idle,
        max_requests,
        "RetryPolicy()",
        headers,
        _fasthttp(max_idle, max_conn),
        notes,
        max_conn,
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
    how = {FIN: "it closes them with a FIN", RST: "it resets them (RST)"}.get(
        idle.close or "", "it drops them without a FIN or RST"
    )
    cause = idle_timeout_words(t)
    if idle.close == SILENT and t >= 1.0:
        cause += f"; or {middlebox_words(t)}"
    notes.append(
        f"{cause}: {how}; the pool drops a connection the moment its FIN or RST arrives, "
        "but one that crosses a request on the wire fails that request: retire "
        f"connections first ({set_below('max_idle_conn_duration', t)}): "
        f"max_idle_conn_duration={value:g}"
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
    hint = check.keep_alive_timeout
    if hint is None or idle is None or idle.seconds is None:
        return
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


def _lifetime_setting(lifetime: Lifetime | None, notes: list[str]) -> float | None:
    """max_conn_duration below the lifetime the server allows a busy connection."""
    if lifetime is None or lifetime.error is not None:
        return None
    if lifetime.request_limit:
        notes.append(
            f"no lifetime limit seen: the request limit ended the busy connection after "
            f"{lifetime.requests} requests ({lifetime.kept_until:.2f} s)"
        )
        return None
    t = lifetime.seconds
    if t is None:
        notes.append(
            f"no lifetime limit seen: a connection kept busy for {lifetime.bound:g} s "
            "(max_lifetime) was never closed"
        )
        return None
    # As for the idle timeout: by 20% or 0.5 s, never past an age seen kept.
    value = _round_down(min(lifetime.kept_until, max(t / 2, t - max(0.5, 0.2 * t))))
    if lifetime.close == ANNOUNCED:
        how = (
            "it says 'Connection: close' on the response that passes it, so no request "
            "fails, but retiring first spares the closing"
        )
    else:
        how = f"it closes with no warning ({lifetime.close}): a request on it then fails"
    notes.append(
        f"{lifetime_words(t)}: {how}; {set_below('max_conn_duration', t)}: "
        f"max_conn_duration={value:g}"
    )
    return value


def _retry_note(
    idle: IdleTimeout | None, requests: RequestLimit | None, lifetime: Lifetime | None = None
) -> str:
    silent = (
        (idle is not None and idle.close in (RST, SILENT))
        or (requests is not None and requests.max_requests is not None and not requests.announced)
        or (lifetime is not None and lifetime.seconds is not None and lifetime.close != ANNOUNCED)
    )
    methods = " ".join(sorted(DEFAULT_POLICY.methods))
    base = (
        f"RetryPolicy() ({DEFAULT_ATTEMPTS} attempts) replays idempotent requests ({methods}, "
        "or any with an Idempotency-Key header) on a fresh connection when a reused one "
        "closes before the response"
    )
    if silent:
        return (
            base + "; this server closes without notice, so non-idempotent requests (POST, "
            "PATCH) need an Idempotency-Key header or retry_if to be replayed"
        )
    return base + "; it covers the rare race the settings above leave"


def _fasthttp(max_idle: float | None, max_conn: float | None = None) -> dict[str, str]:
    """The same settings as fasthttp.Client fields, as Go expressions."""
    out = {}
    if max_idle is not None:
        out["MaxIdleConnDuration"] = _go_duration(max_idle)
    out["MaxConnDuration"] = "0" if max_conn is None else _go_duration(max_conn)
    out["MaxIdemponentCallAttempts"] = str(DEFAULT_ATTEMPTS)
    return out


def _round_down(seconds: float) -> float:
    """To whole seconds from 10 s, tenths below, hundredths below 1 s."""
    step = 1.0 if seconds >= 10 else 0.1 if seconds >= 1 else 0.01
    return max(0.01, round(int(seconds / step + 1e-9) * step, 2))


def _go_duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)} * time.Second"
    return f"{round(seconds * 1000)} * time.Millisecond"
