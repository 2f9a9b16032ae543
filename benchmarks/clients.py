"""The clients under test, each behind the same tiny adapter.

An adapter is opened inside the worker's event loop with a pool sized to the
cell's concurrency, gives one zero-argument coroutine function per route that
returns ``(status, body length)`` of a fully read response, and is closed at
the end. Each uses the client's ordinary, documented API with its defaults,
apart from the pool size (and a timeout long enough never to fire first).
Libraries are imported only in the worker that measures them. For the HTTPS
cells each is handed a verifying ``ssl.SSLContext`` that trusts the run's CA,
through its own documented option for a custom context.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .routes import Route

Call = Callable[[], Awaitable[tuple[int, int]]]
TIMEOUT = 30.0


@dataclass(frozen=True)
class ClientInfo:
    name: str
    modules: tuple[str, ...]  # what must be importable
    dist: str  # the distribution whose version is reported


CLIENTS: dict[str, ClientInfo] = {
    "ceiling": ClientInfo("ceiling", ("httptools",), "httptools"),
    "aiofasthttp": ClientInfo("aiofasthttp", ("aiofasthttp",), "aiofasthttp"),
    "aiohttp": ClientInfo("aiohttp", ("aiohttp",), "aiohttp"),
    "httpx": ClientInfo("httpx", ("httpx",), "httpx"),
    # httpx's API on aiofasthttp's engine (aiofasthttp.integrations.httpx.AsyncTransport).
    "httpx+aiofasthttp": ClientInfo("httpx+aiofasthttp", ("httpx", "aiofasthttp"), "httpx"),
    "aiosonic": ClientInfo("aiosonic", ("aiosonic",), "aiosonic"),
}


def installed(name: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in CLIENTS[name].modules)


def version(name: str) -> str | None:
    try:
        return importlib.metadata.version(CLIENTS[name].dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class Adapter:
    def call_for(self, route: Route) -> Call:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def extra(self) -> dict[str, object]:
        """Client-specific numbers for the JSON (pool statistics and the like)."""
        return {}


class CeilingAdapter(Adapter):
    def __init__(self, base_url: str, conns: int, tls: ssl.SSLContext | None = None) -> None:
        from .ceiling import CeilingClient

        parts = urlsplit(base_url)
        self._netloc = parts.netloc
        self._client = CeilingClient(parts.hostname or "127.0.0.1", parts.port or 80, tls)

    def call_for(self, route: Route) -> Call:
        from .ceiling import encode_request

        data = encode_request(route, self._netloc)
        send = self._client.send

        async def call() -> tuple[int, int]:
            return await send(data)

        return call

    async def aclose(self) -> None:
        await self._client.aclose()


class AiofasthttpAdapter(Adapter):
    def __init__(self, base_url: str, conns: int, tls: ssl.SSLContext | None = None) -> None:
        import aiofasthttp

        self._base = base_url
        self._client = aiofasthttp.Client(max_conns_per_host=conns, ssl=tls)

    def call_for(self, route: Route) -> Call:
        client, url, body = self._client, self._base + route.path, route.body
        if body is None:

            async def get() -> tuple[int, int]:
                resp = await client.get(url)
                return resp.status, len(resp.content)

            return get

        async def post() -> tuple[int, int]:
            resp = await client.post(url, content=body)
            return resp.status, len(resp.content)

        return post

    async def aclose(self) -> None:
        await self._client.aclose()

    def extra(self) -> dict[str, object]:
        import aiofasthttp.parser

        return {"parser": aiofasthttp.parser.IMPLEMENTATION, "stats": self._client.stats()}


class AiohttpAdapter(Adapter):
    def __init__(self, base_url: str, conns: int, tls: ssl.SSLContext | None = None) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=conns, limit_per_host=conns, ssl=tls or True)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        self._base = base_url
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    def call_for(self, route: Route) -> Call:
        session, url, body = self._session, self._base + route.path, route.body

        async def call() -> tuple[int, int]:
            async with session.request(route.method, url, data=body) as resp:
                return resp.status, len(await resp.read())

        return call

    async def aclose(self) -> None:
        await self._session.close()


class HttpxAdapter(Adapter):
    def __init__(self, base_url: str, conns: int, tls: ssl.SSLContext | None = None) -> None:
        import httpx

        limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
        self._base = base_url
        options = self.options(limits, tls)
        self._client = httpx.AsyncClient(limits=limits, timeout=TIMEOUT, **options)

    def options(self, limits: Any, tls: ssl.SSLContext | None) -> dict[str, Any]:
        return {} if tls is None else {"verify": tls}

    def call_for(self, route: Route) -> Call:
        client, url, body = self._client, self._base + route.path, route.body

        async def call() -> tuple[int, int]:
            resp = await client.request(route.method, url, content=body)
            return resp.status_code, len(resp.content)

        return call

    async def aclose(self) -> None:
        await self._client.aclose()


class HttpxOnAiofasthttpAdapter(HttpxAdapter):
    """The same httpx client, its transport aiofasthttp's (the limits mapped onto it)."""

    def options(self, limits: Any, tls: ssl.SSLContext | None) -> dict[str, Any]:
        from aiofasthttp.integrations.httpx import AsyncTransport

        return {"transport": AsyncTransport(limits=limits, ssl=tls)}

    def extra(self) -> dict[str, object]:
        return {"stats": self._client._transport.client.stats()}


class AiosonicAdapter(Adapter):
    def __init__(self, base_url: str, conns: int, tls: ssl.SSLContext | None = None) -> None:
        import aiosonic
        from aiosonic.pools import PoolConfig
        from aiosonic.timeout import Timeouts

        pools = {":default": PoolConfig(size=conns)}
        timeouts = Timeouts(request_timeout=TIMEOUT)
        self._base = base_url
        self._client = aiosonic.HTTPClient(aiosonic.TCPConnector(pools, timeouts=timeouts))
        self._tls = tls  # aiosonic takes its context per request

    def call_for(self, route: Route) -> Call:
        client, url, body, tls = self._client, self._base + route.path, route.body, self._tls
        if body is None:

            async def get() -> tuple[int, int]:
                resp = await client.get(url, ssl=tls)
                return resp.status_code, len(await resp.content())

            return get

        async def post() -> tuple[int, int]:
            resp = await client.post(url, data=body, ssl=tls)
            return resp.status_code, len(await resp.content())

        return post

    async def aclose(self) -> None:
        await self._client.aclose()


ADAPTERS: dict[str, type[Adapter]] = {
    "ceiling": CeilingAdapter,
    "aiofasthttp": AiofasthttpAdapter,
    "aiohttp": AiohttpAdapter,
    "httpx": HttpxAdapter,
    "httpx+aiofasthttp": HttpxOnAiofasthttpAdapter,
    "aiosonic": AiosonicAdapter,
}


def open_adapter(name: str, base_url: str, conns: int, ca_file: str | None = None) -> Adapter:
    """Build the adapter; call it inside the event loop that will run the requests.
    ``ca_file``: the run's CA, for an https ``base_url``."""
    tls = None
    if ca_file is not None:
        from .tls import client_context

        tls = client_context(ca_file)
    return ADAPTERS[name](base_url, conns, tls)
