# Compiled, connection.py's Connection is an extension type with these fields (see
# setup.py): its parser-sink and send methods run once or twice per request, and
# compiled they read the connection's and the exchange's fields as a C struct's.
# Python code (the pool) reads them as slots (_slots). Nothing deletes a field.

from aiofasthttp.engine.exchange cimport AttemptSettings, Exchange

cdef class Connection:
    cdef public object close_reason, created_at, expires_at, id, idle_since
    cdef public object keep_alive_max, keep_alive_timeout, last_idle, listener, loop
    cdef public object origin, request_limit, requests_served, retire_at, state
    cdef public object transport, via
    cdef public object _drain_waiter, _last_request, _parser, _paused_writing, _poller
    cdef public object _clock, _new_future, _reading_paused, _tcp_keepalive, _timer, _timer_at
    cdef public object _write_timeout, _write_timer
    cdef public Exchange _ex
