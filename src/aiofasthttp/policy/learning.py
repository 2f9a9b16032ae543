"""What a pool learns about how its server closes idle connections.

A server that gives no ``Keep-Alive`` hint still has an idle timeout and
often a request limit per connection. Each time the server closes an idle
connection (seen through ``eof_received``, so the timing is exact), the pool
reports how long the connection had been idle and how many requests it had
served; from these it learns the idle time after which the server closes, or
the number of requests after which it does, and retires connections a margin
before.

One close proves little: a restarting server or a load balancer dropping its
table closes every connection at once, at whatever idle time each one had.
So a limit is learned only when two closes at least ``SEPARATE`` seconds
apart agree, a burst of closes counting as one; a limit is void while a
connection has been seen to outlive it (more requests served, or an idle
spell survived that is longer by more than the agreement tolerance); and a
learned limit is forgotten ``TTL`` seconds after it was last confirmed, so one
bad lesson does not cost reuse forever. No asyncio here: times are passed in.
"""

from __future__ import annotations

from collections import deque

# A close this soon after a response is taken as a request-count limit, not an idle timeout.
CLOSE_AFTER_RESPONSE = 0.05
SEPARATE = 0.1  # closes nearer in time than this are one event
AGREE = 0.2  # idle times within 20% of each other agree
TTL = 60.0  # a learned limit is forgotten this long after its last confirmation
_KEEP = 16  # recent observations kept of each kind


