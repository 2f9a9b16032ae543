"""Content-Length bodies gathered whole: ``collect_limit``, ``body_buffer()``, ``body_written()``.

A connection reading a buffered response sets ``collect_limit``: the parser then keeps
a body of known length in one buffer of its full size, lends what is still to come so
the transport reads straight into it, and hands it to ``on_body`` once, as bytes.
Both implementations, one behaviour.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from aiofasthttp.errors import IncompleteResponse, ProtocolError
from conftest import load_parser_module
from parser_helpers import Recorder, WholeRecorder

BODY = bytes(range(256)) * 40  # 10,240 bytes
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY)
NEXT = b"HTTP/1.1 204 No Content\r\n\r\n"


def _parser(impl: ModuleType, collect_limit: int = 1 << 20) -> tuple[Any, Recorder]:
    sink = Recorder()
    return impl.ResponseParser(sink, collect_limit=collect_limit), sink


def _write(parser: Any, data: bytes) -> None:
    """Read ``data`` "from the socket" straight into the lent body buffer."""
    view = parser.body_buffer()
    assert view is not None and len(view) >= len(data)
    view[: len(data)] = data
    parser.body_written(len(data))


def test_a_body_read_straight_into_its_buffer_comes_whole_once(parser_impl: ModuleType) -> None:
    parser, sink = _parser(parser_impl)
    parser.feed(HEAD + BODY[:100])
    view = parser.body_buffer()
    assert len(view) == len(BODY) - 100 and not view.readonly
    _write(parser, BODY[100:5000])
    assert len(parser.body_buffer()) == len(BODY) - 5000
    assert sink.completed == 0 and sink.body_chunks == []
    _write(parser, BODY[5000:])
    assert [type(chunk) for chunk in sink.body_chunks] == [bytes]
    assert sink.body_chunks[0] == BODY and sink.completed == 1
    assert hash(sink.body_chunks[0]) == hash(bytes(BODY))  # a sound bytes object
    assert parser.body_buffer() is None
    parser.feed(NEXT)  # the stream goes on in step
    assert [head.status for head in sink.final_heads] == [200, 204]
    assert sink.completed == 2 and not parser.in_message


def test_fed_and_written_pieces_mix_in_any_order(parser_impl: ModuleType) -> None:
    parser, sink = _parser(parser_impl)
    parser.feed(HEAD)
    _write(parser, BODY[:10])
    parser.feed(memoryview(BODY[10:3000]))
    _write(parser, BODY[3000:3001])
    parser.feed(BODY[3001:] + NEXT)  # the end and the next response
    assert sink.body_chunks == [BODY] and sink.completed == 2


@pytest.mark.parametrize(
    ("limit", "gathered"), [(len(BODY), True), (len(BODY) - 1, False), (0, False)]
)
def test_only_bodies_within_the_limit_are_gathered(
    parser_impl: ModuleType, limit: int, gathered: bool
) -> None:
    parser, sink = _parser(parser_impl, limit)
    parser.feed(HEAD + BODY[:1])
    assert (parser.body_buffer() is not None) is gathered
    parser.feed(BODY[1:])
    assert len(sink.body_chunks) == (1 if gathered else 2)
    assert b"".join(sink.body_chunks) == BODY


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n",  # until close
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ],
    ids=["chunked", "until-close", "empty"],
)
def test_other_framings_lend_nothing(parser_impl: ModuleType, head: bytes) -> None:
    parser, _ = _parser(parser_impl)
    assert parser.body_buffer() is None  # before any head
    parser.feed(head)
    assert parser.body_buffer() is None


def test_collect_limit_can_change_between_responses(parser_impl: ModuleType) -> None:
    parser, _ = _parser(parser_impl, 0)
    parser.feed(HEAD + BODY[:1])
    parser.collect_limit = 1 << 20  # from the next head on
    assert parser.body_buffer() is None
    parser.feed(BODY[1:] + HEAD)
    assert parser.body_buffer() is not None


@pytest.mark.parametrize("n", [-1, len(BODY) + 1])
def test_writing_more_than_is_lent_is_refused(parser_impl: ModuleType, n: int) -> None:
    parser, sink = _parser(parser_impl)
    with pytest.raises(ValueError, match="bytes to come"):
        parser.body_written(1)  # nothing lent yet
    parser.feed(HEAD)
    with pytest.raises(ValueError, match=f"{len(BODY)} bytes to come"):
        parser.body_written(n)
    parser.feed(BODY)  # refused, so nothing moved
    assert sink.body_chunks == [BODY]


def test_the_connection_closing_inside_a_gathered_body(parser_impl: ModuleType) -> None:
    parser, sink = _parser(parser_impl)
    parser.feed(HEAD)
    _write(parser, BODY[:1000])
    with pytest.raises(IncompleteResponse, match=f"{len(BODY) - 1000} bytes"):
        parser.feed_eof()
    assert parser.body_buffer() is None  # the buffer is let go
    assert sink.body_chunks == [] and sink.completed == 0


def test_a_sink_error_at_delivery_fails_the_parser(parser_impl: ModuleType) -> None:
    class Refuses(Recorder):
        def on_body(self, chunk: object) -> None:
            raise RuntimeError("too large")

    parser = parser_impl.ResponseParser(Refuses(), collect_limit=1 << 20)
    parser.feed(HEAD + BODY[:-1])
    with pytest.raises(RuntimeError, match="too large"):
        _write(parser, BODY[-1:])
    with pytest.raises(ProtocolError) as caught:
        parser.feed(NEXT)
    assert caught.value.reason == "parser_failed"
    assert parser.body_buffer() is None


def test_error_offsets_count_written_bytes(parser_impl: ModuleType) -> None:
    parser, _ = _parser(parser_impl)
    parser.feed(HEAD)
    _write(parser, BODY)
    with pytest.raises(ProtocolError) as caught:
        parser.feed(b"HTTP/1.1 2x0 OK\r\n")
    assert caught.value.offset == len(HEAD) + len(BODY) + len(b"HTTP/1.1 2")


# -- on_response: a whole response in one call ----------------------------------------


def _whole(impl: ModuleType, collect_limit: int = 1 << 20) -> tuple[Any, WholeRecorder]:
    sink = WholeRecorder()
    return impl.ResponseParser(sink, collect_limit=collect_limit), sink


def test_a_response_whole_in_one_feed_comes_in_one_call(parser_impl: ModuleType) -> None:
    parser, sink = _whole(parser_impl)
    parser.feed(HEAD + BODY + NEXT)
    assert sink.whole == 2  # the 200 with its body, then the 204
    assert sink.body_chunks == [BODY, b""]
    assert [head.status for head in sink.final_heads] == [200, 204]
    assert parser.messages_completed == 2 and not parser.in_message


def test_a_body_still_to_come_goes_the_long_way(parser_impl: ModuleType) -> None:
    parser, sink = _whole(parser_impl)
    parser.feed(HEAD + BODY[:-1])
    assert sink.whole == 0 and len(sink.heads) == 1  # on_head at once
    _write(parser, BODY[-1:])
    assert sink.body_chunks == [BODY] and sink.completed == 1 and sink.whole == 0


@pytest.mark.parametrize(
    ("response", "methods"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", []),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", []),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", [b"HEAD"]),
    ],
    ids=["empty", "304", "HEAD"],
)
def test_responses_without_a_body_come_whole(
    parser_impl: ModuleType, response: bytes, methods: list[bytes]
) -> None:
    parser, sink = _whole(parser_impl)
    for method in methods:
        parser.expect(method)
    parser.feed(response)
    assert sink.whole == 1 and sink.body_chunks == [b""] and sink.completed == 1


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    ],
    ids=["chunked", "upgrade"],
)
def test_other_framings_never_come_whole(parser_impl: ModuleType, response: bytes) -> None:
    parser, sink = _whole(parser_impl)
    parser.feed(response)
    assert sink.whole == 0 and sink.completed == 1


@pytest.mark.parametrize(
    "response",
    [HEAD + BODY, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", NEXT],
    ids=["body", "empty", "204"],
)
def test_without_gathering_nothing_comes_whole(parser_impl: ModuleType, response: bytes) -> None:
    parser, sink = _whole(parser_impl, collect_limit=0)  # a streamed response
    parser.feed(response)
    assert sink.whole == 0 and len(sink.heads) == 1 and sink.completed == 1
    assert b"".join(sink.body_chunks) == response.partition(b"\r\n\r\n")[2]


def test_an_interim_head_then_a_whole_final_response(parser_impl: ModuleType) -> None:
    parser, sink = _whole(parser_impl)
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n" + HEAD + BODY)
    assert [kind for kind, _ in sink.events] == ["informational", "head", "body", "complete"]
    assert sink.whole == 1


def test_a_view_kept_too_long_still_points_into_live_memory(parser_impl: ModuleType) -> None:
    """Misuse, not a crash: a view written after body_written lands in memory that is
    still alive (the view holds it), never in freed memory."""
    parser, sink = _parser(parser_impl)
    parser.feed(HEAD)
    view = parser.body_buffer()
    view[:] = BODY
    parser.body_written(len(BODY))
    delivered = sink.body_chunks.pop()
    assert delivered == BODY
    owner = view.obj  # what exports the memory: the view holds it (it is not None)
    assert owner is not None
    del delivered, owner
    gc.collect()
    view[:3] = b"abc"  # harmless: the memory is still the view's owner's
    assert bytes(view[:3]) == b"abc"


# -- the compiled parser reuses a body's memory the caller has let go -------------


class _Taker:
    """A sink that keeps nothing: each body is the caller's until it drops it."""

    def __init__(self) -> None:
        self.last: bytes | None = None

    def on_head(self, head: Any) -> None:
        pass

    def on_body(self, body: bytes) -> None:
        self.last = body

    def on_complete(self) -> None:
        pass

    def on_response(self, head: Any, body: bytes) -> None:
        self.last = body


