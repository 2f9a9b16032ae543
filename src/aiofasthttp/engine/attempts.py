"""The rules of a request's attempts that every client shares: the retry budget's
say on a replay, the wait that never runs past the deadline, and the final error
that names its attempt and carries every attempt's error.

Client's RetryCoordinator and PipelineClient both run their attempts with these,
so a rule is written once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import ConnectionClosedError, HTTPError, RequestTimeout

if TYPE_CHECKING:
    from ..h1.request import Request
    from ..policy.retry import RetryBudget, RetryPolicy


class Tries:
    """The bookkeeping of one request's attempts."""

    __slots__ = ("errors", "fresh", "number")

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.fresh = False  # the next attempt must dial a new connection
        self.number = 1


def budgeted_replay_reason(
    policy: RetryPolicy,
    budget: RetryBudget,
    request: Request,
    exc: HTTPError,
    attempt: int,
    now: float,
) -> str | None:
    """Why ``request`` may go again after ``exc``: the policy's reason, if the origin's
    retry budget has a retry left (spending it); None otherwise."""
    reason = policy.replay_reason(request, exc, attempt)
    if reason is not None and not budget.try_retry(now):
        annotate(exc, f" [not replayed: the retry budget for {request.origin} is spent]")
        return None
    return reason


async def wait_before_retry(
    delay: float, deadline: float | None, now: float, tries: Tries, request: Request
) -> None:
    """Sleep ``delay`` seconds, or raise RequestTimeout if that would pass the deadline."""
    if deadline is not None and now + delay >= deadline:
        last = tries.errors[-1] if tries.errors else None
        timeout = RequestTimeout(
            f"{request.method} {request.url}: the request's timeout leaves no time "
            f"for another attempt after {tries.number} attempts: {last}"
        )
        timeout.errors = [*tries.errors, timeout]
        raise timeout from last
    await asyncio.sleep(delay)


def annotate(exc: HTTPError, note: str) -> None:
    """Add ``note`` to the error's message."""
    if exc.args:
        exc.args = (f"{exc.args[0]}{note}", *exc.args[1:])


def final_error(exc: HTTPError, tries: Tries, policy: RetryPolicy, request: Request) -> HTTPError:
    """The last error, told which attempt it was, with every attempt's error attached."""
    errors = tries.errors
    exc.errors = list(errors)
    note = f" [attempt {tries.number} of {policy.attempts}"
    processed = isinstance(exc, ConnectionClosedError) and exc.may_have_been_processed
    if processed and policy.replay_reason(request, exc, 0) is None:
        note += (
            "; not replayed: the server may have processed the request"
            if request.replayable
            else "; not replayed: its body is a one-shot iterable"
        )
    note += "]"
    if len(errors) > 1:
        note += " earlier attempts: " + " | ".join(str(e) for e in errors[:-1])
    annotate(exc, note)
    return exc
