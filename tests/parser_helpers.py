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
    has_content_encoding: bool
    has_set_cookie: bool


def _pairs(pairs: Iterable[tuple[bytes, bytes]] | None) -> Pairs | None:
    if pairs is None:
        return None
    return tuple((bytes(name), bytes(value)) for name, value in pairs)


def snapshot(head: Any) -> Head:
    """A frozen copy of every field a ResponseHead reports."""
    return Head(
        status=head.status,
        reason=bytes(head.reason),
        version=tuple(head.version),
        headers=_pairs(head.headers) or (),
        keep_alive=head.keep_alive,
        chunked=head.chunked,
        content_length=head.content_length,
        keep_alive_timeout=head.keep_alive_timeout,
        keep_alive_max=head.keep_alive_max,
        upgrade=head.upgrade,
        has_content_encoding=head.has_content_encoding,
        has_set_cookie=head.has_set_cookie,
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


class WholeRecorder(Recorder):
    """A Recorder with ``on_response``: whole responses come in one call, recorded as
    the same head, body and complete events (so parses compare with ``==``)."""

    def __init__(self) -> None:
        super().__init__()
        self.whole = 0  # how many responses came through on_response

    def on_response(self, head: Any, body: Any) -> None:
        self.whole += 1
        self.on_head(head)
        self.on_body(body)
        self.on_complete()


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

    @property
    def offset(self) -> int | None:
        return None if self.error is None else self.error.offset

    def key(self) -> tuple[Any, ...]:
        """What must not depend on how the input was split: events and the error, offset too."""
        return (self.events, self.error_type, self.reason, self.offset)


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
    sink: Recorder | None = None,
    **limits: int,
) -> Outcome:
    """Feed ``pieces`` (one bytes object, or several) to a fresh parser of ``impl``.

    ``methods`` are queued with ``expect()`` first; ``eof`` calls ``feed_eof()``
    after the last piece. A ProtocolError ends the run and is returned, any
    other exception propagates. ``sink``: a Recorder of the caller's (a new one).
    """
    if sink is None:
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


def check_event_order(events: list[tuple[str, Any]]) -> None:
    """Events follow the sink's grammar: (informational* head body* complete)*, maybe cut short."""
    in_message = False
    for kind, _ in events:
        if kind in ("informational", "head"):
            assert not in_message, f"{kind} inside a message: {events}"
            in_message = kind == "head"
        else:
            assert in_message, f"{kind} outside a message: {events}"
            in_message = kind != "complete"


# -- fuzzing input ------------------------------------------------------------

SEED_MESSAGES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5, max=3\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'5;a="b"\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n',
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    b"HTTP/1.0 200 OK\r\nFolded: a\r\n b\r\nConnection: close\r\n\r\nuntil close",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    b"1\r\nx\r\n0\r\n\r\n",
]
FUZZ_TOKENS = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b" ",
    b"\t",
    b":",
    b";",
    b",",
    b"=",
    b'"',
    b"\\",
    b"0",
    b"9",
    b"F",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 ",
    b"Content-Length: ",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffffff",
]


def fuzz_inputs() -> Any:
    """A hypothesis strategy of hostile byte strings: mutated responses, token soup, noise."""
    from hypothesis import strategies as st

    @st.composite
    def mutated(draw: Any) -> bytes:
        data = bytearray(draw(st.sampled_from(SEED_MESSAGES)))
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            op = draw(st.sampled_from(["insert", "delete", "replace"]))
            if op == "insert":
                data[at:at] = draw(st.sampled_from(FUZZ_TOKENS))
            elif op == "delete":
                del data[at : at + draw(st.integers(1, 4))]
            else:
                data[at : at + 1] = bytes([draw(st.integers(0, 255))])
        return bytes(data)

    soup = st.lists(st.sampled_from(FUZZ_TOKENS), max_size=24).map(b"".join)
    return st.one_of(mutated(), soup, st.binary(max_size=200))


def fuzz_runs() -> Any:
    """(pieces, methods, eof, limits) for one fuzzed run."""
    from hypothesis import strategies as st

    @st.composite
    def runs(draw: Any) -> tuple[list[bytes], list[bytes], bool, dict[str, int]]:
        data = draw(fuzz_inputs())
        cuts = draw(st.lists(st.integers(0, len(data)), max_size=5))
        methods = draw(st.lists(st.sampled_from([b"GET", b"HEAD", b"CONNECT"]), max_size=3))
        limits = draw(
            st.sampled_from([{}, {"max_head_size": 48, "max_headers": 2, "max_chunk_line_size": 8}])
        )
        return pieces_at(data, cuts), methods, draw(st.booleans()), limits

    return runs()
