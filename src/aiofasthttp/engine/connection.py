"""One HTTP/1.1 connection: an asyncio.Protocol feeding the response parser.

Theory of operation
-------------------
A Connection is in one of four states, changed only as the table
``_TRANSITIONS`` below allows (through ``_event``; the two steps every request
takes are tested inline, as they run twice per request)::

    CONNECTING --connected--> IDLE --request--> ACTIVE --reusable--> IDLE
                                                  ACTIVE --final-----> CLOSED
    any state  --eof / lost / close / bad bytes--> CLOSED

The pool owns IDLE connections; a request owns an ACTIVE one. The connection
tells its pool (``listener``) the moment it becomes idle again and the moment
it closes, so the pool never holds a connection the server has closed: an
``eof_received`` on an idle connection takes it out of the pool at once, and
``socket_is_quiet()`` covers the gap when the loop was too busy to run
``eof_received`` yet (a FIN sitting unread in the kernel).

A request is one *exchange*: ``send()`` writes the pre-encoded head (and a
bytes body) in one write and returns a future. In buffered mode the future
resolves when the whole response is in; in stream mode, as soon as the head
is, and the body is read with ``read_body_chunk()``. Reading pauses at a
high-water mark of unread body bytes, so a slow reader holds a bounded amount.

When the connection fails mid-exchange it records the facts a caller needs to
decide about a replay and to understand the failure: reused or fresh, request
written or not, response bytes seen, age, idle time, requests served; they
travel on :class:`ConnectionClosedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import select
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from .. import reasons
from .._compiled import read_as_slots
from ..errors import (
    ConnectionClosedError,
    HeadTimeout,
    HTTPError,
    ProtocolError,
    ReadTimeout,
    RequestTimeout,
    ResponseTooLarge,
    UnaskedBytes,
    WriteTimeout,
)
from ..h1.parser import ResponseHead, ResponseParser
from .clock import loop_clock
from .dial import KEEP_SPARE, READ_BUFFER_SIZE, spare_buffers
from .exchange import AttemptSettings, Exchange
from .explain import describe, facts, prose
from .poolcore import PooledState
from .trace import logger

if TYPE_CHECKING:
    from ..h1.request import BodyIterable, Request
    from ..h1.url import Origin
    from ..policy.learning import ServerMemory

if not hasattr(select, "poll"):  # Windows: no poll(), and the pool's promise rests on it
    raise ImportError(
        "aiofasthttp runs on POSIX systems (Linux, macOS, the BSDs) only: it checks each "
        "pooled socket with select.poll() before reuse, and this platform has no poll()"
    )

READ_HIGH_WATER = 1 << 20
READ_LOW_WATER = 1 << 18
# A buffered body of known length up to this size is gathered whole (see send);
# a larger one comes in pieces and is joined, so a server announcing a huge length
# and sending little does not make the client allocate it all at once.
GATHER_UP_TO = 1 << 24
# A small body goes in the same write as the head; a large one is not copied.
_JOIN_BODY_BELOW = 16384

_ids = itertools.count(1)
_NEVER = float("inf")


# IntEnum, not Enum: Enum's __hash__ is Python code, and the table is looked up per request.
class State(enum.IntEnum):
    CONNECTING = 0
    IDLE = 1
    ACTIVE = 2
    CLOSED = 3


# The two states every request passes through, read as module names: on Python 3.11
# ``State.IDLE`` goes through EnumType.__getattr__, several times a plain global's cost.
_IDLE = State.IDLE
_ACTIVE = State.ACTIVE


class Event(enum.IntEnum):
    CONNECTED = 0
    REQUEST = 1
    REUSABLE = 2  # response complete, connection may be reused
    FINAL = 3  # response complete, connection may not be reused
    CLOSE = 4  # eof, connection lost, error, or closed by us


_TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.CONNECTING, Event.CONNECTED): State.IDLE,
    (State.IDLE, Event.REQUEST): State.ACTIVE,
    (State.ACTIVE, Event.REUSABLE): State.IDLE,
    (State.ACTIVE, Event.FINAL): State.CLOSED,
}


class ConnectionListener(Protocol):
    """What a connection tells its pool, and what it asks: how the server was seen
    closing connections, to explain a failure (None before a pool adopts it)."""

    @property
    def memory(self) -> ServerMemory | None: ...

    def connection_idle(self, conn: Connection) -> None: ...

    def connection_closed(self, conn: Connection, why: str) -> None: ...


class _Unadopted:
    """The listener of a connection no pool has taken yet: its events concern nobody."""

    memory = None

    def connection_idle(self, conn: Connection) -> None:
        pass

    def connection_closed(self, conn: Connection, why: str) -> None:
        pass


UNADOPTED: ConnectionListener = _Unadopted()


# Not a DialedProtocol subclass: compiled, Connection is an extension type (see
# connection.pxd), and an extension type's base must be one too (PooledState is). It
# has what the Dialer needs of a DialedProtocol (interfaces.DialedConnection) and what
# asyncio calls.
class Connection(PooledState):
    """An HTTP/1.1 client connection. See the module docstring."""

    def __init__(
        self,
        origin: Origin,
        loop: asyncio.AbstractEventLoop,
        *,
        max_head_size: int = 65536,
        write_timeout: float | None = None,
        tcp_keepalive: float | None = None,
    ) -> None:
        super().__init__(next(_ids), loop.time())
        self.via: str | None = None  # the proxy it goes through (named in its errors)
        self.origin = origin
        self.state = State.CONNECTING
        # The pool sets itself here once the dial has returned the connection to it:
        # a connection whose dial was cancelled half-way must not touch its counts.
        self.listener = UNADOPTED
        self.loop = loop
        # Bound once: compiled, a method looked up on the loop per call costs more
        # than the call (what a request needs: the clock, read once or twice, and
        # its waiter). The clock is time.monotonic itself on asyncio's loops (clock.py).
        self._clock = loop_clock(loop)
        self._new_future = loop.create_future
        self.close_reason: str | None = None
        self.transport: asyncio.Transport | None = None
        self._poller: select.poll | None = None
        self._write_timeout = write_timeout
        self._tcp_keepalive = tcp_keepalive
        self._parser = ResponseParser(self, max_head_size=max_head_size)
        self._paused_writing = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._ex: Exchange | None = None
        self._last_request = False  # a request said "Connection: close": none may follow
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # Reading into lent buffers (BufferedConnection only; see lend_buffer):
        self._body_buffer: Callable[[], memoryview | None] | None = None  # the parser's
        self._lent: memoryview | None = None  # lent for the next read, until it brings bytes
        self._direct: memoryview | None = None  # the body's view this read went into

    # -- the state table ------------------------------------------------------

    def _event(self, event: Event) -> None:
        if event is Event.CLOSE:
            self.state = State.CLOSED
            return
        new = _TRANSITIONS.get((self.state, event))
        if new is None:
            raise RuntimeError(f"connection {self.id}: {event.name} in state {self.state.name}")
        self.state = new

    # -- what the pool sees -----------------------------------------------------

    @property
    def is_idle(self) -> bool:
        return self.state is State.IDLE

    @property
    def server_memory(self) -> ServerMemory | None:
        memory: ServerMemory | None = self.listener.memory
        return memory

    @property
    def is_closed(self) -> bool:
        return self.state is State.CLOSED

    def socket_is_quiet(self) -> bool:
        """True if nothing (no FIN, no RST, no byte) is waiting unread on the socket.

        An idle HTTP/1.1 connection has nothing to read; anything readable means
        the server closed it or sent something unasked. One poll() syscall.
        """
        poller = self._poller
        return poller is None or not poller.poll(0)

    def close(self, reason: str = reasons.CLIENT_CLOSED) -> None:
        """Close now (abort: nothing buffered is worth sending on a dropped connection)."""
        if self.state is State.CLOSED:
            return
        ex = self._ex
        self._shut(reason)
        if ex is not None:
            self._fail(
                ex, ConnectionClosedError(describe(self, ex, prose(reason)), **facts(self, ex))
            )

    def discard(self) -> None:
        """Drop a connection the pool never took (its dial was cancelled): no pool event."""
        self._event(Event.CLOSE)
        self.close_reason = reasons.DIAL_ABANDONED
        self._close_transport()

    # -- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they behave as one.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Registered once: a check before reuse is then a single poll(0) syscall.
            self._poller = select.poll()
            self._poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tcp_keepalive:
                    _enable_tcp_keepalive(sock, self._tcp_keepalive)
        self._event(Event.CONNECTED)
        self.idle_since = self.loop.time()

    def data_received(self, data: bytes | memoryview) -> None:
        self._received(data)

    def _received(self, data: bytes | memoryview) -> None:
        """data_received's work; compiled, a C call from lent_buffer_filled too."""
        ex = self._ex
        if ex is not None:
            ex.response_bytes += len(data)
            if ex.timed:
                ex.last_read = self._clock()
            try:
                self._parser.feed(data)
            except (HTTPError, UnaskedBytes) as exc:
                self._parse_failed(ex, exc, data)
            else:
                # The response ended inside this read and more bytes began another.
                if self._ex is None and self._parser.in_message:
                    self._unasked()
        elif self.state is State.IDLE:
            self._unasked(
                reasons.SERVER_CLOSED_IDLE if _is_408(data) else reasons.UNSOLICITED_RESPONSE
            )
        # CONNECTING cannot receive; CLOSED ignores late bytes.

    def _parse_failed(
        self, ex: Exchange, exc: HTTPError | UnaskedBytes, data: bytes | memoryview
    ) -> None:
        """What the parser (or a sink callback) raised: fail the exchange or close."""
        if isinstance(exc, ProtocolError):
            if self._ex is ex:
                self._protocol_error(ex, exc, data)
            else:  # the response was complete: what failed to parse came unasked
                self._unasked()
        elif isinstance(exc, UnaskedBytes):
            self._unasked(*exc.args)
        else:  # the body-size limit, raised from on_body
            self._shut(reasons.RESPONSE_TOO_LARGE)
            self._fail(ex, exc)

    def _unasked(self, why: str = reasons.UNSOLICITED_RESPONSE) -> None:
        """Close on bytes no request asked for: nothing after them can be trusted."""
        logger.debug(
            "connection #%d to %s: the server sent bytes no request asked for (%s); closing it",
            self.id,
            self.origin,
            why,
        )
        self._shut(why)

    def eof_received(self) -> bool:
        self._end_of_stream(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_write_timer()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            # The writer wakes and finds the exchange ended: answered, or failed with
            # its typed error (see _write).
            waiter.set_result(None)
        self._end_of_stream(exc)
        self.transport = None
        # The buffer lent for a read that brought nothing goes back to the stock.
        view, self._lent = self._lent, None
        self._direct = None
        if view is not None and len(spare_buffers) < KEEP_SPARE:
            spare_buffers.append(view)

    # -- reading into lent buffers (BufferedConnection's; see dial.py) ---------------
    # Here, compiled, rather than dial.ReadsIntoLentBuffers' Python methods: they run
    # for every read on asyncio's loops and over TLS, and as Python they cost two frames
    # and a dict lookup per field (callgrind, HTTPS GET /small at c=64 on uvloop: see
    # benchmarks/README.md, the seventh session).

    def lend_buffer(self, sizehint: int) -> memoryview:
        """BufferedConnection's get_buffer: where the loop reads next. Straight into the
        body being gathered when the parser has one, else a buffer from the stock, kept
        until a read brings bytes into it."""
        body_buffer = self._body_buffer
        if body_buffer is not None:
            # Always set: a read that got no bytes (EAGAIN, EOF) has no buffer_updated.
            view = self._direct = body_buffer()
            if view is not None:
                return view
        view = self._lent
        if view is None:
            try:
                view = spare_buffers.pop()
            except IndexError:  # none spare (or another thread's loop took the last one)
                view = memoryview(bytearray(READ_BUFFER_SIZE))
            self._lent = view
        return view

    def lent_buffer_filled(self, nbytes: int) -> None:
        """BufferedConnection's buffer_updated: ``nbytes`` arrived where lend_buffer
        said. A lent buffer's bytes are parsed, and it goes back to the stock."""
        if self._direct is not None:
            self._direct = None
            # By name, so that a subclass or a test may wrap it: only a body larger than
            # one read comes here, so the lookup costs next to nothing.
            self.direct_updated(nbytes)
            return
        view = self._lent
        assert view is not None
        self._lent = None
        try:
            self._received(view[:nbytes])
        finally:
            if len(spare_buffers) < KEEP_SPARE:
                spare_buffers.append(view)

    def direct_updated(self, nbytes: int) -> None:
        """``nbytes`` of a gathered body were read straight into the parser's buffer:
        data_received without the bytes."""
        ex = self._ex
        if ex is None:  # cannot be: the parser gathers only while an exchange runs
            self._unasked()
            return
        ex.response_bytes += nbytes
        if ex.timed:
            ex.last_read = self._clock()
        try:
            self._parser.body_written(nbytes)
        except (HTTPError, UnaskedBytes) as exc:
            self._parse_failed(ex, exc, b"")

    def _end_of_stream(self, exc: Exception | None) -> None:
        ex = self._ex
        if ex is not None and exc is None:
            with contextlib.suppress(ProtocolError):
                self._parser.feed_eof()  # may complete a close-delimited body
        ex = self._ex
        if ex is not None:
            what = reasons.CONNECTION_RESET if exc is not None else reasons.SERVER_CLOSED
            error = ConnectionClosedError(describe(self, ex, prose(what)), **facts(self, ex))
            error.__cause__ = exc
            self._shut(what)
            self._fail(ex, error)
        elif self.state is not State.CLOSED:
            self._shut(
                reasons.SERVER_CLOSED_IDLE if self.state is State.IDLE else reasons.CONNECTION_LOST
            )

    def pause_writing(self) -> None:
        self._paused_writing = True
        if self._write_timeout is not None and self._write_timer is None:
            self._write_timer = self.loop.call_later(self._write_timeout, self._on_write_timeout)

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._cancel_write_timer()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- parser sink ------------------------------------------------------------

    # Each callback first checks that a request is in flight: a server may send a
    # second response after the first in one read, and bytes no request asked for
    # end the parse (see data_received) instead of failing the loop's callback.

    def on_head(self, head: ResponseHead) -> None:
        ex = self._ex
        if ex is None:
            raise UnaskedBytes(_unasked_head(head))
        ex.head = head
        # A timed exchange (the default: a read timeout) has read the clock for the
        # read that brought the head; an untimed one reads it here, once.
        ex.head_at = ex.last_read if ex.timed else self._clock()
        # A final answer before "100 Continue": the body is never sent (and as the
        # request was not all written, the connection is not reused).
        ex.withheld_body = None
        self.keep_alive_timeout = head.keep_alive_timeout
        self.keep_alive_max = head.keep_alive_max
        if ex.streaming and not ex.waiter.done():
            ex.waiter.set_result(head)

    def on_body(self, chunk: bytes) -> None:
        ex = self._ex
        if ex is None:
            raise UnaskedBytes
        ex.body_size += len(chunk)
        limit = ex.max_body_size
        if limit is not None and ex.body_size > limit:
            raise ResponseTooLarge(
                f"{ex.method} {ex.url}: response body larger than "
                f"max_response_body_size={limit} bytes"
            )
        chunks = ex.chunks
        if chunks is None:
            chunks = ex.chunks = deque()
        chunks.append(chunk)
        if ex.streaming:
            ex.unread += len(chunk)
            if ex.unread > READ_HIGH_WATER and not self._reading_paused:
                self._reading_paused = True
                if self.transport is not None:
                    self.transport.pause_reading()
            ex.wake_reader()

    def on_complete(self, head: ResponseHead | None = None, body: bytes = b"") -> None:
        """The response is complete. Called with its head and body, it is also the
        parser's ``on_response``: a buffered response whole in one read comes in this
        one call instead of on_head, on_body and on_complete (two Python calls fewer
        per request; on_head's bookkeeping is repeated here for that reason)."""
        ex = self._ex
        if head is not None:
            if ex is None:
                raise UnaskedBytes(_unasked_head(head))
            ex.head = head
            ex.head_at = ex.last_read if ex.timed else self._clock()
            ex.withheld_body = None
            self.keep_alive_timeout = head.keep_alive_timeout
            self.keep_alive_max = head.keep_alive_max
            ex.body_size = len(body)  # within the limit: it bounds collect_limit (send)
            ex.content = body
        elif ex is None or ex.head is None:
            raise UnaskedBytes
        self._ex = None
        self.requests_served += 1
        ex.body_done = True
        if ex.streaming:
            ex.wake_reader()
        elif not ex.waiter.done():
            ex.waiter.set_result(ex.head)
        # Reuse only if the whole request went out: an upload the server answered
        # early (or a body withheld for 100-continue) leaves the stream out of step.
        head = ex.head
        if not (
            head.keep_alive and not head.upgrade and ex.request_written and not self._last_request
        ):
            self._close_after(head, ex)
            return
        # Idle again; inline, as it runs once per request.
        transport = self.transport
        if transport is None or transport.is_closing():
            self._shut(reasons.CONNECTION_LOST)
            return
        if self._reading_paused:
            self._reading_paused = False
            transport.resume_reading()
        if self.state is not _ACTIVE:  # the table's ACTIVE -> IDLE, tested inline
            self._event(Event.REUSABLE)  # raises
        self.state = _IDLE
        # A timed exchange read the clock for the read that completed it.
        self.idle_since = ex.last_read if ex.timed else self._clock()
        self.listener.connection_idle(self)

    def _close_after(self, head: ResponseHead, ex: Exchange) -> None:
        """The response was the connection's last: close it, and say why."""
        keep_alive = head.keep_alive and not head.upgrade and ex.request_written
        why = reasons.REQUEST_CLOSE if keep_alive else reasons.RESPONSE_CLOSE
        self._event(Event.FINAL)
        self.close_reason = why
        self._close_transport()
        self.listener.connection_closed(self, why)

    on_response = on_complete

    def on_informational(self, head: ResponseHead) -> None:
        if self._ex is None:
            raise UnaskedBytes
        if head.status == 100:
            self._send_withheld(self._ex)
        # Other 1xx heads (102, 103) carry nothing this client acts on.

    def _send_withheld(self, ex: Exchange) -> None:
        """Send a body held back for "Expect: 100-continue" (on 100, or on the timer)."""
        body, ex.withheld_body = ex.withheld_body, None
        if body is None or self._ex is not ex or self.transport is None:
            return
        self.transport.write(body)
        ex.bytes_written += len(body)
        ex.request_written = True

    # -- sending ------------------------------------------------------------------

    def send(
        self,
        request: Request,
        attempt: AttemptSettings,
        deadline: float | None,
        streaming: bool,
        reused: bool,
        now: float,
    ) -> Exchange:
        """Start one exchange: write the request; ``exchange.waiter`` gives the head.

        ``now``: the loop's time (the caller has just read it, for the pool too).
        """
        if self.state is not _IDLE:  # the table's IDLE -> ACTIVE, tested inline
            self._event(Event.REQUEST)  # raises
        self.state = _ACTIVE
        if request.closes_connection:
            self._last_request = True
        method = request.method
        read_timeout = attempt.read_timeout
        head_timeout = attempt.head_timeout
        self._write_timeout = attempt.write_timeout  # pause_writing's, for this request
        # Positional: a class called with keywords takes a slower path, per request.
        # loop.create_future(), not asyncio.Future(): the latter counts 850 instructions
        # fewer (no keyword dict) but finds the running loop with a getpid() syscall
        # each time, and takes longer (147 ns against 128).
        ex = self._ex = Exchange(
            self._new_future(),
            method,
            request.url,
            streaming,
            reused,
            now - self.idle_since if reused else 0.0,  # idle_before
            attempt.max_body_size,
            read_timeout,
            deadline,
            now,
            head_timeout,
        )
        self.last_idle = ex.idle_before
        parser = self._parser
        if method == "HEAD" or method == "CONNECT":
            parser.expect(method)
        # A buffered body of known length is gathered into one bytes of its size (read
        # straight into it where the loop lends buffers: no piece per read, no join),
        # and a response whole in one read comes in one call (on_complete). Past the
        # size limit a body comes in pieces and on_body refuses it; a streamed one goes
        # to its reader piece by piece.
        limit = attempt.max_body_size
        if streaming:
            parser.collect_limit = 0
        elif limit is None or limit > GATHER_UP_TO:
            parser.collect_limit = GATHER_UP_TO
        else:
            parser.collect_limit = limit
        if ex.timed:
            # ex.expiry(), inline: a new exchange has just read its "last byte".
            when = _NEVER if read_timeout is None else now + read_timeout
            if deadline is not None and deadline < when:
                when = deadline
            if head_timeout is not None and request.body.make_stream is None:
                # A streamed body starts the head's clock when its last byte is out.
                ex.head_by = now + head_timeout
                if ex.head_by < when:
                    when = ex.head_by
            if self._timer is None or when < self._timer_at:
                self._schedule_timer(when)
        transport = self.transport
        if transport is None or transport.is_closing():
            self.close(reasons.ALREADY_CLOSED)
            return ex
        head = request.head
        body = request.body.data
        if body is None:
            transport.write(head)
        elif request.expect_continue:
            # The head carries "Expect: 100-continue": the body waits for the 100, or
            # for ``continue_timeout`` seconds if the server says nothing.
            transport.write(head)
            ex.bytes_written = len(head)
            ex.withheld_body = body
            self.loop.call_later(attempt.continue_timeout, self._send_withheld, ex)
            return ex
        elif len(body) < _JOIN_BODY_BELOW:
            transport.write(head + body)
        else:
            transport.writelines((head, body))
        ex.bytes_written = len(head) + (len(body) if body is not None else 0)
        ex.request_written = True
        return ex

    async def write_chunked(self, ex: Exchange, chunks: BodyIterable, chunked: bool = True) -> None:
        """Send a body in chunked coding, waiting whenever the transport is full.

        With ``chunked`` False the pieces go as they are: the head framed the body
        with its Content-Length, and the caller sends exactly that many bytes.
        Stops early, quietly, if the server answered before the body was all sent
        (the connection is then closed, not reused, see on_complete).
        """
        ex.request_written = False
        async for chunk in chunks:
            if chunked and chunk:
                chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
            if chunk and not await self._write(ex, chunk):
                return
        if not chunked or await self._write(ex, b"0\r\n\r\n"):
            ex.request_written = True
            if ex.head_timeout is not None and ex.head is None:
                ex.head_by = self._clock() + ex.head_timeout
                if self._timer is None or ex.head_by < self._timer_at:
                    self._schedule_timer(ex.head_by)

    async def _write(self, ex: Exchange, data: bytes) -> bool:
        """Write a piece of the body; False if the exchange already ended with an answer."""
        transport = self.transport
        if self._ex is not ex or transport is None or transport.is_closing():
            waiter = ex.waiter
            if waiter.done() and not waiter.cancelled():
                failure = waiter.exception()
                if failure is not None:
                    raise failure  # the exchange already failed (a timeout, a reset)
                if ex.body_done:
                    return False  # answered before the body was all sent
            raise ConnectionClosedError(
                describe(self, ex, "the connection closed while the request body was sent"),
                **facts(self, ex),
            )
        transport.write(data)
        ex.bytes_written += len(data)
        if self._paused_writing:
            self._drain_waiter = self.loop.create_future()
            await self._drain_waiter
        return True

    # -- reading a streamed body ------------------------------------------------

    async def read_body_chunk(self, ex: Exchange) -> bytes | None:
        """The next piece of a streamed body, or None at its end."""
        while not ex.chunks:  # None until the first piece
            if ex.body_error is not None:
                raise ex.body_error
            if ex.body_done:
                return None
            ex.body_waiter = self.loop.create_future()
            await ex.body_waiter
        chunks = ex.chunks
        assert chunks is not None
        chunk = chunks.popleft()
        ex.unread -= len(chunk)
        if self._reading_paused and self._ex is ex and ex.unread <= READ_LOW_WATER:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return chunk

    def abandon(self, ex: Exchange, why: str) -> None:
        """The caller gave up on ``ex`` (cancelled, failed, or left a stream early)."""
        if self._ex is ex:
            self.close(why)
        waiter = ex.waiter
        if waiter.done() and not waiter.cancelled():
            waiter.exception()  # the caller already has its error; nobody awaits this one

    # -- timers ---------------------------------------------------------------

    # One timer per connection, re-armed lazily: a request that ends before the
    # timer fires costs no timer operation at all; the timer, when it fires,
    # checks the exchange then in flight and sleeps again until its next expiry.

    def _schedule_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        ex = self._ex
        if ex is None or not ex.timed:
            return
        now = self.loop.time()
        if ex.deadline is not None and now >= ex.deadline:
            exc: HTTPError = RequestTimeout(
                describe(self, ex, "the request took longer than its timeout", explain=False)
            )
            why = reasons.REQUEST_TIMEOUT
        elif ex.head is None and ex.head_by is not None and now >= ex.head_by:
            exc = HeadTimeout(
                describe(
                    self,
                    ex,
                    f"no response head within head_timeout={ex.head_timeout:g} s",
                    explain=False,
                )
            )
            why = reasons.HEAD_TIMEOUT
        elif ex.read_timeout is not None and now >= ex.last_read + ex.read_timeout:
            exc = ReadTimeout(
                describe(
                    self,
                    ex,
                    f"no response byte for read_timeout={ex.read_timeout:g} s",
                    explain=False,
                )
            )
            why = reasons.READ_TIMEOUT
        else:
            self._schedule_timer(ex.expiry())
            return
        self._shut(why)
        self._fail(ex, exc)

    def _on_write_timeout(self) -> None:
        self._write_timer = None
        ex = self._ex
        what = f"the request could not be written within write_timeout={self._write_timeout:g} s"
        exc = WriteTimeout(describe(self, ex, what, explain=False) if ex is not None else what)
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if ex is not None:
            self._shut(reasons.WRITE_TIMEOUT)
            self._fail(ex, exc)

    def _cancel_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    # -- failing --------------------------------------------------------------------

    def _protocol_error(self, ex: Exchange, exc: ProtocolError, data: bytes | memoryview) -> None:
        if ex.response_bytes == len(data) and bytes(data[:1]) in (b"\x15", b"\x16"):
            exc = ProtocolError(
                f"{ex.method} {ex.url}: the server answered with TLS bytes; "
                "it expects https://, not http://",
                reason="tls_on_plain_http",
                offset=0,
            )
        else:
            exc = type(exc)(
                f"{ex.method} {ex.url}: invalid response: {exc.message}",
                reason=exc.reason,
                offset=exc.offset,
            )
        self._shut(reasons.PROTOCOL_ERROR)
        self._fail(ex, exc)

    def _fail(self, ex: Exchange, exc: BaseException) -> None:
        if self._ex is ex:
            self._ex = None
        if not ex.waiter.done():
            ex.waiter.set_exception(exc)
        elif ex.streaming and not ex.body_done:
            ex.body_error = exc
            ex.wake_reader()

    def _shut(self, why: str) -> None:
        """Enter CLOSED, drop the transport, tell the pool why (the real reason, also
        mid-exchange: the pool counts it in close_reasons)."""
        if self.state is State.CLOSED:
            return
        self._event(Event.CLOSE)
        self.close_reason = why
        self._close_transport()
        self.listener.connection_closed(self, why)

    def _close_transport(self) -> None:
        self._poller = None  # its descriptor number may soon belong to another socket
        self._cancel_write_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.abort()

    def __repr__(self) -> str:
        return (
            f"<Connection #{self.id} {self.origin} {self.state.name.lower()} "
            f"served={self.requests_served}>"
        )


class BufferedConnection(Connection, asyncio.BufferedProtocol):
    """A Connection that reads into lent buffers (see dial.lends_buffers), and a
    gathered body straight into the bytes the caller will get: no copy between.

    A BufferedProtocol, so that asyncio's loops lend (uvloop lends to any protocol
    with get_buffer that is not an asyncio.Protocol); listed after Connection, whose
    eof_received must not be shadowed by BufferedProtocol's."""

    get_buffer = Connection.lend_buffer
    buffer_updated = Connection.lent_buffer_filled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._body_buffer = self._parser.body_buffer
        super().connection_made(transport)


def _unasked_head(head: ResponseHead) -> str:
    # A 408 is how some servers say they close an idle connection.
    return reasons.SERVER_CLOSED_IDLE if head.status == 408 else reasons.UNSOLICITED_RESPONSE


def _is_408(data: bytes | memoryview) -> bool:
    return bytes(data[:12]) in (b"HTTP/1.1 408", b"HTTP/1.0 408")


def _enable_tcp_keepalive(sock: Any, idle: float) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    seconds = max(1, int(idle))
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, seconds)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, seconds // 3))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


# Compiled, the pool's reads of these are slot reads; as Python this does nothing.
read_as_slots(
    Connection,
    [
        "close_reason",
        "loop",
        "origin",
        "state",
        "transport",
        "via",
    ],
)
