"""The cookie jar: RFC 6265's domain, path, Secure, expiry and IP rules, its API, and httpbin."""

from __future__ import annotations

import asyncio
import http.cookiejar
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiofasthttp import Client, InvalidHeader
from aiofasthttp.h1.cookies import (
    Cookies,
    RFC6265Policy,
    coerce_cookies,
    cookie_header,
    domain_matches,
)
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)


def _jar(url: str, *set_cookies: str) -> Cookies:
    jar = Cookies()
    jar.store_from_response(url, [(b"Set-Cookie", v.encode("latin-1")) for v in set_cookies])
    return jar


def _cookies(header: str | None) -> set[str]:
    """A Cookie value's cookies: cookies of one path length go in no set order."""
    assert header is not None
    return set(header.split("; "))


def test_an_empty_jar_sends_nothing_and_stores_nothing_without_set_cookie() -> None:
    jar = Cookies()
    assert jar.cookie_header_for("http://example.com/") is None
    jar.store_from_response("http://example.com/", [(b"Content-Type", b"text/plain")])
    assert len(jar) == 0 and not jar and jar.is_empty
    jar.store_from_response("http://example.com/", [(b"Set-Cookie", b"a=1")])
    assert not jar.is_empty and jar.cookie_header_for("http://example.com/") == "a=1"
    jar.clear()
    assert jar.is_empty


def test_cookie_header_with_the_jar_on_or_off() -> None:
    assert cookie_header(None, "http://h.test/") is None
    assert cookie_header(None, "http://h.test/", {"a": "1"}) == "a=1"
    jar = _jar("http://h.test/", "b=2")
    assert cookie_header(jar, "http://h.test/", {"a": "1"}) == "b=2; a=1"
    with pytest.raises(InvalidHeader):
        cookie_header(None, "http://h.test/", {"a": "\n"})


def test_a_cookie_without_domain_is_host_only() -> None:
    jar = _jar("http://www.example.com/", "sid=1")
    assert jar.cookie_header_for("http://www.example.com/x") == "sid=1"
    assert jar.cookie_header_for("http://WWW.EXAMPLE.COM:8080/") == "sid=1"  # ports do not count
    assert jar.cookie_header_for("http://a.www.example.com/") is None
    assert jar.cookie_header_for("http://example.com/") is None


def test_a_domain_cookie_goes_to_the_domain_and_its_subdomains_only() -> None:
    jar = _jar("http://www.example.com/", "d=1; Domain=Example.COM")
    for url in ("http://example.com/", "http://www.example.com/", "http://a.b.example.com/"):
        assert jar.cookie_header_for(url) == "d=1", url
    for url in ("http://notexample.com/", "http://example.org/", "http://com/"):
        assert jar.cookie_header_for(url) is None, url


@pytest.mark.parametrize(
    ("url", "attribute"),
    [
        ("http://www.example.com/", "Domain=other.com"),  # not the host's domain
        ("http://www.example.com/", "Domain=a.www.example.com"),  # a subdomain of the host
        ("http://www.example.com/", "Domain=com"),  # a top-level domain
        ("http://shop.co.uk/", "Domain=co.uk"),  # a public second level
        ("http://127.0.0.1/", "Domain=0.0.1"),  # an IP address is no domain to suffix
        ("http://10.0.0.1/", "Domain=0.1"),
        ("http://example.com/", "Domain=127.0.0.1"),  # an IP from a name
    ],
)
def test_a_domain_the_host_does_not_belong_to_is_refused(url: str, attribute: str) -> None:
    jar = _jar(url, f"x=1; {attribute}")
    assert len(jar) == 0


def test_ip_address_cookies_go_back_to_that_address_only() -> None:
    jar = _jar("http://127.0.0.1:8080/", "plain=1", "named=2; Domain=127.0.0.1")
    assert jar.cookie_header_for("http://127.0.0.1:9999/") == "plain=1; named=2"
    for url in (
        "http://127.0.0.2/",
        "http://10.127.0.0.1/",
        "http://0.0.1/",
        "http://1.127.0.0.1/",
    ):
        assert jar.cookie_header_for(url) is None, url
    six = _jar("http://[::1]:8080/", "v6=1")
    assert six.cookie_header_for("http://[::1]/") == "v6=1"
    assert six.cookie_header_for("http://[::2]/") is None


