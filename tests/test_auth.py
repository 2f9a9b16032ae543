"""Auth: Basic, Digest (RFC vectors, the flow's rounds, httpbin), the flow driver, origins."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofasthttp import Client, Headers, InvalidHeader, ProtocolError
from aiofasthttp.h1.auth import (
    MAX_AUTH_ROUNDS,
    AuthFlow,
    AuthRequest,
    AuthResponse,
    BasicAuth,
    DigestAuth,
    DigestChallenge,
    choose_digest_challenge,
    coerce_auth,
    credentials_may_follow,
    digest_authorization,
    parse_challenges,
    run_auth_flow,
)
from aiofasthttp.h1.cookies import Cookies
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)


def _fields(header: str) -> dict[str, str]:
    assert header.startswith("Digest ")
    pairs = re.findall(r'(\w+\*?)=("(?:[^"\\]|\\.)*"|[^,\s]+)', header[7:])
    return {k: v[1:-1] if v.startswith('"') else v for k, v in pairs}


# -- Digest against published vectors ----------------------------------------------------

RFC7616_CHALLENGES = [
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
]
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def test_rfc7616_sha256_example() -> None:
    challenge = choose_digest_challenge(RFC7616_CHALLENGES)  # the stronger of the two
    assert challenge is not None and challenge.algorithm == "SHA-256"
    header = digest_authorization(
        "Mufasa", "Circle of Life", challenge, "GET", "/dir/index.html", 1, RFC7616_CNONCE
    )
    assert _fields(header) == {
        "username": "Mufasa",
        "realm": "http-auth@example.org",
        "uri": "/dir/index.html",
        "algorithm": "SHA-256",
        "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "nc": "00000001",
        "cnonce": RFC7616_CNONCE,
        "qop": "auth",
        "response": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    }


def test_rfc7616_md5_example() -> None:
    challenge = choose_digest_challenge(RFC7616_CHALLENGES[1:])
    assert challenge is not None and challenge.algorithm == "MD5"
    header = digest_authorization(
        "Mufasa", "Circle of Life", challenge, "GET", "/dir/index.html", 1, RFC7616_CNONCE
    )
    assert _fields(header)["response"] == "8ca523f5e9506fed4657c9700eebdbec"


def test_rfc2617_md5_example() -> None:
    challenge = choose_digest_challenge(
        [
            'Digest realm="testrealm@host.com", qop="auth,auth-int", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
        ]
    )
    assert challenge is not None
    header = digest_authorization(
        "Mufasa", "Circle Of Life", challenge, "GET", "/dir/index.html", 1, "0a4f113b"
    )
    assert _fields(header)["response"] == "6629fae49393a05397450978507c4ef1"


def test_sha256_without_qop_matches_curls_test_vector() -> None:
    # curl's tests/data/test2061: RFC 2069-style (no qop), SHA-256.
    challenge = choose_digest_challenge(
        ['Digest realm="testrealm", nonce="1053604145", algorithm="SHA-256"']
    )
    assert challenge is not None and challenge.qop is None
    header = digest_authorization("testuser", "testpass", challenge, "GET", "/2061", 1, "unused")
    fields = _fields(header)
    assert fields["response"] == "9dc55255f1a2537b838311674b621d45346b862a81631bb20e4ce356ef25062d"
    assert "nc" not in fields and "cnonce" not in fields and "qop" not in fields


@pytest.mark.parametrize(
    ("algorithm", "hash_name"), [("MD5-sess", "md5"), ("SHA-256-sess", "sha256")]
)
def test_sess_variants_hash_the_nonces_into_ha1(algorithm: str, hash_name: str) -> None:
    challenge = choose_digest_challenge(
        [f'Digest realm="r", nonce="n0", qop="auth", algorithm={algorithm.upper()}']
    )
    assert challenge is not None and challenge.algorithm == algorithm and challenge.sess
    fields = _fields(digest_authorization("u", "p", challenge, "POST", "/x?y=1", 7, "c0"))

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode()).hexdigest()

    ha1 = h(f"{h('u:r:p')}:n0:c0")  # RFC 7616 3.4.2
    expected = h(f"{ha1}:n0:00000007:c0:auth:{h('POST:/x?y=1')}")
    assert fields["response"] == expected and fields["algorithm"] == algorithm
    assert fields["nc"] == "00000007" and fields["cnonce"] == "c0"


def test_userhash_and_non_ascii_user_names() -> None:
    challenge = DigestChallenge(realm="api@example.org", nonce="n", qop="auth", userhash=True)
    fields = _fields(digest_authorization("Jäsøn", "pw", challenge, "GET", "/", 1, "c"))
    assert fields["username"] == hashlib.md5("Jäsøn:api@example.org".encode()).hexdigest()
    assert fields["userhash"] == "true"
    plain = DigestChallenge(realm='a "quoted" realm', nonce="n", qop="auth")
    header = digest_authorization("Jäsøn", "pw", plain, "GET", "/", 1, "c")
    assert "username*=UTF-8''J%C3%A4s%C3%B8n" in header
    assert 'realm="a \\"quoted\\" realm"' in header


# -- challenges --------------------------------------------------------------------------


def test_challenges_of_several_schemes_and_fields_are_parsed() -> None:
    parsed = parse_challenges(
        [
            'Basic realm="simple", Newauth token68abc==, Digest realm="a\\"b", nonce="n1"',
            'Bearer, Digest realm="x", nonce=n2, algorithm=SHA-256, stale=TRUE',
        ]
    )
    assert parsed == [
        ("basic", {"realm": "simple"}),
        ("newauth", {}),
        ("digest", {"realm": 'a"b', "nonce": "n1"}),
        ("bearer", {}),
        ("digest", {"realm": "x", "nonce": "n2", "algorithm": "SHA-256", "stale": "TRUE"}),
    ]
    chosen = choose_digest_challenge(
        [
            'Digest realm="a", nonce="n1"',
            'Digest realm="x", nonce=n2, algorithm=SHA-256, stale=TRUE',
        ]
    )
    assert chosen is not None and chosen.nonce == "n2" and chosen.stale


def test_challenges_no_one_can_answer_are_passed_over() -> None:
    assert choose_digest_challenge(['Basic realm="x"']) is None
    assert choose_digest_challenge(['Digest realm="x", nonce="n", qop="auth-int"']) is None
    assert choose_digest_challenge(['Digest realm="x", nonce="n", algorithm=SHA3-999']) is None
    assert choose_digest_challenge([]) is None


@pytest.mark.parametrize(
    "value",
    [
        'Digest realm="x"',  # no nonce
        'Digest nonce="n"',  # no realm
        'Digest realm="a\nb", nonce="n"',  # a line break in a quoted string
        'Digest realm="x" nonce="n"',  # no comma
        '"quoted-scheme"',
    ],
)
def test_malformed_challenges_raise_protocol_error(value: str) -> None:
    with pytest.raises(ProtocolError):
        choose_digest_challenge([value])


# -- the Digest flow, scripted ---------------------------------------------------------------


@dataclass
class _Reply:
    status: int
    headers: Headers = field(default_factory=Headers)


def _digest_401(nonce: str, stale: bool = False) -> _Reply:
    value = f'Digest realm="r", nonce="{nonce}", qop="auth", stale={str(stale).lower()}'
    return _Reply(401, Headers([("WWW-Authenticate", value)]))


def _drive(auth: object, replies: list[_Reply], url: str = "http://h.test/p") -> list[str | None]:
    """Run one flow against scripted replies; the Authorization of each request sent."""
    sent: list[str | None] = []
    script = iter(replies)

    async def send(request: AuthRequest) -> _Reply:
        sent.append(request.get_header("Authorization"))
        return next(script)

    async def main() -> None:
        last = await run_auth_flow(auth, AuthRequest("GET", url), send)  # type: ignore[arg-type]
        assert last is replies[len(sent) - 1]

    asyncio.run(main())
    return sent


def test_digest_answers_a_challenge_then_reuses_it_with_the_next_count() -> None:
    auth = DigestAuth("u", "p")
    sent = _drive(auth, [_digest_401("n1"), _Reply(200)])
    assert sent[0] is None and sent[1] is not None
    assert _fields(sent[1])["nc"] == "00000001"
    assert _fields(sent[1])["nonce"] == "n1"
    again = _drive(auth, [_Reply(200)])  # answered at once: no second round trip
    assert _fields(again[0] or "")["nc"] == "00000002"
    elsewhere = _drive(auth, [_Reply(200)], url="http://other.test/")
    assert elsewhere == [None]  # a challenge of one origin is not answered at another


def test_refused_credentials_end_the_flow_and_forget_the_challenge() -> None:
    auth = DigestAuth("u", "wrong")
    sent = _drive(auth, [_digest_401("n1"), _digest_401("n2")])
    assert len(sent) == 2
    assert _drive(auth, [_Reply(200)]) == [None]


def test_a_stale_nonce_is_retried_once_with_the_new_one() -> None:
    sent = _drive(DigestAuth("u", "p"), [_digest_401("n1"), _digest_401("n2", True), _Reply(200)])
    assert [_fields(s or "")["nonce"] for s in sent[1:]] == ["n1", "n2"]
    assert _fields(sent[2] or "")["nc"] == "00000001"  # counts are per nonce
    twice = _drive(
        DigestAuth("u", "p"), [_digest_401("n1"), _digest_401("n2", True), _digest_401("n3", True)]
    )
    assert len(twice) == 3  # the second stale answer is the caller's


def test_a_kept_challenge_refused_gets_one_fresh_answer() -> None:
    auth = DigestAuth("u", "p")
    _drive(auth, [_digest_401("n1"), _Reply(200)])
    sent = _drive(auth, [_digest_401("n2"), _Reply(200)])  # the server forgot n1
    assert [_fields(s or "")["nonce"] for s in sent] == ["n1", "n2"]


def test_a_401_without_a_digest_challenge_is_the_callers() -> None:
    basic_only = _Reply(401, Headers([("WWW-Authenticate", 'Basic realm="x"')]))
    assert _drive(DigestAuth("u", "p"), [basic_only]) == [None]


# -- Basic, the driver, custom flows ---------------------------------------------------------


def test_basic_auth_header() -> None:
    auth = BasicAuth("Aladdin", "open sesame")
    assert auth.header == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="  # RFC 7617 section 2
    assert _drive(auth, [_Reply(200)]) == [auth.header]
    utf8 = BasicAuth("test", "123£")
    assert base64.b64decode(utf8.header[6:]) == "test:123£".encode()  # RFC 7617 2.1
    with pytest.raises(InvalidHeader):
        BasicAuth("a:b", "c")
    assert "open" not in repr(auth)


class _Tokens:
    def __init__(self) -> None:
        self.token = "old"
        self.refreshes = 0

    def current(self) -> str:
        return self.token

    async def refresh(self) -> str:
        self.refreshes += 1
        self.token = f"new{self.refreshes}"
        return self.token


class BearerAuth:
    """The module docstring's example, as written there."""

    def __init__(self, tokens: _Tokens) -> None:
        self.tokens = tokens

    async def auth_flow(self, request: AuthRequest) -> AuthFlow:
        request.set_header("Authorization", f"Bearer {self.tokens.current()}")
        response = yield request
        if response.status == 401:
            token = await self.tokens.refresh()
            request.set_header("Authorization", f"Bearer {token}")
            yield request


