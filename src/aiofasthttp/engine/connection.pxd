# Compiled, connection.py's Connection is an extension type with these fields (see
# setup.py): its parser-sink and send methods run once or twice per request, and
# compiled they read the connection's, the exchange's and the request's fields as a C
# struct's. The
# fields the pool keeps on it are PooledState's (poolcore.pxd). Python code reads the
# object fields as slots (_slots). Nothing deletes a field.

from aiofasthttp.engine.exchange cimport AttemptSettings, Exchange
from aiofasthttp.engine.poolcore cimport PooledState
from aiofasthttp.h1.request cimport Request

cdef class Connection(PooledState):
    cdef public object close_reason, loop, origin, state, transport, via
    cdef public object _drain_waiter, _last_request, _parser, _paused_writing, _poller
    cdef public object _clock, _new_future, _reading_paused, _tcp_keepalive, _timer, _timer_at
    cdef public object _write_timeout, _write_timer
    cdef public Exchange _ex
    cdef public object _body_buffer, _direct, _lent

    cdef _received(self, data)