def test_dotless_hosts_keep_their_cookies() -> None:
    jar = _jar("http://localhost:8000/", "a=1", "b=2; Domain=localhost")
    jar.set("c", "3", "localhost")
    assert _cookies(jar.cookie_header_for("http://localhost:9000/")) == {"a=1", "b=2", "c=3"}
    assert jar.cookie_header_for("http://otherhost/") is None


def test_paths_default_to_the_directory_and_match_by_segment() -> None:
    jar = _jar("http://h.test/app/page", "dir=1", "root=2; Path=/", "deep=3; Path=/app/admin")
    assert jar.cookie_header_for("http://h.test/app") == "dir=1; root=2"
    assert jar.cookie_header_for("http://h.test/app/admin/x") == "deep=3; dir=1; root=2"
    assert jar.cookie_header_for("http://h.test/application") == "root=2"
    assert jar.cookie_header_for("http://h.test/") == "root=2"


def test_secure_cookies_are_set_and_sent_over_https_only() -> None:
    jar = _jar("http://h.test/", "s=plain; Secure")
    assert len(jar) == 0  # RFC 6265bis: an insecure origin may not set a Secure cookie
    jar.store_from_response("https://h.test/", [("Set-Cookie", "s=1; Secure")])
    assert jar.cookie_header_for("https://h.test/") == "s=1"
    assert jar.cookie_header_for("http://h.test/") is None


def test_http_only_is_kept_and_such_cookies_are_sent() -> None:
    jar = _jar("http://h.test/", "h=1; HttpOnly; Path=/")
    [cookie] = list(jar)
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert jar.cookie_header_for("http://h.test/") == "h=1"


def test_expiry_by_max_age_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    jar = _jar(
        "http://h.test/",
        "session=1",
        "short=2; Max-Age=60",
        "gone=3; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        "wins=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=3600",  # Max-Age wins
    )
    assert jar.cookie_header_for("http://h.test/") == "session=1; short=2; wins=4"
    later = time.time() + 61
    monkeypatch.setattr(http.cookiejar.time, "time", lambda: later)
    assert jar.cookie_header_for("http://h.test/") == "session=1; wins=4"
    jar.store_from_response("http://h.test/", [(b"Set-Cookie", b"wins=; Max-Age=0")])
    assert jar.cookie_header_for("http://h.test/") == "session=1"


def test_per_request_cookies_join_and_replace_the_jars() -> None:
    jar = _jar("http://h.test/", "a=1", "b=2")
    assert jar.cookie_header_for("http://h.test/", {"b": "20", "c": "3"}) == "a=1; b=20; c=3"
    assert jar.cookie_header_for("http://h.test/") == "a=1; b=2"  # not stored
    assert Cookies().cookie_header_for("http://x.test/", {"only": "1"}) == "only=1"
    with pytest.raises(InvalidHeader):
        jar.cookie_header_for("http://h.test/", {"a": "1; injected=2"})
    with pytest.raises(InvalidHeader):
        jar.cookie_header_for("http://h.test/", {"bad name": "1"})
    with pytest.raises(InvalidHeader):
        jar.cookie_header_for("http://h.test/", {"a": "1\r\nX: y"})


def test_userinfo_in_the_url_does_not_change_the_host() -> None:
    jar = _jar("http://user:pw@h.test/", "a=1")
    assert jar.cookie_header_for("http://h.test/") == "a=1"
    assert jar.cookie_header_for("http://other@h.test/") == "a=1"


def test_the_jar_is_readable_settable_and_clearable() -> None:
    jar = Cookies()
    jar.set("a", "1", "example.com")
    jar.set("a", "2", "other.test", path="/p")
    jar.set("h", "3", "www.example.com", host_only=True, secure=True, http_only=True)
    assert len(jar) == 3 and "a" in jar and "zz" not in jar
    assert jar.cookie_header_for("http://sub.example.com/") == "a=1"
    assert _cookies(jar.cookie_header_for("https://www.example.com/")) == {"h=3", "a=1"}
    assert jar.cookie_header_for("https://x.www.example.com/") == "a=1"
    assert jar.get("a", domain="other.test") == "2" and jar.get("h") == "3"
    assert jar.get("missing") is None
    with pytest.raises(LookupError):
        jar.get("a")
    jar.delete("a", domain="example.com")
    assert jar.cookie_header_for("http://example.com/") is None
    assert sorted(jar.items()) == [("a", "2"), ("h", "3")]
    jar.clear(".other.test")
    assert [c.name for c in jar] == ["h"]
    jar.clear()
    assert len(jar) == 0 and jar.cookie_header_for("https://www.example.com/") is None
    with pytest.raises(InvalidHeader):
        jar.set("a", "x;y", "example.com")
    with pytest.raises(InvalidHeader):
        jar.set("a", "x", "")
    jar.set("e", "1", "example.com", expires=time.time() - 1)
    assert jar.cookie_header_for("http://example.com/") is None