def _numbered(i: int, size: int = 65536) -> bytes:
    return bytes([i % 251]) * size


def _take(parser: Any, sink: _Taker, body: bytes, *, split: bool) -> bytes:
    """One response with ``body``, whole in one feed or with the body written in."""
    parser.expect("GET")
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    if split:
        parser.feed(head)
        _write(parser, body)
    else:
        parser.feed(head + body)
    taken, sink.last = sink.last, None
    assert taken is not None
    return taken


@pytest.mark.parametrize("split", [False, True], ids=["whole", "written"])
def test_a_body_let_go_lends_its_memory_to_the_next(split: bool) -> None:
    """A body the caller dropped is the next body of its size: no fresh 64 KiB
    allocation per response for glibc to trim back and fault in again."""
    sink = _Taker()
    parser = load_parser_module("c").ResponseParser(sink, collect_limit=1 << 20)
    first = _take(parser, sink, _numbered(1), split=split)
    assert hash(first) == hash(_numbered(1))  # cache a hash in the object
    address = id(first)
    del first
    # Were it freed, this would likely take its place; it is kept, so this cannot.
    blocker = _numbered(9)
    second = _take(parser, sink, _numbered(2), split=split)
    assert id(second) == address  # the same memory, filled anew
    assert second == _numbered(2)
    assert hash(second) == hash(_numbered(2))  # not the old body's cached hash
    # ``r = await client.get(...)`` in a loop: the last body is still held when the
    # next comes; the one before it is free and is used.
    third = _take(parser, sink, _numbered(3), split=split)
    assert id(third) != address and third == _numbered(3)
    del second
    other_blocker = _numbered(9)
    fourth = _take(parser, sink, _numbered(4), split=split)
    assert id(fourth) == address and fourth == _numbered(4)
    assert address not in (id(blocker), id(other_blocker))