def test_a_bearer_flow_refreshes_once_and_discards_the_401() -> None:
    tokens = _Tokens()
    discarded: list[_Reply] = []
    replies = [_Reply(401), _Reply(200)]
    sent: list[str | None] = []

    async def send(request: AuthRequest) -> _Reply:
        sent.append(request.get_header("Authorization"))
        return replies[len(sent) - 1]

    async def discard(response: _Reply) -> None:
        discarded.append(response)

    async def main() -> AuthResponse:
        request = AuthRequest("GET", "http://h.test/", [("authorization", "stale")])
        return await run_auth_flow(BearerAuth(tokens), request, send, discard)

    assert asyncio.run(main()) is replies[1]
    assert sent == ["Bearer old", "Bearer new1"] and discarded == [replies[0]]


def test_the_driver_bounds_a_flow_and_refuses_an_empty_one() -> None:
    class Forever:
        async def auth_flow(self, request: AuthRequest) -> AuthFlow:
            while True:
                yield request

    class Empty:
        async def auth_flow(self, request: AuthRequest) -> AuthFlow:
            return
            yield request

    calls = 0

    async def send(request: AuthRequest) -> _Reply:
        nonlocal calls
        calls += 1
        return _Reply(401)

    with pytest.raises(RuntimeError, match="more than"):
        asyncio.run(run_auth_flow(Forever(), AuthRequest("GET", "http://h/"), send))
    assert calls == MAX_AUTH_ROUNDS
    with pytest.raises(RuntimeError, match="no request"):
        asyncio.run(run_auth_flow(Empty(), AuthRequest("GET", "http://h/"), send))


