"""MockRouter: routes of method and URL, each answered with a MockResponse.

::

    router = MockRouter()
    router.get("http://api/users", params={"page": "2"}).respond(200, json=[...])
    async with router.client() as client:
        ...
    router.assert_all_called()

A request is matched against the routes in the order they were added; the
first whose method, URL (scheme, host, port, path) and, when given, query
parameters and headers all match answers it. A request no route matches fails
with :class:`UnmatchedRequest`, which names it and every route.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..engine.client import Client
from .transport import MockResponse, MockTransport
from .wire import MockRequest

Responder = Callable[[MockRequest], "MockResponse | Awaitable[MockResponse]"]


class UnmatchedRequest(AssertionError):
    """A request that no route of a MockRouter matches (a failed test, hence AssertionError)."""


def _split(url: str) -> tuple[str, str, str, list[tuple[str, str]]]:
    """(scheme, host:port with the default port dropped, path, query pairs)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return scheme, host, parts.path or "/", parse_qsl(parts.query, keep_blank_values=True)


class Route:
    """One route: what it matches, what it answers, and the requests it took."""

    def __init__(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        required: bool,
    ) -> None:
        self.method = method.upper()
        self.url = url
        scheme, host, path, query = _split(url)
        self._where = (scheme, host, path)
        # Parameters in the URL itself must match too; ``params`` adds to them.
        wanted = dict(query)
        wanted.update(params or {})
        self._params = wanted
        self._headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.required = required  # checked by assert_all_called()
        self.calls: list[MockRequest] = []
        self._answers: list[MockResponse | Responder] = []

    def respond(self, status: int = 200, **kwargs: Any) -> Route:
        """Answer with ``MockResponse(status, **kwargs)`` (every time, unless more follow)."""
        self._answers.append(MockResponse(status, **kwargs))
        return self

    def then(self, answer: MockResponse | Responder) -> Route:
        """Add an answer: a MockResponse or a function of the request (sync or async).

        Answers are used in turn, the last one again once the others are used:
        ``.then(MockResponse.reset()).respond(200)`` resets once, then answers 200.
        """
        self._answers.append(answer)
        return self

    def mock(self, side_effect: MockResponse | Responder) -> Route:
        """Alias of :meth:`then`, for those used to respx."""
        return self.then(side_effect)

    @property
    def called(self) -> bool:
        return bool(self.calls)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def matches(self, request: MockRequest) -> bool:
        if request.method != self.method:
            return False
        scheme, host, path, query = _split(request.url)
        if (scheme, host, path) != self._where:
            return False
        got = dict(query)
        if self._params and any(got.get(k) != v for k, v in self._params.items()):
            return False
        return all(request.headers.get(k) == v for k, v in self._headers.items())

    async def answer(self, request: MockRequest) -> MockResponse:
        self.calls.append(request)
        if not self._answers:
            return MockResponse(200)
        index = min(len(self.calls), len(self._answers)) - 1
        answer = self._answers[index]
        if isinstance(answer, MockResponse):
            return answer
        result = answer(request)
        if inspect.isawaitable(result):
            result = await result
        return result

    def __repr__(self) -> str:
        extra = ""
        if self._params:
            extra += f" params={self._params}"
        if self._headers:
            extra += f" headers={self._headers}"
        return f"<Route {self.method} {self.url}{extra} called={len(self.calls)}>"


class MockRouter:
    """Routes answering a client's requests; see the module docstring.

    ``assert_all_called`` (run at the end of a test by the pytest fixture) fails
    if a route added with ``required=True`` (the default) was never called.
    """

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.transport = MockTransport(self._handle)
        self.unmatched: list[MockRequest] = []

    def route(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        required: bool = True,
    ) -> Route:
        route = Route(method, url, params, headers, required)
        self.routes.append(route)
        return route

    def get(self, url: str, **kwargs: Any) -> Route:
        return self.route("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Route:
        return self.route("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> Route:
        return self.route("OPTIONS", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Route:
        return self.route("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Route:
        return self.route("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Route:
        return self.route("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Route:
        return self.route("DELETE", url, **kwargs)

    def client(self, **options: Any) -> Client:
        """A Client whose requests these routes answer (``options`` as Client takes)."""
        return Client(transport=self.transport, **options)

    @property
    def requests(self) -> list[MockRequest]:
        """Every request received, matched or not, in order."""
        return self.transport.requests

    async def _handle(self, request: MockRequest) -> MockResponse:
        for route in self.routes:
            if route.matches(request):
                return await route.answer(request)
        self.unmatched.append(request)
        raise UnmatchedRequest(self._unmatched_message(request))

    def _unmatched_message(self, request: MockRequest) -> str:
        routes = "\n".join(f"  {route!r}" for route in self.routes) or "  (none)"
        return (
            f"no route matches the request {request.method} {request.url}; the routes are:\n"
            f"{routes}"
        )

    def assert_all_called(self) -> None:
        """Fail if a required route was never called, or a request matched no route."""
        problems = [f"  {r!r}" for r in self.routes if r.required and not r.called]
        if problems:
            raise AssertionError(
                "routes never called (pass required=False to a route that may not be):\n"
                + "\n".join(problems)
            )
        if self.unmatched:
            raise UnmatchedRequest(
                "requests matched no route:\n"
                + "\n".join(f"  {r.method} {r.url}" for r in self.unmatched)
            )

    def reset(self) -> None:
        """Forget every route and request."""
        self.routes.clear()
        self.unmatched.clear()
        self.transport.requests.clear()
