"""URLs and addressing: an absolute URL parsed once into where it goes and what to ask for.

:class:`Origin` (scheme, host, port) names a server; :class:`Route` says how a
connection reaches it (directly or through a :class:`Proxy`). Dial, the pool and
the connection know a request only by these, so they live apart from requests.
"""

from __future__ import annotations

import base64
import re
from typing import NamedTuple
from urllib.parse import quote, unquote, urljoin, urlsplit

from ..errors import InvalidURL

DEFAULT_PORTS = {"http": 80, "https": 443}
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Origin(NamedTuple):
    """Where a connection goes: scheme, host and port. One pool per origin."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Proxy(NamedTuple):
    """A proxy: where it listens (its scheme says the kind), and its credentials.

    ``authorization``: the Proxy-Authorization value for an HTTP(S) proxy;
    ``username`` and ``password``: a SOCKS proxy's.
    """

    origin: Origin
    authorization: str | None
    username: str | None = None
    password: str | None = None


class Route(NamedTuple):
    """How a connection is made: to ``origin`` directly, or tunnelled ``via`` a proxy.

    A plain-http request through a proxy is routed to the proxy's own origin (the
    request carries the absolute URL); an https one is tunnelled with CONNECT, so its
    connections are the target's, made through the proxy. One pool per route.
    """

    origin: Origin
    via: Proxy | None = None

    def __str__(self) -> str:
        return str(self.origin) if self.via is None else f"{self.origin} via {self.via.origin}"


def parse_proxy(url: str) -> Proxy:
    target = resolve_url(url)
    if target.origin.scheme != "http":
        raise InvalidURL(f"proxy URL {url!r}: only http:// proxies are supported")
    return Proxy(target.origin, target.authorization)


class Target(NamedTuple):
    """A parsed absolute URL: its origin, request-target, Host value, and auth."""

    origin: Origin
    target: str
    host_header: str
    authorization: str | None


_target_cache: dict[str, Target] = {}
_TARGET_CACHE_SIZE = 1024


def resolve_url(url: str) -> Target:
    """Parse an absolute http(s) URL (cached: the same URLs recur in clients)."""
    found = _target_cache.get(url)
    if found is not None:
        return found
    parsed = _parse_url(url)
    if len(_target_cache) >= _TARGET_CACHE_SIZE:
        _target_cache.clear()
    _target_cache[url] = parsed
    return parsed


def _parse_url(url: str) -> Target:
    if _CONTROL.search(url):
        # urlsplit would silently drop CR, LF and TAB; a URL holding them is a mistake
        # or an attack, never something to "fix" and send.
        raise InvalidURL(f"control character in URL {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(f"unsupported URL scheme {parts.scheme!r} in {url!r}: use http or https")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"no host in URL {url!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"invalid international host name in {url!r}: {exc}") from None
    if port is None:
        port = DEFAULT_PORTS[scheme]
    target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
    if _BAD_TARGET.search(target) or _BAD_TARGET.search(host):
        raise InvalidURL(f"control character or space in URL {url!r}")
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == DEFAULT_PORTS[scheme] else f"{bracketed}:{port}"
    authorization = None
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(userinfo.encode("utf-8")).decode("ascii")
    return Target(Origin(scheme, host, port), target, host_header, authorization)


def join_url(base_url: str | None, url: str) -> str:
    for part in (base_url, url):
        if part is not None and _CONTROL.search(part):
            # urljoin would silently drop CR, LF and TAB; refuse them instead.
            raise InvalidURL(f"control character in URL {part!r}")
    if base_url is None or "://" in url:
        return url
    return urljoin(base_url if base_url.endswith("/") else base_url + "/", url.lstrip("/"))