@pytest.mark.parametrize("split", [False, True], ids=["whole", "written"])
def test_a_body_the_caller_holds_is_never_written(split: bool) -> None:
    sink = _Taker()
    parser = load_parser_module("c").ResponseParser(sink, collect_limit=1 << 20)
    kept = [_take(parser, sink, _numbered(i), split=split) for i in range(6)]
    view = memoryview(_take(parser, sink, _numbered(6), split=split))  # a view holds it
    kept += [_take(parser, sink, _numbered(i), split=split) for i in range(7, 10)]
    assert kept == [_numbered(i) for i in (0, 1, 2, 3, 4, 5, 7, 8, 9)]
    assert bytes(view) == _numbered(6)
    assert len({id(body) for body in kept} | {id(view.obj)}) == 10


@pytest.mark.parametrize(
    ("size", "kept"),
    [(4095, False), (4096, True), (1 << 18, True), ((1 << 18) + 1, False)],
)
def test_only_bodies_of_a_middling_size_are_kept_for_reuse(size: int, kept: bool) -> None:
    """Small bodies come from pymalloc's pools and cost little; a large one is not held
    for an idle connection. Kept, the parser holds the one reference besides ours."""
    sink = _Taker()
    parser = load_parser_module("c").ResponseParser(sink, collect_limit=1 << 20)
    body = _take(parser, sink, _numbered(0, size), split=False)
    assert sys.getrefcount(body) == (3 if kept else 2)


