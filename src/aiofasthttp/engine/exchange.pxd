# Compiled, exchange.py's classes are extension types with these fields (see
# setup.py): an Exchange is made once per request, and an extension type is made
# and filled without a Python frame. Python code reads the fields as slots (_slots).
# Nothing deletes a field: one deleted would be NULL under the compiled methods
# (Response, which is public, refuses deletion).

cdef class AttemptSettings:
    cdef public object connect_timeout, continue_timeout, decompress, head_timeout
    cdef public object max_body_size, pool_timeout, read_timeout, write_timeout

cdef class Exchange:
    cdef public object body_done, body_error, body_size, body_waiter, bytes_written
    cdef public object chunks, content, deadline, head, head_at, head_by, head_timeout
    cdef public object idle_before, last_read, max_body_size, method, read_timeout
    cdef public object request_written, response_bytes, reused, sent_at, streaming
    cdef public object timed, unread, url, waiter, withheld_body
