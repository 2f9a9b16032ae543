"""OpenTelemetry for a Client: a CLIENT span and a duration measurement per request.

::

    from aiofasthttp.integrations.opentelemetry import instrument, uninstrument

    instrument(client)        # the global tracer and meter providers, or pass your own
    ...
    uninstrument(client)      # back to a plain client: one ``is None`` test per request

Per request (one ``client.request()`` or ``client.stream()`` call, its replays and
redirects included) it makes one span named after the method, with the stable HTTP
semantic conventions: ``http.request.method``, ``url.full`` (credentials and
signature query values redacted), ``server.address``, ``server.port``,
``http.response.status_code``, ``network.protocol.version``, ``error.type`` and
``http.request.resend_count``; span events for the engine's own story: a connection
dialled or reused, a stale connection replayed, another replay, giving up. The
``traceparent`` header (the global propagator's fields) is injected into the request,
and ``http.client.request.duration`` (seconds) is recorded.

It is built on two seams of the client: an observer beside the request and
response hooks (the request's start, response and failure), and a trace listener
(the engine's events). Those events run in the task of the request they concern,
so a context variable ties them to its span. For ``client.stream()`` the span
ends when the response head arrives, before the body is read.
"""

from __future__ import annotations

import contextvars
import time
import weakref
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

try:
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "aiofasthttp.integrations.opentelemetry needs opentelemetry-api: "
        "pip install 'aiofasthttp[opentelemetry]'"
    ) from exc

from .. import __version__
from ..engine.client import Client
from ..engine.hooks import OutgoingRequest
from ..h1.response import Response
from ..h1.url import DEFAULT_PORTS
from ..reasons import STALE

__all__ = ["instrument", "uninstrument"]

SCOPE = "aiofasthttp"
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
# Query parameters whose values are credentials (the semantic conventions' list).
SECRET_PARAMS = frozenset({"AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"})
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

_instrumented: weakref.WeakKeyDictionary[Client, _Instrumentation] = weakref.WeakKeyDictionary()


class _Request:
    """One request's span and what is measured about it."""

    __slots__ = ("attributes", "resends", "span", "started", "token")

    def __init__(self, span: trace.Span, attributes: dict[str, Any]) -> None:
        self.span = span
        self.attributes = attributes  # the ones the duration is recorded with
        self.started = time.perf_counter()
        self.resends = 0
        self.token: contextvars.Token[_Request | None] | None = None


# The request in flight in this task: the engine's trace events carry no request object.
_current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "aiofasthttp_otel_request", default=None
)


