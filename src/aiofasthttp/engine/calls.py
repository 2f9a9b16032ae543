"""A request's arguments as given, on their way to the wire: the per-call value types.

What request() and stream() gather from their keywords (``Call``, ``Extras``), a
request's own timeouts, and one hop of a chain of redirects (``Hop``).
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookiejar import CookieJar
from typing import Any, NamedTuple, TypedDict

from ..h1.auth import Auth
from ..h1.cookies import Cookies
from ..h1.headers import HeadersLike
from ..h1.multipart import FilesArg
from ..h1.request import Body, Content, QueryParams, add_params
from ..h1.url import join_url
from .hooks import OutgoingRequest

TIMEOUT_NAMES = ("connect_timeout", "read_timeout", "write_timeout", "pool_timeout", "head_timeout")


class RequestTimeouts(TypedDict, total=False):
    """A request's own timeouts, in seconds (None: no limit); each replaces the client's."""

    connect_timeout: float | None
    read_timeout: float | None
    write_timeout: float | None
    pool_timeout: float | None
    head_timeout: float | None  # from the request written to its response head


AuthArg = Auth | tuple[str, str]
CookieJarArg = bool | CookieJar | Cookies | None


class Extras(NamedTuple):
    """A request's everyday options: multipart files, its own cookies, its auth."""

    files: FilesArg | None = None
    cookies: Mapping[str, str] | None = None
    auth: AuthArg | None = None


NO_EXTRAS = Extras()


class Call(NamedTuple):
    """A request's arguments as given: what hooks see is made from them."""

    method: str
    url: str
    params: QueryParams | None
    headers: HeadersLike | None
    content: Content | None
    json: Any
    data: Any
    connection_close: bool

    def outgoing(self, base_url: str | None) -> OutgoingRequest:
        url = add_params(join_url(base_url, self.url), self.params)
        return OutgoingRequest(self.method, url, self.headers)

    def built(self, outgoing: OutgoingRequest) -> Call:
        """The arguments to build the request with, as the hooks left it."""
        pairs = outgoing.headers.pairs()
        return self._replace(method=outgoing.method, url=outgoing.url, params=None, headers=pairs)


class Hop(NamedTuple):
    """One request of a chain of redirects, before its cookies and auth."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: Body
    connection_close: bool


def with_cookie(headers: list[tuple[str, str]], value: str) -> list[tuple[str, str]]:
    """``headers`` with the jar's cookies: after a Cookie field the user set by hand
    (one field, as RFC 6265 5.4 asks), or as a new one."""
    for i, (name, given) in enumerate(headers):
        if name.lower() == "cookie":
            return [*headers[:i], (name, f"{given}; {value}"), *headers[i + 1 :]]
    return [*headers, ("Cookie", value)]
