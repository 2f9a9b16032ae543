"""MockTransport: a client whose connections are made in memory and answered by a function.

``Client(transport=MockTransport(handler))`` dials no socket: each connection
the pool asks for is a real :class:`~aiofasthttp.engine.connection.Connection`
given an in-memory asyncio transport (:class:`MemoryTransport`). What the
Connection writes is read back into requests by a small server side
(:mod:`.wire`); each goes to ``handler(request)``, and the
:class:`MockResponse` it returns is encoded to bytes and fed to the
Connection's parser. So framing, decoding, keep-alive, redirects, retries and
errors run the engine's own code, as on a socket.

A handler that raises ``ConnectionResetError`` (or returns ``MockResponse.reset()``)
resets the connection, one that returns ``MockResponse.close()`` closes it
without an answer: the caller gets the engine's ``ConnectionClosedError``,
replayed when that is safe. Any other exception a handler raises reaches the
caller as it is: it is a bug in the test, not a network event.
"""

from __future__ import annotations

import asyncio
import http
import inspect
import json as jsonlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..errors import ProtocolError
from .wire import MockRequest, RequestReader, encode_response

if TYPE_CHECKING:
    from ..engine.interfaces import DialedConnection
    from ..h1.url import Route

_RESPOND, _RESET, _CLOSE = "respond", "reset", "close"


