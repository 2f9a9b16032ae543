"""The report as text for people, or as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict

from .report import (
    FIN,
    RST,
    SILENT,
    IdleTimeout,
    KeepAliveCheck,
    Lifetime,
    Report,
    RequestLimit,
)

# -- rendering --------------------------------------------------------------------------------


def render_json(report: Report) -> str:
    data = asdict(report)
    data["keeps_alive"] = report.keeps_alive
    data["http11"]["keeps_alive"] = report.http11.keeps_alive
    data["http10"]["keeps_alive"] = report.http10.keeps_alive
    data["settings"]["client"] = report.settings.client_call()
    return json.dumps(data, indent=2)


def render_text(report: Report) -> str:
    lines = [f"aiofasthttp doctor {report.url}"]
    if report.server:
        lines.append(f"  server:                  {report.server}")
    lines.append(f"  keep-alive, HTTP/1.1:    {_describe_check(report.http11)}")
    lines.append(f"  keep-alive, HTTP/1.0:    {_describe_check(report.http10)}")
    lines.append(f"  Keep-Alive hint:         {report.keep_alive_hint or 'none'}")
    lines.append(f"  idle timeout:            {_describe_idle(report.idle)}")
    lines.append(f"  requests per connection: {_describe_requests(report.requests)}")
    lines.append(f"  connection lifetime:     {_describe_lifetime(report.lifetime)}")
    settings = report.settings
    lines.append("")
    lines.append("settings to use:")
    lines.append(f"  aiofasthttp: {settings.client_call()}")
    fast = ", ".join(f"{k}: {v}" for k, v in settings.fasthttp.items())
    lines.append(f"  fasthttp:    &fasthttp.Client{{{fast}}}")
    lines.append("")
    lines.append("why:")
    lines += [f"  - {note}" for note in settings.notes]
    idle = report.idle
    probes = f" with {idle.connections} idle probe connections" if idle else ""
    lines.append(f"\nmeasured in {report.elapsed:.1f} s{probes}")
    return "\n".join(lines) + "\n"


def _describe_check(check: KeepAliveCheck) -> str:
    if check.error is not None:
        return f"unknown ({check.error})"
    said = f"answered {check.response_version} {check.status}"
    headers = []
    if check.connection_header is not None:
        headers.append(f"Connection: {check.connection_header}")
    if check.keep_alive_header is not None:
        headers.append(f"Keep-Alive: {check.keep_alive_header}")
    if headers:
        said += " with " + ", ".join(headers)
    if check.keeps_alive:
        return f"yes ({said}; a second request was served on the connection)"
    if check.says_keep_alive:
        return f"no: {said}, then closed ({check.close}) instead of serving a second request"
    closed = f", then closed ({check.close})" if check.close else ""
    return f"no ({said}{closed})"


def _describe_idle(idle: IdleTimeout | None) -> str:
    if idle is None:
        return "not measured (no keep-alive)"
    if idle.seconds is None:
        if idle.error:
            return f"unknown ({idle.error})"
        return f"none seen: a connection idle {idle.served_after:.2f} s was still served"
    how = {
        FIN: "closed with FIN",
        RST: "reset with RST",
        SILENT: "dropped silently (no FIN or RST; the next request failed)",
    }.get(idle.close or "", "closed")
    sent = f", after sending {idle.sent_before_close!r}" if idle.sent_before_close else ""
    text = (
        f"{idle.seconds:.2f} s ({how}{sent}; a connection idle {idle.served_after:.2f} s was "
        f"still served, one idle {idle.closed_after:.2f} s was not)"
    )
    if not idle.consistent:
        text += "; varies between connections"
    return text


def _describe_requests(limit: RequestLimit | None) -> str:
    if limit is None:
        return "not measured"
    if limit.error is not None:
        return f"unknown ({limit.error})"
    if limit.max_requests is None:
        return f"no limit seen up to {limit.bound} (--max-requests)"
    said = "says 'Connection: close' on the last one" if limit.announced else "no warning"
    how = f", then {limit.close}" if limit.close else ""
    return f"{limit.max_requests} ({said}{how})"


def _describe_lifetime(lifetime: Lifetime | None) -> str:
    if lifetime is None:
        return "not measured (no keep-alive)"
    if lifetime.error is not None:
        return f"unknown ({lifetime.error})"
    if lifetime.request_limit:
        return (
            f"none seen before the request limit ended it ({lifetime.requests} requests, "
            f"{lifetime.kept_until:.2f} s)"
        )
    if lifetime.seconds is None:
        return f"no limit seen: busy for {lifetime.bound:g} s (max_lifetime), still open"
    return (
        f"{lifetime.seconds:.2f} s ({lifetime.close}; a busy connection was still kept at "
        f"{lifetime.kept_until:.2f} s, closed by {lifetime.closed_at:.2f} s, after "
        f"{lifetime.requests} requests, one every {lifetime.gap:g} s)"
    )
