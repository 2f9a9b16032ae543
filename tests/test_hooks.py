"""Event hooks against a real loopback server: request hooks shape the head, response
hooks see the response first and may raise."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from aiofasthttp import Client, HTTPStatusError, InvalidHeader, Response
from aiofasthttp.engine.hooks import OutgoingRequest
from servers import LOOPS, ConnInfo, read_request, response, run, serve, stats_of

pytestmark = pytest.mark.parametrize("loop_kind", LOOPS)


async def headers_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo):
    """Answers with the request's method, target and headers as JSON."""
    while (req := await read_request(reader)) is not None:
        info.requests += 1
        body = json.dumps({"method": req.method, "target": req.target, "headers": req.headers})
        status = 500 if req.target == "/fail" else 200
        writer.write(response(body.encode(), status=status))
        await writer.drain()


def test_a_request_hook_adds_and_changes_headers_before_the_head_is_encoded(
    loop_kind: str,
) -> None:
    counter = itertools.count(1)
    seen: list[str] = []

    async def sign(request: OutgoingRequest) -> None:
        seen.append(f"{request.method} {request.url}")
        request.headers["X-Signature"] = f"sig-{next(counter)}"
        request.headers["x-replaced"] = "by-hook"
        request.headers["User-Agent"] = "hooked/1"
        request.headers.pop("X-Dropped", None)

    async def main() -> None:
        async with serve(headers_echo) as srv:
            hooks = {"request": [sign]}
            async with Client(base_url=srv.url(), event_hooks=hooks) as client:
                for expected in ("sig-1", "sig-2"):  # no head is kept: the hook runs each time
                    resp = await client.get(
                        "/a",
                        params={"q": "1"},
                        headers={"X-Replaced": "by-caller", "X-Dropped": "yes"},
                    )
                    got = resp.json()["headers"]
                    assert got["x-signature"] == expected
                    assert got["x-replaced"] == "by-hook"
                    assert got["user-agent"] == "hooked/1"  # the hook's wins over the default
                    assert "x-dropped" not in got
                    assert resp.json()["target"] == "/a?q=1"
                posted = await client.post("/p", json={"k": 1})
                assert posted.json()["method"] == "POST"
                assert posted.json()["headers"]["content-type"] == "application/json"
            assert seen == [f"GET {srv.url('/a?q=1')}"] * 2 + [f"POST {srv.url('/p')}"]

    run(loop_kind, main)


def test_a_response_hook_sees_the_response_first_and_may_raise(loop_kind: str) -> None:
    order: list[str] = []

    async def record(resp: Response) -> None:
        order.append(f"hook {resp.status}")

    async def strict(resp: Response) -> None:
        resp.raise_for_status()

    async def main() -> None:
        async with serve(headers_echo) as srv:
            hooks = {"response": [record, strict]}
            async with Client(event_hooks=hooks) as client:
                resp = await client.get(srv.url("/ok"))
                order.append("caller")
                with pytest.raises(HTTPStatusError):
                    await client.get(srv.url("/fail"))
                assert order == ["hook 200", "caller", "hook 500"]
                # The body was read before the hook raised: the connection is reused.
                assert (await client.get(srv.url("/ok"))).status == 200
                assert stats_of(client)["created"] == 1
                assert resp.status == 200

    run(loop_kind, main)


def test_hooks_on_a_stream_and_a_raising_hook_closes_the_connection(loop_kind: str) -> None:
    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo):
        while (req := await read_request(reader)) is not None:
            writer.write(response(b"x" * (4 << 20), headers={"X-Target": req.target}))
            await writer.drain()

    async def refuse(resp: Response) -> None:
        if resp.headers["x-target"] == "/refused":
            raise RuntimeError("refused by the hook")

    async def tag(request: OutgoingRequest) -> None:
        request.headers.add("X-Tag", "streamed")

    async def main() -> None:
        async with serve(big) as srv:
            hooks = {"request": [tag], "response": [refuse]}
            async with Client(event_hooks=hooks) as client:
                async with client.stream("GET", srv.url("/ok")) as resp:
                    body = b"".join([c async for c in resp.iter_bytes()])
                assert len(body) == 4 << 20
                with pytest.raises(RuntimeError, match="refused by the hook"):
                    async with client.stream("GET", srv.url("/refused")):
                        pytest.fail("the block must not run")
                # Most of the refused response's body was unread: its connection was
                # closed, not pooled, and the next request dials a new one.
                assert stats_of(client)["open"] == 0
                async with client.stream("GET", srv.url("/again")) as resp:
                    assert resp.status == 200
                assert stats_of(client)["created"] == 2

    run(loop_kind, main)


