"""Test doubles for code that uses the client.

``Client(transport=MockTransport(handler))`` answers every request with
``handler(request)`` through the engine's real parser; the pytest plugin
(:mod:`aiofasthttp.testing.plugin`, registered by entry point) gives the
``aiofasthttp_mock`` fixture, a :class:`MockRouter` of routes.
"""

from .router import MockRouter, Route, UnmatchedRequest
from .transport import MockResponse, MockTransport
from .wire import MockRequest

__all__ = [
    "MockRequest",
    "MockResponse",
    "MockRouter",
    "MockTransport",
    "Route",
    "UnmatchedRequest",
]
