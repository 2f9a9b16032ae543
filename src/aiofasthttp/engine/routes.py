"""A client's routes and their pools: where each request's connection goes, and how
connections are made.

One pool per route (an origin, or an origin through a tunnelling proxy), made on
first use; the dialer they share, with the client's TLS contexts, proxies, DNS
cache and connection settings; the cap on connections across every pool.
"""

from __future__ import annotations

import asyncio
import ssl as ssllib
from collections.abc import Callable
from typing import Any

from ..errors import ClientClosedError
from ..h1.request import Request
from ..h1.url import Origin, Proxy, Route, Target
from .cap import ConnectionCap
from .connection import BufferedConnection, Connection
from .dial import Dialer, InMemoryNetwork, lends_buffers
from .pool import Pool
from .poolcore import PoolLimits
from .proxies import EnvironmentProxies, is_socks, parse_proxy_url
from .resolve import DNSCache, Resolver


class Routes:
    """One client's pools by route, and everything that dials their connections."""

    def __init__(
        self,
        *,
        limits: PoolLimits,
        max_conns: int,
        connect_timeout: float | None,
        write_timeout: float | None,
        max_head_size: int,
        tcp_keepalive: float | None,
        ssl: ssllib.SSLContext | bool | None,
        uds: str | None,
        proxy: str | None,
        proxy_ssl: ssllib.SSLContext | None,
        trust_env: bool,
        dns_cache_ttl: float | None,
        resolver: Resolver | None,
        happy_eyeballs_delay: float | None,
        transport: InMemoryNetwork | None,
        tracer: Any,
        get_loop: Callable[[], asyncio.AbstractEventLoop],
        new_pool: Callable[[], None],
    ) -> None:
        self.limits = limits
        self.tracer = tracer
        self.pools: dict[Route, Pool[Connection]] = {}
        self.closed = False
        self._get_loop = get_loop
        self._new_pool = new_pool  # the client forgets the kept requests that carry no pool
        self._proxy = parse_proxy_url(proxy) if proxy else None
        self._proxy_ssl = proxy_ssl
        self._env_proxies = EnvironmentProxies() if trust_env else None
        self._write_timeout = write_timeout
        self._max_head_size = max_head_size
        self._tcp_keepalive = tcp_keepalive
        self._ssl_option = ssl
        self._ssl_context: ssllib.SSLContext | None = None
        self.names = DNSCache(dns_cache_ttl, resolver, tracer)
        self._dialer = Dialer(
            connect_timeout=connect_timeout,
            tls_context=self._tls_context,
            make_connection=self._make_connection,
            uds=uds,
            names=self.names,
            happy_eyeballs_delay=happy_eyeballs_delay,
            proxy_tls_context=self._proxy_tls_context,
            proxies=self._proxies,
            tracer=tracer,
            network=transport,  # aiofasthttp.testing.MockTransport: no socket, no DNS
        )
        self.cap = ConnectionCap(max_conns, self._pools_now)

    def pool_for(self, request: Request) -> Pool[Connection]:
        route = request.route
        pool = self.pools.get(route)
        if pool is None:
            if self.closed:
                raise ClientClosedError("the client is closed; create a new Client")
            pool = Pool(
                route.origin,
                self.limits,
                self._dialer.dial,
                self._get_loop(),
                self.tracer,
                via=route.via,
                cap=self.cap,
            )
            self.pools[route] = pool
            # Requests kept before this pool existed carry none: keep them afresh.
            self._new_pool()
        return pool

    def route(self, target: Target) -> tuple[Route, Proxy | None]:
        """Where a request's connection goes, and the proxy its head must name, if any."""
        proxy = self._proxy_for(target.origin)
        if proxy is None:
            return Route(target.origin), None
        if target.origin.scheme == "http" and not is_socks(proxy):
            return Route(proxy.origin), proxy  # absolute-form request to the proxy
        return Route(target.origin, proxy), None  # a CONNECT or SOCKS tunnel

    def set_tracer(self, tracer: Any) -> None:
        self.tracer = tracer
        for pool in self.pools.values():
            pool.tracer = tracer

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per route: connections open, idle, active; created, reused, closed, expired..."""
        out = {}
        for route, pool in self.pools.items():
            s = pool.stats
            out[str(route)] = {
                **pool.counts,
                "created": s.created,
                "reused": s.reused,
                "closed_by_server_idle": s.closed_by_server_idle,
                "expired": s.expired,
                "retries": s.retries,
                "learned_idle_timeout": s.learned_idle_timeout,
                "learned_max_requests": s.learned_max_requests,
                "suspected_max_requests": s.suspected_max_requests,
                "close_reasons": dict(s.close_reasons),
                "passed_over": dict(s.passed_over),
                "dns_lookups": self.names.lookups.get(route.origin.host, 0),
            }
        return out

    def close(self) -> None:
        """Close every connection and fail every waiting request."""
        self.closed = True
        self.cap.close()
        self.names.close()
        for pool in self.pools.values():
            pool.close()

    def _proxy_for(self, origin: Origin) -> Proxy | None:
        if self._proxy is not None:
            return self._proxy
        if self._env_proxies is None:
            return None
        return self._env_proxies.for_origin(origin)

    def _proxies(self) -> list[Proxy]:
        """Every proxy this client may use (the dialer tells a proxy's origin by it)."""
        found = [] if self._env_proxies is None else self._env_proxies.proxies
        return found if self._proxy is None else [self._proxy, *found]

    def _pools_now(self) -> list[Pool[Connection]]:
        return list(self.pools.values())

    def _proxy_tls_context(self) -> ssllib.SSLContext:
        if self._proxy_ssl is None:
            self._proxy_ssl = ssllib.create_default_context()
        return self._proxy_ssl

    def _make_connection(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> Connection:
        lent = lends_buffers(loop, tls=origin.scheme == "https")
        kind = BufferedConnection if lent else Connection
        return kind(
            origin,
            loop,
            max_head_size=self._max_head_size,
            write_timeout=self._write_timeout,
            tcp_keepalive=self._tcp_keepalive,
        )

    def _tls_context(self) -> ssllib.SSLContext:
        if self._ssl_context is None:
            option = self._ssl_option
            if isinstance(option, ssllib.SSLContext):
                context = option
            elif option is False:
                context = ssllib.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssllib.CERT_NONE
            else:
                context = ssllib.create_default_context()
            self._ssl_context = context
        return self._ssl_context
