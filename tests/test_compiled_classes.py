"""Compiled classes the engine's Python code reads on every request.

exchange.py, connection.py, poolcore.py and response.py compiled (typed by their
.pxd files) and as written: one behaviour. An
Exchange is made for every request; compiled, it is an extension type filled without
a Python frame. ``aiofasthttp._slots`` gives its fields, and the compiled parser's
ResponseHead's, member descriptors, so the engine's Python code reads them as slots.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import inspect
import math
import sys
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import aiofasthttp.engine.connection as installed_connection
import aiofasthttp.engine.exchange as installed
import aiofasthttp.engine.poolcore as installed_poolcore
import aiofasthttp.h1.request as installed_request
import aiofasthttp.h1.response as installed_response
from aiofasthttp import reasons
from aiofasthttp.errors import ConnectionClosedError, HTTPStatusError
from aiofasthttp.h1._pyparser import ResponseHead
from aiofasthttp.h1.request import EMPTY_BODY, build_request
from aiofasthttp.h1.url import Origin, resolve_url
from conftest import extensions_disabled


def _as_written(module: ModuleType) -> ModuleType:
    """``module``'s source run as Python, whatever was built from it."""
    package, name = module.__name__.rsplit(".", 1)
    source = Path(module.__file__ or "").with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"{package}._{name}_as_written", source)
    assert spec is not None and spec.loader is not None
    written = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = written  # as an import does (dataclasses look it up)
    spec.loader.exec_module(written)
    return written


def _skip_unless_compiled() -> None:
    if extensions_disabled():
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: nothing is compiled")


def _compiled(module: ModuleType) -> ModuleType:
    _skip_unless_compiled()
    assert not (module.__file__ or "").endswith(".py"), f"{module.__name__} was not compiled"
    return module


