"""Compiled classes the engine's Python code reads on every request.

exchange.py compiled (typed by exchange.pxd) and as written: one behaviour. An
Exchange is made for every request; compiled, it is an extension type filled without
a Python frame. ``aiofasthttp._slots`` gives its fields, and the compiled parser's
ResponseHead's, member descriptors, so the engine's Python code reads them as slots.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import math
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import aiofasthttp.engine.exchange as installed
from conftest import extensions_disabled

SOURCE = Path(installed.__file__).with_name("exchange.py")


def _pure() -> ModuleType:
    """exchange.py run as Python, whatever was built from it."""
    spec = importlib.util.spec_from_file_location("aiofasthttp.engine._exchange_as_written", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["compiled", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "python":
        return _pure()
    if extensions_disabled():
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: nothing is compiled")
    assert not installed.__file__.endswith(".py"), "exchange.py was not compiled"
    return installed


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
    if extensions_disabled():
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: nothing is compiled")
    for cls in (installed.Exchange, installed.AttemptSettings):
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
    if extensions_disabled():
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: nothing is compiled")
    from aiofasthttp import _cparser, _slots

    head_type = _cparser.ResponseParser
    before = {name: head_type.__dict__[name] for name in ("messages_completed", "in_message")}
    assert _slots.as_slots(head_type, ["messages_completed", "in_message", "no_such"]) == []
    assert {name: head_type.__dict__[name] for name in before} == before


def test_a_compiled_head_reads_as_slots_and_starts_as_the_twins() -> None:
    if extensions_disabled():
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: nothing is compiled")
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
