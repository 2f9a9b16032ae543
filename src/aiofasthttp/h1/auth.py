"""Authentication: Basic, Digest (RFC 7616), and the flow interface every scheme implements.

An auth scheme is any object with an ``auth_flow(request)`` method that is an
async generator: it yields the :class:`AuthRequest` to send (adding its
headers), is sent back the response, and may yield again (answering a 401
with credentials, say). The client drives it with :func:`run_auth_flow`; the
last response is the caller's. Bearer tokens that expire, for example::

    class BearerAuth:
        def __init__(self, tokens):            # tokens.current(), await tokens.refresh()
            self.tokens = tokens

        async def auth_flow(self, request):
            request.set_header("Authorization", f"Bearer {self.tokens.current()}")
            response = yield request
            if response.status == 401:          # expired: refresh once and resend
                token = await self.tokens.refresh()
                request.set_header("Authorization", f"Bearer {token}")
                yield request

A flow that resends needs a body that can be sent again (bytes, a form, a
seekable file, a factory): a one-shot stream is refused on the second send.

Credentials belong to the origin they were given for: the client applies
``auth=`` on a redirect hop only when :func:`credentials_may_follow` says so.

No I/O here: the driver awaits the client's ``send``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable
from urllib.parse import quote, urlsplit

from ..errors import InvalidHeader, ProtocolError

# Rounds one flow may take before the driver calls it a loop: Digest needs at
# most three (a preemptive answer, a fresh one, one stale retry).
MAX_AUTH_ROUNDS = 8
_DEFAULT_PORTS = {"http": 80, "https": 443}


# -- the request a flow sees, and the response it is sent ---------------------------------


@dataclass
class AuthRequest:
    """A request before its head is encoded: what an auth flow may change."""

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get_header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        """Replace every field called ``name`` (any case) with this one."""
        lowered = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lowered]
        self.headers.append((name, value))

    @property
    def target(self) -> str:
        """The request-target the head will carry: path and query, percent-encoded
        with the same safe sets as ``request.resolve_url``."""
        parts = urlsplit(self.url)
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/?%:@!$&'()*+,;=-._~")
        return target


class HeaderLookup(Protocol):
    def get_all(self, name: str) -> list[str]: ...


class AuthResponse(Protocol):
    """What a flow reads of a response (``aiofasthttp.Response`` is one)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> HeaderLookup: ...


AuthFlow = AsyncGenerator[AuthRequest, AuthResponse]


@runtime_checkable
class Auth(Protocol):
    """An auth scheme: ``auth_flow`` yields requests and is sent their responses."""

    def auth_flow(self, request: AuthRequest) -> AuthFlow: ...


R = TypeVar("R", bound=AuthResponse)
_K = TypeVar("_K")
_V = TypeVar("_V")


async def run_auth_flow(
    auth: Auth,
    request: AuthRequest,
    send: Callable[[AuthRequest], Awaitable[R]],
    discard: Callable[[R], Awaitable[None]] | None = None,
) -> R:
    """Drive ``auth``'s flow: send each request it yields, hand it the response.

    Returns the last response. ``discard`` is awaited on each response the flow
    answered with another request (to read or release its body).
    """
    flow = auth.auth_flow(request)
    try:
        outgoing = await flow.__anext__()
        for _ in range(MAX_AUTH_ROUNDS):
            response = await send(outgoing)
            try:
                outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return response
            if discard is not None:
                await discard(response)
        raise RuntimeError(
            f"auth flow of {type(auth).__name__} sent more than "
            f"{MAX_AUTH_ROUNDS} requests for {request.method} {request.url}"
        )
    except StopAsyncIteration:
        raise RuntimeError(f"auth flow of {type(auth).__name__} yielded no request") from None
    finally:
        await flow.aclose()


# -- where credentials may go ---------------------------------------------------------------


