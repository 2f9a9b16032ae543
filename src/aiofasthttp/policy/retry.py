"""The retry policy: an immutable value that says whether a failed attempt may be replayed.

It decides from what each layer knows (docs/design.md's replay table): the
connection reports whether the request was written, whether the connection
was reused, whether response bytes arrived; the policy adds the method's
idempotency, an ``Idempotency-Key``, the body's replayability and the user's
``retry_if``. The policy never sleeps: the client does, within the deadline.
This module imports nothing from asyncio.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import (
    ConnectError,
    ConnectionClosedError,
    ProxyError,
    TimeoutError,
    TLSError,
)
from ..h1.request import IDEMPOTENT_METHODS

# Why an attempt is replayed: the words are reasons.py's.
from ..reasons import CONNECT, NOT_SENT, STALE, TIMEOUT, USER

if TYPE_CHECKING:
    from ..h1.request import Request

RetryIf = Callable[["Request", BaseException, int], bool]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how to replay a failed request.

    ``attempts`` counts every attempt, the first included (5, as fasthttp's
    MaxIdemponentCallAttempts); ``attempts=1`` turns replays off.
    """

    attempts: int = 5
    methods: frozenset[str] = IDEMPOTENT_METHODS
    statuses: frozenset[int] = frozenset()
    retry_if: RetryIf | None = field(default=None, compare=False)
    retry_timeouts: bool = False
    backoff_base: float = 0.05
    backoff_cap: float = 2.0
    jitter: float = 0.5
    respect_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    def replay_reason(self, request: Request, error: BaseException, attempt: int) -> str | None:
        """Why ``request`` may be sent again after ``error`` on ``attempt``, or None."""
        if attempt >= self.attempts:
            return None
        reason = self._safe_reason(request, error)
        if reason is not None:
            return reason if request.replayable else None
        if (
            self.retry_if is not None
            and request.replayable
            and self.retry_if(request, error, attempt)
        ):
            return USER
        return None

    def _safe_reason(self, request: Request, error: BaseException) -> str | None:
        if isinstance(error, TLSError):
            return None  # a certificate will not verify on the next try either
        if isinstance(error, ProxyError) and error.refused:
            return None  # nor will the proxy accept what it just refused
        if isinstance(error, ConnectError):
            return CONNECT  # refused, unreachable or timed out: the request never left
        if isinstance(error, ConnectionClosedError):
            if error.response_bytes:
                return None  # the server was answering: it processed the request
            if not error.request_written:
                # Found closed before it was written: a stale connection if reused.
                return STALE if error.reused else NOT_SENT
            if self.is_idempotent(request):
                return STALE if error.reused else NOT_SENT
            return None
        if isinstance(error, TimeoutError) and self.retry_timeouts and self.is_idempotent(request):
            return TIMEOUT
        return None

    def is_idempotent(self, request: Request) -> bool:
        return request.idempotent or request.method in self.methods

    def retry_status(self, status: int, attempt: int) -> bool:
        return status in self.statuses and attempt < self.attempts

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``: exponential, capped, jittered."""
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        if self.jitter:
            delay *= 1.0 - self.jitter * (rng or random).random()
        return delay

    def retry_after(self, value: str | None) -> float | None:
        """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP-date)."""
        if not self.respect_retry_after or not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when: float = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, when - time.time())


NO_RETRY = RetryPolicy(attempts=1)


def coerce_policy(retry: Any) -> RetryPolicy:
    if retry is None or retry is True:
        return RetryPolicy()
    if retry is False:
        return NO_RETRY
    if isinstance(retry, int):
        return RetryPolicy(attempts=retry)
    if isinstance(retry, RetryPolicy):
        return retry
    raise TypeError(f"retry must be a RetryPolicy, an int, True or False, not {retry!r}")


class RetryBudget:
    """Retries allowed per origin: a share of recent requests, plus a small floor.

    Over a sliding ``window`` of seconds, retries may reach ``ratio`` times the
    requests sent plus ``floor_per_second`` times the window, so a failing
    server sees a bounded amount of extra traffic rather than a retry storm.

    Counting a request is one increment and one comparison, so that callers can
    do it inline: ``requests`` counts every request ever, and once a second (at
    the first request after ``tick_at``) ``tick()`` notes the counts, so the
    window's requests are the count now minus the count noted at its start.
    Time is passed in, so this stays free of any event loop.
    """

    __slots__ = ("_marks", "floor_per_second", "ratio", "requests", "retries", "tick_at", "window")

    def __init__(
        self, ratio: float = 0.2, floor_per_second: float = 10.0, window: int = 10
    ) -> None:
        self.ratio = ratio
        self.floor_per_second = floor_per_second
        self.window = window
        self.requests = 0
        self.retries = 0
        self.tick_at = float("-inf")
        self._marks: deque[tuple[int, int, int]] = deque()  # (second, requests, retries)

    def tick(self, now: float) -> None:
        """Note the counts at the start of a new second; forget seconds out of the window."""
        second = int(now)
        self.tick_at = second + 1
        marks = self._marks
        marks.append((second, self.requests, self.retries))
        while marks[0][0] <= second - self.window:
            marks.popleft()

    def record_request(self, now: float) -> None:
        # RetryCoordinator.fetch() does the same inline, per request: change both.
        if now >= self.tick_at:
            self.tick(now)
        self.requests += 1

    def try_retry(self, now: float) -> bool:
        """Spend one retry if the budget allows it."""
        if now >= self.tick_at:
            self.tick(now)
        _, requests_before, retries_before = self._marks[0]
        requests = self.requests - requests_before
        retries = self.retries - retries_before
        if retries >= self.ratio * requests + self.floor_per_second * self.window:
            return False
        self.retries += 1
        return True
