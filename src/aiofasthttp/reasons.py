"""The reason vocabulary: why a connection closed, and why an attempt was replayed.

Plain string constants, not an Enum: a reason is handed along on every close, and
a string costs nothing to pass or compare. They are the keys of
``Client.stats()[...]["close_reasons"]``, the ``why`` of the ``connection_closed``
and ``connection_expired`` trace events and the ``reason`` of ``retry_scheduled``.
Prose for people lives elsewhere: :mod:`aiofasthttp.engine.explain` (error
messages) and the command line's trace. docs/design.md lists them all.
"""

# -- why a connection closed: the client's decisions -----------------------------------

CLIENT_CLOSED = "client_closed"  # the Client, and so its pool, was closed
EXPIRED = "expired"  # max_idle_conn_duration or max_conn_duration reached
MAX_REQUESTS = "max_requests"  # its request limit (set, hinted or learned) reached
FOUND_CLOSED_BEFORE_REUSE = "found_closed_before_reuse"  # the peek before reuse saw a close
DROPPED_WITH_DEAD_PEER = "dropped_with_dead_peer"  # idle as long as one that turned out stale
# Idle about as long as the server was seen closing idle ones: retired rather than
# given a request that is not replayed.
NEAR_IDLE_CLOSE = "near_idle_close"
# Passed over (not closed) for a request that is not replayed: it served as many
# requests as one the server closed silently under its next one.
SUSPECTED_REQUEST_LIMIT = "suspected_request_limit"
# Passed over (not closed) for a request that is not replayed: idle longer than any
# connection to its server has been seen to survive.
UNTRIED_IDLE = "untried_idle"
EVICTED_FOR_MAX_CONNS = "evicted_for_max_conns"  # idle, closed for a dial elsewhere (max_conns)
MAKING_ROOM = "making_room"  # an idle connection closed to make room for a fresh dial
CANCELLED = "cancelled"  # the request was cancelled while in flight
ABANDONED = "abandoned"  # the attempt was cancelled or failed while in flight
REDIRECT_BODY_UNREAD = "redirect_body_unread"  # a streamed redirect's body was not read
STREAM_FAILED = "stream_failed"  # a streamed request failed before its block began
STREAM_LEFT_EARLY = "stream_left_early"  # a streamed response was left before its end
RETRYING_STATUS = "retrying_status"  # the response's status is being retried
ALREADY_CLOSED = "already_closed"  # the transport was gone when the request came
DIAL_ABANDONED = "dial_abandoned"  # the dial was cancelled; the pool never had it

# -- why a connection closed: the server's or the network's ------------------------------

SERVER_CLOSED_IDLE = "server_closed_idle"  # closed (or answered 408) while idle
SERVER_CLOSED = "server_closed"  # the server closed it during an exchange
CONNECTION_RESET = "connection_reset"  # reset during an exchange
CONNECTION_LOST = "connection_lost"  # lost while neither idle nor exchanging
RESPONSE_CLOSE = "response_close"  # the response said it is the last (Connection: close)
REQUEST_CLOSE = "request_close"  # the request said it is the last (Connection: close)
UNSOLICITED_RESPONSE = "unsolicited_response"  # bytes arrived with no request out
PROTOCOL_ERROR = "protocol_error"  # the response could not be parsed
RESPONSE_TOO_LARGE = "response_too_large"  # the body passed max_response_body_size
HEAD_TIMEOUT = "head_timeout"
READ_TIMEOUT = "read_timeout"
REQUEST_TIMEOUT = "request_timeout"
WRITE_TIMEOUT = "write_timeout"

# -- why an attempt is replayed ----------------------------------------------------------
# A stale replay goes out at once on a fresh connection; the others back off first.

STALE = "stale_connection"  # a reused connection closed before any response byte
NOT_SENT = "not_sent"  # a new connection closed before the request was fully written
CONNECT = "connect_failed"  # refused, unreachable or timed out: the request never left
TIMEOUT = "timeout"  # an idempotent request timed out
STATUS = "status"  # the response's status is in RetryPolicy.statuses
USER = "retry_if"  # the policy's retry_if said so
