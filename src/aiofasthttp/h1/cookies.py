"""Cookies: the client's jar, on the standard library's ``http.cookiejar``.

Why the standard library: it is what requests and httpx build on, it is kept
with CPython, it parses the ``Set-Cookie`` forms servers really send (Netscape
dates, ``Max-Age``, unquoted commas in ``Expires``), and its ``CookieJar`` is
the type users already hold: a ``MozillaCookieJar`` loads and saves the
``cookies.txt`` files curl's ``-b``/``-c`` read and write. It adds no
dependency.

It wants ``urllib`` request and response objects; :class:`_RequestView` and
:class:`_ResponseView` are the few methods it reads of them. Its default policy
departs from RFC 6265 where :class:`RFC6265Policy` puts it right:

- a cookie set without ``Domain`` is host-only: sent back to that host alone,
  not its subdomains;
- an IP address is matched exactly, never as a suffix: a ``Domain=0.0.1``
  cookie from 127.0.0.1 is refused, and a cookie for an IP address is sent to
  that address only;
- a ``Domain`` must domain-match the host that set it, and must hold a dot
  unless it is that host (``Domain=com`` is refused; there is no public-suffix
  list, as in the standard library);
- a ``Secure`` cookie is taken from https responses only (RFC 6265bis, as
  every browser does), and sent over https only;
- a ``Set-Cookie`` holding a control character is ignored (RFC 6265bis).

Cookies of equal path length go out in the jar's order (by domain), not
strictly by creation time as RFC 6265 5.4 suggests; servers do not rely on it.

The client calls two methods per request, both cheap on an empty jar:
``cookie_header_for(url)`` before encoding the head, and
``store_from_response(url, raw_headers)`` when the head arrives.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from http.cookiejar import Cookie, CookieJar, CookiePolicy, DefaultCookiePolicy
from urllib.parse import urlsplit
from urllib.request import Request

from ..errors import InvalidHeader

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# A cookie value may not hold what would end it or split the head: ";" and controls.
_BAD_VALUE = re.compile(r"[;\x00-\x08\x0a-\x1f\x7f]")
# Second-level labels under which a two-letter country domain is a public suffix
# (the standard library's own short list: "co.uk", "com.au", ...).
_PUBLIC_SECOND_LEVEL = frozenset(
    {"co", "ac", "com", "edu", "org", "net", "gov", "mil", "int", "aero", "biz", "cat"}
    | {"coop", "info", "jobs", "mobi", "museum", "name", "pro", "travel", "eu"}
)
_PORT = re.compile(r":\d+$")


def _hosts(request: Request) -> tuple[str, str]:
    """The request's host, and the name ``http.cookiejar`` files host-only cookies
    under (its ``eff_request_host``: a dotless host gets ".local")."""
    host = _PORT.sub("", urlsplit(request.get_full_url()).netloc, count=1).lower()
    return host, host if "." in host else host + ".local"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def domain_matches(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: ``host`` is ``domain`` or a name under it; IP addresses exactly."""
    host, domain = host.lower(), domain.lower().lstrip(".")
    if host == domain:
        return True
    if _is_ip(host) or _is_ip(domain):
        return False
    return host.endswith("." + domain)


def _is_public_suffix(domain: str) -> bool:
    labels = domain.lstrip(".").split(".")
    if len(labels) < 2:
        return True
    return len(labels) == 2 and len(labels[1]) == 2 and labels[0] in _PUBLIC_SECOND_LEVEL


