"""Checked by mypy (tests/test_typing.py), never run: the request methods' keywords are
typed, so a misspelt one or a wrong type is an error, not a silent ``**kwargs``.

Each ``type: ignore[...]`` below must be needed: the test runs mypy with
``--warn-unused-ignores``, so a keyword mypy stopped checking fails the test.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from typing_extensions import assert_type

from aiofasthttp import BasicAuth, Client, DigestAuth, Response


async def well_typed(client: Client) -> None:
    pending = assert_type(client.get("/"), Coroutine[Any, Any, Response])
    assert_type(await pending, Response)
    await client.get("/", params={"q": 1}, cookies={"a": "b"}, auth=BasicAuth("u", "p"))
    await client.post("/", data={"a": "1"}, files={"f": ("a.txt", b"x", "text/plain")})
    await client.put("/", content=[b"a", b"b"], auth=("u", "p"), read_timeout=2.0)
    await client.patch("/", json={"a": 1}, head_timeout=None, pool_timeout=1)
    await client.delete("/", auth=DigestAuth("u", "p"), connect_timeout=1.0)
    await client.head("/", follow_redirects=True, write_timeout=3.0)
    await client.options("/", timeout=5.0, connection_close=True)
    await client.request("GET", "/", cookies={"a": "b"}, files=None)
    async with client.stream("GET", "/", auth=("u", "p"), read_timeout=1.0) as resp:
        assert_type(resp, Response)


async def misspelt(client: Client) -> None:
    await client.get("/", timout=1.0)  # type: ignore[call-arg]
    await client.post("/", file={"f": b"x"})  # type: ignore[call-arg]
    await client.put("/", cookie={"a": "b"})  # type: ignore[call-arg]
    await client.delete("/", read_timout=1.0)  # type: ignore[call-arg]
    await client.request("GET", "/", auths=("u", "p"))  # type: ignore[call-arg]
    async with client.stream("GET", "/", head_timout=1.0) as _:  # type: ignore[call-arg]
        pass


async def mistyped(client: Client) -> None:
    await client.get("/", cookies=["a=b"])  # type: ignore[arg-type]
    await client.get("/", auth="user:pw")  # type: ignore[arg-type]
    await client.get("/", read_timeout="2")  # type: ignore[arg-type]
    await client.post("/", files={"f": 3})  # type: ignore[arg-type]
