"""The Client: requests in, responses out, one connection pool per origin.

Options are named after fasthttp's ``Client`` fields, in snake_case, so its
users find them. Timeouts default to what a service calling another service
wants: a bounded connect, a bounded silence while reading, no overall limit
unless asked (``timeout=``).
"""

from __future__ import annotations

import asyncio
import ssl as ssllib
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import reasons
from .._version import __version__
from ..errors import ClientClosedError
from ..h1.auth import Auth, coerce_auth
from ..h1.cookies import Cookies, coerce_cookies
from ..h1.decoding import ACCEPT_ENCODING
from ..h1.headers import HeadersLike
from ..h1.multipart import FilesArg
from ..h1.request import (
    EMPTY_BODY,
    Body,
    Content,
    KeptHeads,
    QueryParams,
    Request,
    add_params,
    build_request,
    check_header,
    check_method,
    encode_body,
    header_items,
)
from ..h1.response import Response
from ..h1.url import join_url, resolve_url
from ..policy.retry import RetryPolicy, coerce_policy
from .calls import (
    NO_EXTRAS,
    TIMEOUT_NAMES,
    AuthArg,
    Call,
    CookieJarArg,
    Extras,
    RequestTimeouts,
)
from .cap import DEFAULT_MAX_CONNS
from .connection import Connection
from .coordinator import Outcome, RetryCoordinator
from .dial import InMemoryNetwork
from .exchange import AttemptSettings
from .fullpath import FullPath
from .hooks import FRAMING_FIELDS, EventHooks, Observer, OutgoingRequest, make_hooks
from .pool import Pool
from .poolcore import DEFAULT_MAX_IDLE, PoolLimits
from .resolve import DEFAULT_TTL, Resolver
from .routes import Routes
from .trace import make_tracer

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .verbs import Verb

_UNSET: Any = object()