class RFC6265Policy(DefaultCookiePolicy):
    """The standard library's policy, held to RFC 6265's domain and Secure rules."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("rfc2965", False)
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def set_ok(self, cookie: Cookie, request: Request) -> bool:
        if cookie.secure and getattr(request, "type", "") != "https":
            return False
        if _BAD_VALUE.search(cookie.name) or _BAD_VALUE.search(cookie.value or ""):
            return False  # RFC 6265bis: a control character voids the whole Set-Cookie
        return bool(super().set_ok(cookie, request))

    def set_ok_domain(self, cookie: Cookie, request: Request) -> bool:
        if self.is_blocked(cookie.domain) or self.is_not_allowed(cookie.domain):
            return False
        if not cookie.domain_specified:
            return True  # host-only: stored under the host that set it
        req_host, _ = _hosts(request)
        domain = cookie.domain.lstrip(".")
        if not domain or not domain_matches(req_host, domain):
            return False
        return domain == req_host or not _is_public_suffix(domain)

    def return_ok_domain(self, cookie: Cookie, request: Request) -> bool:
        req_host, erhn = _hosts(request)
        if not cookie.domain_specified:
            return cookie.domain == erhn  # host-only: that host exactly
        return domain_matches(req_host, cookie.domain)

    def domain_return_ok(self, domain: str, request: Request) -> bool:
        # The jar's first sieve, by the key its cookies are filed under.
        req_host, erhn = _hosts(request)
        if domain != erhn and not domain_matches(req_host, domain):
            return False
        return not (self.is_blocked(domain) or self.is_not_allowed(domain))


class _RequestView:
    """The part of a ``urllib.request.Request`` that ``http.cookiejar`` reads."""

    unverifiable = False

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if "@" in parts.netloc:  # the jar reads the host from the URL: no userinfo
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
            url = parts.geturl()
        self._url = url
        self.type = parts.scheme.lower()
        self.host = parts.netloc
        self.origin_req_host = (parts.hostname or "").lower()
        self.headers: dict[str, str] = {}

    def get_full_url(self) -> str:
        return self._url

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.capitalize(), default)

    def has_header(self, name: str) -> bool:
        return name.capitalize() in self.headers

    def add_unredirected_header(self, name: str, value: str) -> None:
        self.headers[name.capitalize()] = value

    def is_unverifiable(self) -> bool:
        return False


class _ResponseView:
    """The part of a ``urllib`` response that ``http.cookiejar`` reads: its Set-Cookie fields."""

    def __init__(self, set_cookies: list[str]) -> None:
        self._set_cookies = set_cookies

    def info(self) -> _ResponseView:
        return self

    def get_all(self, name: str, default: list[str]) -> list[str]:
        return self._set_cookies if name.lower() == "set-cookie" else default


def check_cookie(name: str, value: str) -> None:
    """Refuse a cookie that cannot be sent: a non-token name, or ``;`` or a control in the value."""
    if not _TOKEN.match(name):
        raise InvalidHeader(f"invalid cookie name {name!r}")
    if _BAD_VALUE.search(value):
        raise InvalidHeader(f"invalid character (';' or a control) in the value of cookie {name!r}")


_SET_COOKIE = (b"set-cookie", "set-cookie")


def _set_cookie_values(header_pairs: Iterable[tuple[bytes | str, bytes | str]]) -> list[str]:
    return [
        value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in header_pairs
        if len(name) == 10 and name.lower() in _SET_COOKIE
    ]


class TrackedCookieJar(CookieJar):
    """A ``CookieJar`` that counts its changes, so :class:`Cookies` may keep the
    ``Cookie`` values it worked out until the jar changes or the second turns.

    (``http.cookiejar`` judges expiry in whole seconds, and works a value out in
    tens of microseconds: more than a whole plain request costs here.)
    Changing a stored ``Cookie`` object in place is not seen: set it again.
    """

    generation = 0

    def set_cookie(self, cookie: Cookie) -> None:
        super().set_cookie(cookie)
        self.generation += 1

    def clear(
        self, domain: str | None = None, path: str | None = None, name: str | None = None
    ) -> None:
        if domain is None:
            # Emptied in place, not replaced: Cookies.stored keeps this very dict.
            with self._cookies_lock:  # type: ignore[attr-defined]
                self._cookies.clear()  # type: ignore[attr-defined]
        else:
            super().clear(domain, path, name)
        self.generation += 1

    def set_policy(self, policy: CookiePolicy) -> None:
        super().set_policy(policy)
        self.generation += 1


class Cookies:
    """The client's cookie jar: ``client.cookies``.

    Wraps an ``http.cookiejar.CookieJar`` (``jar``): by default a new
    :class:`TrackedCookieJar` with :class:`RFC6265Policy`; a jar you pass (a
    ``MozillaCookieJar`` to load or save a cookies.txt file, say) is used as
    given, policy included (its ``Cookie`` values are then worked out afresh
    for every request, as the jar cannot say when it changed).

    ::

        client.cookies.set("session", "abc", domain="api.example.com")
        client.cookies.get("session")           # "abc"
        [c.name for c in client.cookies]        # the http.cookiejar.Cookie objects
        client.cookies.clear()
    """

    _KEPT_VALUES = 512  # Cookie values kept by URL; past this they are all dropped

    def __init__(self, jar: CookieJar | None = None) -> None:
        self.jar = jar if jar is not None else TrackedCookieJar(RFC6265Policy())
        # Empty (falsy) when the jar surely holds no cookie: the client's one test per
        # request. A TrackedCookieJar's own dict of cookies (never replaced, see its
        # clear); for another jar, always true: its cookies are worked out each time.
        tracked = isinstance(self.jar, TrackedCookieJar)
        self.stored: object = self.jar._cookies if tracked else True  # type: ignore[attr-defined]
        # url -> (jar generation, second, Cookie value); only for a TrackedCookieJar.
        self._values: dict[str, tuple[int, int, str | None]] = {}

    # -- what the client calls ------------------------------------------------

    @property
    def is_empty(self) -> bool:
        """True when the jar surely holds no cookie: one test, for the hot path.
        (False may still mean empty, after cookies were cleared one by one.)"""
        return not getattr(self.jar, "_cookies", True)

    def cookie_header_for(self, url: str, extra: Mapping[str, str] | None = None) -> str | None:
        """The ``Cookie`` value to send to ``url``, or None when there is none.

        ``extra`` are cookies for this request only: they are checked, replace
        the jar's of the same name, and are not stored.
        """
        header = None
        # An empty jar costs one test (its cookies dict is empty until the first one).
        if not self.is_empty:
            header = self._jar_value(url)
        if not extra:
            return header
        return _merge(header, extra)

    def _jar_value(self, url: str) -> str | None:
        jar = self.jar
        if not isinstance(jar, TrackedCookieJar):
            return _worked_out(jar, url)
        second = int(time.time())
        kept = self._values.get(url)
        if kept is not None and kept[0] == jar.generation and kept[1] == second:
            return kept[2]
        header = _worked_out(jar, url)  # may drop expired cookies: read the generation after
        if len(self._values) >= self._KEPT_VALUES:
            self._values.clear()
        self._values[url] = (jar.generation, second, header)
        return header

    def store_from_response(
        self, url: str, header_pairs: Iterable[tuple[bytes | str, bytes | str]]
    ) -> None:
        """Store the cookies a response to ``url`` set (its ``Set-Cookie`` fields).

        ``header_pairs`` are the head's fields as received (``resp.raw_headers``)
        or as text. Cookies the policy refuses, or that do not parse, are dropped.
        """
        values = _set_cookie_values(header_pairs)
        if values:
            self.jar.extract_cookies(_ResponseView(values), _RequestView(url))  # type: ignore[arg-type]

    # -- what users call ------------------------------------------------------

    def set(
        self,
        name: str,
        value: str,
        domain: str,
        path: str = "/",
        *,
        secure: bool = False,
        http_only: bool = False,
        expires: float | None = None,
        host_only: bool = False,
    ) -> None:
        """Set a cookie for ``domain`` and its subdomains (for that host alone if
        ``host_only``, or when ``domain`` is an IP address). ``expires`` is a Unix
        time; without it the cookie lasts as long as the jar."""
        check_cookie(name, value)
        domain = domain.lower().lstrip(".")
        if not domain:
            raise InvalidHeader(f"cookie {name!r}: a domain is needed")
        host_only = host_only or _is_ip(domain) or "." not in domain
        if host_only:
            # Filed as the jar files what a response to that host sets.
            _, stored = _hosts(_RequestView(f"http://{domain}/"))  # type: ignore[arg-type]
        else:
            stored = "." + domain
        self.jar.set_cookie(
            Cookie(
                version=0,
                name=name,
                value=value,
                port=None,
                port_specified=False,
                domain=stored,
                domain_specified=not host_only,
                domain_initial_dot=not host_only,
                path=path,
                path_specified=True,
                secure=secure,
                expires=None if expires is None else int(expires),
                discard=expires is None,
                comment=None,
                comment_url=None,
                rest={"HttpOnly": ""} if http_only else {},
            )
        )

    def get(self, name: str, domain: str | None = None, path: str | None = None) -> str | None:
        """The value of the cookie ``name`` (narrowed by domain and path), or None.

        Raises ``LookupError`` when several such cookies hold different values.
        """
        values = {c.value for c in self._matching(name, domain, path)}
        if len(values) > 1:
            raise LookupError(f"several cookies named {name!r}: pass domain= or path=")
        return values.pop() if values else None

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        for cookie in list(self._matching(name, domain, path)):
            self.jar.clear(cookie.domain, cookie.path, cookie.name)

    def clear(self, domain: str | None = None) -> None:
        """Forget every cookie, or those of ``domain`` (as filed: ``.example.com``
        for a domain cookie, ``example.com`` for a host-only one)."""
        if domain is None:
            self.jar.clear()
        else:
            self.jar.clear(domain)

    def clear_expired(self) -> None:
        self.jar.clear_expired_cookies()

    def items(self) -> list[tuple[str, str | None]]:
        return [(c.name, c.value) for c in self.jar]

    def _matching(self, name: str, domain: str | None, path: str | None) -> Iterator[Cookie]:
        bare = None if domain is None else domain.lower().lstrip(".")
        for cookie in self.jar:
            if cookie.name != name or (path is not None and cookie.path != path):
                continue
            if bare is None or cookie.domain.lstrip(".") == bare:
                yield cookie

    def __iter__(self) -> Iterator[Cookie]:
        return iter(self.jar)

    def __len__(self) -> int:
        return len(self.jar)

    def __bool__(self) -> bool:
        return len(self.jar) > 0

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.jar)

    def __repr__(self) -> str:
        inside = ", ".join(f"{c.name}={c.value} for {c.domain}{c.path}" for c in self.jar)
        return f"<Cookies [{inside}]>"


def cookie_header(
    jar: Cookies | None, url: str, extra: Mapping[str, str] | None = None
) -> str | None:
    """The ``Cookie`` value for a request: the jar's (if cookies are on) and ``extra``."""
    if jar is not None:
        return jar.cookie_header_for(url, extra)
    return _merge(None, extra) if extra else None


def _worked_out(jar: CookieJar, url: str) -> str | None:
    view = _RequestView(url)
    jar.add_cookie_header(view)  # type: ignore[arg-type]
    return view.headers.get("Cookie")


def _merge(header: str | None, extra: Mapping[str, str]) -> str:
    """The jar's Cookie value with ``extra`` put in, replacing cookies of the same name."""
    for name, value in extra.items():
        check_cookie(name, value)
    kept = []
    if header:
        # Cookie values never hold ";": "; " only ever separates cookies.
        kept = [p for p in header.split("; ") if p.partition("=")[0] not in extra]
    kept.extend(f"{name}={value}" for name, value in extra.items())
    return "; ".join(kept)


def coerce_cookies(value: bool | CookieJar | Cookies | None) -> Cookies | None:
    """The ``Client(cookies=...)`` option as a jar, or None when cookies are off."""
    if value is None or value is False:
        return None
    if value is True:
        return Cookies()
    if isinstance(value, Cookies):
        return value
    if isinstance(value, CookieJar):
        return Cookies(value)
    raise TypeError(
        f"cookies= takes True, False, an http.cookiejar.CookieJar or Cookies, "
        f"not {type(value).__name__}"
    )