def origin_of(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of ``url`` (default ports filled in, names lowercased)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


def credentials_may_follow(from_url: str, to_url: str) -> bool:
    """True when credentials given for ``from_url`` may go with a request to ``to_url``:
    only to the same origin (scheme, host and port). The redirect code applies
    ``auth=`` and per-request cookies on a hop only when this holds."""
    return origin_of(from_url) == origin_of(to_url)


def coerce_auth(value: Auth | tuple[str, str] | None) -> Auth | None:
    """The ``auth=`` option: a scheme, a ``(user, password)`` pair for Basic, or None."""
    if value is None or isinstance(value, Auth):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return BasicAuth(*value)
    raise TypeError(
        f"auth= takes BasicAuth, DigestAuth, a (user, password) tuple, or an object with "
        f"an auth_flow method, not {type(value).__name__}"
    )


# -- Basic ----------------------------------------------------------------------------------


class BasicAuth:
    """HTTP Basic (RFC 7617): the user and password, UTF-8, in every request."""

    __slots__ = ("header",)

    def __init__(self, username: str, password: str) -> None:
        if ":" in username:
            raise InvalidHeader("a Basic auth user name cannot contain ':' (RFC 7617)")
        pair = f"{username}:{password}".encode()
        # The header value is made once; a client may also add it without the flow.
        self.header = "Basic " + base64.b64encode(pair).decode("ascii")

    async def auth_flow(self, request: AuthRequest) -> AuthFlow:
        request.set_header("Authorization", self.header)
        yield request

    def __repr__(self) -> str:
        return "BasicAuth(...)"


# -- Digest ---------------------------------------------------------------------------------


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name)
    except ValueError:
        return False
    return True


# RFC 7616 algorithm names, strongest last; each also with "-sess".
_HASHES = {
    name: hashname
    for name, hashname in (("MD5", "md5"), ("SHA-256", "sha256"), ("SHA-512-256", "sha512_256"))
    if _hash_available(hashname)
}
_RANK = {name: rank for rank, name in enumerate(_HASHES)}

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# A quoted-string without controls (but HTAB): nothing from a challenge can split our head.
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*"'
_SCHEME = re.compile(rf"[\s,]*({_TOKEN})(?=\s|,|$)\s*")
_PARAM = re.compile(rf"({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*\s*(?=,|$)")
_ESCAPED = re.compile(r"\\(.)")
_SEPARATORS = re.compile(r"[\s,]*")


def parse_challenges(values: list[str]) -> list[tuple[str, dict[str, str]]]:
    """The challenges of ``WWW-Authenticate`` fields (RFC 9110 11.6.1): scheme
    (lowercased) and parameters (names lowercased, quoted values unquoted).

    Raises ProtocolError on a field that does not parse.
    """
    text = ", ".join(values)
    pos, end = 0, len(text)
    challenges: list[tuple[str, dict[str, str]]] = []
    while _SEPARATORS.match(text, pos).end() < end:  # type: ignore[union-attr]
        m = _SCHEME.match(text, pos)
        if m is None:
            raise ProtocolError(f"unparsable WWW-Authenticate {text!r}", reason="bad_challenge")
        params: dict[str, str] = {}
        challenges.append((m.group(1).lower(), params))
        pos = m.end()
        token68 = _TOKEN68.match(text, pos)
        if token68 is not None and not _PARAM.match(text, pos):
            pos = token68.end()
            continue
        pos = _parse_params(text, pos, params)
    return challenges


def _parse_params(text: str, pos: int, params: dict[str, str]) -> int:
    """Read ``name=value`` pairs into ``params``; stop where the next challenge begins."""
    while True:
        m = _PARAM.match(text, pos)
        if m is None:
            return pos
        name, value = m.group(1).lower(), m.group(2)
        if value.startswith('"'):
            value = _ESCAPED.sub(r"\1", value[1:-1])
        params[name] = value
        pos = m.end()
        following = _SEPARATORS.match(text, pos).end()  # type: ignore[union-attr]
        if following == pos or _PARAM.match(text, following) is None:
            return following  # the end, the next challenge's scheme, or junk
        pos = following