class MockResponse:
    """What a handler answers: a status, headers and one body.

    The body is ``content`` (bytes), ``text`` (encoded as UTF-8, ``text/plain``)
    or ``json`` (``application/json``); a Content-Type given in ``headers`` wins.
    The response is framed by Content-Length unless ``headers`` frame it
    (``Transfer-Encoding: chunked``, or a Content-Length of their own). A
    ``Content-Encoding`` header is sent as given: ``content`` must then be
    encoded (``gzip.compress(...)``), and the client decodes it.
    """

    __slots__ = ("action", "content", "headers", "http_version", "reason", "status")

    def __init__(
        self,
        status: int = 200,
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        content: bytes | None = None,
        text: str | None = None,
        json: Any = None,
        reason: str | None = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        if sum(x is not None for x in (content, text, json)) > 1:
            raise ValueError("give MockResponse one of content=, text= or json=")
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        names = {name.lower() for name, _ in pairs}
        if json is not None:
            content = jsonlib.dumps(json).encode()
            kind = "application/json"
        elif text is not None:
            content = text.encode()
            kind = "text/plain; charset=utf-8"
        else:
            kind = None
        if kind is not None and "content-type" not in names:
            pairs.append(("Content-Type", kind))
        self.status = status
        self.headers = pairs
        self.content = content or b""
        self.reason = reason if reason is not None else _phrase(status)
        self.http_version = http_version
        self.action = _RESPOND

    @classmethod
    def reset(cls) -> MockResponse:
        """No answer: the connection is reset (the client sees ConnectionClosedError)."""
        resp = cls(0, reason="")
        resp.action = _RESET
        return resp

    @classmethod
    def close(cls) -> MockResponse:
        """No answer: the server closes the connection cleanly (FIN)."""
        resp = cls(0, reason="")
        resp.action = _CLOSE
        return resp

    def encode(self, method: str) -> bytes:
        return encode_response(
            self.status, self.reason, self.headers, self.content, method, self.http_version
        )

    @property
    def closes(self) -> bool:
        """Whether the server closes the connection after sending this response."""
        tokens = {
            t.strip().lower()
            for n, v in self.headers
            if n.lower() == "connection"
            for t in v.split(",")
        }
        return "close" in tokens or (self.http_version == "HTTP/1.0" and "keep-alive" not in tokens)

    def __repr__(self) -> str:
        if self.action != _RESPOND:
            return f"<MockResponse {self.action}>"
        return f"<MockResponse [{self.status}] {len(self.content)} bytes>"


Handler = Callable[[MockRequest], MockResponse | Awaitable[MockResponse]]


class MockTransport:
    """Answers a client's requests with ``handler(request)``, sync or async; see the module.

    ``chunk_size`` splits each response into pieces of that many bytes, fed to the
    client one loop turn apart (as reads from a socket come): streamed bodies then
    arrive in pieces. ``requests`` lists every request received, in order, and
    ``connections`` counts the connections the client made.
    """

    def __init__(self, handler: Handler, *, chunk_size: int | None = None) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be 1 or more")
        self.handler = handler
        self.chunk_size = chunk_size
        self.requests: list[MockRequest] = []
        self.connections = 0

    async def connect(self, conn: DialedConnection, route: Route) -> None:
        """The dial: ``conn`` gets an in-memory transport (the Client's dial seam)."""
        self.connections += 1
        loop = asyncio.get_running_loop()
        conn.connection_made(MemoryTransport(self, conn, route.origin.scheme, loop))

    async def answer(self, request: MockRequest) -> MockResponse:
        self.requests.append(request)
        result = self.handler(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, MockResponse):
            raise TypeError(
                f"a MockTransport handler must return a MockResponse, not {result!r} "
                f"(for {request.method} {request.url})"
            )
        return result


class MemoryTransport(asyncio.Transport):
    """One connection's in-memory transport: the client's end, with the mock server behind.

    Bytes reach the client (``data_received``) only from loop callbacks, never
    from inside ``write()``: the Connection is mid-``send`` then, as with a socket.
    """

    def __init__(
        self,
        mock: MockTransport,
        conn: DialedConnection,
        scheme: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__()
        self._mock = mock
        self._conn = conn
        self._loop = loop
        self._reader = RequestReader(scheme)
        self._closing = False
        self._lost = False
        self._reading = asyncio.Event()
        self._reading.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._turn: asyncio.Future[None] | None = None  # the previous answer, sent first

    # -- the client writes ---------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return
        try:
            requests = self._reader.feed(bytes(data))
        except (ProtocolError, ValueError, IndexError) as exc:  # no request it can read
            self._loop.call_soon(self._lose, ConnectionResetError(f"mock server: {exc}"))
            return
        if self._reader.continue_wanted:
            self._reader.continue_wanted = False
            self._loop.call_soon(self._feed, b"HTTP/1.1 100 Continue\r\n\r\n")
        for request in requests:
            task = self._loop.create_task(self._answer(request, self._turn))
            self._turn = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    async def _answer(self, request: MockRequest, previous: asyncio.Future[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # answers go out in the order asked
        try:
            resp = await self._mock.answer(request)
        except OSError as exc:  # ConnectionResetError and kin: a network event
            self._lose(exc)
            return
        except Exception as exc:  # a bug in the test's handler: the caller gets it as is
            self._fail_request(exc)
            return
        if resp.action == _RESET:
            self._lose(ConnectionResetError("connection reset by the mock server"))
            return
        if resp.action == _RESPOND:
            sent = await self._send(resp.encode(request.method))
            if not sent or not resp.closes:
                return
        self._eof()  # MockResponse.close(), or a response saying the server closes

    async def _send(self, data: bytes) -> bool:
        size = self._mock.chunk_size or len(data)
        for start in range(0, len(data), size):
            if start:
                await asyncio.sleep(0)  # a loop turn between reads, as from a socket
            await self._reading.wait()  # the client paused reading: hold the rest
            if self._closing:
                return False
            self._conn.data_received(data[start : start + size])
        return not self._closing

    def _feed(self, data: bytes) -> None:
        if not self._closing:
            self._conn.data_received(data)

    def _fail_request(self, exc: Exception) -> None:
        """Fail the request in flight with ``exc`` itself, then close the connection.

        The one place the test double reaches inside the Connection: its exchange's
        waiter, which the coordinator awaits and which otherwise only the
        connection's own protocol events settle.
        """
        exchange = getattr(self._conn, "_ex", None)
        waiter = getattr(exchange, "waiter", None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        else:
            self._lose(ConnectionResetError(f"the mock handler raised {exc!r}"))

    # -- the server ends the connection ------------------------------------------------

    def _eof(self) -> None:
        if self._closing:
            return
        self._conn.eof_received()
        self._lose(None)

    def _lose(self, exc: Exception | None) -> None:
        self._closing = True
        if self._lost:
            return
        self._lost = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        self._reading.set()
        self._conn.connection_lost(exc)

    # -- asyncio.Transport ----------------------------------------------------------------

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        if not self._closing:
            self._closing = True
            self._loop.call_soon(self._lose, None)

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set()

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default  # no socket: the Connection then skips its poll() and socket options

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("a MemoryTransport serves the connection it was made for")

    def get_protocol(self) -> asyncio.BaseProtocol:
        return cast(asyncio.BaseProtocol, self._conn)  # see interfaces.DialedConnection


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


__all__ = ["Handler", "MemoryTransport", "MockRequest", "MockResponse", "MockTransport"]
