"""Cookies through the Client: the jar's rules on real loopback servers (httpbin and our own)."""

from __future__ import annotations

import asyncio
import http.cookiejar
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from aiofasthttp import Client
from aiofasthttp.h1.cookies import Cookies
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)
from servers import ConnInfo, ReceivedRequest, read_request, response, serve

Route = Callable[[ReceivedRequest], bytes]


def _routes(table: dict[str, Route]) -> Callable[..., Awaitable[None]]:
    """A keep-alive server answering each path from ``table`` (404 otherwise)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            path = req.target.partition("?")[0]
            answer = table.get(path)
            writer.write(answer(req) if answer else response(b"", 404))
            await writer.drain()

    return handler


def _setting(*values: str) -> Route:
    def answer(req: ReceivedRequest) -> bytes:
        head = "".join(f"Set-Cookie: {v}\r\n" for v in values)
        return f"HTTP/1.1 200 OK\r\n{head}Content-Length: 0\r\n\r\n".encode("latin-1")

    return answer


def _echo_cookie(req: ReceivedRequest) -> bytes:
    return response(req.headers.get("cookie", "-").encode())


def _redirect(location: str, status: int = 302) -> Route:
    return lambda req: response(b"", status, {"Location": location})


def test_httpbin_cookies_are_kept_sent_and_deleted_by_the_client(httpbin_url: str) -> None:  # noqa: F811
    async def main() -> None:
        async with Client(base_url=httpbin_url) as client:
            assert client.cookies is not None and client.cookies.is_empty
            resp = await client.get("/cookies/set?flavour=oat&count=2")  # a 302, not followed
            assert resp.status == 302
            assert (await client.get("/cookies")).json() == {
                "cookies": {"flavour": "oat", "count": "2"}
            }
            await client.get("/cookies/delete?flavour")
            assert (await client.get("/cookies")).json() == {"cookies": {"count": "2"}}
            # Followed: the hop to /cookies already carries what the 302 set.
            resp = await client.get("/cookies/set?hop=1", follow_redirects=True)
            assert resp.json() == {"cookies": {"count": "2", "hop": "1"}}
            client.cookies.clear()
            assert (await client.get("/cookies")).json() == {"cookies": {}}

    asyncio.run(main())


def test_host_only_domain_expired_and_ip_rules() -> None:
    async def main() -> None:
        table = {
            "/set": _setting(
                "ip=1; Path=/",  # host-only for 127.0.0.1
                "other=2; Domain=0.0.1",  # an IP is never a domain suffix: refused
                "gone=3; Max-Age=0",  # expired at once
                "old=4; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
                "deep=5; Path=/deep",
            ),
            "/echo": _echo_cookie,
            "/deep/echo": _echo_cookie,
            "/expire": _setting("ip=; Max-Age=0; Path=/"),
        }
        async with serve(_routes(table)) as server, Client() as client:
            await client.get(server.url("/set"))
            assert (await client.get(server.url("/echo"))).text == "ip=1"
            deep = (await client.get(server.url("/deep/echo"))).text
            assert sorted(deep.split("; ")) == ["deep=5", "ip=1"]
            # The same server by another name: a cookie set by an IP goes to that IP only.
            other = f"http://localhost:{server.port}/echo"
            assert (await client.get(other)).text == "-"
            await client.get(server.url("/expire"))
            assert (await client.get(server.url("/echo"))).text == "-"
            assert client.cookies is not None and [c.name for c in client.cookies] == ["deep"]

    asyncio.run(main())


def test_a_domain_cookie_goes_to_the_domain_and_not_elsewhere() -> None:
    async def main() -> None:
        table = {"/echo": _echo_cookie}
        async with serve(_routes(table)) as server, Client() as client:
            assert client.cookies is not None
            client.cookies.set("team", "blue", domain="localhost", host_only=True)
            client.cookies.set("lab", "x", domain="127.0.0.1")
            local = f"http://localhost:{server.port}/echo"
            assert (await client.get(local)).text == "team=blue"
            assert (await client.get(server.url("/echo"))).text == "lab=x"

    asyncio.run(main())


def test_per_request_cookies_go_with_that_request_only_and_merge_with_the_jar() -> None:
    async def main() -> None:
        table = {"/echo": _echo_cookie, "/set": _setting("a=jar")}
        async with serve(_routes(table)) as server, Client() as client:
            assert (await client.get(server.url("/echo"), cookies={"x": "1"})).text == "x=1"
            assert (await client.get(server.url("/echo"))).text == "-"
            await client.get(server.url("/set"))
            text = (await client.get(server.url("/echo"), cookies={"a": "mine", "b": "2"})).text
            assert text == "a=mine; b=2"  # replaces the jar's of the same name
            hand = (await client.get(server.url("/echo"), headers={"Cookie": "h=1"})).text
            assert hand == "h=1; a=jar"  # one Cookie field, the hand-set one first
            assert client.cookies is not None and client.cookies.get("a") == "jar"
            assert "x" not in client.cookies

    asyncio.run(main())


def test_redirects_keep_the_jar_rules_and_drop_request_cookies_across_origins() -> None:
    async def main() -> None:
        async with serve(_routes({"/echo": _echo_cookie})) as target:
            elsewhere = f"http://localhost:{target.port}/echo"
            table = {
                "/away": _redirect(elsewhere),
                "/here": _redirect("/echo", 307),
                "/echo": _echo_cookie,
                "/set": _setting("s=1"),
            }
            async with serve(_routes(table)) as server, Client(follow_redirects=True) as client:
                await client.get(server.url("/set"))
                same = await client.get(server.url("/here"), cookies={"r": "1"})
                assert sorted(same.text.split("; ")) == ["r=1", "s=1"]
                away = await client.get(
                    server.url("/away"), cookies={"r": "1"}, headers={"Cookie": "hand=1"}
                )
                assert [r.status for r in away.history] == [302]
                assert away.text == "-"  # the jar's host-only cookie, r and hand all stay
                # Hooks or not, streamed or not: the same rules.
                async with client.stream("GET", server.url("/away"), cookies={"r": "1"}) as resp:
                    assert await resp.aread() == b"-"

    asyncio.run(main())


def test_cookies_off_a_given_jar_and_a_mozilla_file(tmp_path: Path) -> None:
    async def main() -> None:
        table = {"/echo": _echo_cookie, "/set": _setting("k=v; Max-Age=3600")}
        async with serve(_routes(table)) as server:
            async with Client(cookies=False) as client:
                assert client.cookies is None
                await client.get(server.url("/set"))
                assert (await client.get(server.url("/echo"))).text == "-"
                assert (await client.get(server.url("/echo"), cookies={"p": "1"})).text == "p=1"
            path = tmp_path / "cookies.txt"
            jar = http.cookiejar.MozillaCookieJar(str(path))
            async with Client(cookies=jar) as client:
                await client.get(server.url("/set"))
            jar.save()
            loaded = http.cookiejar.MozillaCookieJar(str(path))
            loaded.load()
            async with Client(cookies=False) as client:
                client.cookies = loaded  # settable: a CookieJar is wrapped
                assert isinstance(client.cookies, Cookies)
                assert (await client.get(server.url("/echo"))).text == "k=v"
                client.cookies = False
                assert (await client.get(server.url("/echo"))).text == "-"

    asyncio.run(main())


@pytest.mark.parametrize("hooked", [False, True])
def test_set_cookie_is_stored_on_every_path(hooked: bool) -> None:
    async def main() -> None:
        table = {"/echo": _echo_cookie, "/set": _setting("z=1")}
        calls: list[str] = []

        async def hook(request: object) -> None:
            calls.append("h")

        hooks = {"request": [hook]} if hooked else None
        async with serve(_routes(table)) as server, Client(event_hooks=hooks) as client:
            async with client.stream("GET", server.url("/set")) as resp:
                await resp.aread()
            assert (await client.get(server.url("/echo"))).text == "z=1"
            assert client.cookies is not None
            client.cookies.clear()
            await client.post(server.url("/set"), content=b"x")
            assert (await client.get(server.url("/echo"))).text == "z=1"
        assert len(calls) == (4 if hooked else 0)

    asyncio.run(main())


def test_set_cookie_in_any_case_beside_fields_of_its_length() -> None:
    async def main() -> None:
        def odd(req: ReceivedRequest) -> bytes:
            return (
                b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
                b"sET-cOOKIE: odd=1\r\nContent-Length: 0\r\n\r\n"
            )

        table = {"/echo": _echo_cookie, "/odd": odd}
        async with serve(_routes(table)) as server, Client() as client:
            await client.get(server.url("/odd"))
            assert (await client.get(server.url("/echo"))).text == "odd=1"

    asyncio.run(main())