# -- ... within one budget for the whole process ----------------------------------

KIB64 = 65536


@pytest.fixture
def compiled() -> Iterator[ModuleType]:
    """The compiled parser, its budget room for eight more 64 KiB bodies whatever
    earlier tests left kept, and not grown by the parsers alive: the counts below are
    read as differences."""
    module = load_parser_module("c")
    gc.collect()  # parsers of earlier tests, in cycles with their sinks
    old = module._set_spare_budget(module.kept_body_bytes() + 8 * KIB64)
    old_per_parser = module._set_spare_per_parser(0)
    yield module
    module._set_spare_budget(old)
    module._set_spare_per_parser(old_per_parser)


def _kept_after(module: ModuleType, parser: Any, sink: _Taker, n: int = 1) -> int:
    """Take ``n`` 64 KiB bodies, dropping each: the parsers' kept bytes after."""
    for i in range(n):
        body = _take(parser, sink, _numbered(i), split=False)
        del body
    return int(module.kept_body_bytes())


def test_kept_bodies_stay_within_one_budget_for_all_parsers(compiled: ModuleType) -> None:
    """A thousand idle connections that each once read a large body must not hold
    two such bodies apiece: past the budget, a parser keeps nothing."""
    base = compiled.kept_body_bytes()
    compiled._set_spare_budget(base + 3 * KIB64)  # the fixture restores it
    sinks = [_Taker() for _ in range(4)]
    parsers = [compiled.ResponseParser(s, collect_limit=1 << 20) for s in sinks]
    kept = [_kept_after(compiled, p, s) - base for p, s in zip(parsers, sinks, strict=True)]
    assert kept == [KIB64, 2 * KIB64, 3 * KIB64, 3 * KIB64]
    # The first parser's next body reuses the one it keeps: the total stays put.
    assert _kept_after(compiled, parsers[0], sinks[0]) - base == 3 * KIB64
    # Over the budget, a body is not kept: only the caller references it.
    body = _take(parsers[3], sinks[3], _numbered(7), split=False)
    assert sys.getrefcount(body) == 2


def test_the_budget_grows_with_the_parsers_alive(compiled: ModuleType) -> None:
    """Past its floor, each parser alive adds its share: many connections fetching
    large bodies keep one apiece, and the share goes when the parser does."""
    share = 4 << 20  # more than any earlier test's parser keeps: every body below fits
    compiled._set_spare_per_parser(share)  # the fixture restores both
    compiled._set_spare_budget(0)
    before = compiled._kept_body_budget()
    sinks = [_Taker() for _ in range(10)]
    parsers = [compiled.ResponseParser(s, collect_limit=1 << 20) for s in sinks]
    assert compiled._kept_body_budget() == before + 10 * share
    kept = compiled.kept_body_bytes()
    for parser, sink in zip(parsers, sinks, strict=True):
        _kept_after(compiled, parser, sink)
    assert compiled.kept_body_bytes() - kept == 10 * KIB64  # one body apiece
    del parsers, parser
    gc.collect()
    assert compiled._kept_body_budget() == before
    assert compiled.kept_body_bytes() == kept
    # Few parsers alive: the floor holds.
    compiled._set_spare_budget(before + 100 * share)
    assert compiled._kept_body_budget() == before + 100 * share


