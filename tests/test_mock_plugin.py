"""The pytest plugin: the aiofasthttp_mock fixture, found through its entry point.

Each test writes a test file into pytester's temporary directory, with no
conftest and no import of the plugin, and runs pytest on it: the fixture is
there only if the ``pytest11`` entry point registered it.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HEADER = """
import asyncio
from aiofasthttp import Client
from aiofasthttp.testing import MockResponse
"""


def test_the_entry_point_registers_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_routed(aiofasthttp_mock):
    aiofasthttp_mock.get("http://api/x").respond(200, json={"ok": True})

    async def main():
        async with aiofasthttp_mock.client() as client:
            return await client.get("http://api/x")

    resp = asyncio.run(main())
    assert resp.json() == {"ok": True}
    assert aiofasthttp_mock.routes[0].call_count == 1
"""
    )
    # A subprocess: a fresh interpreter whose pytest finds plugins only by entry point.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_method_query_and_headers_pick_the_route(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_routes(aiofasthttp_mock):
    mock = aiofasthttp_mock
    page2 = mock.get("http://api/items", params={"page": "2"}).respond(200, text="two")
    any_page = mock.get("http://api/items").respond(200, text="any")
    admin = mock.post("http://api/items", headers={"X-Role": "admin"}).respond(201)
    mock.post("http://api/items").respond(403)

    async def main():
        async with mock.client(base_url="http://api") as client:
            return [
                (await client.get("/items", params={"page": 2})).text,
                (await client.get("/items?page=3")).text,
                (await client.post("/items", headers={"X-Role": "admin"}, json={})).status,
                (await client.post("/items", json={})).status,
            ]

    assert asyncio.run(main()) == ["two", "any", 201, 403]
    assert (page2.call_count, any_page.call_count, admin.call_count) == (1, 1, 1)
    assert admin.calls[0].content == b"{}"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_an_uncalled_route_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_forgets_a_call(aiofasthttp_mock):
    aiofasthttp_mock.get("http://api/used").respond(200)
    aiofasthttp_mock.delete("http://api/never").respond(204)
    aiofasthttp_mock.get("http://api/optional", required=False).respond(200)

    async def main():
        async with aiofasthttp_mock.client() as client:
            await client.get("http://api/used")

    asyncio.run(main())
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*routes never called*", "*<Route DELETE http://api/never called=0>*"]
    )
    result.stdout.no_fnmatch_line("*optional*")


def test_an_unmatched_request_fails_loudly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
import pytest
from aiofasthttp.testing import UnmatchedRequest

def test_unmatched(aiofasthttp_mock):
    aiofasthttp_mock.get("http://api/x", required=False).respond(200)

    async def main():
        async with aiofasthttp_mock.client() as client:
            await client.put("http://api/y?z=1", content=b"data")

    with pytest.raises(UnmatchedRequest) as info:
        asyncio.run(main())
    assert "PUT http://api/y?z=1" in str(info.value)
    assert "<Route GET http://api/x called=0>" in str(info.value)
    assert len(aiofasthttp_mock.requests) == 1  # not replayed: a test bug is not the network's

def test_unmatched_and_swallowed(aiofasthttp_mock):
    async def main():
        async with aiofasthttp_mock.client() as client:
            try:
                await client.get("http://api/swallowed")
            except Exception:
                pass

    asyncio.run(main())
"""
    )
    result = pytester.runpytest()
    # The first test passes but still leaves an unmatched request: its teardown errs,
    # as does the second's, whose code under test swallowed the error.
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*requests matched no route*", "*GET http://api/swallowed*"])


def test_answers_in_turn_and_a_reset_replayed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        HEADER
        + """
def test_flaky(aiofasthttp_mock):
    route = (
        aiofasthttp_mock.get("http://api/flaky")
        .then(MockResponse.reset())
        .respond(200, text="up")
        .then(lambda request: MockResponse(200, text=request.headers["x-n"]))
    )

    async def main():
        async with aiofasthttp_mock.client() as client:
            first = await client.get("http://api/flaky")  # reset, replayed: "up"
            second = await client.get("http://api/flaky", headers={"X-N": "3"})
            third = await client.get("http://api/flaky", headers={"X-N": "4"})
            return first.text, second.text, third.text, client.stats()

    first, second, third, stats = asyncio.run(main())
    assert (first, second, third) == ("up", "3", "4")
    assert route.call_count == 4
    (pool,) = stats.values()
    assert pool["retries"] == 1
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_failed_test_is_not_also_blamed_for_its_routes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
def test_fails_first(aiofasthttp_mock):
    aiofasthttp_mock.get("http://api/never").respond(200)
    assert 1 == 2, "the test's own failure"
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, errors=0)
    result.stdout.fnmatch_lines(["*the test's own failure*"])
    result.stdout.no_fnmatch_line("*routes never called*")
