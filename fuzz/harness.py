"""One fuzz case, run against one parser, as a plain comparable trace.

A :class:`Case` is everything a run depends on: the bytes, where they are cut
into feeds (and as what type each piece is passed), the methods queued with
``expect()``, the parser limits and whether ``feed_eof()`` follows. :func:`run`
feeds it to a fresh parser and returns a :class:`Trace`: the events (heads
with every attribute, body bytes, completions, informational heads), the
parser's public state after every feed, and the error that ended it, if any.
Two traces compare with ``==``; :func:`explain` says where they part.

Only ``ProtocolError`` (and subclasses) may leave ``feed()``/``feed_eof()``;
anything else is recorded in ``Trace.crash`` and is a finding by itself.
"""

from __future__ import annotations

import base64
import json
import traceback
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

from aiofasthttp.errors import ProtocolError

PIECE_TYPES = ("bytes", "bytearray", "memoryview")


@dataclass(frozen=True)
class Case:
    data: bytes
    cuts: tuple[int, ...] = ()  # sorted offsets into data; duplicates give empty feeds
    methods: tuple[bytes | str, ...] = ()
    limits: tuple[tuple[str, int], ...] = ()
    eof: bool = True
    # The type each piece is fed as (an index into PIECE_TYPES), cycled; () is all bytes.
    piece_types: tuple[int, ...] = ()
    # Read the heads' headers and trailers only after the last feed, not in the callbacks
    # (the compiled head builds its header list on first access).
    lazy_heads: bool = False
    # The sink raises SinkError from its n-th callback (0: never), as a client's sink may
    # (a body over its size limit); the remaining pieces are still fed.
    raise_at: int = 0

    def pieces(self) -> list[Any]:
        out: list[Any] = []
        start = 0
        for i, cut in enumerate((*self.cuts, len(self.data))):
            piece = self.data[start:cut]
            start = cut
            kind = self.piece_types[i % len(self.piece_types)] if self.piece_types else 0
            if kind == 1:
                out.append(bytearray(piece))
            elif kind == 2:
                out.append(memoryview(piece))
            else:
                out.append(piece)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "data_b64": base64.b64encode(self.data).decode(),
            "data_repr": repr(self.data),
            "cuts": list(self.cuts),
            "methods": [m.decode("latin-1") if isinstance(m, bytes) else [m] for m in self.methods],
            "limits": dict(self.limits),
            "eof": self.eof,
            "piece_types": [PIECE_TYPES[t] for t in self.piece_types],
            "lazy_heads": self.lazy_heads,
            "raise_at": self.raise_at,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Case:
        return cls(
            data=base64.b64decode(obj["data_b64"]),
            cuts=tuple(obj.get("cuts", ())),
            # A method given to expect() as str is saved as a one-item list.
            methods=tuple(
                m[0] if isinstance(m, list) else m.encode("latin-1") for m in obj.get("methods", ())
            ),
            limits=tuple(sorted(obj.get("limits", {}).items())),
            eof=obj.get("eof", True),
            piece_types=tuple(PIECE_TYPES.index(t) for t in obj.get("piece_types", ())),
            lazy_heads=obj.get("lazy_heads", False),
            raise_at=obj.get("raise_at", 0),
        )


def head_snapshot(head: Any) -> tuple[Any, ...]:
    """Every attribute a ResponseHead reports, as plain values."""
    trailers = head.trailers
    return (
        head.status,
        bytes(head.reason),
        tuple(head.version),
        tuple((bytes(n), bytes(v)) for n, v in head.headers),
        bool(head.keep_alive),
        bool(head.chunked),
        head.content_length,
        head.keep_alive_timeout,
        head.keep_alive_max,
        bool(head.upgrade),
        bool(head.has_content_encoding),
        bool(head.has_set_cookie),
        None if trailers is None else tuple((bytes(n), bytes(v)) for n, v in trailers),
    )


class SinkError(Exception):
    """Raised by a Sink on purpose; it must pass through the parser unchanged."""


class Sink:
    """Records the callbacks as events; adjacent body pieces are merged, empty ones dropped.

    A lazy sink keeps the head objects and snapshots them only in :meth:`settle`.
    """

    def __init__(self, lazy: bool = False, raise_at: int = 0) -> None:
        self.events: list[tuple[str, Any]] = []
        self.head: Any = None
        self._snap = _Deferred if lazy else head_snapshot
        self._calls = 0
        self._raise_at = raise_at

    def _tick(self) -> None:
        self._calls += 1
        if self._calls == self._raise_at:
            self.events.append(("sink_error", self._calls))
            raise SinkError(self._calls)

    def on_head(self, head: Any) -> None:
        self._tick()
        self.head = head
        self.events.append(("head", self._snap(head)))

    def on_informational(self, head: Any) -> None:
        self._tick()
        self.events.append(("informational", self._snap(head)))

    def on_body(self, chunk: Any) -> None:
        self._tick()
        chunk = bytes(chunk)
        if not chunk:
            return
        events = self.events
        if events and events[-1][0] == "body":
            events[-1] = ("body", events[-1][1] + chunk)
        else:
            events.append(("body", chunk))

    def on_complete(self) -> None:
        self._tick()
        # The head as it is now: trailers arrive after on_head.
        self.events.append(("complete", None if self.head is None else self._snap(self.head)))

    def settle(self) -> None:
        """Snapshot the heads a lazy sink kept (a no-op for an eager one)."""
        for i, (kind, value) in enumerate(self.events):
            if isinstance(value, _Deferred):
                self.events[i] = (kind, head_snapshot(value.head))