def test_the_public_count_is_the_compiled_parsers(compiled: ModuleType) -> None:
    from aiofasthttp.h1 import parser as selected

    sink = _Taker()
    parser = compiled.ResponseParser(sink, collect_limit=1 << 20)
    kept = _kept_after(compiled, parser, sink)
    assert kept >= KIB64
    assert selected.kept_body_bytes() == (kept if selected.IMPLEMENTATION == "c" else 0)


def test_reuse_keeps_the_count_steady(compiled: ModuleType) -> None:
    """Many responses: one body's memory goes round when each is dropped before the
    next comes, two when the last is held (``r = await client.get(...)``)."""
    base = compiled.kept_body_bytes()
    sink = _Taker()
    parser = compiled.ResponseParser(sink, collect_limit=1 << 20)
    assert _kept_after(compiled, parser, sink, n=50) - base == KIB64
    held = None
    for i in range(50):
        held = _take(parser, sink, _numbered(i), split=False)
    assert held == _numbered(49)
    assert compiled.kept_body_bytes() - base == 2 * KIB64
    del parser
    assert compiled.kept_body_bytes() == base


def test_a_parser_collected_in_a_cycle_gives_its_bytes_back(compiled: ModuleType) -> None:
    """A connection and its parser form a cycle (the parser holds the sink's bound
    methods); the collector frees them, and the kept bytes go back to the budget."""
    base = compiled.kept_body_bytes()
    sink = _Taker()
    parser = compiled.ResponseParser(sink, collect_limit=1 << 20)
    sink.parser = parser  # type: ignore[attr-defined]
    assert _kept_after(compiled, parser, sink) - base == KIB64
    del sink, parser
    gc.collect()
    assert compiled.kept_body_bytes() == base


class _HeadTaker(_Taker):
    def __init__(self) -> None:
        super().__init__()
        self.head: Any = None

    def on_head(self, head: Any) -> None:
        self.head = head

    def on_response(self, head: Any, body: bytes) -> None:
        self.head, self.last = head, body


def test_a_parser_cleared_first_by_the_collector_gives_its_bytes_back(
    compiled: ModuleType,
) -> None:
    """A cycle whose other members are younger than the parser: the collector would
    clear the parser first, emptying its fields before its deallocation could count
    the kept bodies out. It is not cleared (no_gc_clear); the head is instead."""
    base = compiled.kept_body_bytes()
    sink = _HeadTaker()
    parser = compiled.ResponseParser(sink, collect_limit=1 << 20)
    assert _kept_after(compiled, parser, sink) - base == KIB64
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    head, sink.head = sink.head, None
    head.trailers = [parser]  # parser -> its current head -> this list -> parser
    del sink, parser, head
    gc.collect()
    assert compiled.kept_body_bytes() == base


@pytest.mark.parametrize("end", ["eof", "bad input"])
def test_a_parser_whose_connection_ended_keeps_no_body(compiled: ModuleType, end: str) -> None:
    base = compiled.kept_body_bytes()
    sink = _Taker()
    parser = compiled.ResponseParser(sink, collect_limit=1 << 20)
    assert _kept_after(compiled, parser, sink) - base == KIB64
    if end == "eof":
        parser.feed_eof()
    else:
        with pytest.raises(ProtocolError):
            parser.feed(b"HTTP/1.1 2xx Nope\r\n\r\n")
    assert compiled.kept_body_bytes() == base


def test_an_idle_parser_holds_no_head(compiled: ModuleType) -> None:
    """Once a response is complete, its head is the caller's alone: an idle pooled
    connection does not keep the last head (and the bytes it was parsed from)."""
    sink = _HeadTaker()
    parser = compiled.ResponseParser(sink, collect_limit=1 << 20)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    head = sink.head
    assert parser in gc.get_referrers(head)  # its trailers may still come
    parser.feed(b"0\r\nX-Sum: 1\r\n\r\n")
    assert head.trailers == [(b"X-Sum", b"1")]
    assert parser not in gc.get_referrers(head)
    parser.feed(HEAD + BODY)  # whole in one feed: on_response
    assert sink.head is not head and sink.head.status == 200
    assert parser not in gc.get_referrers(sink.head)
