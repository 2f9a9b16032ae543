"""Name resolution for dialling: a pluggable resolver behind a small cache.

Theory of operation
-------------------
A dial asks :meth:`DNSCache.resolve` for a host's addresses. An IP literal is
answered at once, with no lookup. A name is answered from the cache while its
answer is younger than ``dns_cache_ttl``; otherwise one lookup is started, and
every dial of the same host and port that arrives while it runs awaits that one
lookup (shielded: a dial cancelled half-way does not cancel its neighbours'
lookup). A failed lookup is remembered for ``FAILURE_TTL`` seconds, so a burst
of requests to a name that does not resolve asks the resolver once, not once per
request; ``dns_cache_ttl=0`` keeps nothing, answers or failures.

Why 10 s by default: ``getaddrinfo`` does not tell a record's own TTL, so the
cache must guess. fasthttp keeps answers a minute, aiohttp 10 s. Services move
behind DNS (a load balancer's record, a failover, a Kubernetes service): 10 s
follows such a move six times sooner than a minute, matches the client's default
``max_idle_conn_duration`` (the pool would reconnect about then anyway), and
one lookup per host every 10 s costs nothing a service would notice.

The resolver is any ``async (host, port) -> addresses`` callable: IP address
strings in the order to try. The default one is the system's, through
``loop.getaddrinfo`` (its thread pool), which honours /etc/hosts and nsswitch.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..errors import ClientClosedError, ConnectError, NameResolutionError
from .trace import Tracer

# An address as aiohappyeyeballs and getaddrinfo give it: family, type, proto,
# canonical name, sockaddr.
AddrInfo = tuple[int, int, int, str, tuple[Any, ...]]
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

DEFAULT_TTL = 10.0
# A name that did not resolve is not asked again for this long (at most the TTL).
FAILURE_TTL = 2.0
# Past this many names kept, expired answers are dropped; past it again, all.
MAX_ENTRIES = 4096


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's answer (getaddrinfo), addresses in the order it gave them."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


def literal_address(host: str) -> AddrInfo | None:
    """The address of an IP literal host, or None for a name (inet_pton: cheap, in C)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return _info(host, 0)
    return None


def _info(address: str, port: int) -> AddrInfo:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


class DNSCache:
    """Answers for dials: cached, shared while in flight, failures kept briefly."""

    def __init__(
        self,
        ttl: float | None = DEFAULT_TTL,
        resolver: Resolver | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if ttl is not None and ttl < 0:
            raise ValueError("dns_cache_ttl must be >= 0 (0 turns the cache off)")
        self.ttl = ttl or 0.0
        self.resolver: Resolver = resolver or system_resolver
        self.tracer = tracer
        self.lookups: dict[str, int] = {}  # host -> lookups made (not cache hits)
        self._answers: dict[tuple[str, int], tuple[float, list[AddrInfo] | ConnectError]] = {}
        self._inflight: dict[tuple[str, int], asyncio.Task[list[AddrInfo]]] = {}
        self._closed = False

    def known(self, host: str, port: int) -> list[AddrInfo] | None:
        """The addresses if no lookup is needed (an IP literal, a fresh answer), else None.

        A plain function: a dial to a known host awaits nothing here.
        """
        if literal_address(host) is not None:
            return [_info(host, port)]
        key = (host, port)
        kept = self._answers.get(key)
        if kept is not None:
            expires, answer = kept
            if asyncio.get_running_loop().time() < expires:
                if isinstance(answer, ConnectError):
                    raise NameResolutionError(f"{answer} (a failure remembered from just before)")
                return answer
            del self._answers[key]
        return None

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """The addresses to try for ``host``, in order; raises NameResolutionError."""
        found = self.known(host, port)
        if found is not None:
            return found
        key = (host, port)
        loop = asyncio.get_running_loop()
        task = self._inflight.get(key)
        if task is None:
            task = loop.create_task(self._lookup(host, port))
            task.add_done_callback(_retrieve)
            self._inflight[key] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._closed and task.cancelled():  # stopped by close(), not by our caller
                raise ClientClosedError(
                    f"the client was closed while looking up {host!r}"
                ) from None
            raise

    async def _lookup(self, host: str, port: int) -> list[AddrInfo]:
        key = (host, port)
        loop = asyncio.get_running_loop()
        self.lookups[host] = self.lookups.get(host, 0) + 1
        started = loop.time()
        try:
            addresses = await self.resolver(host, port)
            if not addresses:
                raise OSError("the resolver returned no address")
            answer = [_address_info(a, port) for a in addresses]
        except Exception as exc:
            took = loop.time() - started
            error = NameResolutionError(
                f"cannot resolve host {host!r}: {_reason(exc)} (after {took:.3f} s)"
            )
            error.__cause__ = exc
            self._keep(key, error, min(FAILURE_TTL, self.ttl), loop)
            if self.tracer is not None:
                self.tracer("dns_failed", host=host, port=port, error=str(exc), seconds=took)
            raise error from exc
        finally:
            self._inflight.pop(key, None)
        self._keep(key, answer, self.ttl, loop)
        if self.tracer is not None:
            self.tracer(
                "dns_resolved",
                host=host,
                port=port,
                addresses=[str(a[4][0]) for a in answer],
                seconds=loop.time() - started,
            )
        return answer

    def _keep(
        self,
        key: tuple[str, int],
        answer: list[AddrInfo] | ConnectError,
        ttl: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        if ttl <= 0:
            return
        answers = self._answers
        now = loop.time()
        if len(answers) >= MAX_ENTRIES:
            for k in [k for k, (expires, _) in answers.items() if expires <= now]:
                del answers[k]
            if len(answers) >= MAX_ENTRIES:
                answers.clear()
        answers[key] = (now + ttl, answer)

    def clear(self) -> None:
        """Forget every answer (lookups in flight finish for their callers)."""
        self._answers.clear()

    def close(self) -> None:
        """Forget every answer and stop the lookups in flight (the client is closing)."""
        self._closed = True
        self._answers.clear()
        for task in list(self._inflight.values()):
            task.cancel()


def _address_info(address: object, port: int) -> AddrInfo:
    if not isinstance(address, str) or literal_address(address) is None:
        raise ValueError(f"the resolver returned {address!r}, not an IP address string")
    return _info(address, port)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retrieve(task: asyncio.Task[list[AddrInfo]]) -> None:
    """Mark a lookup's failure as seen: every dial that awaited it may have been cancelled."""
    if not task.cancelled():
        task.exception()