class _Deferred:
    """A head to snapshot later; equal to any other, so the per-feed steps still compare."""

    __slots__ = ("head",)

    def __init__(self, head: Any) -> None:
        self.head = head

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Deferred)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "<head read later>"


@dataclass
class Trace:
    """What one run produced. Two runs agree when their traces are equal."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    # After each feed (and after feed_eof): (number of events, the last event,
    # in_message, upgraded, upgraded_data(), messages_completed, upgrade_offset).
    steps: list[tuple[Any, ...]] = field(default_factory=list)
    error: tuple[str, str, int] | None = None  # (class name, reason, offset)
    after_error: tuple[Any, ...] | None = None  # what feed() and feed_eof() do after it
    crash: str | None = None  # the traceback of anything but a ProtocolError

    def summary(self) -> str:
        if self.crash:
            return "crash: " + self.crash.strip().splitlines()[-1]
        kinds = "".join(kind[0] for kind, _ in self.events)
        return f"events={kinds or '-'} error={self.error}"


def _step(parser: Any, sink: Sink) -> tuple[Any, ...]:
    events = sink.events
    return (
        len(events),
        events[-1] if events else None,
        parser.in_message,
        parser.upgraded,
        parser.upgraded_data(),
        parser.messages_completed,
        parser.upgrade_offset,
    )


def _error_key(exc: ProtocolError) -> tuple[str, str, int]:
    return (type(exc).__name__, exc.reason, exc.offset)


def run(impl: ModuleType, case: Case) -> Trace:
    """Feed ``case`` to a fresh parser of ``impl`` and record everything it reports."""
    trace = Trace()
    sink = Sink(case.lazy_heads, case.raise_at)
    trace.events = sink.events
    try:
        parser = impl.ResponseParser(sink, **dict(case.limits))
        for method in case.methods:
            parser.expect(method)
        calls = [lambda piece=piece: parser.feed(piece) for piece in case.pieces()]
        for call in [*calls, parser.feed_eof] if case.eof else calls:
            try:
                call()
            except SinkError:
                trace.steps.append(("sink_error", *_step(parser, sink)))
            else:
                trace.steps.append(_step(parser, sink))
    except ProtocolError as exc:
        trace.error = _error_key(exc)
        trace.after_error = _after_error(parser)
    except Exception:
        trace.crash = traceback.format_exc()
    try:
        sink.settle()
    except Exception:
        trace.crash = (trace.crash or "") + traceback.format_exc()
    return trace


def _after_error(parser: Any) -> tuple[Any, ...]:
    """A failed parser takes no more input: feed() raises, feed_eof() is quiet."""
    out: list[Any] = []
    for call in (lambda: parser.feed(b"HTTP/1.1 200 OK\r\n\r\n"), parser.feed_eof):
        try:
            call()
            out.append(None)
        except ProtocolError as exc:
            out.append((type(exc).__name__, exc.reason))
    out.append(parser.in_message)
    return tuple(out)


def explain(a: Trace, b: Trace, names: tuple[str, str] = ("python", "c")) -> str:
    """A short account of where two traces differ."""
    lines = []
    for label in ("crash", "error", "after_error"):
        x, y = getattr(a, label), getattr(b, label)
        if x != y:
            lines.append(f"{label}: {names[0]}={x!r} {names[1]}={y!r}")
    for i, (x, y) in enumerate(zip(a.events, b.events, strict=False)):
        if x != y:
            lines.append(f"event {i}: {names[0]}={x!r}\n          {names[1]}={y!r}")
            break
    if len(a.events) != len(b.events):
        lines.append(f"event count: {names[0]}={len(a.events)} {names[1]}={len(b.events)}")
    for i, (x, y) in enumerate(zip(a.steps, b.steps, strict=False)):
        if x != y:
            lines.append(f"after feed {i}: {names[0]}={x!r}\n                {names[1]}={y!r}")
            break
    if len(a.steps) != len(b.steps):
        lines.append(f"feeds done: {names[0]}={len(a.steps)} {names[1]}={len(b.steps)}")
    return "\n".join(lines) or "no difference"


def event_order_fault(events: list[tuple[str, Any]]) -> str | None:
    """Events must follow (informational* head body* complete)*, maybe cut short."""
    in_message = False
    for kind, _ in events:
        if kind in ("informational", "head"):
            if in_message:
                return f"{kind} inside a message"
            in_message = kind == "head"
        elif not in_message:
            return f"{kind} outside a message"
        else:
            in_message = kind != "complete"
    return None


def trace_json(trace: Trace) -> dict[str, Any]:
    """A trace as JSON-able data (bytes shown with repr), for a findings file."""
    return json.loads(json.dumps(asdict(trace), default=repr))
