"""Auth through the Client: Basic and Digest against httpbin, a bearer flow against our own
server, and credentials that never follow a redirect to another origin."""

from __future__ import annotations

import asyncio

import pytest

from aiofasthttp import BasicAuth, Client, DigestAuth
from aiofasthttp.h1.auth import AuthFlow, AuthRequest
from httpbin_server import httpbin_url  # noqa: F401  (the fixture)
from servers import ConnInfo, ReceivedRequest, read_request, response, serve


def test_basic_auth_per_client_and_per_request(httpbin_url: str) -> None:  # noqa: F811
    async def main() -> None:
        url = "/basic-auth/user/passwd"
        async with Client(base_url=httpbin_url, auth=BasicAuth("user", "passwd")) as client:
            resp = await client.get(url)
            assert resp.status == 200 and resp.json() == {"authenticated": True, "user": "user"}
            assert (await client.get(url, auth=("user", "wrong"))).status == 401
            async with client.stream("GET", url) as streamed:
                assert streamed.status == 200
                await streamed.aread()
        async with Client(base_url=httpbin_url) as client:
            assert (await client.get(url)).status == 401
            assert (await client.get(url, auth=("user", "passwd"))).status == 200

    asyncio.run(main())


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_digest_through_the_client(httpbin_url: str, algorithm: str) -> None:  # noqa: F811
    async def main() -> None:
        url = f"{httpbin_url}/digest-auth/auth/user/passwd/{algorithm}"
        async with Client(auth=DigestAuth("user", "passwd")) as client:
            first = await client.get(url)
            second = await client.get(url)  # answered at once: no 401 round
            async with client.stream("GET", url) as streamed:
                assert streamed.status == 200 and (await streamed.aread())
        assert first.status == second.status == 200
        assert first.json()["authenticated"] is True

    asyncio.run(main())


def test_digest_stale_nonce_retried_once_and_a_wrong_password(httpbin_url: str) -> None:  # noqa: F811
    async def main() -> None:
        async with Client(auth=DigestAuth("user", "passwd")) as client:
            once = f"{httpbin_url}/digest-auth/auth/user/passwd/MD5/1"
            assert (await client.get(once)).status == 200
            assert (await client.get(once)).status == 200  # stale kept nonce: fresh answer
            always = f"{httpbin_url}/digest-auth/auth/user/passwd/MD5/0"
            assert (await client.get(always)).status == 401  # stale forever: one retry, then stop
        async with Client() as client:
            url = f"{httpbin_url}/digest-auth/auth/user/passwd/SHA-256"
            assert (await client.get(url, auth=DigestAuth("user", "nope"))).status == 401

    asyncio.run(main())


def _recording(routes: dict[str, bytes]) -> tuple[list[ReceivedRequest], object]:
    seen: list[ReceivedRequest] = []

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while (req := await read_request(reader)) is not None:
            seen.append(req)
            writer.write(routes.get(req.target, response(b"end")))
            await writer.drain()

    return seen, handler


def test_credentials_never_follow_a_redirect_to_another_origin() -> None:
    async def main() -> list[ReceivedRequest]:
        seen, handler = _recording({})
        async with serve(handler) as target:  # type: ignore[arg-type]
            elsewhere = f"http://localhost:{target.port}/end"
            routes = {
                "/away": response(b"", 302, {"Location": elsewhere}),
                "/near": response(b"", 307, {"Location": "/end"}),
            }
            seen_here, here = _recording(routes)
            client = Client(auth=("u", "p"), follow_redirects=True)
            async with serve(here) as server, client:  # type: ignore[arg-type]
                await client.get(server.url("/near"))
                await client.get(server.url("/away"))
                await client.get(
                    server.url("/away"), auth=None, headers={"Authorization": "Bearer x"}
                )
        return seen_here + seen

    seen = asyncio.run(main())
    auths = [(r.target, r.headers.get("authorization")) for r in seen]
    basic = BasicAuth("u", "p").header
    assert auths == [
        ("/near", basic),
        ("/end", basic),  # same origin: kept
        ("/away", basic),
        ("/away", "Bearer x"),  # the client's auth does not replace a hand-set field...
        ("/end", None),  # ...and neither crosses origins
        ("/end", None),
    ]


class BearerAuth:
    """The documented flow: a token refreshed once on a 401."""

    def __init__(self) -> None:
        self.token = "old"
        self.refreshes = 0

    async def auth_flow(self, request: AuthRequest) -> AuthFlow:
        request.set_header("Authorization", f"Bearer {self.token}")
        response = yield request
        if response.status == 401:
            self.refreshes += 1
            self.token = "new"
            request.set_header("Authorization", f"Bearer {self.token}")
            yield request


def test_a_bearer_flow_refreshes_once_and_resends_the_body() -> None:
    async def main() -> tuple[list[ReceivedRequest], list[int], int]:
        seen: list[ReceivedRequest] = []

        async def handler(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
        ) -> None:
            while (req := await read_request(reader)) is not None:
                seen.append(req)
                ok = req.headers.get("authorization") == "Bearer new"
                writer.write(response(req.body if ok else b"expired", 200 if ok else 401))
                await writer.drain()

        auth = BearerAuth()
        async with serve(handler) as server, Client(auth=auth) as client:
            statuses = [(await client.post(server.url("/x"), files={"f": b"data"})).status]
            async with client.stream("GET", server.url("/y")) as resp:
                statuses.append(resp.status)
                await resp.aread()
            # The 401 was read to its end: its connection served every round.
            assert server.connections == 1
            return seen, statuses, auth.refreshes

    seen, statuses, refreshes = asyncio.run(main())
    assert statuses == [200, 200] and refreshes == 1
    assert [r.headers["authorization"] for r in seen] == ["Bearer old", "Bearer new", "Bearer new"]
    assert seen[0].body == seen[1].body and b"data" in seen[1].body