class _Instrumentation:
    """The observer and the trace listener ``instrument()`` adds to one client."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        # A request's attributes and redacted URL, by method and URL: the same recur.
        self._described: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}

    # -- the observer: a request's start, its response, its failure ------------------

    def on_request(self, request: OutgoingRequest) -> None:
        key = (request.method, request.url)
        found = self._described.get(key)
        if found is None:
            if len(self._described) >= 1024:
                self._described.clear()
            attributes = _request_attributes(request.method, request.url)
            found = self._described[key] = (attributes, redact(request.url))
        attributes, url = found
        method = attributes["http.request.method"]
        span = self.tracer.start_span(
            "HTTP" if method == "_OTHER" else method,  # the conventions' low-cardinality name
            kind=SpanKind.CLIENT,
            attributes={**attributes, "url.full": url},
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        for name, value in carrier.items():
            request.headers[name] = value
        state = _Request(span, attributes)
        state.token = _current.set(state)
        request.extensions[SCOPE] = state

    def on_response(self, request: OutgoingRequest, response: Response) -> None:
        state = self._leave(request)
        if state is None:
            return
        status = response.status
        extra: dict[str, Any] = {
            "http.response.status_code": status,
            "network.protocol.version": response.http_version.partition("/")[2],
        }
        if status >= 400:
            extra["error.type"] = str(status)
            state.span.set_status(Status(StatusCode.ERROR))
        self._end(state, extra)

    def on_error(self, request: OutgoingRequest, error: BaseException) -> None:
        state = self._leave(request)
        if state is None:
            return
        kind = type(error)
        state.span.record_exception(error)
        state.span.set_status(Status(StatusCode.ERROR, str(error)))
        self._end(state, {"error.type": f"{kind.__module__}.{kind.__qualname__}"})

    def _leave(self, request: OutgoingRequest) -> _Request | None:
        state: _Request | None = request.extensions.pop(SCOPE, None)
        if state is not None and state.token is not None:
            try:
                _current.reset(state.token)
            except ValueError:  # ended in another context than it began: forget it there
                _current.set(None)
        return state

    def _end(self, state: _Request, extra: dict[str, Any]) -> None:
        span = state.span
        if state.resends:
            span.set_attribute("http.request.resend_count", state.resends)
        span.set_attributes(extra)
        span.end()
        attributes = {**state.attributes, **extra}
        self.duration.record(time.perf_counter() - state.started, attributes)

    # -- the trace listener: the engine's events, in the request's own task -------------

    def connection_dialled(self, *, origin: str, connection_id: int) -> None:
        _event("aiofasthttp.connection.dialled", {"aiofasthttp.connection.id": connection_id})

    def request_written(
        self, *, method: str, url: str, connection_id: int, bytes_written: int, reused: bool
    ) -> None:
        if reused:
            facts = {"aiofasthttp.connection.id": connection_id}
            _event("aiofasthttp.connection.reused", facts)

    def retry_scheduled(
        self, *, method: str, url: str, attempt: int, reason: str, delay: float, error: str
    ) -> None:
        state = _current.get()
        if state is None:
            return
        state.resends += 1
        name = "aiofasthttp.stale_replay" if reason == STALE else "aiofasthttp.retry"
        facts: dict[str, Any] = {
            "aiofasthttp.attempt": attempt,
            "aiofasthttp.retry.reason": reason,
            "aiofasthttp.retry.delay": delay,
            "aiofasthttp.error": error,
        }
        state.span.add_event(name, facts)

    def gave_up(self, *, method: str, url: str, attempt: int, error: str) -> None:
        _event("aiofasthttp.gave_up", {"aiofasthttp.attempt": attempt, "aiofasthttp.error": error})


def _event(name: str, facts: dict[str, Any]) -> None:
    state = _current.get()
    if state is not None:
        state.span.add_event(name, facts)


def _request_attributes(method: str, url: str) -> dict[str, Any]:
    """The attributes both the span and the duration carry (not the full URL)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    attributes: dict[str, Any] = {"url.scheme": scheme}
    if method in KNOWN_METHODS:
        attributes["http.request.method"] = method
    else:
        attributes["http.request.method"] = "_OTHER"
        attributes["http.request.method_original"] = method
    if parts.hostname:
        attributes["server.address"] = parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    attributes["server.port"] = port or DEFAULT_PORTS.get(scheme, 80)
    return attributes


def redact(url: str) -> str:
    """``url`` without credentials: userinfo and signature query values become REDACTED."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "REDACTED:REDACTED@" + netloc.rpartition("@")[2]
    query = parts.query
    if query and any(name in query for name in SECRET_PARAMS):
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "REDACTED" if k in SECRET_PARAMS else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def instrument(client: Client, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Trace and measure every request ``client`` makes (again: no effect).

    ``tracer_provider`` and ``meter_provider`` default to OpenTelemetry's global ones.
    """
    if client in _instrumented:
        return
    instrumentation = _Instrumentation(tracer_provider, meter_provider)
    _instrumented[client] = instrumentation
    client._instrument(instrumentation, instrumentation, add=True)


def uninstrument(client: Client) -> None:
    """Stop tracing ``client``: it is back to a plain client's cost."""
    instrumentation = _instrumented.pop(client, None)
    if instrumentation is not None:
        client._instrument(instrumentation, instrumentation, add=False)