def test_auth_request_target_and_headers() -> None:
    request = AuthRequest("GET", "http://h.test/a b/c?q=x y&z=%41", [("X-A", "1"), ("x-a", "2")])
    assert request.target == "/a%20b/c?q=x%20y&z=%41"
    assert AuthRequest("GET", "http://h.test").target == "/"
    request.set_header("X-A", "3")
    assert request.headers == [("X-A", "3")] and request.get_header("x-a") == "3"


def test_credentials_follow_only_to_the_same_origin() -> None:
    assert credentials_may_follow("http://h.test/a", "http://H.TEST:80/b?c")
    assert credentials_may_follow("https://h.test/", "https://h.test:443/x")
    assert not credentials_may_follow("http://h.test/", "https://h.test/")
    assert not credentials_may_follow("http://h.test/", "http://h.test:8080/")
    assert not credentials_may_follow("http://h.test/", "http://evil.test/")
    assert not credentials_may_follow("http://h.test/", "http://sub.h.test/")


def test_coerce_auth() -> None:
    assert coerce_auth(None) is None
    basic = coerce_auth(("u", "p"))
    assert isinstance(basic, BasicAuth) and basic.header == BasicAuth("u", "p").header
    digest = DigestAuth("u", "p")
    assert coerce_auth(digest) is digest
    bearer = BearerAuth(_Tokens())
    assert coerce_auth(bearer) is bearer
    with pytest.raises(TypeError):
        coerce_auth("u:p")  # type: ignore[arg-type]


