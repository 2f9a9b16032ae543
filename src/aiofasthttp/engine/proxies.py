"""Proxies: which one a request takes, and the SOCKS handshake.

Four kinds, told apart by the proxy URL's scheme:

- ``http://``: plain-http targets are sent to the proxy in absolute form; https
  targets go through a CONNECT tunnel, TLS to the target inside it.
- ``https://``: the same, inside TLS to the proxy itself (``proxy_ssl=``, verified
  by default); an https target is then TLS inside TLS.
- ``socks5://``: a SOCKS5 tunnel to the target's address, resolved here (the
  client's DNS cache); ``socks5h://``: the proxy resolves the name.

SOCKS is spoken by python-socks (``pip install aiofasthttp[socks]``): maintained,
typed, username/password auth, and its asyncio API works on any loop through
``loop.sock_*``. It dials the proxy itself; it is given the proxy's address from
the client's resolver, so a proxy's name is looked up (and cached) like any other.
"""

from __future__ import annotations

import asyncio
import os
import socket
import urllib.request
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from ..errors import InvalidURL, ProxyError
from ..h1.url import Origin, Proxy, parse_proxy
from .resolve import DNSCache

SOCKS_SCHEMES = ("socks5", "socks5h")
_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


def parse_proxy_url(url: str) -> Proxy:
    """A Proxy from its URL: ``http``, ``https``, ``socks5`` or ``socks5h``, with userinfo."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid proxy URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _PORTS:
        raise InvalidURL(
            f"proxy URL {url!r}: use http://, https://, socks5:// or socks5h:// "
            f"(not {parts.scheme or 'no scheme'})"
        )
    if scheme == "http":
        return parse_proxy(url)
    if not parts.hostname:
        raise InvalidURL(f"proxy URL {url!r} has no host")
    origin = Origin(scheme, parts.hostname, port or _PORTS[scheme])
    if scheme == "https":
        http = parse_proxy(url.replace(parts.scheme, "http", 1))  # the same userinfo rules
        return Proxy(origin, http.authorization)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(origin, None, user, password)


def is_socks(proxy: Proxy) -> bool:
    return proxy.origin.scheme in SOCKS_SCHEMES


class EnvironmentProxies:
    """The proxies the environment names (trust_env): HTTP(S)_PROXY, ALL_PROXY, NO_PROXY."""

    def __init__(self, found: Mapping[str, str] | None = None) -> None:
        self._raw = dict(urllib.request.getproxies_environment() if found is None else found)
        self._by_scheme: dict[str, Proxy] = {}
        for scheme in ("http", "https", "all"):
            if self._raw.get(scheme):
                self._by_scheme[scheme] = parse_proxy_url(self._raw[scheme])

    @property
    def proxies(self) -> list[Proxy]:
        return list(self._by_scheme.values())

    def for_origin(self, origin: Origin) -> Proxy | None:
        found = self._by_scheme.get(origin.scheme) or self._by_scheme.get("all")
        if found is None:
            return None
        # The stdlib's NO_PROXY matching; it is untyped in typeshed.
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        if bypass(origin.host, self._raw):
            return None
        return found


async def socks_tunnel(proxy: Proxy, target: Origin, names: DNSCache) -> socket.socket:
    """A socket through which ``target`` is reached, the SOCKS5 handshake done."""
    try:
        from python_socks import ProxyConnectionError, ProxyType
        from python_socks import ProxyError as SocksError
        from python_socks.async_.asyncio import Proxy as SocksProxy
    except ImportError:
        raise ProxyError(
            f"the proxy {proxy.origin} is SOCKS: install python-socks "
            "(pip install 'aiofasthttp[socks]')",
            proxy=str(proxy.origin),
        ) from None
    remote_dns = proxy.origin.scheme == "socks5h"
    host = target.host
    if not remote_dns:
        host = str((await names.resolve(target.host, target.port))[0][4][0])
    proxy_address = str((await names.resolve(proxy.origin.host, proxy.origin.port))[0][4][0])
    client = SocksProxy(
        ProxyType.SOCKS5,
        proxy_address,
        proxy.origin.port,
        username=proxy.username,
        password=proxy.password,
        rdns=remote_dns,
        loop=asyncio.get_running_loop(),
    )
    try:
        return await client.connect(host, target.port)
    except ProxyConnectionError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ProxyError(
            f"cannot connect to the proxy {proxy.origin}: {why}", proxy=str(proxy.origin)
        ) from exc
    except SocksError as exc:
        # A SOCKS server may refuse credentials by closing, which the library reports
        # as any other broken handshake: name the credentials whenever some were sent.
        hint = "; check the proxy's credentials" if proxy.username is not None else ""
        raise ProxyError(
            f"the proxy {proxy.origin} refused to connect to {target}: {exc}{hint}",
            proxy=str(proxy.origin),
            refused=exc.error_code is not None,  # its reply said no (not a broken handshake)
        ) from exc
