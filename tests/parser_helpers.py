"""An event-recording sink and a driver shared by the parser tests.

The sink turns every callback into a plain, comparable event, so one parse can
be compared with another (whole feed against split feeds, one implementation
against the other) with ``==``:

- ``("informational", head)`` for a 1xx interim head,
- ``("head", head)`` for a final head,
- ``("body", bytes)`` for body bytes (adjacent pieces merged by ``events``),
- ``("complete", trailers)`` at the end of each message.

``head`` is a :class:`Head` snapshot taken when the callback ran, so later
changes to the parser's object cannot hide a difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aiofasthttp.errors import ProtocolError

Pairs = tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True)
class Head:
    status: int
    reason: bytes
    version: tuple[int, int]
    headers: Pairs
    keep_alive: bool
    chunked: bool
    content_length: int | None
    keep_alive_timeout: int | None
    keep_alive_max: int | None
    upgrade: bool


def _pairs(pairs: Iterable[tuple[bytes, bytes]] | None) -> Pairs | None:
    if pairs is None:
        return None
    return tuple((bytes(name), bytes(value)) for name, value in pairs)


def snapshot(head: Any) -> Head:
    """A frozen copy of every field a ResponseHead reports."""
    return Head(
        status=head.status,
        reason=bytes(head.reason),
        version=tuple(head.version),  # type: ignore[arg-type]
        headers=_pairs(head.headers) or (),
        keep_alive=head.keep_alive,
        chunked=head.chunked,
        content_length=head.content_length,
        keep_alive_timeout=head.keep_alive_timeout,
        keep_alive_max=head.keep_alive_max,
        upgrade=head.upgrade,
    )


class Recorder:
    """A parser sink that records every callback in order."""

    def __init__(self) -> None:
        self.raw_events: list[tuple[str, Any]] = []
        self.body_chunks: list[Any] = []  # the very objects passed to on_body
        self.heads: list[Any] = []  # the very head objects passed to on_head

    def on_head(self, head: Any) -> None:
        self.heads.append(head)
        self.raw_events.append(("head", snapshot(head)))

    def on_informational(self, head: Any) -> None:
        self.raw_events.append(("informational", snapshot(head)))

    def on_body(self, chunk: Any) -> None:
        self.body_chunks.append(chunk)
        self.raw_events.append(("body", bytes(chunk)))

    def on_complete(self) -> None:
        trailers = self.heads[-1].trailers if self.heads else None
        self.raw_events.append(("complete", _pairs(trailers)))

    @property
    def events(self) -> list[tuple[str, Any]]:
        """The recorded events with adjacent body pieces merged and empty ones dropped."""
        out: list[tuple[str, Any]] = []
        for kind, value in self.raw_events:
            if kind == "body":
                if not value:
                    continue
                if out and out[-1][0] == "body":
                    out[-1] = ("body", out[-1][1] + value)
                    continue
            out.append((kind, value))
        return out

    @property
    def final_heads(self) -> list[Head]:
        return [value for kind, value in self.raw_events if kind == "head"]

    @property
    def body(self) -> bytes:
        return b"".join(value for kind, value in self.raw_events if kind == "body")

    @property
    def completed(self) -> int:
        return sum(1 for kind, _ in self.raw_events if kind == "complete")


@dataclass
class Outcome:
    """What one parse produced: the events, and the error that ended it, if any."""

    events: list[tuple[str, Any]]
    error: ProtocolError | None
    parser: Any = field(repr=False)
    sink: Recorder = field(repr=False)

    @property
    def reason(self) -> str | None:
        return None if self.error is None else self.error.reason

    @property
    def error_type(self) -> str | None:
        return None if self.error is None else type(self.error).__name__

    def key(self) -> tuple[Any, ...]:
        """What must not depend on how the input was split."""
        return (self.events, self.error_type, self.reason)


def pieces_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (sorted, duplicates allowed)."""
    out = []
    start = 0
    for cut in sorted(cuts):
        out.append(data[start:cut])
        start = cut
    out.append(data[start:])
    return out


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def run(
    impl: ModuleType,
    pieces: bytes | Iterable[bytes],
    *,
    methods: Iterable[bytes] = (),
    eof: bool = False,
    **limits: int,
) -> Outcome:
    """Feed ``pieces`` (one bytes object, or several) to a fresh parser of ``impl``.

    ``methods`` are queued with ``expect()`` first; ``eof`` calls ``feed_eof()``
    after the last piece. A ProtocolError ends the run and is returned, any
    other exception propagates.
    """
    sink = Recorder()
    parser = impl.ResponseParser(sink, **limits)
    for method in methods:
        parser.expect(method)
    if isinstance(pieces, (bytes, bytearray, memoryview)):
        pieces = [bytes(pieces)]
    error = None
    try:
        for piece in pieces:
            parser.feed(piece)
        if eof:
            parser.feed_eof()
    except ProtocolError as exc:
        error = exc
    return Outcome(sink.events, error, parser, sink)