@dataclass(frozen=True)
class DigestChallenge:
    """One Digest challenge a client can answer (``qop`` is "auth" or None)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: str | None = None
    opaque: str | None = None
    stale: bool = False
    userhash: bool = False

    @property
    def sess(self) -> bool:
        return self.algorithm.upper().endswith("-SESS")

    @property
    def hash_name(self) -> str:
        base = self.algorithm.upper().removesuffix("-SESS")
        return _HASHES[base]


def choose_digest_challenge(values: list[str]) -> DigestChallenge | None:
    """The strongest Digest challenge this client can answer, or None.

    Challenges for other schemes, algorithms this Python's hashlib lacks, or
    only ``qop=auth-int`` (which hashes the body) are passed over.
    """
    best: DigestChallenge | None = None
    for scheme, params in parse_challenges(values):
        if scheme != "digest":
            continue
        challenge = _digest_challenge(params)
        if challenge is None:
            continue
        if best is None or _rank(challenge) > _rank(best):
            best = challenge
    return best


def _rank(challenge: DigestChallenge) -> int:
    return _RANK[challenge.algorithm.upper().removesuffix("-SESS")]


def _digest_challenge(params: dict[str, str]) -> DigestChallenge | None:
    if "realm" not in params or "nonce" not in params:
        raise ProtocolError(
            f"Digest challenge without realm or nonce: {params!r}", reason="bad_challenge"
        )
    algorithm = params.get("algorithm", "MD5")
    base, _, rest = algorithm.upper().partition("-SESS")
    if base not in _HASHES or rest:
        return None
    qops = {q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()}
    if qops and "auth" not in qops:
        return None
    canonical = base + ("-sess" if algorithm.upper().endswith("-SESS") else "")
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=canonical,
        qop="auth" if qops else None,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        userhash=params.get("userhash", "").lower() == "true",
    )


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digest_authorization(
    username: str,
    password: str,
    challenge: DigestChallenge,
    method: str,
    uri: str,
    nc: int,
    cnonce: str,
) -> str:
    """The ``Authorization`` value answering ``challenge`` (RFC 7616 3.4)."""

    def h(data: str) -> str:
        return hashlib.new(challenge.hash_name, data.encode("utf-8")).hexdigest()

    realm, nonce = challenge.realm, challenge.nonce
    ha1 = h(f"{username}:{realm}:{password}")
    if challenge.sess:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    if challenge.qop:
        response = h(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{challenge.qop}:{ha2}")
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    fields = [_username_field(username, challenge, h)]
    fields += [f"realm={_quote(realm)}", f"uri={_quote(uri)}"]
    fields += [f"algorithm={challenge.algorithm}", f"nonce={_quote(nonce)}"]
    if challenge.qop:
        fields += [f"nc={nc:08x}", f"cnonce={_quote(cnonce)}", f"qop={challenge.qop}"]
    elif challenge.sess:
        fields.append(f"cnonce={_quote(cnonce)}")
    fields.append(f"response={_quote(response)}")
    if challenge.opaque is not None:
        fields.append(f"opaque={_quote(challenge.opaque)}")
    if challenge.userhash:
        fields.append("userhash=true")
    return "Digest " + ", ".join(fields)


def _username_field(username: str, challenge: DigestChallenge, h: Callable[[str], str]) -> str:
    if challenge.userhash:
        return f"username={_quote(h(f'{username}:{challenge.realm}'))}"
    if username.isascii():
        return f"username={_quote(username)}"
    # RFC 7616 3.4.4: a name outside ASCII goes in username*, RFC 8187 encoded.
    return "username*=UTF-8''" + quote(username, safe="")


class DigestAuth:
    """HTTP Digest (RFC 7616): MD5, SHA-256 (and SHA-512-256 where hashlib has it),
    each with ``-sess``; ``qop=auth`` or none.

    The first request to an origin goes without credentials; its 401 brings the
    challenge, answered once. The last challenge per origin is kept, so later
    requests answer it at once (the nonce count going up per nonce); a server
    that calls that nonce stale gets one more try with the new one.
    """

    _KEPT = 256  # origins and nonces remembered; past this the oldest is forgotten

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password
        self._challenges: dict[tuple[str, str, int], DigestChallenge] = {}
        self._nonce_counts: dict[str, int] = {}

    async def auth_flow(self, request: AuthRequest) -> AuthFlow:
        origin = origin_of(request.url)
        known = self._challenges.get(origin)
        if known is not None:
            request.set_header("Authorization", self._answer(request, known))
        response = yield request
        answered_fresh = stale_retried = False
        while response.status == 401:
            challenge = choose_digest_challenge(response.headers.get_all("www-authenticate"))
            if challenge is None:
                return
            if answered_fresh:  # our answer to a fresh challenge was refused
                if not challenge.stale or stale_retried:
                    self._challenges.pop(origin, None)
                    return
                stale_retried = True
            answered_fresh = True
            self._keep(self._challenges, origin, challenge)
            request.set_header("Authorization", self._answer(request, challenge))
            response = yield request

    def _answer(self, request: AuthRequest, challenge: DigestChallenge) -> str:
        # No await between reading and storing the count: concurrent flows on one
        # loop never send the same count for a nonce.
        nc = self._nonce_counts.get(challenge.nonce, 0) + 1
        self._keep(self._nonce_counts, challenge.nonce, nc)
        cnonce = os.urandom(16).hex()
        return digest_authorization(
            self._username, self._password, challenge, request.method, request.target, nc, cnonce
        )

    @classmethod
    def _keep(cls, kept: dict[_K, _V], key: _K, value: _V) -> None:
        kept.pop(key, None)
        if len(kept) >= cls._KEPT:
            del kept[next(iter(kept))]
        kept[key] = value

    def __repr__(self) -> str:
        return f"DigestAuth({self._username!r}, ...)"
