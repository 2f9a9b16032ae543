"""One request/response exchange on a connection.

An Exchange holds what belongs to one request rather than to the connection:
its waiter, its body pieces and the facts for explaining a failure. A
streamed body's unread pieces stay here after the connection has gone back to
the pool and serves someone else.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping

from .._compiled import read_as_slots
from ..h1.parser import ResponseHead


class AttemptSettings:
    """What a single attempt needs from the client's settings.

    The client keeps one; a request given timeouts of its own gets a copy with
    them (``with_timeouts``), so a plain request reads the shared one.
    """

    __slots__ = (
        "connect_timeout",
        "continue_timeout",
        "decompress",
        "head_timeout",
        "max_body_size",
        "pool_timeout",
        "read_timeout",
        "write_timeout",
    )

    def __init__(
        self,
        read_timeout: float | None,
        max_body_size: int | None,
        decompress: bool,
        continue_timeout: float = 1.0,
        *,
        connect_timeout: float | None = None,
        write_timeout: float | None = None,
        pool_timeout: float | None = None,
        head_timeout: float | None = None,
    ) -> None:
        self.read_timeout = read_timeout
        self.max_body_size = max_body_size
        self.decompress = decompress
        self.continue_timeout = continue_timeout
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.pool_timeout = pool_timeout  # the wait for a free connection at the limit
        self.head_timeout = head_timeout  # from the request written to its response head

    def with_timeouts(self, overrides: Mapping[str, object]) -> AttemptSettings:
        """A copy with some timeouts replaced: ``{"read_timeout": 2.0, ...}``."""
        other = AttemptSettings.__new__(AttemptSettings)
        for name in AttemptSettings.__slots__:
            setattr(other, name, overrides.get(name, getattr(self, name)))
        return other


class Exchange:
    """One request and its response; see the module docstring."""

    __slots__ = (
        "body_done",
        "body_error",
        "body_size",
        "body_waiter",
        "bytes_written",
        "chunks",
        "content",
        "deadline",
        "head",
        "head_at",
        "head_by",
        "head_timeout",
        "idle_before",
        "last_read",
        "max_body_size",
        "method",
        "read_timeout",
        "request_written",
        "response_bytes",
        "reused",
        "sent_at",
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
        head_timeout: float | None,
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
        self.head_timeout = head_timeout
        # When the head must have come; set once the request is all written.
        self.head_by: float | None = None
        self.timed = read_timeout is not None or deadline is not None or head_timeout is not None
        self.last_read = now
        # resp.elapsed: from sent_at to head_at (set by on_head, before anyone reads it).
        self.sent_at = now
        self.head_at: float
        self.head: ResponseHead | None = None
        # The body whole, when it came in one piece (the parser's gathered body), or
        # None; pieces go to ``chunks``, made at the first (no deque per request).
        self.content: bytes | None = None
        self.chunks: deque[bytes] | None = None
        self.body_size = 0
        self.body_waiter: asyncio.Future[None] | None = None
        self.body_done = False
        self.body_error: BaseException | None = None
        self.unread = 0
        self.request_written = False
        self.bytes_written = 0
        self.response_bytes = 0
        self.withheld_body: bytes | None = None  # waiting for "100 Continue"

    def joined(self) -> bytes:
        """The buffered body: whole as it came, or its pieces joined."""
        if self.content is not None:
            return self.content
        chunks = self.chunks
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

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
        if self.head_by is not None and self.head is None:
            when = min(when, self.head_by)
        return when


read_as_slots(Exchange, Exchange.__slots__)
read_as_slots(AttemptSettings, AttemptSettings.__slots__)