def test_a_mozilla_jar_saves_and_loads_a_cookies_file(tmp_path: Path) -> None:
    path = str(tmp_path / "cookies.txt")
    jar = Cookies(http.cookiejar.MozillaCookieJar(path, policy=RFC6265Policy()))
    jar.store_from_response(
        "http://h.test/", [(b"Set-Cookie", b"keep=1; Max-Age=3600"), (b"Set-Cookie", b"s=2")]
    )
    assert isinstance(jar.jar, http.cookiejar.MozillaCookieJar)
    jar.jar.save()  # session cookies are left out, as curl -c does
    loaded = http.cookiejar.MozillaCookieJar(path, policy=RFC6265Policy())
    loaded.load()
    assert Cookies(loaded).cookie_header_for("http://h.test/") == "keep=1"


def test_coerce_cookies_reads_the_client_option() -> None:
    assert coerce_cookies(False) is None and coerce_cookies(None) is None
    made = coerce_cookies(True)
    assert isinstance(made, Cookies) and isinstance(made.jar.__dict__["_policy"], RFC6265Policy)
    given_jar = http.cookiejar.CookieJar()
    wrapped = coerce_cookies(given_jar)
    assert wrapped is not None and wrapped.jar is given_jar
    assert coerce_cookies(made) is made
    with pytest.raises(TypeError):
        coerce_cookies({"a": "b"})  # type: ignore[arg-type]


def test_domain_matching() -> None:
    assert domain_matches("a.b.example.com", ".example.com")
    assert domain_matches("example.com", "EXAMPLE.com")
    assert not domain_matches("badexample.com", "example.com")
    assert domain_matches("127.0.0.1", "127.0.0.1")
    assert not domain_matches("127.0.0.1", "0.0.1")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="latin-1"), max_size=120))
def test_any_set_cookie_value_is_stored_or_dropped_and_never_splits_a_head(value: str) -> None:
    jar = Cookies()
    jar.store_from_response("https://h.test/a", [("Set-Cookie", value)])
    header = jar.cookie_header_for("https://h.test/a/b")
    assert header is None or not any(c in header for c in "\r\n\x00")


# -- against a real server ---------------------------------------------------------------


def test_httpbin_cookies_set_sent_and_deleted(httpbin_url: str) -> None:  # noqa: F811
    jar = Cookies()

    async def get(client: Client, path: str) -> dict[str, object]:
        url = httpbin_url + path
        cookie = jar.cookie_header_for(url)
        resp = await client.get(url, headers={"Cookie": cookie} if cookie else None)
        jar.store_from_response(url, resp.raw_headers)
        return resp.json() if resp.status == 200 else {}  # type: ignore[no-any-return]

    async def main() -> None:
        async with Client() as client:
            await get(client, "/cookies/set?flavour=oat&count=2")  # a 302 with Set-Cookie
            assert await get(client, "/cookies") == {"cookies": {"flavour": "oat", "count": "2"}}
            await get(client, "/cookies/delete?flavour")
            assert await get(client, "/cookies") == {"cookies": {"count": "2"}}
            assert [c.name for c in jar] == ["count"]

    asyncio.run(main())


def test_values_kept_by_url_follow_every_change_of_the_jar() -> None:
    jar = _jar("http://h.test/", "a=1")
    assert jar.cookie_header_for("http://h.test/") == "a=1"
    other = _jar("http://h.test/", "b=2")
    [cookie] = list(other)
    jar.jar.set_cookie(cookie)  # straight into the underlying jar
    assert jar.cookie_header_for("http://h.test/") == "a=1; b=2"
    jar.jar.clear("h.test", "/", "a")
    assert jar.cookie_header_for("http://h.test/") == "b=2"
    jar.jar.clear_session_cookies()
    assert jar.cookie_header_for("http://h.test/") is None


def test_a_plain_cookiejar_is_worked_out_afresh_each_time() -> None:
    plain = http.cookiejar.CookieJar(RFC6265Policy())
    jar = Cookies(plain)
    jar.store_from_response("http://h.test/", [(b"Set-Cookie", b"a=1")])
    assert jar.cookie_header_for("http://h.test/") == "a=1"
    plain.clear()
    assert jar.cookie_header_for("http://h.test/") is None