@pytest.fixture(params=["compiled", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """exchange.py, compiled or as written."""
    if request.param == "python":
        return _as_written(installed)
    return _compiled(installed)


@pytest.fixture(params=["compiled", "python"])
def response_impl(request: pytest.FixtureRequest) -> ModuleType:
    """response.py, compiled or as written."""
    if request.param == "python":
        return _as_written(installed_response)
    return _compiled(installed_response)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop for futures only: nothing here runs on it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _exchange(impl: ModuleType, loop: asyncio.AbstractEventLoop, **changes: Any) -> Any:
    args: dict[str, Any] = {
        "waiter": loop.create_future(),
        "method": "GET",
        "url": "http://127.0.0.1/",
        "streaming": False,
        "reused": True,
        "idle_before": 0.25,
        "max_body_size": None,
        "read_timeout": None,
        "deadline": None,
        "now": 100.0,
        "head_timeout": None,
    }
    args.update(changes)
    return impl.Exchange(*args.values())


def test_the_compiled_fields_are_read_as_slots() -> None:
    _skip_unless_compiled()
    for cls in (installed.Exchange, installed.AttemptSettings, installed_response.Response):
        kinds = {type(cls.__dict__[name]).__name__ for name in cls.__slots__}
        assert kinds == {"member_descriptor"}, cls


def test_a_new_exchange_starts_the_same(impl: ModuleType, loop: asyncio.AbstractEventLoop) -> None:
    ex = _exchange(impl, loop)
    assert (ex.method, ex.url, ex.streaming, ex.reused, ex.idle_before) == (
        "GET",
        "http://127.0.0.1/",
        False,
        True,
        0.25,
    )
    assert (ex.sent_at, ex.last_read, ex.timed, ex.head_by, ex.head) == (
        100.0,
        100.0,
        False,
        None,
        None,
    )
    assert (ex.content, ex.chunks, ex.body_size, ex.body_done, ex.unread) == (
        None,
        None,
        0,
        False,
        0,
    )
    assert (ex.request_written, ex.bytes_written, ex.response_bytes) == (False, 0, 0)
    assert _exchange(impl, loop, read_timeout=5.0).timed
    assert _exchange(impl, loop, head_timeout=1.0).timed


def test_what_python_writes_the_compiled_methods_read(
    impl: ModuleType, loop: asyncio.AbstractEventLoop
) -> None:
    ex = _exchange(impl, loop)
    assert ex.joined() == b""
    ex.content = b"whole"
    assert ex.joined() == b"whole"
    ex.content = None
    ex.chunks = [b"a", b"b"]
    assert ex.joined() == b"ab"
    waiter = ex.body_waiter = loop.create_future()
    ex.wake_reader()
    assert waiter.done() and ex.body_waiter is None


@pytest.mark.parametrize(
    ("changes", "head_by", "expected", "after_head"),
    [
        ({}, None, math.inf, math.inf),
        ({"read_timeout": 2.0}, None, 102.0, 102.0),
        ({"read_timeout": 2.0, "deadline": 101.0}, None, 101.0, 101.0),
        ({"read_timeout": 2.0}, 100.5, 100.5, 102.0),
        ({}, 100.5, 100.5, math.inf),
    ],
)
def test_expiry_is_the_soonest_limit(
    impl: ModuleType,
    loop: asyncio.AbstractEventLoop,
    changes: dict[str, Any],
    head_by: float | None,
    expected: float,
    after_head: float,
) -> None:
    ex = _exchange(impl, loop, **changes)
    ex.head_by = head_by
    assert ex.expiry() == expected
    ex.head = object()  # the head came: its own limit is done with
    assert ex.expiry() == after_head


def test_settings_with_timeouts_copies_and_replaces(impl: ModuleType) -> None:
    settings = impl.AttemptSettings(1.0, 1000, True, 0.5, connect_timeout=3.0)
    other = settings.with_timeouts({"read_timeout": 9.0, "pool_timeout": 2.0})
    assert (other.read_timeout, other.pool_timeout, other.connect_timeout) == (9.0, 2.0, 3.0)
    assert (other.max_body_size, other.decompress, other.continue_timeout) == (1000, True, 0.5)
    assert (settings.read_timeout, settings.pool_timeout) == (1.0, None)


def test_a_cycle_through_an_exchange_is_collected(
    impl: ModuleType, loop: asyncio.AbstractEventLoop
) -> None:
    class Holder:
        exchange: Any = None

    holder = Holder()
    ex = _exchange(impl, loop)
    ex.head = holder
    holder.exchange = ex
    gone = weakref.ref(holder)
    del ex, holder
    gc.collect()
    assert gone() is None


def test_as_slots_leaves_what_it_cannot_place() -> None:
    """Only writable object fields become slots: an int field, a computed property or
    an unknown name keep what they had, and the class stays right."""
    _skip_unless_compiled()
    from aiofasthttp import _cparser, _slots

    head_type = _cparser.ResponseParser
    before = {name: head_type.__dict__[name] for name in ("messages_completed", "in_message")}
    assert _slots.as_slots(head_type, ["messages_completed", "in_message", "no_such"]) == []
    assert {name: head_type.__dict__[name] for name in before} == before


def test_a_compiled_head_reads_as_slots_and_starts_as_the_twins() -> None:
    _skip_unless_compiled()
    from aiofasthttp import _cparser
    from aiofasthttp.h1 import _pyparser

    compiled, twin = _cparser.ResponseHead(), _pyparser.ResponseHead()
    fields = [name for name in _pyparser.ResponseHead.__slots__ if not name.startswith("_")]
    fields.remove("headers")  # built when first read: a property
    kinds = {type(_cparser.ResponseHead.__dict__[name]).__name__ for name in fields}
    assert kinds == {"member_descriptor"}
    assert [getattr(compiled, name) for name in fields] == [getattr(twin, name) for name in fields]
    assert [type(getattr(compiled, name)) for name in fields] == [
        type(getattr(twin, name)) for name in fields
    ]
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del compiled.status
    assert compiled.status == 0


def _head(status: int, *headers: tuple[bytes, bytes]) -> ResponseHead:
    head = ResponseHead()
    head.status = status
    head.reason = b"Teapot" if status == 418 else b"OK"
    head.headers = list(headers)
    return head


def test_a_response_behaves_the_same_compiled(response_impl: ModuleType) -> None:
    head = _head(200, (b"Content-Type", b"application/json; charset=utf-8"))
    resp = response_impl.Response("GET", "http://127.0.0.1/x", head)
    assert (resp.method, resp.url, resp.status, resp.history) == (
        "GET",
        "http://127.0.0.1/x",
        200,
        [],
    )
    assert (resp.reason, resp.http_version, resp.is_success) == ("OK", "HTTP/1.1", True)
    assert resp.elapsed == timedelta(0)  # not timed by the engine
    resp._elapsed = 0.25
    assert resp.elapsed == timedelta(seconds=0.25)
    with pytest.raises(RuntimeError, match="streamed"):
        resp.content  # noqa: B018 - no body yet: a streamed response's
    resp._content = '{"a": "\u00e9"}'.encode()
    assert (resp.json(), resp.text, resp.charset) == ({"a": "\u00e9"}, '{"a": "\u00e9"}', "utf-8")
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    assert resp.raise_for_status() is resp
    assert repr(resp) == "<Response [200 OK] GET http://127.0.0.1/x>"

    async def read() -> tuple[list[bytes], bytes]:
        return [piece async for piece in resp.iter_bytes()], await resp.aread()

    assert asyncio.run(read()) == ([resp.content], resp.content)


def test_a_failed_status_raises_the_same_compiled(response_impl: ModuleType) -> None:
    resp = response_impl.Response("POST", "http://127.0.0.1/y", _head(418))
    with pytest.raises(HTTPStatusError, match="client error 418 Teapot") as raised:
        resp.raise_for_status()
    assert raised.value.response is resp and not resp.is_success


def test_a_response_field_cannot_be_deleted(response_impl: ModuleType) -> None:
    """Compiled, a deleted field would be NULL under the compiled methods: refused in
    both builds alike."""
    resp = response_impl.Response("GET", "http://127.0.0.1/", _head(200))
    for name in ("status", "_content", "_head", "history"):
        with pytest.raises(AttributeError, match="cannot be deleted"):
            delattr(resp, name)
    assert resp.status == 200 and repr(resp) == "<Response [200 OK] GET http://127.0.0.1/>"


def test_buffered_response_is_made_whole(response_impl: ModuleType) -> None:
    resp = response_impl.buffered_response("GET", "http://127.0.0.1/", _head(200), b"ok", 0.5)
    assert (resp.status, resp.content, resp.elapsed) == (200, b"ok", timedelta(seconds=0.5))


@pytest.fixture(params=["compiled", "python"])
def connection_impl(request: pytest.FixtureRequest) -> ModuleType:
    """connection.py, compiled or as written."""
    if request.param == "python":
        return _as_written(installed_connection)
    return _compiled(installed_connection)


def test_a_compiled_connection_keeps_the_pools_fields_in_its_struct() -> None:
    cls = _compiled(installed_connection).Connection
    assert issubclass(cls, _compiled(installed_poolcore).PooledState)
    # What the engine's Python code reads: slots.
    for name in ("listener", "request_limit", "state", "transport", "via"):
        assert type(inspect.getattr_static(cls, name)).__name__ == "member_descriptor", name
    # Times and the request count are C numbers, which the pool's compiled methods
    # read as such.
    for name in ("idle_since", "requests_served", "expires_at", "last_idle", "retire_at"):
        assert type(inspect.getattr_static(cls, name)).__name__ == "getset_descriptor", name
    # An extension type: no instance dict, and its own fields only.
    conn = cls(Origin("http", "127.0.0.1", 1), asyncio.new_event_loop())
    try:
        with pytest.raises(AttributeError):
            conn.not_a_field = 1  # type: ignore[attr-defined]
        with pytest.raises(TypeError):
            conn.idle_since = None  # type: ignore[assignment]
        conn.requests_served += 1
        assert conn.requests_served == 1 and conn.expires_at == math.inf
    finally:
        conn.loop.close()


@pytest.fixture(params=["compiled", "python"])
def poolcore_impl(request: pytest.FixtureRequest) -> ModuleType:
    """poolcore.py, compiled or as written."""
    if request.param == "python":
        return _as_written(installed_poolcore)
    return _compiled(installed_poolcore)


def test_the_pool_core_keeps_the_same_books_compiled(poolcore_impl: ModuleType) -> None:
    """Reuse, expiry, a close found by poll() and the stats: compiled and as written,
    the same."""

    class Conn(poolcore_impl.PooledState):  # type: ignore[name-defined,misc]
        def __init__(self, n: int, now: float) -> None:
            super().__init__(n, now)
            self.quiet = True
            self.closed_with: str | None = None

        @property
        def is_closed(self) -> bool:
            return self.closed_with is not None

        def socket_is_quiet(self) -> bool:
            return bool(self.quiet)

        def close(self, reason: str = reasons.CLIENT_CLOSED) -> None:
            if self.closed_with is None:
                self.closed_with = reason
                self.listener.connection_closed(self, reason)

    loop = asyncio.new_event_loop()  # for its clock and the reaper's timer: not run
    limits = poolcore_impl.PoolLimits(max_idle_duration=10.0)
    core = poolcore_impl.PoolCore(Origin("http", "pool.test", 80), limits, loop)
    try:
        a, b, c = (Conn(n, loop.time()) for n in (1, 2, 3))
        for conn in (a, b, c):
            core._total += 1  # the slot its dial took
            core.adopt(conn)
            conn.requests_served += 1
            conn.idle_since = loop.time()
            core.connection_idle(conn)
        assert a.expires_at == a.idle_since + 10.0
        assert core.counts == {"open": 3, "idle": 3, "active": 0, "dialling": 0, "waiting": 0}
        assert core.acquire_nowait() is c  # last in, first out
        b.expires_at = loop.time() - 1.0
        b.idle_since -= 1.0
        b.quiet = False  # expiry comes first: b is retired, not polled
        a.idle_since -= 1.0  # idle past QUIET_CHECK_AFTER, beyond any spell answered after
        a.quiet = False  # and its socket readable: the server closed it
        assert core.acquire_nowait() is None
        stats = core.stats
        assert (a.closed_with, b.closed_with, c.closed_with) == (
            reasons.FOUND_CLOSED_BEFORE_REUSE,
            reasons.EXPIRED,
            None,
        )
        assert (stats.created, stats.reused, stats.expired, stats.closed_by_server_idle) == (
            3,
            1,
            1,
            1,
        )
        assert core.counts["open"] == 1 and core.memory.served_record == 1
    finally:
        core.close()
        loop.close()
    assert c.closed_with == reasons.CLIENT_CLOSED


def test_the_compiled_pool_core_takes_only_pooled_connections() -> None:
    impl = _compiled(installed_poolcore)
    loop = asyncio.new_event_loop()
    core = impl.PoolCore(Origin("http", "pool.test", 80), impl.PoolLimits(), loop)
    try:
        # The compiled methods read the connection as a C struct: anything else is
        # refused, never read as one.
        for wrong in (None, object()):
            with pytest.raises(TypeError):
                core.connection_idle(wrong)
    finally:
        loop.close()


def test_a_compiled_request_reads_as_slots_and_its_functions_stay_python() -> None:
    """request.py compiled types Request only: its functions still take a str
    subclass where ``str`` is annotated (typed, Cython would refuse one)."""
    module = _compiled(installed_request)
    for name in module.Request.__slots__:
        descriptor = inspect.getattr_static(module.Request, name)
        assert type(descriptor).__name__ == "member_descriptor", name

    class Text(str):
        pass

    url = "http://127.0.0.1/"
    request = module.build_request(
        Text("GET"), Text(url), resolve_url(url), [], [(Text("X-A"), Text("b"))], EMPTY_BODY
    )
    assert request.method == "GET" and b"\r\nX-A: b\r\n" in request.head
    with pytest.raises(AttributeError):
        request.extra = 1  # type: ignore[attr-defined]


_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-N: %d\r\n\r\nhello"


def test_a_connection_exchanges_the_same_compiled(connection_impl: ModuleType) -> None:
    """Two requests on one connection to a loopback server, and then the server's close:
    compiled and as written, the same responses, counts, states and error."""

    async def exchanges() -> tuple[list[tuple[int, bytes, bytes]], int, str, Any]:
        served = 0

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal served
            while served < 2 and await reader.readuntil(b"\r\n\r\n"):
                served += 1
                writer.write(_ANSWER % served)
            await reader.readuntil(b"\r\n\r\n")
            writer.close()  # the third request finds the connection closed under it

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        origin = Origin("http", "127.0.0.1", port)
        try:
            _, conn = await loop.create_connection(
                lambda: connection_impl.Connection(origin, loop), "127.0.0.1", port
            )
            url = f"http://127.0.0.1:{port}/"
            request = build_request("GET", url, resolve_url(url), [], [], EMPTY_BODY)
            settings = installed.AttemptSettings(5.0, None, False)
            seen = []
            for _ in range(2):
                ex = conn.send(request, settings, None, False, True, loop.time())
                head = await asyncio.wait_for(ex.waiter, 5)
                seen.append((head.status, dict(head.headers)[b"X-N"], ex.joined()))
                assert conn.is_idle
            ex = conn.send(request, settings, None, False, True, loop.time())
            with pytest.raises(ConnectionClosedError) as failed:
                await asyncio.wait_for(ex.waiter, 5)
            return seen, conn.requests_served, conn.close_reason, failed.value
        finally:
            server.close()
            await server.wait_closed()

    seen, served, reason, error = asyncio.run(exchanges())
    assert seen == [(200, b"1", b"hello"), (200, b"2", b"hello")]
    assert served == 2
    assert reason == reasons.SERVER_CLOSED
    assert error.request_written and error.reused and error.requests_served == 2
