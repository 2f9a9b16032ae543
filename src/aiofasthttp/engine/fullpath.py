"""The full path of a request: its auth flow, its cookies and the redirects it follows.

A plain request never comes here (see Client.request): only one with redirects to
follow, files, cookies to send, or auth. The client hands each exchange the state
it reads at that moment (its base URL, auth and jar), so nothing here can drift
from the client's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import reasons
from ..errors import TooManyRedirects
from ..h1.auth import Auth, AuthRequest, coerce_auth, credentials_may_follow, run_auth_flow
from ..h1.cookies import Cookies, cookie_header
from ..h1.redirects import REDIRECT_STATUSES, next_hop
from ..h1.request import (
    EMPTY_BODY,
    Body,
    Request,
    add_params,
    check_method,
    encode_body,
    header_items,
)
from ..h1.response import Response
from ..h1.url import join_url
from .calls import Call, Extras, Hop, with_cookie
from .coordinator import Outcome, RetryCoordinator
from .exchange import AttemptSettings

# The client's request encoder: method, full URL, header items, body, connection_close.
Encode = Callable[[str, str, list[tuple[str, str]], Body, bool], Request]


class FullPath:
    """One client's full-path exchanges, each hop encoded by the client and sent
    through its retry coordinator."""

    __slots__ = ("_coordinator", "_encode", "_max_redirects")

    def __init__(self, coordinator: RetryCoordinator, encode: Encode, max_redirects: int) -> None:
        self._coordinator = coordinator
        self._encode = encode
        self._max_redirects = max_redirects

    async def exchange(
        self,
        call: Call,
        extras: Extras,
        base_url: str | None,
        client_auth: Auth | None,
        jar: Cookies | None,
        deadline: float | None,
        settings: AttemptSettings | None,
        follows: bool,
        streaming: bool,
    ) -> Outcome:
        """A request with its auth flow, cookies and redirects.

        The body is encoded once: an auth round or a 307/308 hop sends that same
        body again (a replayable one makes a fresh stream; a one-shot one refuses).
        Each hop works its Cookie field out afresh from the jar; the request's own
        cookies and auth go only to the origin they were given for.
        """
        method = check_method(call.method)
        url = add_params(join_url(base_url, call.url), call.params)
        headers = header_items(call.headers)
        body = encode_body(call.content, call.json, call.data, extras.files)
        auth = coerce_auth(extras.auth) if extras.auth is not None else client_auth
        if extras.auth is None and any(n.lower() == "authorization" for n, _ in headers):
            auth = None  # an Authorization field set for this request wins over the client's
        first = url
        history: list[Response] = []
        while True:
            own = credentials_may_follow(first, url)
            hop = Hop(method, url, headers, body, call.connection_close)
            resp, conn, ex = await self._authed(
                hop,
                auth if own else None,
                extras.cookies if own else None,
                jar,
                deadline,
                settings,
                streaming,
            )
            if not follows or resp.status not in REDIRECT_STATUSES:
                break
            if conn is not None and ex is not None:
                conn.abandon(ex, reasons.REDIRECT_BODY_UNREAD)
            if len(history) >= self._max_redirects:
                raise TooManyRedirects(
                    f"{call.method} {first}: more than max_redirects={self._max_redirects} "
                    "redirects"
                )
            history.append(resp)
            has_body = body.data is not None or body.make_stream is not None
            nxt = next_hop(
                resp.status,
                resp.headers.get("location"),
                method,
                url,
                headers,
                body.replayable,
                has_body,
            )
            method, url, headers = nxt.method, nxt.url, nxt.headers
            if not nxt.keep_body:
                body = EMPTY_BODY
        resp.history = history
        return resp, conn, ex

    async def _authed(
        self,
        hop: Hop,
        auth: Auth | None,
        cookies: Mapping[str, str] | None,
        jar: Cookies | None,
        deadline: float | None,
        settings: AttemptSettings | None,
        streaming: bool,
    ) -> Outcome:
        """One hop: sent as it is, or through ``auth``'s flow (each round built afresh)."""

        async def send(request: AuthRequest) -> Response:
            sent = hop._replace(method=request.method, url=request.url, headers=request.headers)
            return await self._send_hop(sent, cookies, jar, deadline, settings, streaming)

        if auth is None:
            resp = await send(AuthRequest(hop.method, hop.url, hop.headers))
        else:
            resp = await run_auth_flow(
                auth, AuthRequest(hop.method, hop.url, list(hop.headers)), send, _discard
            )
        if streaming:
            conn, ex = resp._held
            return resp, conn, ex
        return resp, None, None

    async def _send_hop(
        self,
        hop: Hop,
        cookies: Mapping[str, str] | None,
        jar: Cookies | None,
        deadline: float | None,
        settings: AttemptSettings | None,
        streaming: bool,
    ) -> Response:
        """One request on the wire, with the jar's cookies (the coordinator keeps the
        response's)."""
        headers = hop.headers
        value = cookie_header(jar, hop.url, cookies)
        if value is not None:
            headers = with_cookie(headers, value)
        request = self._encode(hop.method, hop.url, headers, hop.body, hop.connection_close)
        return await self._coordinator.fetch(
            request, None, None, settings, deadline=deadline, streaming=streaming
        )


async def _discard(resp: Response) -> None:
    """A response an auth flow answered with another request: read, so that its
    connection goes back to the pool (a 401's body is small)."""
    if resp._content is None:
        await resp.aread()
