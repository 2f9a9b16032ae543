"""Redirects: off by default, method and body rules, credentials kept to their origin."""

from __future__ import annotations

import pytest

from aiofasthttp import Client, RedirectError, TooManyRedirects
from servers import LOOPS, ConnInfo, read_request, response, run, serve

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


def redirecting(other_port: list[int]):
    async def handler(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            path = req.target
            if path.startswith("/to/"):
                status, _, rest = path[4:].partition("/")
                loc = "/" + rest
                if rest.startswith("other"):
                    loc = f"http://127.0.0.1:{other_port[0]}/{rest}"
                writer.write(response(b"moved", status=int(status), headers={"Location": loc}))
            elif path.startswith("/loop"):
                writer.write(response(b"", status=302, headers={"Location": "/loop"}))
            else:
                seen = f"{req.method} {path} auth={req.headers.get('authorization')} "
                seen += f"cookie={req.headers.get('cookie')} body={req.body.decode()}"
                writer.write(response(seen.encode()))
            await writer.drain()

    return handler


def test_redirects_are_off_by_default_and_followed_on_request(loop_kind: str) -> None:
    async def main() -> None:
        port = [0]
        async with serve(redirecting(port)) as srv, Client() as client:
            r = await client.get(srv.url("/to/302/final"))
            assert r.status == 302 and r.headers["location"] == "/final"
            r = await client.get(srv.url("/to/302/final"), follow_redirects=True)
            assert r.status == 200 and r.text.startswith("GET /final")
            assert [h.status for h in r.history] == [302]

    run(loop_kind, main)


@pytest.mark.parametrize(
    ("status", "method", "expect"),
    [
        (301, "POST", "GET /end auth=None cookie=None body="),
        (302, "POST", "GET /end auth=None cookie=None body="),
        (303, "PUT", "GET /end auth=None cookie=None body="),
        (307, "POST", "POST /end auth=None cookie=None body=payload"),
        (308, "PUT", "PUT /end auth=None cookie=None body=payload"),
        (301, "PUT", "PUT /end auth=None cookie=None body="),
    ],
)
def test_method_and_body_rules(loop_kind: str, status: int, method: str, expect: str) -> None:
    async def main() -> None:
        async with serve(redirecting([0])) as srv, Client(follow_redirects=True) as client:
            r = await client.request(method, srv.url(f"/to/{status}/end"), content=b"payload")
            assert r.text == expect

    run(loop_kind, main)


def test_credentials_dropped_across_origins_kept_within(loop_kind: str) -> None:
    async def main() -> None:
        port = [0]
        async with (
            serve(redirecting(port)) as other,
            serve(redirecting(port)) as srv,
            Client(follow_redirects=True) as client,
        ):
            port[0] = other.port
            secrets = {"Authorization": "Bearer s3cret", "Cookie": "id=1"}
            r = await client.get(srv.url("/to/302/same"), headers=secrets)
            assert r.text == "GET /same auth=Bearer s3cret cookie=id=1 body="
            r = await client.get(srv.url("/to/302/other"), headers=secrets)
            assert r.text == "GET /other auth=None cookie=None body="

    run(loop_kind, main)


def test_too_many_redirects_and_one_shot_body(loop_kind: str) -> None:
    async def gen():
        yield b"once"

    async def main() -> None:
        async with (
            serve(redirecting([0])) as srv,
            Client(follow_redirects=True, max_redirects=3) as client,
        ):
            with pytest.raises(TooManyRedirects, match="max_redirects=3"):
                await client.get(srv.url("/loop"))
            with pytest.raises(RedirectError, match="one-shot"):
                await client.post(srv.url("/to/307/end"), content=gen())
            r = await client.post(srv.url("/to/307/end"), content=lambda: gen())
            assert r.text.endswith("body=once")

    run(loop_kind, main)


def test_streamed_redirect(loop_kind: str) -> None:
    async def main() -> None:
        async with serve(redirecting([0])) as srv, Client(follow_redirects=True) as client:
            async with client.stream("GET", srv.url("/to/308/s")) as resp:
                body = b"".join([c async for c in resp.iter_bytes()])
            assert body.startswith(b"GET /s") and resp.history[0].status == 308

    run(loop_kind, main)
