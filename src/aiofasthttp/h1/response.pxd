# Compiled, response.py's Response is an extension type with these fields (see
# setup.py): one is made per request, without a Python frame. Python code reads
# the fields as slots (aiofasthttp._slots).

cdef class Response:
    cdef public object _content, _elapsed, _head, _headers, _held, _history, _stream
    cdef public object method, status, url