class ServerMemory:
    def __init__(self) -> None:
        self._idle: deque[tuple[float, float]] = deque(maxlen=_KEEP)  # (when, idle time)
        self._served: deque[tuple[float, int]] = deque(maxlen=_KEEP)  # (when, requests)
        self._idle_timeout: tuple[float, float] | None = None  # (value, confirmed at)
        self._max_requests: tuple[int, float] | None = None
        # The most requests a connection has served, and the longest idle spell one has
        # survived, with when: evidence against a limit below them. Each is replaced by
        # a newer one when beaten, or by any newer one after TTL seconds.
        self.served_record = 0
        self.idle_record = 0.0
        self._served_record_at = self._idle_record_at = float("-inf")
        # survived() records nothing unless a record is beaten or it is past this time
        # (a record due to be replaced): a pool, told of every response, tests first.
        self.renew_at = float("-inf")
        # Where no close is expected (see expects_no_close()), as three attributes a pool
        # can test inline; recomputed whenever a record or a close is noted.
        self.no_close_idle = 0.0
        self.no_close_served = float("inf")
        self.no_close_until = float("-inf")
        # Whether a limit is (or may still be) learned: while not, a pool need not ask.
        self.learned = False

    def survived(self, now: float, served: int, idle_before: float) -> None:
        """A connection answered its ``served``-th request after ``idle_before`` s idle."""
        if served > self.served_record or now > self._served_record_at + TTL:
            self.served_record, self._served_record_at = served, now
        if idle_before > self.idle_record or now > self._idle_record_at + TTL:
            self.idle_record, self._idle_record_at = idle_before, now
        self.renew_at = min(self._served_record_at, self._idle_record_at) + TTL
        self._note_closes(now)

    def has_news(self, now: float, served: int, idle_before: float) -> bool:
        """Whether ``survived(now, served, idle_before)`` would record anything."""
        return served > self.served_record or idle_before > self.idle_record or now > self.renew_at

    def expects_no_close(self, now: float, served: int, idle_for: float) -> bool:
        """Whether neither of the server's closing rules is expected to have closed a
        connection that has served ``served`` requests and sat idle ``idle_for`` s.

        Its idle timeout: connections to this server recently answered after idle
        spells longer by a margin (AGREE: a server's timer and a request race at its
        edge), and no idle close was seen near it. A request limit: no close
        was recently seen after as many requests. (Counts are not held to what has
        been tried: in a pool serving steadily, a connection's next request is most
        often the highest count yet; a close after some count is what says there is a
        limit.) A restart, or a close by no rule, can still have closed it.
        """
        return (
            idle_for <= self.no_close_idle
            and served < self.no_close_served
            and now <= self.no_close_until
        )

    def _note_closes(self, now: float) -> None:
        """Recompute where no close is expected, from the idle record and the recent
        closes: a margin (AGREE) short of the record and of an idle close, and below a
        request count a close came after."""
        idle_closes = [v * (1 - AGREE) for t, v in self._idle if now - t <= TTL]
        served_closes = [n for t, n in self._served if now - t <= TTL]
        idle_closes.append(self.idle_record * (1 - AGREE))  # (no starred list: Cython has none)
        self.no_close_idle = min(idle_closes)
        self.no_close_served = min(served_closes, default=float("inf"))
        self.no_close_until = self._idle_record_at + TTL

    def observe(self, now: float, idle_for: float, served: int, born: float | None = None) -> None:
        """The server closed a connection idle for ``idle_for`` s after ``served`` requests.

        ``born``: when that connection was made. One made after the last close on
        record is a later generation, so its close is a separate event even within
        ``SEPARATE`` seconds: a fast client meets a request limit in waves, each wave
        on the connections that replaced the last (a restart closes one generation).
        """
        if idle_for < CLOSE_AFTER_RESPONSE:
            served_seen = self._served
            if _new_event(served_seen, now) or (born is not None and born > served_seen[-1][0]):
                served_seen.append((now, served))
            agreeing = [n for t, n in self._served if n == served and now - t <= TTL]
            if len(agreeing) >= 2:
                self._max_requests = (served, now)
                self.learned = True
        else:
            if _new_event(self._idle, now):
                self._idle.append((now, idle_for))
            close = [
                v for t, v in self._idle
                if now - t <= TTL and abs(v - idle_for) <= AGREE * max(v, idle_for)
            ]  # fmt: skip
            if len(close) >= 2:
                self._idle_timeout = (min(close), now)
                self.learned = True
        self._note_closes(now)

    def longest_idle_survived(self, now: float) -> float:
        """The longest idle spell after which a connection recently answered a request."""
        return self.idle_record if now - self._idle_record_at <= TTL else 0.0

    def shortest_idle_close(self, now: float) -> float | None:
        """The shortest idle time after which the server was recently seen closing,
        learned or not: a connection near it is no place for a request not replayed."""
        recent = [v for t, v in self._idle if now - t <= TTL]
        return min(recent) if recent else None

    def request_limit_seen(self, now: float) -> int | None:
        """The request count after which the server was recently seen closing: the
        learned limit, else the lowest count observed (for explaining a failure)."""
        learned = self.max_requests(now)
        if learned is not None:
            return learned
        recent = [n for t, n in self._served if now - t <= TTL]
        return min(recent) if recent else None

    def idle_timeout(self, now: float) -> float | None:
        learned = self._idle_timeout
        # Survivors within the agreement tolerance do not void it: a poller that waits
        # exactly the server's timeout sees connections closed at 0.2001 s and others
        # that answered at 0.2003 s, as the server's timer and the request race.
        if learned is not None and (
            now - learned[1] > TTL
            or (self.idle_record > learned[0] * (1 + AGREE) and now - self._idle_record_at <= TTL)
        ):
            self._idle_timeout = learned = None
            self.learned = self._max_requests is not None
        return None if learned is None else learned[0]

    def max_requests(self, now: float) -> int | None:
        learned = self._max_requests
        if learned is not None and (
            now - learned[1] > TTL
            or (self.served_record > learned[0] and now - self._served_record_at <= TTL)
        ):
            self._max_requests = learned = None
            self.learned = self._idle_timeout is not None
        return None if learned is None else learned[0]


def _new_event(seen: deque[tuple[float, float]] | deque[tuple[float, int]], now: float) -> bool:
    """False when the last observation was part of the same burst of closes."""
    return not seen or now - seen[-1][0] >= SEPARATE