def test_hooks_can_be_replaced_and_removed(loop_kind: str) -> None:
    calls: list[str] = []

    async def first(request: OutgoingRequest) -> None:
        calls.append("first")

    async def second(request: OutgoingRequest) -> None:
        calls.append("second")

    async def main() -> None:
        async with serve(headers_echo) as srv, Client() as client:
            assert client.event_hooks == {"request": (), "response": ()}
            await client.get(srv.url())
            client.event_hooks = {"request": [first]}
            await client.get(srv.url())
            client.event_hooks = {"request": [second], "response": []}
            await client.get(srv.url())
            assert client.event_hooks["request"] == (second,)
            client.event_hooks = {}
            assert client._hooks is None  # back to the plain path
            await client.get(srv.url())
            assert calls == ["first", "second"]

    run(loop_kind, main)


def test_bad_hooks_and_bad_header_values_are_refused(loop_kind: str) -> None:
    async def smuggle(request: OutgoingRequest) -> None:
        request.headers["X-Evil"] = "a\r\nInjected: yes"

    async def main() -> None:
        with pytest.raises(ValueError, match="unknown event hook kind"):
            Client(event_hooks={"requests": []})
        with pytest.raises(TypeError, match="not callable"):
            Client(event_hooks={"request": ["nope"]})
        hooks = {"request": [smuggle]}
        async with serve(headers_echo) as srv, Client(event_hooks=hooks) as client:
            with pytest.raises(InvalidHeader):
                await client.get(srv.url())
            assert srv.requests == []

    run(loop_kind, main)


def test_fields_a_hook_only_appends_ride_on_the_kept_head(loop_kind: str) -> None:
    counter = itertools.count(1)

    async def trace_id(request: OutgoingRequest) -> None:
        request.headers["X-Trace-Id"] = f"t{next(counter)}"

    async def main() -> None:
        hooks = {"request": [trace_id]}
        async with serve(headers_echo) as srv, Client(event_hooks=hooks) as client:
            got = [(await client.get(srv.url("/k"))).json()["headers"] for _ in range(3)]
            assert [h["x-trace-id"] for h in got] == ["t1", "t2", "t3"]
            assert all(h["user-agent"].startswith("aiofasthttp/") for h in got)
            posted = (await client.post(srv.url("/k"), json=[1])).json()["headers"]
            assert posted["x-trace-id"] == "t4" and posted["content-length"] == "3"
            # The kept heads are the plain ones: no hook's field leaks into another.
            assert client._kept_heads
            assert all(b"X-Trace-Id" not in r.head for r, _ in client._kept_heads.values())
            with_headers = await client.get(srv.url("/k"), headers={"X-Mine": "1"})
            assert with_headers.json()["headers"]["x-trace-id"] == "t5"
            assert with_headers.json()["headers"]["x-mine"] == "1"

    run(loop_kind, main)


def test_hooks_with_redirects_shape_every_hop_and_see_the_final_response(loop_kind: str) -> None:
    statuses: list[int] = []

    async def sign(request: OutgoingRequest) -> None:
        request.headers["X-Signature"] = "s"

    async def record(resp: Response) -> None:
        statuses.append(resp.status)

    async def redirecting(reader, writer, info: ConnInfo) -> None:
        while (req := await read_request(reader)) is not None:
            if req.target == "/old":
                writer.write(response(b"", status=302, headers={"Location": "/new"}))
            else:
                writer.write(response(req.headers.get("x-signature", "-").encode()))
            await writer.drain()

    async def main() -> None:
        hooks = {"request": [sign], "response": [record]}
        async with serve(redirecting) as srv, Client(event_hooks=hooks) as client:
            resp = await client.get(srv.url("/old"), follow_redirects=True)
            assert resp.content == b"s" and [r.status for r in resp.history] == [302]
            async with client.stream("GET", srv.url("/old"), follow_redirects=True) as streamed:
                assert await streamed.aread() == b"s"
            assert statuses == [200, 200]

    run(loop_kind, main)
