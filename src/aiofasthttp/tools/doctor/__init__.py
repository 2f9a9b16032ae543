"""``aiofasthttp doctor URL``: why does my client get "connection closed" from this server?

It measures the server, not the client, so it talks to it over raw asyncio
streams and reads the answers with the package's own response parser:

1. **Keep-alive at all.** One HTTP/1.1 request, then a second on the same
   connection; the same as HTTP/1.0 with ``Connection: keep-alive``. The
   response's ``Connection`` and ``Keep-Alive`` headers are kept.
2. **The idle timeout it really applies.** Connections are held idle for
   gaps, then asked a second request; meanwhile each one watches its socket,
   so a close (FIN, or RST) is seen the moment it comes. The first round
   holds gaps growing by halves up to ``max_idle``, all in parallel; later
   rounds bisect the bracket [longest gap still served, shortest closed] with
   ``parallel`` connections, until it is within 10% or 0.25 s.
3. **Requests per connection.** Requests one after another on one
   connection, up to ``max_requests``, until the server closes it: saying
   ``Connection: close`` on the last response, or silently (then one more
   connection finds out whether the close is a FIN or an RST).
4. **The connection's lifetime.** After the request count, one connection is
   kept busy (a request every 0.1 s, or slower so as not to reach the request
   limit first) until the server closes it or ``max_lifetime`` passes: nginx's
   ``keepalive_time``, a load balancer's connection age limit.
5. **The settings to use**, for this client and for fasthttp's, naming each
   cause in the words of the client's own errors (engine/explain.py).

It speaks https:// as well (``DoctorOptions.ssl`` for a private CA, or
``insecure``).

:func:`diagnose` returns a :class:`Report` (plain dataclasses);
:func:`render_text` and :func:`render_json` turn it into the report shown. The
work is split: :mod:`.probe` (one raw connection), :mod:`.measure` (1-4),
:mod:`.advise` (5), :mod:`.render`.
"""

from __future__ import annotations

import asyncio

from .advise import recommend
from .measure import (
    MAX_ROUNDS,
    Bracket,
    check_keep_alive,
    count_requests,
    first_gaps,
    measure_idle_timeout,
    measure_lifetime,
    tolerance,
)
from .probe import _Site
from .render import render_json, render_text
from .report import (
    FIN,
    RST,
    SILENT,
    DoctorOptions,
    IdleTimeout,
    KeepAliveCheck,
    Lifetime,
    Report,
    RequestLimit,
    Settings,
)

__all__ = [
    "FIN",
    "MAX_ROUNDS",
    "RST",
    "SILENT",
    "Bracket",
    "DoctorOptions",
    "IdleTimeout",
    "KeepAliveCheck",
    "Lifetime",
    "Report",
    "RequestLimit",
    "Settings",
    "diagnose",
    "first_gaps",
    "render_json",
    "render_text",
    "tolerance",
]


async def diagnose(url: str, options: DoctorOptions | None = None) -> Report:
    """Probe the server at ``url``. Raises ConnectError, TimeoutError or ProtocolError
    when the first request cannot be made at all."""
    options = options or DoctorOptions()
    site = _Site.parse(url, options)
    loop = asyncio.get_running_loop()
    started = loop.time()
    http11 = await check_keep_alive(site, options, http10=False)
    try:
        http10 = await check_keep_alive(site, options, http10=True)
    except Exception as exc:  # a server may refuse HTTP/1.0 outright
        http10 = KeepAliveCheck("HTTP/1.0 with Connection: keep-alive", error=str(exc))
    idle: IdleTimeout | None = None
    requests: RequestLimit | None = None
    lifetime: Lifetime | None = None
    if http11.keeps_alive or http10.keeps_alive:
        use10 = not http11.keeps_alive
        idle, (requests, lifetime) = await asyncio.gather(
            measure_idle_timeout(site, options, use10),
            _count_then_lifetime(site, options, use10),
        )
    else:
        requests = RequestLimit(1, options.max_requests, announced=not http11.says_keep_alive)
        requests.close = http11.close
    return Report(
        url=url,
        server=http11.server,
        http11=http11,
        http10=http10,
        keep_alive_hint=http11.keep_alive_header,
        idle=idle,
        requests=requests,
        settings=recommend(http11, http10, idle, requests, lifetime),
        elapsed=round(loop.time() - started, 3),
        lifetime=lifetime,
    )


async def _count_then_lifetime(
    site: _Site, options: DoctorOptions, http10: bool
) -> tuple[RequestLimit, Lifetime]:
    """The request count first: the lifetime probe paces itself to stay under it."""
    requests = await _guarded_count(site, options, http10)
    return requests, await measure_lifetime(site, options, http10, requests.max_requests)


async def _guarded_count(site: _Site, options: DoctorOptions, http10: bool) -> RequestLimit:
    try:
        return await count_requests(site, options, http10)
    except Exception as exc:
        return RequestLimit(None, options.max_requests, error=str(exc) or type(exc).__name__)