class Client:
    """An asyncio HTTP/1.1 client. Use one per process and event loop.

    ::

        async with Client(base_url="http://127.0.0.1:8080") as client:
            resp = await client.get("/items", params={"page": 2})
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        headers: HeadersLike | None = None,
        max_conns_per_host: int = 512,
        max_idle_conn_duration: float | None = DEFAULT_MAX_IDLE,
        max_conn_duration: float | None = None,
        max_requests_per_conn: int | None = None,
        max_conn_wait_timeout: float | None = None,
        conn_pool_strategy: str = "lifo",
        connect_timeout: float | None = 10.0,
        read_timeout: float | None = 60.0,
        write_timeout: float | None = 60.0,
        timeout: float | None = None,
        retry: RetryPolicy | int | bool | None = None,
        max_response_body_size: int | None = None,
        max_response_head_size: int = 65536,
        ssl: ssllib.SSLContext | bool | None = None,
        tcp_keepalive: float | None = None,
        uds: str | None = None,
        user_agent: str = f"aiofasthttp/{__version__}",
        decompress: bool = True,
        trace: Any = None,
        follow_redirects: bool = False,
        max_redirects: int = 10,
        proxy: str | None = None,
        proxy_ssl: ssllib.SSLContext | None = None,
        trust_env: bool = False,
        expect_continue_threshold: int | None = 1 << 20,
        expect_continue_timeout: float = 1.0,
        max_conns: int | None = None,
        dns_cache_ttl: float | None = DEFAULT_TTL,
        resolver: Resolver | None = None,
        happy_eyeballs_delay: float | None = 0.25,
        head_timeout: float | None = None,
        event_hooks: Mapping[str, Iterable[Any]] | None = None,
        transport: InMemoryNetwork | None = None,
        cookies: CookieJarArg = True,
        auth: AuthArg | None = None,
    ) -> None:
        if conn_pool_strategy not in ("lifo", "fifo"):
            raise ValueError("conn_pool_strategy must be 'lifo' or 'fifo'")
        self.base_url = base_url
        self._follow_redirects = follow_redirects
        self._continue_above = expect_continue_threshold
        self._limits = PoolLimits(
            max_conns=max_conns_per_host,
            max_idle_duration=max_idle_conn_duration,
            max_conn_duration=max_conn_duration,
            max_requests_per_conn=max_requests_per_conn,
            max_wait=max_conn_wait_timeout,
            lifo=conn_pool_strategy == "lifo",
        )
        self._timeout = timeout
        # Decided once: DEBUG logging must be on before the client is made to be traced.
        self._tracer = make_tracer(trace)
        if max_conns is None:
            max_conns = max(DEFAULT_MAX_CONNS, max_conns_per_host)
        # Kept requests with their pools: a plain GET is one dict lookup, no pool lookup.
        self._kept_heads: KeptHeads[Pool[Connection] | None] = KeptHeads()
        self._routes = Routes(
            limits=self._limits,
            max_conns=max_conns,
            connect_timeout=connect_timeout,
            write_timeout=write_timeout,
            max_head_size=max_response_head_size,
            tcp_keepalive=tcp_keepalive,
            ssl=ssl,
            uds=uds,
            proxy=proxy,
            proxy_ssl=proxy_ssl,
            trust_env=trust_env,
            dns_cache_ttl=dns_cache_ttl,
            resolver=resolver,
            happy_eyeballs_delay=happy_eyeballs_delay,
            transport=transport,
            tracer=self._tracer,
            get_loop=self._get_loop,
            new_pool=self._kept_heads.clear,
        )
        # The same dict and cap as the routes': _build's pool lookup, stats, repr.
        self._pools = self._routes.pools
        self._cap = self._routes.cap
        self._route = self._routes.route
        check_header("User-Agent", user_agent)
        default = [("User-Agent", user_agent), ("Accept", "*/*")]
        if decompress:
            default.append(("Accept-Encoding", ACCEPT_ENCODING))
        user = header_items(headers)
        names = {n.lower() for n, _ in user}
        self._default_headers = [(n, v) for n, v in default if n.lower() not in names] + user
        # Fields a hook may not just append to an encoded head: the head has them, or
        # they frame the body or the connection.
        self._header_names = {n.lower() for n, _ in self._default_headers} | FRAMING_FIELDS
        self._trace = trace
        self._event_hooks = make_hooks(event_hooks)
        self._hooks: EventHooks | None = self._event_hooks
        self._jar = coerce_cookies(cookies)
        self._auth = coerce_auth(auth)
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._coordinator = RetryCoordinator(
            self._routes.pool_for,
            coerce_policy(retry),
            AttemptSettings(
                read_timeout,
                max_response_body_size,
                decompress,
                expect_continue_timeout,
                connect_timeout=connect_timeout,
                write_timeout=write_timeout,
                pool_timeout=max_conn_wait_timeout,
                head_timeout=head_timeout,
            ),
            self._now,
            self._tracer,
        )
        self._full_path = FullPath(self._coordinator, self._encode, max_redirects)
        self._use_jar(self._jar)
        self._replan()

    # -- requests -------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None = None,
        headers: HeadersLike | None = None,
        content: Content | None = None,
        json: Any = None,
        data: Any = None,
        files: FilesArg | None = None,
        cookies: Mapping[str, str] | None = None,
        auth: AuthArg | None = None,
        timeout: float | None = _UNSET,
        connection_close: bool = False,
        follow_redirects: bool | None = None,
        **timeouts: Unpack[RequestTimeouts],
    ) -> Coroutine[Any, Any, Response]:
        """Send a request and read the whole response body: ``await client.request(...)``.

        A plain method that returns the coroutine to await: without redirects to
        follow it is the retry coordinator's own, one coroutine frame less at every
        step of every request. Errors in the arguments are raised by the await too.
        The request's ``timeout`` counts from the moment the coroutine starts; the
        other timeouts, when given, replace the client's for this request (None: no
        limit). ``files`` are sent as multipart/form-data with the ``data`` fields;
        ``cookies`` go with this request only (not across origins on redirects);
        ``auth`` replaces the client's for this request.
        """
        # The timeouts are keywords gathered in a dict, not five parameters with
        # defaults: a plain request then pays one test, not five lookups and tests.
        settings = None
        if timeouts:
            try:
                settings = self._settings_for(timeouts)
            except TypeError as exc:
                return _raise(exc)
        # A plain request (no files, no cookies to send, no auth, no hooks, no
        # redirects to follow) pays these tests and nothing more for those features.
        # (The cookies a response sets are kept by the coordinator: see _use_jar.)
        if (
            not self._plain
            or files is not None
            or cookies is not None
            or auth is not None
            or follow_redirects
            or self._jar_cookies
        ):
            extras = Extras(files, cookies, auth)
            if self._needs_full(extras, follow_redirects):
                call = Call(method, url, params, headers, content, json, data, connection_close)
                return self._full(call, extras, timeout, follow_redirects, settings)
        try:
            request, pool = self._build(
                method, url, params, headers, content, json, data, connection_close
            )
        except Exception as exc:
            return _raise(exc)
        if timeout is _UNSET:
            timeout = self._timeout
        return self._coordinator.fetch(request, pool, timeout, settings)

    def _needs_full(self, extras: Extras, follow_redirects: bool | None) -> bool:
        return (
            self._hooks is not None or self._follows(follow_redirects) or self._uses_extras(extras)
        )

    def _replan(self) -> None:
        """Whether requests may skip every everyday feature (see request())."""
        self._plain = self._auth is None and self._hooks is None and not self._follow_redirects

    def _uses_extras(self, extras: Extras) -> bool:
        """Whether a request needs the full path: its own files, cookies or auth, the
        client's auth, or cookies in the jar to send."""
        jar = self._jar
        return (
            extras != NO_EXTRAS or self._auth is not None or (jar is not None and not jar.is_empty)
        )

    async def _full(
        self,
        call: Call,
        extras: Extras,
        timeout: float | None,
        follow_redirects: bool | None,
        settings: AttemptSettings | None,
    ) -> Response:
        """A request with hooks, redirects to follow, files, cookies or auth."""
        deadline = self._deadline(timeout)
        follows = self._follows(follow_redirects)
        hooks = self._hooks
        if hooks is None:
            resp, _, _ = await self._exchange(call, extras, deadline, settings, follows, False)
            return resp
        outgoing = call.outgoing(self.base_url)
        hooks.started(outgoing)
        try:
            await hooks.before(outgoing)
            if follows or self._uses_extras(extras):
                built = call.built(outgoing)
                resp, _, _ = await self._exchange(built, extras, deadline, settings, follows, False)
            else:
                request, pool = self._build_hooked(call, outgoing)
                resp = await self._coordinator.fetch(
                    request, pool, None, settings, deadline=deadline
                )
            await hooks.after(resp)
        except BaseException as exc:
            hooks.failed(outgoing, exc)
            raise
        hooks.answered(outgoing, resp)
        return resp

    def _exchange(
        self,
        call: Call,
        extras: Extras,
        deadline: float | None,
        settings: AttemptSettings | None,
        follows: bool,
        streaming: bool,
    ) -> Coroutine[Any, Any, Outcome]:
        """The full path's exchange (engine/fullpath.py), with the client's state now."""
        if self._closed:
            raise ClientClosedError("the client is closed; create a new Client")
        return self._full_path.exchange(
            call,
            extras,
            self.base_url,
            self._auth,
            self._jar,
            deadline,
            settings,
            follows,
            streaming,
        )

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: QueryParams | None = None,
        headers: HeadersLike | None = None,
        content: Content | None = None,
        json: Any = None,
        data: Any = None,
        files: FilesArg | None = None,
        cookies: Mapping[str, str] | None = None,
        auth: AuthArg | None = None,
        timeout: float | None = _UNSET,
        connection_close: bool = False,
        follow_redirects: bool | None = None,
        **timeouts: Unpack[RequestTimeouts],
    ) -> AsyncIterator[Response]:
        """Send a request; the body is read with ``async for chunk in resp.iter_bytes()``.

        Leaving the block before the body's end closes the connection, so it is
        never returned to the pool with unread bytes. The response hooks see the
        response before the block does, its body not yet read.
        """
        settings = self._settings_for(timeouts) if timeouts else None
        deadline = self._deadline(timeout)
        call = Call(method, url, params, headers, content, json, data, connection_close)
        extras = Extras(files, cookies, auth)
        follows = self._follows(follow_redirects)
        hooks = self._hooks
        outgoing = None if hooks is None else call.outgoing(self.base_url)
        conn = ex = None
        try:
            if hooks is not None and outgoing is not None:
                hooks.started(outgoing)
                await hooks.before(outgoing)
            if follows or self._uses_extras(extras):
                built = call if outgoing is None else call.built(outgoing)
                resp, conn, ex = await self._exchange(
                    built, extras, deadline, settings, follows, True
                )
            else:
                if outgoing is not None:
                    request, _ = self._build_hooked(call, outgoing)
                else:
                    request, _ = self._build(*call)
                resp, conn, ex = await self._coordinator.run(request, deadline, True, settings)
            if hooks is not None:
                await hooks.after(resp)
        except BaseException as exc:
            if conn is not None and ex is not None:
                conn.abandon(ex, reasons.STREAM_FAILED)
            if hooks is not None and outgoing is not None:
                hooks.failed(outgoing, exc)
            raise
        if hooks is not None and outgoing is not None:
            hooks.answered(outgoing, resp)
        try:
            yield resp
        finally:
            if conn is not None and ex is not None:
                conn.abandon(ex, reasons.STREAM_LEFT_EARLY)

    def _settings_for(self, timeouts: RequestTimeouts) -> AttemptSettings:
        """The client's attempt settings with a request's own timeouts."""
        unknown = set(timeouts) - set(TIMEOUT_NAMES)
        if unknown:
            raise TypeError(
                f"unexpected keyword argument(s) {sorted(unknown)}; "
                f"the per-request timeouts are {', '.join(TIMEOUT_NAMES)}"
            )
        return self._coordinator.settings.with_timeouts(timeouts)

    # -- hooks ------------------------------------------------------------------

    @property
    def event_hooks(self) -> dict[str, tuple[Any, ...]]:
        """The hooks, as tuples: assign a new mapping to change them."""
        hooks = self._event_hooks
        if hooks is None:
            return {"request": (), "response": ()}
        return {"request": hooks.request, "response": hooks.response}

    @event_hooks.setter
    def event_hooks(self, event_hooks: Mapping[str, Iterable[Any]]) -> None:
        self._event_hooks = make_hooks(event_hooks)
        self._rehook()

    def _instrument(self, observer: Observer | None, listener: object, add: bool) -> None:
        """Add (or remove) an instrumentation's observer and trace listener.

        Kept apart from the user's hooks and trace object; a client with none of
        them goes back to paying only its ``is None`` tests.
        """
        tracer = self._tracer
        listeners = tracer.listeners if tracer is not None else ()
        extra = tuple(x for x in listeners if x is not self._trace and x is not listener)
        observers = tuple(o for o in self._observers if o is not observer)
        if add:
            extra += (listener,)
            observers += (observer,) if observer is not None else ()
        self._observers = observers
        self._set_tracer(make_tracer(self._trace, extra))
        self._rehook()

    _observers: tuple[Observer, ...] = ()

    def _rehook(self) -> None:
        user = self._event_hooks
        if not self._observers:
            self._hooks = user
        else:
            request, response = (user.request, user.response) if user is not None else ((), ())
            self._hooks = EventHooks(request, response, self._observers)
        self._replan()

    def _set_tracer(self, tracer: Any) -> None:
        self._tracer = tracer
        self._coordinator.tracer = tracer
        self._routes.set_tracer(tracer)

    # The verb helpers hand back request()'s coroutine rather than awaiting it
    # in one of their own: one frame less to resume at every step of a request.
    # The type checker sees them as Verbs, request()'s keywords typed (engine/verbs.py);
    # at run time they pass their keywords on as they came.
    if TYPE_CHECKING:
        get: Verb
        head: Verb
        options: Verb
        post: Verb
        put: Verb
        patch: Verb
        delete: Verb
    else:

        def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("GET", url, ...)``: the same keywords."""
            if not kwargs and self._plain and not self._jar_cookies and not self._closed:
                # The commonest request of all, a plain GET of a URL already sent, goes
                # straight to its kept request (see _build): request()'s fourteen
                # keywords and _build's tests would decide the same, two calls later.
                kept = self._kept_heads.get(("GET", url))
                if kept is not None:
                    return self._coordinator.fetch(kept[0], kept[1], self._timeout)
            return self.request("GET", url, **kwargs)

        def head(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("HEAD", url, ...)``: the same keywords."""
            return self.request("HEAD", url, **kwargs)

        def options(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("OPTIONS", url, ...)``: the same keywords."""
            return self.request("OPTIONS", url, **kwargs)

        def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("POST", url, ...)``: the same keywords."""
            return self.request("POST", url, **kwargs)

        def put(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("PUT", url, ...)``: the same keywords."""
            return self.request("PUT", url, **kwargs)

        def patch(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("PATCH", url, ...)``: the same keywords."""
            return self.request("PATCH", url, **kwargs)

        def delete(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, Response]:
            """``request("DELETE", url, ...)``: the same keywords."""
            return self.request("DELETE", url, **kwargs)

    # -- building requests ---------------------------------------------------------

    def _build(
        self,
        method: str,
        url: str,
        params: QueryParams | None,
        headers: HeadersLike | None,
        content: Content | None,
        json: Any,
        data: Any,
        connection_close: bool,
    ) -> tuple[Request, Pool[Connection] | None]:
        """The request, and its pool when known (kept requests carry theirs)."""
        if self._closed:
            raise ClientClosedError("the client is closed; create a new Client")
        # A request without params or headers of its own is encoded once and kept
        # (see KeptHeads): a GET is then a dict lookup, a POST that plus its new body.
        plain = params is None and headers is None and not connection_close
        key: tuple[str, str] | tuple[str, str, str | None, int] | None = None
        body = EMPTY_BODY
        if plain:
            if content is None and json is None and data is None:
                key = (method, url)
                cached = self._kept_heads.get(key)
                if cached is not None:
                    return cached
            else:
                body = encode_body(content, json, data)
                if body.data is not None:
                    key = (method, url, body.content_type, len(body.data))
                    cached = self._kept_heads.get(key)
                    if cached is not None:
                        return cached[0].with_body(body), cached[1]
        else:
            body = encode_body(content, json, data)
        full_url = add_params(join_url(self.base_url, url), params)
        request = self._encode(
            check_method(method), full_url, header_items(headers), body, connection_close
        )
        if key is None:
            return request, None
        pool = self._pools.get(request.route)
        self._kept_heads.keep(key, request, pool)
        return request, pool

    def _encode(
        self,
        method: str,
        full_url: str,
        items: list[tuple[str, str]],
        body: Body,
        connection_close: bool,
    ) -> Request:
        """A request from checked parts: its route and its encoded head."""
        target = resolve_url(full_url)
        route, proxy = self._route(target)
        expect = self._continue_above is not None and len(body.data or b"") >= self._continue_above
        return build_request(
            method,
            full_url,
            target,
            self._default_headers,
            items,
            body,
            connection_close=connection_close,
            proxy=proxy,
            expect_continue=expect,
            route=route,
        )

    def _build_hooked(
        self, call: Call, outgoing: OutgoingRequest
    ) -> tuple[Request, Pool[Connection] | None]:
        """The request as the hooks left it.

        When they only added fields (a signature, a traceparent) that no part of the
        head already has, the request is built as without hooks (its head kept and
        reused, see KeptHeads) and the fields are appended to that head.
        """
        added = outgoing.appended(self._header_names)
        if added is not None:
            request, pool = self._build(*call)
            return (request.with_fields(added), pool) if added else (request, pool)
        return self._build(*call.built(outgoing))

    def _follows(self, per_request: bool | None) -> bool:
        return self._follow_redirects if per_request is None else per_request

    # -- cookies and auth ----------------------------------------------------------

    @property
    def cookies(self) -> Cookies | None:
        """The cookie jar (None with ``cookies=False``): ``client.cookies.clear()``,
        ``.set(...)``, ``.get(name)``; assign True, False, a jar or a CookieJar."""
        return self._jar

    @cookies.setter
    def cookies(self, value: CookieJarArg) -> None:
        self._use_jar(coerce_cookies(value))

    def _use_jar(self, jar: Cookies | None) -> None:
        """Use ``jar``: its live store for request()'s one test of whether there are
        cookies to send, its store_from_response for every head that sets some."""
        self._jar = jar
        # The jar's own dict of cookies (falsy while empty), True for a jar that cannot
        # say, None without a jar: one attribute test per request.
        self._jar_cookies: object = None if jar is None else jar.stored
        self._coordinator.on_set_cookie = None if jar is None else jar.store_from_response

    @property
    def auth(self) -> Auth | None:
        return self._auth

    @auth.setter
    def auth(self, value: AuthArg | None) -> None:
        self._auth = coerce_auth(value)
        self._replan()

    def _deadline(self, timeout: float | None) -> float | None:
        if timeout is _UNSET:
            timeout = self._timeout
        return None if timeout is None else self._now() + timeout

    def _now(self) -> float:
        return self._get_loop().time()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    # -- lifetime and introspection ---------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per origin: connections open, idle, active; created, reused, closed, expired, retries."""
        return self._routes.stats()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close every connection and fail every waiting request."""
        self._closed = True
        self._routes.close()
        # Let the transports run their connection_lost callbacks before returning.
        await asyncio.sleep(0)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        pools = ", ".join(repr(p) for p in self._pools.values())
        return f"<Client closed={self._closed} pools=[{pools}]>"


async def _raise(exc: Exception) -> Response:
    """Raise ``exc`` when awaited: request() reports bad arguments at the await."""
    raise exc
