# Compiled, learning.py's ServerMemory is an extension type with these fields (see
# setup.py): the pool's compiled per-request methods (engine/poolcore.py) test its
# records and where no close is expected as C numbers, without a call. Nothing
# deletes a field.

cdef class ServerMemory:
    cdef public object _idle, _idle_timeout, _max_requests, _served
    cdef public double idle_record, no_close_idle, no_close_served, no_close_until
    cdef public double renew_at, _idle_record_at, _served_record_at
    cdef public Py_ssize_t served_record
    cdef public bint learned