# -- Digest against httpbin -------------------------------------------------------------------


class _Wire:
    """Sends a flow's requests with the real client, cookies kept as the client will."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.jar = Cookies()
        self.sent: list[str | None] = []

    async def send(self, request: AuthRequest):  # type: ignore[no-untyped-def]
        headers = list(request.headers)
        cookie = self.jar.cookie_header_for(request.url)
        if cookie:
            headers.append(("Cookie", cookie))
        resp = await self.client.request(request.method, request.url, headers=headers)
        self.jar.store_from_response(request.url, resp.raw_headers)
        self.sent.append(request.get_header("Authorization"))
        return resp


def _httpbin_flows(url: str, auth: DigestAuth, flows: int) -> list[tuple[int, list[str | None]]]:
    """Run ``flows`` requests in turn; each one's final status and Authorization values."""

    async def main() -> list[tuple[int, list[str | None]]]:
        out = []
        async with Client() as client:
            wire = _Wire(client)
            for _ in range(flows):
                wire.sent = []
                resp = await run_auth_flow(auth, AuthRequest("GET", url), wire.send)
                out.append((resp.status, wire.sent))
        return out

    return asyncio.run(main())


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_httpbin_accepts_our_digest(httpbin_url: str, algorithm: str) -> None:  # noqa: F811
    # No query string: httpbin's digest check fails on one (a str + bytes TypeError).
    url = f"{httpbin_url}/digest-auth/auth/user/passwd/{algorithm}"
    auth = DigestAuth("user", "passwd")
    (status1, sent1), (status2, sent2) = _httpbin_flows(url, auth, 2)
    assert status1 == 200 and len(sent1) == 2 and sent1[0] is None
    assert _fields(sent1[1] or "")["algorithm"] == algorithm
    assert _fields(sent1[1] or "")["uri"] == f"/digest-auth/auth/user/passwd/{algorithm}"
    assert status2 == 200 and len(sent2) == 1  # answered at once, nc=2
    assert _fields(sent2[0] or "")["nc"] == "00000002"


