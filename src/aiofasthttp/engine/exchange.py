"""One request/response exchange on a connection.

An Exchange holds what belongs to one request rather than to the connection:
its waiter, its body pieces and the facts for explaining a failure. A
streamed body's unread pieces stay here after the connection has gone back to
the pool and serves someone else.
"""

from __future__ import annotations

import asyncio
from collections import deque

from ..h1.parser import ResponseHead


class AttemptSettings:
    """What a single attempt needs from the client's settings."""

    __slots__ = ("continue_timeout", "decompress", "max_body_size", "read_timeout")

    def __init__(
        self,
        read_timeout: float | None,
        max_body_size: int | None,
        decompress: bool,
        continue_timeout: float = 1.0,
    ) -> None:
        self.read_timeout = read_timeout
        self.max_body_size = max_body_size
        self.decompress = decompress
        self.continue_timeout = continue_timeout


class Exchange:
    """One request and its response; see the module docstring."""

    __slots__ = (
        "body_done",
        "body_error",
        "body_size",
        "body_waiter",
        "bytes_written",
        "chunks",
        "deadline",
        "head",
        "idle_before",
        "last_read",
        "max_body_size",
        "method",
        "read_timeout",
        "request_written",
        "response_bytes",
        "reused",
        "streaming",
        "timed",
        "unread",
        "url",
        "waiter",
        "withheld_body",
    )

    def __init__(
        self,
        waiter: asyncio.Future[ResponseHead],
        method: str,
        url: str,
        streaming: bool,
        reused: bool,
        idle_before: float,
        max_body_size: int | None,
        read_timeout: float | None,
        deadline: float | None,
        now: float,
    ) -> None:
        self.waiter = waiter
        self.method = method
        self.url = url
        self.streaming = streaming
        self.reused = reused
        self.idle_before = idle_before  # how long the connection sat idle before
        self.max_body_size = max_body_size
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.timed = read_timeout is not None or deadline is not None
        self.last_read = now
        self.head: ResponseHead | None = None
        self.chunks: deque[bytes] = deque()
        self.body_size = 0
        self.body_waiter: asyncio.Future[None] | None = None
        self.body_done = False
        self.body_error: BaseException | None = None
        self.unread = 0
        self.request_written = False
        self.bytes_written = 0
        self.response_bytes = 0
        self.withheld_body: bytes | None = None  # waiting for "100 Continue"

    def wake_reader(self) -> None:
        waiter = self.body_waiter
        if waiter is not None:
            self.body_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def expiry(self) -> float:
        """When the exchange times out if no byte arrives before then."""
        when = self.deadline if self.deadline is not None else float("inf")
        if self.read_timeout is not None:
            when = min(when, self.last_read + self.read_timeout)
        return when
