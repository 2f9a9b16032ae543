"""Bytes no request asked for close the connection on purpose, on both parsers and loops.

A server that sends a second response after the first (in the same write, or as
the start of one) must not make a protocol callback raise: the loop would log
"Fatal error: protocol.data_received() call failed" and, under ``python -O``, the
connection would fail with an AttributeError. The connection closes with the
reason ``unsolicited_response``, the caller keeps its answer, the next request
goes on a fresh connection, and asyncio logs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

import aiofasthttp.engine.connection
import aiofasthttp.engine.pipeline
from aiofasthttp import Client, PipelineClient
from servers import LOOPS, ConnInfo, read_request, response, run, serve, stats_of

SECOND_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nwrong"
HALF_A_HEAD = b"HTTP/1.1 200 OK\r\nContent-Le"


@pytest.fixture
def connection_parser(
    parser_impl: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ModuleType]:
    """Connections made during the test parse with ``parser_impl``."""
    monkeypatch.setattr(aiofasthttp.engine.connection, "ResponseParser", parser_impl.ResponseParser)
    yield parser_impl


def answer_then(extra: bytes) -> Any:
    """Answers each request with "ok" and ``extra`` in the same write; keeps the connection."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        while await read_request(reader) is not None:
            writer.write(response(b"ok") + extra)
            await writer.drain()

    return handler


def loop_errors(loop_kind: str, main: Any) -> list[dict[str, Any]]:
    """Run ``main`` and return what reached the loop's exception handler."""
    errors: list[dict[str, Any]] = []

    async def wrapped() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        await main()

    run(loop_kind, wrapped)
    return errors


def asyncio_said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the asyncio logger said, less the selector loop's note on which selector it uses."""
    said = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    return [m for m in said if not m.startswith("Using selector")]


@pytest.mark.parametrize("loop_kind", LOOPS)
@pytest.mark.parametrize("extra", [SECOND_RESPONSE, HALF_A_HEAD], ids=["response", "half-head"])
def test_unasked_bytes_after_a_response_close_the_connection(
    loop_kind: str,
    extra: bytes,
    connection_parser: ModuleType,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with serve(answer_then(extra)) as srv, Client() as client:
            for _ in range(3):
                resp = await client.get(srv.url("/"))
                assert resp.content == b"ok"
            stats = stats_of(client)
            assert stats["close_reasons"].get("unsolicited_response") == 3
            assert stats["created"] == 3 and stats["reused"] == 0
            assert srv.connections == 3

    caplog.set_level(logging.DEBUG)
    assert loop_errors(loop_kind, main) == []
    assert asyncio_said(caplog) == []
    said = [r.getMessage() for r in caplog.records if r.name == "aiofasthttp"]
    assert any("bytes no request asked for" in m for m in said), said


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_a_408_right_behind_a_response_is_a_server_close(
    loop_kind: str, connection_parser: ModuleType
) -> None:
    """Some servers announce an idle close with a 408; in the same read as the response
    before it, it is still a close, not unsolicited bytes."""
    closing = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

    async def main() -> None:
        async with serve(answer_then(closing)) as srv, Client() as client:
            assert (await client.get(srv.url("/"))).content == b"ok"
            assert stats_of(client)["close_reasons"] == {"server_closed_idle": 1}

    assert loop_errors(loop_kind, main) == []


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_unasked_response_on_an_idle_connection(
    loop_kind: str, connection_parser: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    sent = asyncio.Event()

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, info: ConnInfo
    ) -> None:
        await read_request(reader)
        writer.write(response(b"ok"))
        await writer.drain()
        if info.index == 0:
            writer.write(SECOND_RESPONSE)  # later, on its own: the connection is idle
            await writer.drain()
            sent.set()
        while await read_request(reader) is not None:
            writer.write(response(b"ok"))

    async def main() -> None:
        async with serve(handler) as srv, Client() as client:
            assert (await client.get(srv.url("/"))).content == b"ok"
            await sent.wait()
            # The idle connection reads the unasked response and closes; the next
            # request dials anew (or finds it closed by poll() before reuse).
            assert (await client.get(srv.url("/"))).content == b"ok"
            reasons = stats_of(client)["close_reasons"]
            assert set(reasons) & {"unsolicited_response", "found_closed_before_reuse"}
            assert srv.connections == 2

    caplog.set_level(logging.DEBUG)
    assert loop_errors(loop_kind, main) == []
    assert asyncio_said(caplog) == []


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_pipeline_closes_on_unasked_bytes(
    loop_kind: str, monkeypatch: pytest.MonkeyPatch, parser_impl: ModuleType
) -> None:
    monkeypatch.setattr(aiofasthttp.engine.pipeline, "ResponseParser", parser_impl.ResponseParser)

    async def main() -> None:
        async with serve(answer_then(SECOND_RESPONSE)) as srv:
            async with PipelineClient(srv.url()) as pc:
                assert (await pc.get("/")).content == b"ok"
                assert (await pc.get("/")).content == b"ok"
            assert srv.connections == 2

    assert loop_errors(loop_kind, main) == []