def test_httpbin_refuses_a_wrong_password_and_the_flow_stops(httpbin_url: str) -> None:  # noqa: F811
    url = f"{httpbin_url}/digest-auth/auth/user/passwd/SHA-256"
    [(status, sent)] = _httpbin_flows(url, DigestAuth("user", "wrong"), 1)
    assert status == 401 and len(sent) == 2


def test_httpbin_stale_nonces(httpbin_url: str) -> None:  # noqa: F811
    # stale_after=0: every answer is called stale; the flow retries once and stops.
    always = f"{httpbin_url}/digest-auth/auth/user/passwd/MD5/0"
    [(status, sent)] = _httpbin_flows(always, DigestAuth("user", "passwd"), 1)
    assert status == 401 and len(sent) == 3
    # stale_after=1: the kept nonce is stale on its second use; a fresh answer passes.
    once = f"{httpbin_url}/digest-auth/auth/user/passwd/MD5/1"
    (s1, sent1), (s2, sent2) = _httpbin_flows(once, DigestAuth("user", "passwd"), 2)
    assert (s1, len(sent1)) == (200, 2)
    assert (s2, len(sent2)) == (200, 2)
    assert _fields(sent2[0] or "")["nonce"] != _fields(sent2[1] or "")["nonce"]


_VALUES = ['"r"', "n1", '"a\\"b"', '"x\r\ny"', "auth", '"auth,auth-int"', "SHA-256", "MD5-sess",
           '""', "é", '"é"', "true", "SHA-512-256", "md5"]  # fmt: skip
_NAMES = ["realm", "nonce", "qop", "algorithm", "stale", "userhash", "opaque", "x", "é"]
_CHALLENGE = st.tuples(
    st.sampled_from(["Digest", "Basic", "digest", "Bearer"]),
    st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES)), max_size=8),
).map(lambda t: t[0] + " " + ", ".join(f"{k}={v}" for k, v in t[1]))
_DIGEST = st.tuples(
    st.sampled_from(_VALUES), st.sampled_from(_VALUES), st.sampled_from(["", ", "]), _CHALLENGE
).map(lambda t: f"Digest realm={t[0]}, nonce={t[1]}{t[2]}{t[3].partition(' ')[2]}")
_WWW_AUTHENTICATE = st.one_of(
    _DIGEST,
    st.lists(st.one_of(_DIGEST, _CHALLENGE), min_size=1, max_size=3).map(", ".join),
    st.text(alphabet='Digest realm="x\\, nonce=a\r\n\té', max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(_WWW_AUTHENTICATE)
def test_any_www_authenticate_value_parses_or_raises_protocol_error(value: str) -> None:
    try:
        challenge = choose_digest_challenge([value])
    except ProtocolError:
        return
    if challenge is not None:
        header = digest_authorization("u", "p", challenge, "GET", "/", 1, "c")
        assert not any(c in header for c in "\r\n\x00")
