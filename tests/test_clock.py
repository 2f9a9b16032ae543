"""The engine's clock (engine/clock.py): asyncio's own time() read without its frame,
every other clock read through the loop."""

from __future__ import annotations

import asyncio
import time

import uvloop

from aiofasthttp.engine.clock import loop_clock
from aiofasthttp.engine.connection import Connection
from aiofasthttp.h1.url import Origin


def test_asyncio_loops_are_read_through_time_monotonic_itself() -> None:
    loop = asyncio.new_event_loop()
    try:
        clock = loop_clock(loop)
        assert clock is time.monotonic
        before = loop.time()
        assert before <= clock() <= loop.time()  # the same readings as loop.time()
        # What the engine's compiled parts read.
        assert Connection(Origin("http", "127.0.0.1", 1), loop)._clock is time.monotonic
    finally:
        loop.close()


def test_other_clocks_are_read_through_the_loop() -> None:
    class Skewed(asyncio.SelectorEventLoop):
        def time(self) -> float:
            return super().time() + 1000.0

    fixed = asyncio.new_event_loop()
    fixed.time = lambda: 42.0  # type: ignore[method-assign]  # a test's stand-in
    loops = [uvloop.new_event_loop(), Skewed(), fixed]
    try:
        for loop in loops:
            clock = loop_clock(loop)
            assert clock is not time.monotonic
            assert abs(clock() - loop.time()) < 1.0, type(loop)
        assert loop_clock(fixed)() == 42.0
    finally:
        for loop in loops:
            loop.close()
