cdef class Request:
    cdef public object body, closes_connection, expect_continue, head, idempotent
    cdef public object method, origin, route, url
