# Compiled, poolcore.py's classes are extension types with these fields (see setup.py
# and the module's docstring): the pool's per-request methods read a connection's
# fields, the pool's own, its stats and its ServerMemory as C structs, times as
# doubles. Python code reads the object fields as slots (_slots). Nothing deletes a
# field.

from aiofasthttp.policy.learning cimport ServerMemory

cdef class PoolStats:
    cdef public Py_ssize_t closed_by_server_idle, created, expired, retries, reused
    cdef public object close_reasons, learned_idle_timeout, learned_max_requests
    cdef public object passed_over, suspected_max_requests

cdef class PooledState:
    cdef public object id, keep_alive_max, keep_alive_timeout, listener, request_limit
    cdef public double created_at, expires_at, idle_since, last_idle, retire_at
    cdef public Py_ssize_t requests_served

cdef class PoolCore:
    cdef public object cap, limits, loop, origin, retry_budget, route, tracer, via
    cdef public ServerMemory memory
    cdef public PoolStats stats
    cdef public object _cap_waiters, _clock, _conns, _idle, _put_idle, _reaper
    cdef public object _suspect_after, _take_idle, _waiters
    cdef public double _max_idle, _reaper_at, _suspect_until
    cdef public Py_ssize_t _dialling, _total
    cdef public bint _closed, _handing_over
