"""Event hooks: async callables that see a request before its head is encoded, and a
response before the caller does.

``Client(event_hooks={"request": [sign], "response": [check]})``. A request hook
gets an :class:`OutgoingRequest` and may add, change or remove its headers
(signing, tracing headers); a response hook gets the :class:`Response` and may
raise, which the caller then sees instead of the response. Hooks run once per
request sent (each redirect hop is one), not once per attempt: a replay resends
the head the hooks shaped.

Instrumentation (OpenTelemetry) uses a second, internal kind of listener, an
:class:`Observer`, which also hears of failures. A client with neither keeps
``None`` in place of its hooks, so a plain request pays one ``is None`` test.
"""

from __future__ import annotations

from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from typing import TYPE_CHECKING, Any, Protocol

from ..h1.headers import HeadersLike
from ..h1.request import header_items

if TYPE_CHECKING:
    from ..h1.response import Response

HOOK_KINDS = ("request", "response")
# Fields a hook may not just append to an encoded head: they frame the body or the
# connection, or carry credentials (with the client's default fields, OutgoingRequest.appended).
FRAMING_FIELDS = frozenset(
    {
        "host",
        "authorization",
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "proxy-authorization",
        "idempotency-key",
    }
)


class RequestHeaders(MutableMapping[str, str]):
    """A request's own header fields, in order; names match whatever their case.

    Setting a name replaces every field of that name (in the first one's place);
    ``add()`` appends another field of the same name.
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __getitem__(self, name: str) -> str:
        values = [v for n, v in self._pairs if n.lower() == name.lower()]
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __setitem__(self, name: str, value: str) -> None:
        lower = name.lower()
        for i, (n, _) in enumerate(self._pairs):
            if n.lower() == lower:
                self._pairs[i] = (name, value)
                self._pairs[i + 1 :] = [p for p in self._pairs[i + 1 :] if p[0].lower() != lower]
                return
        self._pairs.append((name, value))

    def __delitem__(self, name: str) -> None:
        kept = [p for p in self._pairs if p[0].lower() != name.lower()]
        if len(kept) == len(self._pairs):
            raise KeyError(name)
        self._pairs[:] = kept

    def __iter__(self) -> Iterator[str]:
        seen = set()
        for name, _ in self._pairs:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len({n.lower() for n, _ in self._pairs})

    def add(self, name: str, value: str) -> None:
        self._pairs.append((name, value))

    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"RequestHeaders({self._pairs!r})"


class OutgoingRequest:
    """What a request hook sees: the method, the full URL and the request's own headers.

    The client's default headers (User-Agent, Accept, Accept-Encoding) and Host are
    added when the head is encoded, unless a hook set them here. ``extensions`` is
    a dict for hooks and observers to keep their own state on the request.
    """

    __slots__ = ("extensions", "given", "given_method", "given_url", "headers", "method", "url")

    def __init__(self, method: str, url: str, headers: HeadersLike | None) -> None:
        self.method = self.given_method = method.upper()
        self.url = self.given_url = url
        self.given = header_items(headers)  # as the caller gave them, to see what hooks changed
        self.headers = RequestHeaders(list(self.given))
        self.extensions: dict[str, Any] = {}

    def appended(self, taken: Collection[str]) -> list[tuple[str, str]] | None:
        """The fields the hooks appended, when that is all they did and none of them
        names a field in ``taken`` (lower case) or one the caller gave; else None."""
        pairs = self.headers.pairs()
        given = self.given
        added = pairs[len(given) :]
        if (
            self.method == self.given_method
            and self.url == self.given_url
            and pairs[: len(given)] == given
            and not any(n.lower() in taken for n, _ in added)
            and not (given and {n.lower() for n, _ in added} & {n.lower() for n, _ in given})
        ):
            return added
        return None

    def __repr__(self) -> str:
        return f"<OutgoingRequest {self.method} {self.url}>"


RequestHook = Callable[[OutgoingRequest], Awaitable[None]]
ResponseHook = Callable[["Response"], Awaitable[None]]


class Observer(Protocol):
    """Instrumentation's view of a request: its start, its response, or its failure.

    ``on_request`` runs before the request hooks, ``on_response`` after the
    response hooks (once per call, redirects included), ``on_error`` when
    anything after ``on_request`` raised, the response hooks included.
    """

    def on_request(self, request: OutgoingRequest) -> None: ...
    def on_response(self, request: OutgoingRequest, response: Response) -> None: ...
    def on_error(self, request: OutgoingRequest, error: BaseException) -> None: ...


class EventHooks:
    """The hooks and observers of one client (immutable: the client replaces it)."""

    __slots__ = ("observers", "request", "response")

    def __init__(
        self,
        request: Iterable[RequestHook] = (),
        response: Iterable[ResponseHook] = (),
        observers: Iterable[Observer] = (),
    ) -> None:
        self.request = tuple(request)
        self.response = tuple(response)
        self.observers = tuple(observers)

    @property
    def empty(self) -> bool:
        return not (self.request or self.response or self.observers)

    async def before(self, request: OutgoingRequest) -> None:
        for hook in self.request:
            await hook(request)

    async def after(self, response: Response) -> None:
        for hook in self.response:
            await hook(response)

    def started(self, request: OutgoingRequest) -> None:
        for observer in self.observers:
            observer.on_request(request)

    def answered(self, request: OutgoingRequest, response: Response) -> None:
        for observer in self.observers:
            observer.on_response(request, response)

    def failed(self, request: OutgoingRequest, error: BaseException) -> None:
        for observer in self.observers:
            observer.on_error(request, error)


def make_hooks(
    event_hooks: Mapping[str, Iterable[Any]] | None, observers: Iterable[Observer] = ()
) -> EventHooks | None:
    """The client's hooks, or None when there are none (the zero-cost case)."""
    given = dict(event_hooks or {})
    unknown = set(given) - set(HOOK_KINDS)
    if unknown:
        raise ValueError(
            f"unknown event hook kind(s) {sorted(unknown)}: use 'request' and 'response'"
        )
    for kind, listed in given.items():
        for hook in listed:
            if not callable(hook):
                raise TypeError(f"event hook {hook!r} ({kind}) is not callable")
    hooks = EventHooks(given.get("request", ()), given.get("response", ()), observers)
    return None if hooks.empty else hooks
