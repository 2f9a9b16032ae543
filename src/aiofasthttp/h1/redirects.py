"""Following redirects: where the next hop goes, with which method, headers and body.

The rules are the browsers' and fasthttp's DoRedirects': 301 and 302 turn a
POST into a GET, 303 turns anything but HEAD into a GET, 307 and 308 keep
the method and the body (a body that cannot be replayed stops the chain with
a clear error). A relative Location is resolved against the current URL.
Credentials never cross origins: Authorization, Proxy-Authorization and
Cookie are dropped when the next hop is another scheme, host or port.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from ..errors import RedirectError
from .url import resolve_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie"})
_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})


@dataclass(frozen=True)
class Hop:
    """The next request of a redirect chain."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    keep_body: bool


def next_hop(
    status: int,
    location: str | None,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body_replayable: bool,
    has_body: bool,
) -> Hop:
    if not location:
        raise RedirectError(f"{method} {url}: redirect {status} without a Location header")
    target = urljoin(url, location.strip())
    keep_body = status in (307, 308)
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method = "GET"
    if keep_body and has_body and not body_replayable:
        raise RedirectError(
            f"{method} {url}: redirect {status} to {target} asks to resend the body, "
            "but it is a one-shot async iterable; pass a callable that makes a new one"
        )
    kept = headers
    if not keep_body:
        kept = [(n, v) for n, v in kept if n.lower() not in _BODY_HEADERS]
    if resolve_url(target).origin != resolve_url(url).origin:
        kept = [(n, v) for n, v in kept if n.lower() not in _CREDENTIALS]
    return Hop(method, target, kept, keep_body and has_body)
