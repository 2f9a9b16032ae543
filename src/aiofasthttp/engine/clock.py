"""The event loop's clock, read at the least cost.

The compiled connection reads the clock on each read while its request is timed, and
the compiled pool core whenever it is not handed the time. asyncio's own loops define
``time()`` in Python, as ``time.monotonic()``: called from compiled code, each reading
starts a Python frame of its own (callgrind, GET /small at c=64 on asyncio's loop: about
950 instructions a request). Where a loop's ``time`` is that method, the engine reads
``time.monotonic`` itself: the same readings without the frame. Any other clock
(uvloop's, a loop subclass's, a stand-in a test sets on the loop) is read through the
loop's own ``time``. (The coordinator, Python, calls ``loop.time()`` as it is: a call
from Python code into Python code costs no such frame.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """What reads ``loop.time()``, as cheaply as it can be read."""
    read = loop.time
    if getattr(read, "__func__", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return read
