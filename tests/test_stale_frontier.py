"""Where a server's close and a request that is not replayed cross.

Two scenarios against a real server process on loopback (the benchmark suite's
uvloop + httptools server), with the client's defaults on uvloop and 16
workers, as in the suite's stale scenario:

- the poller at the idle edge: the server closes connections idle for 0.2 s,
  and each worker waits exactly that long every 10 requests;
- first contact: the server closes every connection silently after its 50th
  response, and all 16 connections reach 50 at the same moment, before the
  pool has learned anything.

At most 2 POSTs may be lost at the idle edge, and at first contact at most a quarter
of the 16 connections' POSTs in the first burst and none after it (a POST that may
have been processed is never replayed); GETs lose none. Then what the pool learns
at the edge, and the explanation (the pool's rules for such requests are tested one
by one against fake connections in test_pool_unit.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from aiofasthttp import Client, HTTPError
from aiofasthttp.engine.explain import likely_cause
from aiofasthttp.policy.learning import ServerMemory
from benchmarks.routes import POST_BODY
from benchmarks.server import ServerProcess
from servers import run, stats_of

WORKERS = 16
MOST_LOST = 2
MOST_LOST_AT_FIRST_CONTACT = WORKERS // 4


@pytest.fixture(scope="module")
def idle_closing_server() -> Iterator[ServerProcess]:
    with ServerProcess(idle_close=0.2) as srv:
        yield srv


@pytest.fixture(scope="module")
def request_limited_server() -> Iterator[ServerProcess]:
    with ServerProcess(max_requests=50) as srv:
        yield srv


async def _send(client: Client, url: str, method: str, lost: list[str]) -> None:
    try:
        resp = await client.request(method, url, content=POST_BODY if method == "POST" else None)
        assert resp.status == 200
    except HTTPError as exc:
        lost.append(str(exc))


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_poller_at_the_idle_edge(idle_closing_server: ServerProcess, method: str) -> None:
    url = idle_closing_server.base_url + ("/post" if method == "POST" else "/small")
    lost: list[str] = []

    async def worker(client: Client) -> None:
        for i in range(100):
            if i and i % 10 == 0:
                await asyncio.sleep(0.2)  # the workload's own pacing: the server's timeout
            await _send(client, url, method, lost)

    async def main() -> dict[str, object]:
        async with Client() as client:
            await asyncio.gather(*(worker(client) for _ in range(WORKERS)))
            return stats_of(client)

    stats = run("uvloop", main)
    assert isinstance(stats, dict)
    assert len(lost) <= (MOST_LOST if method == "POST" else 0), lost[:3]
    assert stats["closed_by_server_idle"] > 0  # the edge was met
    # What the pool learns is not asserted here: under load the server's closes can
    # bunch into one burst (no second, separate event) and nothing is learned, yet no
    # POST may be lost; learning at the edge is tested in test_pool_unit.py and below.
    learned = stats["learned_idle_timeout"]
    assert learned is None or learned == pytest.approx(0.2, abs=0.05)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_first_contact_with_a_silent_request_limit(
    request_limited_server: ServerProcess, method: str
) -> None:
    url = request_limited_server.base_url + ("/post" if method == "POST" else "/small")
    lost_per_burst: list[int] = []

    async def burst(client: Client, size: int) -> None:
        lost: list[str] = []
        todo = iter(range(size))

        async def worker() -> None:
            for _ in todo:
                await _send(client, url, method, lost)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))
        lost_per_burst.append(len(lost))

    async def main() -> dict[str, object]:
        async with Client() as client:
            for _ in range(6):
                await burst(client, 1000)
            return stats_of(client)

    stats = run("uvloop", main)
    # Only the first burst can lose a POST: its 16 connections reach the limit together,
    # before the first close can teach anything, and a POST already sent when its
    # connection's FIN arrives is lost (the ceiling loses all 16). How many are in
    # flight at that moment depends on how the two processes are scheduled, so that
    # burst is bounded by MOST_LOST_AT_FIRST_CONTACT; once the limit is learned, none.
    if method == "POST":
        assert lost_per_burst[0] <= MOST_LOST_AT_FIRST_CONTACT, lost_per_burst
        assert lost_per_burst[1:] == [0] * 5, lost_per_burst
    else:
        assert lost_per_burst == [0] * 6, lost_per_burst
    assert stats["learned_max_requests"] == 50, stats


# -- the pieces ------------------------------------------------------------------------


def test_survivors_within_the_tolerance_do_not_void_an_idle_timeout() -> None:
    m = ServerMemory()
    m.observe(10.0, 0.2001, 7)
    m.observe(11.0, 0.2002, 3)
    assert m.idle_timeout(11.0) == pytest.approx(0.2001)
    m.survived(11.5, 9, 0.2030)  # answered after 0.203 s idle: the timer lost that race
    assert m.idle_timeout(11.5) == pytest.approx(0.2001)
    m.survived(12.0, 9, 0.35)  # well beyond: the timeout is not 0.2 s after all
    assert m.idle_timeout(12.0) is None
    assert m.shortest_idle_close(12.0) == pytest.approx(0.2001)  # still evidence


def test_request_limit_seen_is_the_learned_one_or_the_lowest_observed() -> None:
    m = ServerMemory()
    assert m.request_limit_seen(0.0) is None
    m.observe(1.0, 0.001, 50)
    assert m.request_limit_seen(1.0) == 50
    m.observe(2.0, 0.001, 50)
    assert m.max_requests(2.0) == 50 and m.request_limit_seen(2.0) == 50


def _failed_exchange(idle: float, served: int, memory: ServerMemory | None) -> str | None:
    loop = SimpleNamespace(time=lambda: 100.0)
    conn = SimpleNamespace(
        loop=loop,
        requests_served=served,
        keep_alive_timeout=None,
        server_memory=memory,
    )
    ex = SimpleNamespace(response_bytes=0, reused=True, idle_before=idle)
    return likely_cause(conn, ex)  # type: ignore[arg-type]


def test_the_explanation_names_the_idle_timeout_when_the_evidence_does() -> None:
    memory = ServerMemory()
    memory.observe(90.0, 0.201, 7)
    memory.observe(95.0, 0.200, 12)
    said = _failed_exchange(0.200, 24, memory)
    assert said is not None and "idle for about 0.200 s" in said
    assert "requests per connection" not in said


def test_the_explanation_names_the_request_limit_when_the_evidence_does() -> None:
    memory = ServerMemory()
    memory.observe(90.0, 0.001, 50)
    said = _failed_exchange(0.0004, 50, memory)
    assert said is not None and "after 50 requests" in said
    # Without evidence, it says what it cannot tell apart.
    said = _failed_exchange(0.0004, 50, ServerMemory())
    assert said is not None and "may limit requests per connection" in said
