# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The compiled HTTP/1.1 response parser: the twin of ``aiofasthttp._pyparser``.

Theory of operation
-------------------
Same interface, same phases and the same behavioural choices as the
pure-Python twin (its docstring lists them); a difference between the two is
a bug. What differs is how the bytes are handled:

- A head is scanned in C over a ``const unsigned char*`` with byte-class
  tables, one line at a time, as the twin does. Errors follow the twin's
  rule (its docstring, "Which error is reported"): the earliest offending
  byte wins, however the input is split. A complete line is first checked
  with the fast whole-line tests; only when one fails does ``_scan_line``
  walk it from the start to name the first faulty byte, or to find none (then
  the line is at fault as a whole, reported at its start). A partial line is
  checked with the same ``_scan_line``, resumed where the previous feed's
  check stopped, so a line dripping in byte by byte is scanned once.
- Header fields are not Python objects while the head is read: each is a
  ``Span`` (offset, length of name and value) into the head's bytes. The
  framing fields (Content-Length, Transfer-Encoding, Connection,
  Proxy-Connection, Keep-Alive) are recognised in C as they go by. The list of
  ``(name, value)`` pairs is built on the first access to ``head.headers``.
- A *section* (a head, or a chunked body's trailers) that arrives in one feed
  is parsed straight from the input bytes, which the head then keeps as its
  raw bytes ("direct" mode). Only when a feed ends inside a section is the
  section so far copied to the parser's buffer; the following feeds append
  their lines to it until the section ends ("buffered" mode). A chunk-size
  line is carried the same way.
- Body bytes go to ``on_body`` as the input object itself when a whole feed is
  body, otherwise as one slice. A body of known length up to ``collect_limit``
  is instead gathered into one ``bytes`` allocated at its full size: fed bytes
  are copied into it, and ``body_buffer()`` lends its unwritten part so a
  transport can read straight into it (``body_written(n)``); ``on_body`` gets it
  once, whole. Until then it is this parser's alone (see ``body_buffer``).
- Input that is not ``bytes`` (a lent receive buffer) is read in place through
  the buffer protocol; whatever must outlive the feed (a head's bytes, a body
  piece) is copied out of it.

Offsets stored in a ``Span`` are relative to the start of the section (the
status line, or the first trailer line), so they stay valid when a section
moves from the input into the buffer.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_FillInfo, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject
from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcmp, memcpy, strlen

from collections import deque

from aiofasthttp._compiled import read_as_slots
from aiofasthttp.errors import (
    ChunkLineTooLong,
    HeadTooLarge,
    IncompleteResponse,
    ProtocolError,
    TooManyHeaders,
)

ctypedef unsigned char uchar

cdef extern from "Python.h":
    ctypedef struct PyBytesObject:
        Py_hash_t ob_shash
    Py_ssize_t _refcount "Py_REFCNT"(PyObject* o)

DEFAULT_MAX_HEAD_SIZE = 65536
DEFAULT_MAX_HEADERS = 128
DEFAULT_MAX_CHUNK_LINE_SIZE = 4096

cdef unsigned long long MAX_LENGTH = (1ULL << 63) - 1
# A head that arrived whole is kept by reference to the input bytes, unless
# the input is this much larger than the head: then the head is copied, so a
# head kept by the caller does not pin a large body buffer.
cdef Py_ssize_t PIN_SLACK = 4096
# A gathered body in this size range is kept after it is handed over, and its memory
# is the next body's when the caller has let it go (the parser's is its only
# reference, so nobody can see it change). A fresh large allocation per response is
# what glibc trims back to the kernel in a burst of frees and faults in again; bodies
# from pymalloc's pools are cheap anyway, and one larger than SPARE_MAX is not held
# for an idle connection.
cdef Py_ssize_t SPARE_MIN = 4096
cdef Py_ssize_t SPARE_MAX = 262144
# What all parsers in the process keep together: SPARE_BUDGET, or SPARE_PER_PARSER for
# each parser alive if that is more. Without a bound, a gateway with a thousand idle
# connections, each of which once read a 200 KiB body, could hold 400 MiB of bodies
# nobody reads. 16 MiB is two 64 KiB bodies for each of 128 connections. Beyond that,
# a connection (a parser) adds 64 KiB: less than its socket's own receive buffer, and
# enough that 1,024 connections fetching 64 KiB bodies mostly reuse them (with 16 MiB
# alone, most of their bodies were new allocations: GET /64k at c=1,024 made 0.48x
# the ceiling, against 0.69-0.74x). A parser over the budget keeps nothing and
# allocates as before.
# (The GIL guards these numbers; the parser is not built for free-threaded Python.)
cdef Py_ssize_t SPARE_BUDGET = 16 * 1024 * 1024
cdef Py_ssize_t SPARE_PER_PARSER = 65536
cdef Py_ssize_t _spare_total = 0  # the bytes of every body kept now
cdef Py_ssize_t _parsers = 0  # ResponseParsers alive


cdef inline Py_ssize_t _spare_budget() noexcept:
    cdef Py_ssize_t grown = _parsers * SPARE_PER_PARSER
    return grown if grown > SPARE_BUDGET else SPARE_BUDGET


def kept_body_bytes():
    """The bytes of the gathered bodies all parsers keep for reuse now."""
    return _spare_total


def _kept_body_budget():
    """What all parsers may keep now (tests)."""
    return _spare_budget()


def _set_spare_budget(Py_ssize_t budget):
    """Set the budget of kept bodies, the floor (tests); return the old one."""
    global SPARE_BUDGET
    old, SPARE_BUDGET = SPARE_BUDGET, budget
    return old


def _set_spare_per_parser(Py_ssize_t per_parser):
    """Set what each parser alive adds to the budget (tests); return the old value."""
    global SPARE_PER_PARSER
    old, SPARE_PER_PARSER = SPARE_PER_PARSER, per_parser
    return old

# -- byte classes ------------------------------------------------------------

cdef enum:
    C_TOKEN = 1    # tchar (RFC 9110 section 5.6.2)
    C_TEXT = 2     # field values and reason phrases: HTAB, SP, VCHAR, obs-text
    C_HEX = 4
    C_DIGIT = 8
    C_WS = 16      # SP, HTAB
    C_QDTEXT = 32  # inside a quoted string, unescaped
    C_QPAIR = 64   # after a backslash in a quoted string

cdef uchar CLASS[256]
cdef uchar LOWER[256]


cdef void _init_tables():
    cdef int c
    token = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for c in range(256):
        CLASS[c] = 0
        LOWER[c] = c + 32 if 65 <= c <= 90 else c
    for c in token:
        CLASS[c] |= C_TOKEN
    for c in b"0123456789abcdefABCDEF":
        CLASS[c] |= C_HEX
    for c in range(256):
        if c == 9 or 0x20 <= c <= 0x7E or c >= 0x80:
            CLASS[c] |= C_TEXT | C_QPAIR
        if 48 <= c <= 57:
            CLASS[c] |= C_DIGIT
        if c == 9 or c == 32:
            CLASS[c] |= C_WS
        if c == 9 or c == 32 or c == 0x21 or 0x23 <= c <= 0x5B or 0x5D <= c <= 0x7E or c >= 0x80:
            CLASS[c] |= C_QDTEXT


_init_tables()


cdef inline bint _all(const uchar* s, Py_ssize_t n, uchar cls) noexcept:
    """Whether every byte of ``s[:n]`` is of class ``cls``."""
    cdef Py_ssize_t i
    for i in range(n):
        if not CLASS[s[i]] & cls:
            return False
    return True


cdef inline bint _all_text(const uchar* s, Py_ssize_t n) noexcept:
    """``_all(s, n, C_TEXT)``, eight bytes at a time while no byte is suspect.

    A word is passed whole when none of its bytes is below 0x20 or equal to
    0x7F (the bit tricks are exact for "any byte" tests); a word with a
    suspect byte (a tab, or a real error) is checked byte by byte.
    """
    cdef uint64_t w = 0
    cdef uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL
    cdef uint64_t del_ = 0x7F7F7F7F7F7F7F7FULL
    while n >= 8:
        memcpy(&w, s, 8)
        if ((w - ones * 0x20) & ~w & highs) or (((w ^ del_) - ones) & ~(w ^ del_) & highs):
            if not _all(s, 8, C_TEXT):
                return False
        s += 8
        n -= 8
    return _all(s, n, C_TEXT)


cdef inline bint _ieq(const uchar* s, Py_ssize_t n, const char* lower, Py_ssize_t m) noexcept:
    """Case-insensitive (ASCII) ``s[:n] == lower[:m]``; ``lower`` is lower case."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if LOWER[s[i]] != <uchar>lower[i]:
            return False
    return True


cdef inline Py_ssize_t _skip_ws(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept:
    while i < n and CLASS[s[i]] & C_WS:
        i += 1
    return i


cdef inline Py_ssize_t _rskip_ws(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """The end of ``s[i:n]`` without trailing SP/HTAB."""
    while n > i and CLASS[s[n - 1]] & C_WS:
        n -= 1
    return n


cdef inline Py_ssize_t _find(const uchar* s, Py_ssize_t n, uchar c) noexcept:
    cdef const uchar* hit = <const uchar*>memchr(s, c, n)
    return -1 if hit == NULL else hit - s


cdef inline bytes _b(const uchar* s, Py_ssize_t n):
    return PyBytes_FromStringAndSize(<const char*>s, n)


cdef inline bint _unheld(PyObject* spare, Py_ssize_t n) noexcept:
    """``spare`` is a kept body of ``n`` bytes whose only reference is the parser's.
    (A pointer, not an object: passing an object would add a reference of its own.)"""
    return (spare != <PyObject*>None and _refcount(spare) == 1
            and PyBytes_GET_SIZE(<bytes>spare) == n)


cdef inline void _uncount(object spare) noexcept:
    """A kept body (or None) is let go: its bytes leave the budget's count."""
    global _spare_total
    if spare is not None:
        _spare_total -= PyBytes_GET_SIZE(<bytes>spare)


cdef inline bytes _piece(bytes data, const uchar* p, Py_ssize_t pos, Py_ssize_t end):
    """``p[pos:end]`` as bytes: ``data`` itself when that is all of it (no copy)."""
    if pos == 0 and data is not None:
        return data
    return _b(p + pos, end - pos)


cdef str _show(const uchar* s, Py_ssize_t n):
    """``repr(s[:n][:40])``, as the twin's error messages show a line."""
    return repr(_b(s, n if n < 40 else 40))


# -- header fields as spans --------------------------------------------------

ctypedef struct Span:
    Py_ssize_t name
    Py_ssize_t name_len
    Py_ssize_t value      # offset; or, when value_len < 0, an index into the folded list
    Py_ssize_t value_len


# -- the left-to-right fault scan (the twin's _scan) ----------------------------

cdef enum Kind:
    K_STATUS
    K_FIELD         # a field line after another: it may be a fold (leading SP or HTAB)
    K_FIRST_FIELD   # the first field line of a head or trailers: no fold
    K_CHUNK_SIZE
    K_CHUNK_END

cdef enum Fault:
    F_NONE
    F_BARE_CR
    F_BARE_LF
    F_STATUS
    F_REASON
    F_NAME
    F_VALUE
    F_CHUNK_SIZE
    F_CHUNK

# Field-line states: at the first byte, in the name, in the value.
cdef enum:
    FS_START
    FS_NAME
    FS_VALUE

# Chunk-size line states: size[ BWS ; BWS name[ BWS = BWS (token | "quoted")]]...
cdef enum:
    CS_START       # before the first hex digit
    CS_SIZE        # in the size (may end here)
    CS_BWS         # whitespace after the size or a value, before ";"
    CS_SEMI        # after ";", before the name
    CS_NAME        # in a name (may end here)
    CS_AFTER_NAME  # whitespace after a name, before "=" or ";"
    CS_EQ          # after "=", before the value
    CS_TOKEN       # in a token value (may end here)
    CS_QUOTED      # in a quoted value
    CS_QPAIR       # after a backslash in a quoted value
    CS_QEND        # after the closing quote (may end here)

ctypedef struct Scan:
    Py_ssize_t at  # line[:at] holds no faulty byte: the scan resumes here
    int state      # the grammar state at ``at``


cdef inline bint _status_byte_ok(Py_ssize_t i, uchar c) noexcept:
    """Whether ``c`` may be byte ``i`` of ``HTTP/1.[01] DDD[ reason]``."""
    cdef const char* http = b"HTTP/1."
    if i >= 13:
        return CLASS[c] & C_TEXT
    if i < 7:
        return c == <uchar>http[i]
    if i == 7:
        return c == b"0" or c == b"1"
    if i == 8 or i == 12:
        return c == b" "
    if i == 9:
        return b"1" <= c <= b"9"
    return CLASS[c] & C_DIGIT


cdef inline int _chunk_step(int state, uchar c) noexcept:
    """The chunk-size line state after byte ``c``, or -1 when ``c`` breaks the grammar."""
    cdef uchar cls = CLASS[c]
    if state == CS_QUOTED:
        if c == b'"':
            return CS_QEND
        if c == b"\\":
            return CS_QPAIR
        return CS_QUOTED if cls & C_QDTEXT else -1
    if state == CS_QPAIR:
        return CS_QUOTED if cls & C_QPAIR else -1
    if state == CS_START:
        return CS_SIZE if cls & C_HEX else -1
    if state == CS_EQ:
        if cls & C_TOKEN:
            return CS_TOKEN
        if c == b'"':
            return CS_QUOTED
        return CS_EQ if cls & C_WS else -1
    if state == CS_SEMI:
        if cls & C_TOKEN:
            return CS_NAME
        return CS_SEMI if cls & C_WS else -1
    # CS_SIZE, CS_BWS, CS_NAME, CS_AFTER_NAME, CS_TOKEN, CS_QEND
    if c == b";":
        return CS_SEMI
    if state == CS_SIZE and cls & C_HEX:
        return CS_SIZE
    if state == CS_NAME and cls & C_TOKEN:
        return CS_NAME
    if state == CS_TOKEN and cls & C_TOKEN:
        return CS_TOKEN
    if state == CS_NAME or state == CS_AFTER_NAME:
        if c == b"=":
            return CS_EQ
        return CS_AFTER_NAME if cls & C_WS else -1
    return CS_BWS if cls & C_WS else -1


cdef Fault _scan_line(Kind kind, const uchar* s, Py_ssize_t end, Scan* scan) noexcept:
    """Scan ``s[scan.at:end]`` for the first byte that breaks the line's grammar.

    On a fault ``scan.at`` is its index. Without one, ``s[:scan.at]`` is clean
    and ``scan.at`` is where to resume: ``end``, or a CR at ``end - 1`` that the
    next byte will decide, or the CR of the line's CRLF.
    """
    cdef Py_ssize_t i = scan.at
    cdef int state = scan.state, after
    cdef uchar c
    cdef Fault fault = F_NONE
    while i < end:
        c = s[i]
        if c == b"\r":
            if i + 1 < end and s[i + 1] != b"\n":
                fault = F_BARE_CR
            break
        if c == b"\n":
            fault = F_BARE_LF
            break
        if kind == K_FIELD or kind == K_FIRST_FIELD:
            if state == FS_VALUE:
                if not CLASS[c] & C_TEXT:
                    fault = F_VALUE
                    break
            elif CLASS[c] & C_TOKEN:
                state = FS_NAME
            elif c == b":" or (state == FS_START and kind == K_FIELD and CLASS[c] & C_WS):
                state = FS_VALUE  # the colon, or the start of a fold
            else:
                fault = F_NAME
                break
        elif kind == K_STATUS:
            if not _status_byte_ok(i, c):
                fault = F_STATUS if i < 13 else F_REASON
                break
        elif kind == K_CHUNK_SIZE:
            after = _chunk_step(state, c)
            if after < 0:
                fault = F_CHUNK_SIZE
                break
            state = after
        else:  # K_CHUNK_END: only CRLF may follow chunk data
            fault = F_CHUNK
            break
        i += 1
    scan.at = i
    scan.state = state
    return fault


# Recently made names and (name, value) pairs, by a hash of their content. A
# server sends the same names, and many of the same fields, in every
# response; reusing an immutable bytes object or tuple is much cheaper than
# making one. Each table is bounded (CACHE_SLOTS entries of at most
# CACHE_MAX_LEN bytes a part); a collision just replaces the slot. The GIL
# guards the tables.
cdef enum:
    CACHE_SLOTS = 256  # the top 8 bits of a hash
    CACHE_MAX_LEN = 64
cdef PyObject* NAMES[CACHE_SLOTS]  # bytes
cdef PyObject* PAIRS[CACHE_SLOTS]  # (bytes, bytes)


cdef inline uint64_t _mix(const uchar* s, Py_ssize_t n) noexcept:
    """A hash of ``s[:n]``'s length, first eight and last eight bytes."""
    cdef uint64_t head = 0, tail = 0
    if n >= 8:
        memcpy(&head, s, 8)
        memcpy(&tail, s + n - 8, 8)
    else:
        memcpy(&head, s, n)
    return (head * 0x9E3779B97F4A7C15ULL) ^ (tail * 0xC2B2AE3D27D4EB4FULL) ^ <uint64_t>n


cdef inline bint _same(object b, const uchar* s, Py_ssize_t n) noexcept:
    return PyBytes_GET_SIZE(b) == n and memcmp(PyBytes_AS_STRING(b), s, n) == 0


cdef inline void _store(PyObject** slot, object obj) noexcept:
    Py_INCREF(obj)
    Py_XDECREF(slot[0])
    slot[0] = <PyObject*>obj


cdef object _name(const uchar* s, Py_ssize_t n):
    """``bytes(s[:n])``, the cached object when an equal one was made lately."""
    cdef PyObject** slot
    if n > CACHE_MAX_LEN:
        return _b(s, n)
    slot = &NAMES[_mix(s, n) >> 56]
    if slot[0] != NULL and _same(<object>slot[0], s, n):
        return <object>slot[0]
    name = _b(s, n)
    _store(slot, name)
    return name


cdef tuple _pair(const uchar* name, Py_ssize_t name_len, const uchar* value,
                 Py_ssize_t value_len):
    """``(bytes(name), bytes(value))``, the cached tuple when an equal one was made lately."""
    cdef PyObject** slot
    cdef tuple pair
    if value_len > CACHE_MAX_LEN or name_len > CACHE_MAX_LEN:
        return (_name(name, name_len), _b(value, value_len))
    slot = &PAIRS[((_mix(name, name_len) * 31) ^ _mix(value, value_len)) >> 56]
    if slot[0] != NULL:
        pair = <tuple>slot[0]
        if _same(pair[0], name, name_len) and _same(pair[1], value, value_len):
            return pair
    pair = (_name(name, name_len), _b(value, value_len))
    _store(slot, pair)
    return pair


cdef list _pairs(const uchar* base, const Span* spans, Py_ssize_t n, list folded):
    """The ``(name, value)`` list the spans describe."""
    cdef list out = PyList_New(n)
    cdef const Span* s
    cdef Py_ssize_t i
    for i in range(n):
        s = &spans[i]
        if s.value_len < 0:
            pair = (_name(base + s.name, s.name_len), folded[s.value])
        else:
            pair = _pair(base + s.name, s.name_len, base + s.value, s.value_len)
        Py_INCREF(pair)
        PyList_SET_ITEM(out, i, pair)
    return out


HTTP_10 = (1, 0)
HTTP_11 = (1, 1)
cdef bytes EMPTY = b""
cdef bytes OK = b"OK"
cdef bytes GET = b"GET"


cdef class ResponseHead:
    """One response head: status line, header pairs and the framing decided from them.

    ``headers`` is a list of ``(name, value)`` byte pairs in wire order, names
    as sent, values without surrounding whitespace; it is built on first
    access. ``trailers`` is ``None`` until a chunked body's trailer section
    was read (then a list, maybe empty).
    """

    # All objects (an int, bools), not C ints: the engine's Python code reads them
    # on every response, and as_slots (below the class) makes object fields slots.
    cdef public object status
    cdef public object reason
    cdef public object version
    cdef public object keep_alive
    cdef public object chunked
    cdef public object content_length
    cdef public object keep_alive_timeout
    cdef public object keep_alive_max
    cdef public object trailers
    cdef public object upgrade
    cdef public object has_content_encoding
    cdef public object has_set_cookie

    cdef object _headers    # the built list, once built (or assigned)
    cdef object _raw        # bytes holding the head, until the list is built
    cdef Py_ssize_t _base   # where the head starts in _raw
    cdef Span* _spans
    cdef Py_ssize_t _nspans
    cdef list _folded       # values changed by obsolete line folding, or None

    def __cinit__(self):
        self.status = 0
        self.reason = EMPTY
        self.version = HTTP_11
        self.keep_alive = True
        self.chunked = False
        self.upgrade = False
        self.has_content_encoding = False
        self.has_set_cookie = False

    def __delattr__(self, name):
        # A slot's field deleted would be NULL where compiled code expects an object.
        raise AttributeError(f"ResponseHead's {name!r} cannot be deleted")

    def __dealloc__(self):
        PyMem_Free(self._spans)

    @property
    def headers(self):
        if self._headers is None:
            self._headers = self._build_headers()
        return self._headers

    @headers.setter
    def headers(self, value):
        self._headers = value

    cdef list _build_headers(self):
        cdef list out
        if self._raw is None:
            return []
        out = _pairs(<const uchar*>PyBytes_AS_STRING(self._raw) + self._base,
                     self._spans, self._nspans, self._folded)
        # The raw bytes and spans are not needed any more: let them go.
        PyMem_Free(self._spans)
        self._spans = NULL
        self._nspans = 0
        self._raw = None
        self._folded = None
        return out

    def __repr__(self):
        return (
            f"<ResponseHead HTTP/{self.version[0]}.{self.version[1]} {self.status} "
            f"{self.reason.decode('latin-1')!r} headers={len(self.headers)}>"
        )


read_as_slots(ResponseHead, [
    "status", "reason", "version", "keep_alive", "chunked", "content_length",
    "keep_alive_timeout", "keep_alive_max", "trailers", "upgrade",
    "has_content_encoding", "has_set_cookie",
])


# -- the parser --------------------------------------------------------------

cdef class _BodyWindow:
    """The unwritten part of a body being gathered, as a writable buffer. A memoryview
    of it holds it, and it holds the body: the memory outlives any view of it."""

    cdef object body  # bytes, filled in place until the parser hands it over
    cdef Py_ssize_t start
    cdef Py_ssize_t length

    def __getbuffer__(self, Py_buffer* view, int flags):
        PyBuffer_FillInfo(view, self, PyBytes_AS_STRING(self.body) + self.start,
                          self.length, 0, flags)

    def __releasebuffer__(self, Py_buffer* view):
        pass


cdef enum State:
    HEAD
    BODY_LENGTH
    CHUNK_SIZE
    CHUNK_DATA
    CHUNK_DATA_END
    TRAILERS
    BODY_UNTIL_CLOSE
    UPGRADED
    CLOSED
    FAILED

# What one complete line of a section did.
cdef enum LineResult:
    LINE_MORE      # a status or field line: the section goes on
    LINE_SKIPPED   # an empty line before the status line
    LINE_END       # the empty line that ends the section


# Not cleared by the collector: a parser sits in a cycle with its sink (it holds the
# sink's bound methods), and __dealloc__ must still see its kept bodies to give their
# bytes back to the budget's count. The sink's side of the cycle is cleared instead.
@cython.no_gc_clear
cdef class ResponseParser:
    """Incremental HTTP/1.1 response parser (compiled).

    ``sink`` receives ``on_head(head)``, ``on_body(bytes)`` and
    ``on_complete()`` for each response, and ``on_informational(head)`` for
    1xx interim responses if it has that method. ``expect(method)`` queues the
    method of each request sent, so that HEAD and CONNECT are framed right.
    A Content-Length body of at most ``collect_limit`` bytes comes to
    ``on_body`` once, whole (see ``body_buffer``); then, if the sink has
    ``on_response(head, body)``, a response whose body is all in one feed (or that
    has none) comes to it alone, instead of on_head, on_body and on_complete.
    """

    cdef object _on_head
    cdef object _on_body
    cdef object _on_complete
    cdef object _on_informational
    cdef object _on_response
    cdef public Py_ssize_t max_head_size
    cdef public Py_ssize_t max_headers
    cdef public Py_ssize_t max_chunk_line_size
    cdef public object upgrade_offset
    cdef public Py_ssize_t messages_completed
    cdef public Py_ssize_t collect_limit

    cdef object _methods
    cdef State _state
    cdef Py_ssize_t _offset       # stream offset of the first byte of the current feed

    # Bytes carried between feeds: a section so far, or a chunk-size line.
    cdef uchar* _buf
    cdef Py_ssize_t _buf_len
    cdef Py_ssize_t _buf_cap
    cdef Py_ssize_t _line_start   # where the unfinished line starts in _buf
    cdef Py_ssize_t _line_offset  # stream offset of the current line
    cdef Py_ssize_t _head_size    # bytes of complete lines in this head (or trailers)
    cdef Scan _progress           # how far the unfinished line was found clean

    # The head (or trailers) being read.
    cdef bint _head_started       # the status line was read
    cdef bint _after_interim      # a 1xx head came; the final head is still owed
    cdef int _status
    cdef int _minor
    cdef Py_ssize_t _reason_len   # the reason starts at offset 13 of the section
    cdef Span* _spans
    cdef Py_ssize_t _nspans
    cdef Py_ssize_t _spans_cap
    cdef list _folded

    # What its framing fields said.
    cdef bint _cl_seen
    cdef unsigned long long _cl
    cdef bint _te_seen
    cdef Py_ssize_t _te_count
    cdef bint _te_last_chunked
    cdef bint _conn_close
    cdef bint _conn_keep_alive
    cdef bint _content_encoding  # a Content-Encoding field was seen
    cdef bint _set_cookie        # a Set-Cookie field was seen
    cdef long _ka_timeout         # -1: not given
    cdef long _ka_max

    # The body.
    cdef unsigned long long _remaining
    cdef bint _keep_alive_after
    cdef object _body             # the bytes a body of known length is gathered in, or None
    cdef Py_ssize_t _body_filled  # how much of _body holds the body so far
    cdef object _spare            # the last body handed over, to reuse (see SPARE_MIN)
    cdef object _spare_older      # the one before it
    cdef ResponseHead _current
    cdef bytearray _upgrade_data

    def __cinit__(self):
        global _parsers
        _parsers += 1

    def __init__(
        self,
        sink,
        *,
        Py_ssize_t max_head_size=DEFAULT_MAX_HEAD_SIZE,
        Py_ssize_t max_headers=DEFAULT_MAX_HEADERS,
        Py_ssize_t max_chunk_line_size=DEFAULT_MAX_CHUNK_LINE_SIZE,
        Py_ssize_t collect_limit=0,
    ):
        self._on_head = sink.on_head
        self._on_body = sink.on_body
        self._on_complete = sink.on_complete
        self._on_informational = getattr(sink, "on_informational", None)
        self._on_response = getattr(sink, "on_response", None)
        self.max_head_size = max_head_size
        self.max_headers = max_headers
        self.max_chunk_line_size = max_chunk_line_size
        self._methods = None  # a deque once a method is expected (most never are)
        self._state = HEAD
        self._upgrade_data = None  # a bytearray once a connection is upgraded
        self.upgrade_offset = None
        self.messages_completed = 0
        self.collect_limit = collect_limit
        self._body = None
        self._spare = None
        self._spare_older = None
        self._reset_head()

    def __dealloc__(self):
        global _parsers
        _parsers -= 1
        PyMem_Free(self._buf)
        PyMem_Free(self._spans)
        self._drop_spares()

    # -- public -------------------------------------------------------------

    def expect(self, method):
        """Queue the method of the next request sent on this connection."""
        if isinstance(method, str):
            method = method.encode("ascii")
        if self._methods is None:
            self._methods = deque()
        self._methods.append(method.upper())

    @property
    def in_message(self):
        """True while a response has begun and is not complete."""
        if self._state == HEAD:
            return self._buf_len > self._line_start or self._head_started or self._after_interim
        return self._state not in (CLOSED, UPGRADED, FAILED)

    @property
    def upgraded(self):
        """True after a 101 response or a 2xx to CONNECT: the rest is not HTTP."""
        return self._state == UPGRADED

    def upgraded_data(self):
        """Bytes received after the head that switched protocols."""
        return b"" if self._upgrade_data is None else bytes(self._upgrade_data)

    def feed(self, data):
        """Parse the next bytes of the response stream (``bytes`` or any buffer)."""
        cdef Py_buffer view
        if self._state == FAILED:
            raise ProtocolError(
                "the parser failed earlier and takes no more input",
                reason="parser_failed",
                offset=self._offset,
            )
        if type(data) is bytes:
            try:
                self._feed(<bytes>data, <const uchar*>PyBytes_AS_STRING(data),
                           PyBytes_GET_SIZE(data))
            except BaseException:
                self._fail()
                raise
            self._offset += PyBytes_GET_SIZE(data)
            return
        # A lent buffer is read where it is; nothing keeps a reference to it.
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._feed(None, <const uchar*>view.buf, view.len)
            self._offset += view.len
        except BaseException:
            self._fail()
            raise
        finally:
            PyBuffer_Release(&view)

    def body_buffer(self):
        """A writable view of the rest of the body being gathered, or None.

        Write the body's next bytes into it, then call ``body_written(n)`` before
        anything else is asked of this parser: the view is meant for that one read.
        (It keeps the body's memory alive, so a view kept too long cannot write into
        freed memory; but what it writes after ``body_written`` lands in a body
        already handed over.)
        """
        if self._body is None:
            return None
        cdef _BodyWindow window = _BodyWindow.__new__(_BodyWindow)
        window.body = self._body
        window.start = self._body_filled
        window.length = <Py_ssize_t>self._remaining
        return memoryview(window)

    def body_written(self, Py_ssize_t n):
        """``n`` bytes of the body were written into ``body_buffer()``'s view."""
        if self._body is None or n < 0 or <unsigned long long>n > self._remaining:
            raise ValueError(
                f"body_written({n}): the body being gathered has "
                f"{self._remaining if self._body is not None else 0} bytes to come"
            )
        self._offset += n
        self._body_filled += n
        self._remaining -= n
        if self._remaining == 0:
            try:
                self._deliver_body()
            except BaseException:
                self._fail()
                raise

    cdef void _fail(self) noexcept:
        self._state = FAILED
        self._body = None
        self._drop_spares()  # no body will follow

    def feed_eof(self):
        """The peer closed the connection: end a close-delimited body, or fail."""
        self._drop_spares()  # no body will follow
        cdef State state = self._state
        cdef bint head_started = self._buf_len > self._line_start or self._head_started
        if state == BODY_UNTIL_CLOSE:
            self._state = CLOSED
            self._complete()
            return
        if state == CLOSED or state == UPGRADED or state == FAILED:
            return
        if state == HEAD and not head_started and not self._after_interim:
            self._state = CLOSED
            return
        self._fail()
        if state == HEAD:
            where = "in the response head" if head_started else "before the final response"
        elif state == BODY_LENGTH:
            where = f"with {self._remaining} bytes of the Content-Length body unread"
        elif state == TRAILERS:
            where = "in the chunked body's trailers"
        else:
            where = "inside the chunked body"
        raise IncompleteResponse(f"the connection closed {where}", offset=self._offset)

    # -- the phases ---------------------------------------------------------

    cdef int _feed(self, bytes data, const uchar* p, Py_ssize_t end) except -1:
        """Parse ``p[:end]``: the bytes of ``data``, or of a lent buffer (``data`` None)."""
        cdef Py_ssize_t pos = 0
        cdef State state
        while pos < end:
            state = self._state
            if state == HEAD or state == TRAILERS:
                if self._buf_len:
                    pos = self._lines_buffered(p, pos, end)
                else:
                    pos = self._lines_direct(data, p, pos, end)
            elif state == BODY_LENGTH:
                pos = self._body_length(data, p, pos, end)
            elif state == CHUNK_DATA:
                pos = self._chunk_data(data, p, pos, end)
            elif state == CHUNK_SIZE or state == CHUNK_DATA_END:
                pos = self._chunk_line(p, pos, end)
            elif state == BODY_UNTIL_CLOSE:
                self._on_body(_piece(data, p, pos, end))
                return 0
            elif state == UPGRADED:
                if self._upgrade_data is None:
                    self._upgrade_data = bytearray()
                self._upgrade_data += _b(p + pos, end - pos)
                return 0
            else:  # CLOSED
                raise ProtocolError(
                    "data after a response that closed the connection",
                    reason="data_after_close",
                    offset=self._offset + pos,
                )
        return 0

    # -- sections: the head and the trailers, line by line --------------------

    cdef Py_ssize_t _lines_direct(self, bytes data, const uchar* p, Py_ssize_t pos,
                                  Py_ssize_t end) except -1:
        """Lines read straight from the input; the section starts at ``start``."""
        cdef Py_ssize_t start = pos
        cdef Py_ssize_t lf
        cdef int r
        while pos < end:
            lf = _find(p + pos, end - pos, b"\n")
            if lf < 0:
                break
            self._line_offset = self._offset + pos
            self._check_line_end(p + pos, lf, self.max_head_size - self._head_size)
            self._head_size += lf + 1
            r = self._section_line(p + start, pos - start, lf - 1)
            pos += lf + 1
            if r == LINE_SKIPPED:
                start = pos  # the head starts at its status line
            elif r == LINE_END:
                return self._end_section_direct(data, p, start, pos, end)
        self._carry_section(p, start, pos, end)
        return end

    cdef int _carry_section(self, const uchar* p, Py_ssize_t start, Py_ssize_t pos,
                            Py_ssize_t end) except -1:
        """The feed ended inside a section: keep ``p[start:end]``; ``p[pos:end]`` is
        an unfinished line."""
        cdef Py_ssize_t partial = end - pos
        if partial:
            self._line_offset = self._offset + pos
            self._progress = Scan(0, 0)
            self._check_partial(p + pos, partial, self.max_head_size - self._head_size)
        self._buf_len = 0
        self._append(p + start, end - start)
        self._line_start = pos - start
        return 0

    cdef Py_ssize_t _lines_buffered(self, const uchar* p, Py_ssize_t pos,
                                    Py_ssize_t end) except -1:
        """Lines appended to the section carried over from earlier feeds."""
        cdef Py_ssize_t carried, lf, n, limit
        cdef int r
        while pos < end:
            carried = self._buf_len - self._line_start
            if not carried:
                self._line_offset = self._offset + pos
                self._progress = Scan(0, 0)
            limit = self.max_head_size - self._head_size
            lf = _find(p + pos, end - pos, b"\n")
            if lf < 0:
                self._append_capped(p + pos, end - pos, carried, limit)
                self._check_partial(self._buf + self._line_start, self._buf_len - self._line_start,
                                    limit)
                return end
            n = carried + lf  # the line, with its CR
            self._append_capped(p + pos, lf + 1, carried, limit)
            self._check_line_end(self._buf + self._line_start, n, limit)
            self._head_size += n + 1
            pos += lf + 1
            r = self._section_line(self._buf, self._line_start, n - 1)
            self._line_start = self._buf_len
            if r == LINE_SKIPPED:
                self._buf_len = self._line_start = 0
                return pos
            if r == LINE_END:
                return self._end_section_buffered(pos, p + pos, end - pos)
        return pos

    cdef int _check_line_end(self, const uchar* s, Py_ssize_t n, Py_ssize_t limit) except -1:
        """The line ``s[:n]`` (CR included) ended at the LF ``s[n]``: limit, then CRLF.

        Past the limit only ``s[:limit + 1]`` need be there.
        """
        if n + 1 > limit:
            self._first_fault(s, n + 1, limit)
            self._line_over_limit()
        if n == 0 or s[n - 1] != b"\r":
            self._first_fault(s, n + 1, n + 1)
            self._raise_fault(F_BARE_LF, s, n)  # not reached: the scan finds the LF
        return 0

    cdef Kind _kind(self) noexcept:
        """The kind of line the parser reads now (for _scan_line)."""
        if self._state == HEAD and not self._head_started:
            return K_STATUS
        if self._state == HEAD or self._state == TRAILERS:
            return K_FIELD if self._nspans else K_FIRST_FIELD
        return K_CHUNK_SIZE if self._state == CHUNK_SIZE else K_CHUNK_END

    cdef int _check_partial(self, const uchar* s, Py_ssize_t n, Py_ssize_t limit) except -1:
        """Fail early on the unfinished line ``s[:n]``, before its LF arrives.

        The scan resumes where the previous feed's stopped (``_progress``).
        Past ``limit`` the line fails with the limit's error, unless a byte
        before the limit was at fault; ``s`` may stop at ``limit + 1`` bytes.
        """
        cdef Fault fault = _scan_line(self._kind(), s, n if n <= limit else limit + 1,
                                      &self._progress)
        if fault != F_NONE and self._progress.at < limit:
            self._raise_fault(fault, s, self._progress.at)
        if n > limit:
            self._line_over_limit()
        return 0

    cdef int _first_fault(self, const uchar* s, Py_ssize_t end, Py_ssize_t before) except -1:
        """Raise the first faulty byte of the line ``s[:end]`` (its end included), if before
        ``before``.

        Called only when a fast whole-line check failed; when it returns, no
        byte is at fault and the caller raises the line's own fault.
        """
        cdef Scan scan = Scan(0, 0)
        cdef Fault fault = _scan_line(self._kind(), s, end if end <= before else before + 1,
                                      &scan)
        if fault != F_NONE and scan.at < before:
            self._raise_fault(fault, s, scan.at)
        return 0

    cdef int _raise_fault(self, Fault fault, const uchar* s, Py_ssize_t at) except -1:
        """Raise the error for the faulty byte ``s[at]`` of the current line (the twin's
        ``_fault``)."""
        cdef str byte = repr(_b(s + at, 1))
        if fault == F_BARE_CR:
            reason, message = "bare_cr", "bare CR inside a line; CRLF is required"
        elif fault == F_BARE_LF:
            reason, message = "bare_lf", "line ends with a bare LF; CRLF is required"
        elif fault == F_STATUS:
            reason, message = "invalid_status_line", f"invalid status line {_show(s, at + 1)}"
        elif fault == F_REASON:
            reason, message = "invalid_reason", f"control character {byte} in the reason phrase"
        elif fault == F_NAME:
            reason = "invalid_header_name"
            if at == 0 and CLASS[s[0]] & C_WS:
                message = "whitespace at the start of the first field line: nothing to fold into"
            else:
                message = f"invalid character {byte} in a header name"
        elif fault == F_VALUE:
            reason = "invalid_header_value"
            message = f"invalid character {byte} in a header value"
        elif fault == F_CHUNK_SIZE:
            reason, message = "invalid_chunk_size", f"invalid chunk-size line {_show(s, at + 1)}"
        else:
            reason, message = "invalid_chunk", "chunk data not followed by CRLF"
        raise ProtocolError(message, reason=reason, offset=self._line_offset + at)

    cdef int _line_over_limit(self) except -1:
        if self._state == CHUNK_SIZE or self._state == CHUNK_DATA_END:
            raise ChunkLineTooLong(
                f"chunk-size line longer than {self.max_chunk_line_size} bytes",
                offset=self._line_offset,
            )
        raise HeadTooLarge(
            f"response head larger than {self.max_head_size} bytes",
            offset=self._line_offset,
        )

    cdef int _section_line(self, const uchar* base, Py_ssize_t at,
                           Py_ssize_t n) except -1:
        """One complete line ``base[at:at + n]`` (CRLF removed) of a head or trailers."""
        if self._state == TRAILERS:
            if not n:
                return LINE_END
        elif not self._head_started:
            if not n:
                return LINE_SKIPPED  # empty lines before a status line, as llhttp
            self._status_line(base + at, n)
            return LINE_MORE
        elif not n:
            return LINE_END
        self._field_line(base, at, n)
        return LINE_MORE

    cdef int _status_line(self, const uchar* s, Py_ssize_t n) except -1:
        """``HTTP/1.x NNN[ reason]``; it always starts its section. ``s[n:n + 2]`` is CRLF."""
        if not (
            n >= 12
            and memcmp(s, b"HTTP/1.", 7) == 0
            and (s[7] == b"0" or s[7] == b"1")
            and s[8] == b" "
            and b"1" <= s[9] <= b"9"
            and CLASS[s[10]] & C_DIGIT
            and CLASS[s[11]] & C_DIGIT
            and (n == 12 or s[12] == b" ")
        ):
            self._first_fault(s, n + 2, n + 2)
            raise ProtocolError(  # it ends too early
                f"invalid status line {_show(s, n)}",
                reason="invalid_status_line",
                offset=self._line_offset,
            )
        if n > 13 and not _all_text(s + 13, n - 13):
            self._first_fault(s, n + 2, n + 2)
            self._raise_fault(F_REASON, s, 13)  # not reached
        self._status = (s[9] - 48) * 100 + (s[10] - 48) * 10 + (s[11] - 48)
        self._minor = s[7] - 48
        self._reason_len = n - 13 if n > 13 else 0
        self._head_started = True
        return 0

    cdef int _field_line(self, const uchar* base, Py_ssize_t at, Py_ssize_t n) except -1:
        """``name: value``, or a continuation (obsolete folding) of the previous one.

        ``base[at + n:at + n + 2]`` is the line's CRLF.
        """
        cdef const uchar* s = base + at
        cdef Py_ssize_t colon = 0, start, stop
        if CLASS[s[0]] & C_WS:
            return self._fold(base, at, n)
        while colon < n and CLASS[s[colon]] & C_TOKEN:
            colon += 1
        if colon == 0 or colon == n or s[colon] != b":":
            self._first_fault(s, n + 2, n + 2)
            self._bad_name(s, n)  # no colon, or no name
        if not _all_text(s + colon + 1, n - colon - 1):
            self._first_fault(s, n + 2, n + 2)
            self._raise_fault(F_VALUE, s, colon + 1)  # not reached
        if self._nspans >= self.max_headers:
            raise TooManyHeaders(
                f"more than {self.max_headers} header fields", offset=self._line_offset
            )
        start = _skip_ws(s, colon + 1, n)
        stop = _rskip_ws(s, start, n)
        self._add_span(at, colon, at + start, stop - start)
        if self._state == HEAD:
            self._note_framing(s, colon, s + start, stop - start)
        return 0

    cdef int _bad_name(self, const uchar* s, Py_ssize_t n) except -1:
        cdef Py_ssize_t colon = _find(s, n, b":")
        raise ProtocolError(
            f"invalid header name {_show(s, colon if colon > 0 else n)}",
            reason="invalid_header_name",
            offset=self._line_offset,
        )

    cdef int _add_span(self, Py_ssize_t name, Py_ssize_t name_len, Py_ssize_t value,
                       Py_ssize_t value_len) except -1:
        cdef Span* grown
        cdef Py_ssize_t cap
        if self._nspans == self._spans_cap:
            cap = self._spans_cap * 2 if self._spans_cap else 16
            grown = <Span*>PyMem_Realloc(self._spans, cap * sizeof(Span))
            if grown == NULL:
                raise MemoryError()
            self._spans = grown
            self._spans_cap = cap
        self._spans[self._nspans] = Span(name, name_len, value, value_len)
        self._nspans += 1
        return 0

    cdef int _fold(self, const uchar* base, Py_ssize_t at, Py_ssize_t n) except -1:
        """Obsolete line folding: the line's text joins the previous value after a space."""
        cdef const uchar* s = base + at
        cdef Span* last
        cdef const uchar* name
        cdef Py_ssize_t start, stop
        if not _all(s, n, C_TEXT):
            self._first_fault(s, n + 2, n + 2)
            self._raise_fault(F_VALUE, s, 0)  # not reached
        if not self._nspans:  # the whitespace itself is the faulty byte
            self._raise_fault(F_NAME, s, 0)
        last = &self._spans[self._nspans - 1]
        name = base + last.name
        if _is_name(name, last.name_len, b"content-length") or _is_name(
            name, last.name_len, b"transfer-encoding"
        ):
            raise ProtocolError(
                f"obsolete line folding in {_b(name, last.name_len).decode('latin-1')}",
                reason="folded_framing_header",
                offset=self._line_offset,
            )
        start = _skip_ws(s, 0, n)
        stop = _rskip_ws(s, start, n)
        self._join_folded(base, last, _b(s + start, stop - start))
        if self._state == HEAD:  # only Connection-like fields get here: CL and TE failed
            self._note_framing(name, last.name_len, s + start, stop - start)
        return 0

    cdef int _join_folded(self, const uchar* base, Span* last, bytes more) except -1:
        """Replace the span's value by ``value + b" " + more`` (kept in ``_folded``)."""
        if self._folded is None:
            self._folded = []
        if last.value_len >= 0:
            value = _b(base + last.value, last.value_len)
            self._folded.append(None)
            last.value = len(self._folded) - 1
            last.value_len = -1
        else:
            value = self._folded[last.value]
        self._folded[last.value] = value + b" " + more if value and more else value + more
        return 0

    # -- framing fields -------------------------------------------------------

    cdef int _note_framing(self, const uchar* name, Py_ssize_t name_len, const uchar* v,
                           Py_ssize_t n) except -1:
        """Record what a framing field says; other fields are ignored."""
        cdef uchar first = LOWER[name[0]]
        if first == b"c":
            if _is_name(name, name_len, b"content-length"):
                return self._content_length(v, n)
            if _is_name(name, name_len, b"connection"):
                self._connection(v, n)
            elif _is_name(name, name_len, b"content-encoding"):
                # Not framing, but reported on the head so that a client can skip
                # decoding without building the header list.
                self._content_encoding = True
        elif first == b"t":
            if _is_name(name, name_len, b"transfer-encoding"):
                return self._transfer_encoding(v, n)
        elif first == b"s":
            if _is_name(name, name_len, b"set-cookie"):
                # Not framing either: a client keeps cookies without building the
                # header list of the (most) responses that set none.
                self._set_cookie = True
        elif first == b"p":
            if _is_name(name, name_len, b"proxy-connection"):
                self._connection(v, n)
        elif first == b"k":
            if _is_name(name, name_len, b"keep-alive"):
                self._keep_alive_hint(v, n)
        return 0

    cdef int _content_length(self, const uchar* v, Py_ssize_t n) except -1:
        """Digits only, below 2**63; a comma list is accepted if all values agree."""
        cdef Py_ssize_t i = 0, j, a, b
        cdef unsigned long long length
        while True:
            j = i
            while j < n and v[j] != b",":
                j += 1
            a = _skip_ws(v, i, j)
            b = _rskip_ws(v, a, j)
            if a == b or b - a > 19 or not _all(v + a, b - a, C_DIGIT):
                raise ProtocolError(
                    f"invalid Content-Length {_show(v, n)}",
                    reason="invalid_content_length",
                    offset=self._line_offset,
                )
            length = 0
            while a < b:
                length = length * 10 + (v[a] - 48)
                a += 1
            if length > MAX_LENGTH:
                raise ProtocolError(
                    f"Content-Length {_show(v, n)} is too large",
                    reason="invalid_content_length",
                    offset=self._line_offset,
                )
            if self._cl_seen and length != self._cl:
                raise ProtocolError(
                    "Content-Length fields with different values",
                    reason="conflicting_content_length",
                    offset=self._line_offset,
                )
            self._cl_seen = True
            self._cl = length
            if j >= n:
                return 0
            i = j + 1

    cdef int _transfer_encoding(self, const uchar* v, Py_ssize_t n) except -1:
        """Collect the codings; ``chunked`` may only be the last one."""
        cdef Py_ssize_t i = 0, j, a, b
        self._te_seen = True
        while True:
            j = i
            while j < n and v[j] != b",":
                j += 1
            b = i
            while b < j and v[b] != b";":  # parameters are ignored
                b += 1
            a = _skip_ws(v, i, b)
            b = _rskip_ws(v, a, b)
            if a < b:
                if not _all(v + a, b - a, C_TOKEN):
                    raise ProtocolError(
                        f"invalid transfer coding {_b(v + a, b - a)[:40].lower()!r}",
                        reason="invalid_transfer_encoding",
                        offset=self._line_offset,
                    )
                if self._te_last_chunked:
                    raise ProtocolError(
                        "Transfer-Encoding has a coding after chunked",
                        reason="invalid_transfer_encoding",
                        offset=self._line_offset,
                    )
                self._te_count += 1
                self._te_last_chunked = _ieq(v + a, b - a, b"chunked", 7)
            if j >= n:
                return 0
            i = j + 1

    cdef void _connection(self, const uchar* v, Py_ssize_t n) noexcept:
        """Note the ``close`` and ``keep-alive`` options of Connection."""
        cdef Py_ssize_t i = 0, j, a, b
        while True:
            j = i
            while j < n and v[j] != b",":
                j += 1
            a = _skip_ws(v, i, j)
            b = _rskip_ws(v, a, j)
            if _ieq(v + a, b - a, b"close", 5):
                self._conn_close = True
            elif _ieq(v + a, b - a, b"keep-alive", 10):
                self._conn_keep_alive = True
            if j >= n:
                return
            i = j + 1

    cdef void _keep_alive_hint(self, const uchar* v, Py_ssize_t n) noexcept:
        """``timeout=N`` and ``max=N`` anywhere in a Keep-Alive value; the last one wins.

        The twin's ``(?i)\\s*(timeout|max)\\s*=\\s*"?([0-9]+)``, found left to right
        without overlap; a number of more than nine digits is ignored, not cut short.
        """
        cdef Py_ssize_t i = 0, j = 0, digits
        cdef long value
        cdef int kind
        while i < n:
            kind = 0
            if n - i >= 7 and _ieq(v + i, 7, b"timeout", 7):
                kind, j = 1, i + 7
            elif n - i >= 3 and _ieq(v + i, 3, b"max", 3):
                kind, j = 2, i + 3
            if kind:
                j = _skip_ws(v, j, n)
                if j < n and v[j] == b"=":
                    j = _skip_ws(v, j + 1, n)
                    if j < n and v[j] == b'"':
                        j += 1
                    value = 0
                    digits = 0
                    while j < n and CLASS[v[j]] & C_DIGIT:
                        if digits < 9:
                            value = value * 10 + (v[j] - 48)
                        digits += 1
                        j += 1
                    if digits:
                        if digits <= 9 and kind == 1:
                            self._ka_timeout = value
                        elif digits <= 9:
                            self._ka_max = value
                        i = j
                        continue
            i += 1

    # -- the end of a section -------------------------------------------------

    cdef Py_ssize_t _end_section_direct(self, bytes data, const uchar* p, Py_ssize_t start,
                                        Py_ssize_t pos, Py_ssize_t end) except -1:
        cdef Py_ssize_t size = pos - start
        if self._state == TRAILERS:
            return self._end_trailers(p + start, pos)
        if data is None or PyBytes_GET_SIZE(data) - size > PIN_SLACK:
            return self._end_head(_b(p + start, size), 0, pos, p + pos, end - pos)
        return self._end_head(data, start, pos, p + pos, end - pos)

    cdef Py_ssize_t _end_section_buffered(self, Py_ssize_t pos, const uchar* rest,
                                          Py_ssize_t available) except -1:
        cdef bytes raw = _b(self._buf, self._buf_len)
        self._buf_len = self._line_start = 0
        if self._state == TRAILERS:
            return self._end_trailers(<const uchar*>PyBytes_AS_STRING(raw), pos)
        return self._end_head(raw, 0, pos, rest, available)

    cdef ResponseHead _take_head(self, bytes raw, Py_ssize_t base):
        """The head just read as a ResponseHead, its fields still as spans into ``raw``."""
        cdef ResponseHead head = ResponseHead.__new__(ResponseHead)
        cdef const uchar* reason = <const uchar*>PyBytes_AS_STRING(raw) + base + 13
        head.status = self._status
        head.version = HTTP_11 if self._minor else HTTP_10
        if self._reason_len == 2 and reason[0] == b"O" and reason[1] == b"K":
            head.reason = OK
        elif self._reason_len:
            head.reason = _b(reason, self._reason_len)
        head._raw = raw
        head._base = base
        head._folded = self._folded
        if self._nspans:
            head._spans = <Span*>PyMem_Malloc(self._nspans * sizeof(Span))
            if head._spans == NULL:
                raise MemoryError()
            memcpy(head._spans, self._spans, self._nspans * sizeof(Span))
            head._nspans = self._nspans
        return head

    cdef void _reset_head(self) noexcept:
        self._head_size = 0
        self._head_started = False
        self._nspans = 0
        self._folded = None
        self._cl_seen = False
        self._te_seen = False
        self._te_count = 0
        self._te_last_chunked = False
        self._conn_close = False
        self._conn_keep_alive = False
        self._ka_timeout = -1
        self._ka_max = -1
        self._content_encoding = False
        self._set_cookie = False

    cdef Py_ssize_t _end_head(self, bytes raw, Py_ssize_t base, Py_ssize_t pos,
                              const uchar* rest, Py_ssize_t available) except -1:
        """The blank line arrived: decide the framing (RFC 9112 section 6.3) and deliver.
        ``rest``: the ``available`` bytes of this feed after the head."""
        cdef ResponseHead head = self._take_head(raw, base)
        head.has_content_encoding = self._content_encoding
        head.has_set_cookie = self._set_cookie
        cdef int status = head.status
        cdef bint keep_alive = not self._conn_close and (self._minor or self._conn_keep_alive)
        cdef bint cl_seen = self._cl_seen, te_seen = self._te_seen
        cdef bint chunked = self._te_count and self._te_last_chunked
        cdef unsigned long long length = self._cl
        cdef long ka_timeout = self._ka_timeout, ka_max = self._ka_max
        self._reset_head()
        self._after_interim = status < 200 and status != 101
        if self._after_interim:
            if self._on_informational is not None:
                self._on_informational(head)
            return pos

        if ka_timeout >= 0:
            head.keep_alive_timeout = ka_timeout
        if ka_max >= 0:
            head.keep_alive_max = ka_max

        method = self._methods.popleft() if self._methods else GET
        if cl_seen:
            head.content_length = length
        if status == 101 or (200 <= status < 300 and method == b"CONNECT"):
            return self._start_upgraded(head, pos)
        if te_seen:
            head.content_length = None
            if cl_seen:
                keep_alive = False  # TE with CL: a smuggling shape; never reuse.
        if status == 204 or status == 304 or method == b"HEAD":
            if self._on_response is not None and self.collect_limit:
                return pos + self._deliver_whole(head, keep_alive, rest, 0)
            self._deliver_head(head, keep_alive)
            self._end_message(keep_alive)
        elif chunked:
            head.chunked = True
            self._deliver_head(head, keep_alive)
            self._state = CHUNK_SIZE
            self._keep_alive_after = keep_alive
        elif cl_seen and not te_seen:
            if (self._on_response is not None and self.collect_limit
                    and length <= <unsigned long long>self.collect_limit
                    and length <= <unsigned long long>available):
                return pos + self._deliver_whole(head, keep_alive, rest, <Py_ssize_t>length)
            self._deliver_head(head, keep_alive)
            if length == 0:
                self._end_message(keep_alive)
            else:
                self._remaining = length
                self._state = BODY_LENGTH
                self._keep_alive_after = keep_alive
                if length <= <unsigned long long>self.collect_limit:
                    self._body = self._new_body(<Py_ssize_t>length)
                    self._body_filled = 0
        else:
            self._deliver_head(head, False)
            self._state = BODY_UNTIL_CLOSE
        return pos

    cdef Py_ssize_t _start_upgraded(self, ResponseHead head, Py_ssize_t pos) except -1:
        head.upgrade = True
        self._deliver_head(head, False)
        self._state = UPGRADED
        self.upgrade_offset = self._offset + pos
        self._complete()
        return pos

    cdef Py_ssize_t _deliver_whole(self, ResponseHead head, bint keep_alive, const uchar* body,
                                   Py_ssize_t length) except -1:
        """A buffered response whose body is all in this feed: head and body in one
        call to ``on_response`` (instead of on_head, on_body and on_complete)."""
        head.keep_alive = keep_alive
        self._state = HEAD if keep_alive else CLOSED
        self.messages_completed += 1
        if length < SPARE_MIN:
            self._on_response(head, _b(body, length) if length else EMPTY)
            return length
        cdef bytes whole = self._new_body(length)
        memcpy(PyBytes_AS_STRING(whole), body, length)
        self._keep_spare(whole)
        self._on_response(head, whole)
        return length

    cdef int _deliver_head(self, ResponseHead head, bint keep_alive) except -1:
        head.keep_alive = keep_alive
        self._current = head
        self._on_head(head)
        return 0

    cdef int _end_message(self, bint keep_alive) except -1:
        self._state = HEAD if keep_alive else CLOSED
        return self._complete()

    cdef int _complete(self) except -1:
        self._current = None  # kept only for its trailers: an idle parser holds no head
        self.messages_completed += 1
        self._on_complete()
        return 0

    cdef Py_ssize_t _end_trailers(self, const uchar* base, Py_ssize_t pos) except -1:
        self._current.trailers = _pairs(base, self._spans, self._nspans, self._folded)
        self._reset_head()
        self._end_message(self._keep_alive_after)
        return pos

    # -- bodies -----------------------------------------------------------------

    cdef Py_ssize_t _body_length(self, bytes data, const uchar* p, Py_ssize_t pos,
                                 Py_ssize_t end) except -1:
        cdef unsigned long long available = end - pos
        cdef unsigned long long remaining = self._remaining
        cdef Py_ssize_t n
        if self._body is not None:
            n = <Py_ssize_t>(available if available < remaining else remaining)
            memcpy(PyBytes_AS_STRING(self._body) + self._body_filled, p + pos, n)
            self._body_filled += n
            self._remaining = remaining - n
            if self._remaining == 0:
                self._deliver_body()
            return pos + n
        if available <= remaining:
            self._remaining = remaining - available
            self._on_body(_piece(data, p, pos, end))
            if self._remaining == 0:
                self._end_message(self._keep_alive_after)
            return end
        self._remaining = 0
        self._on_body(_b(p + pos, <Py_ssize_t>remaining))
        self._end_message(self._keep_alive_after)
        return pos + <Py_ssize_t>remaining

    cdef int _deliver_body(self) except -1:
        """The gathered body is whole: hand it over, then end the message."""
        body, self._body = self._body, None
        self._keep_spare(body)
        self._on_body(body)
        return self._end_message(self._keep_alive_after)

    cdef bytes _new_body(self, Py_ssize_t n):
        """An uninitialised bytes of ``n`` for a body: a spare of that size that nobody
        else holds, or a new one."""
        cdef bytes body
        global _spare_total
        if _unheld(<PyObject*>self._spare, n):
            body, self._spare = self._spare, None
        elif _unheld(<PyObject*>self._spare_older, n):
            body, self._spare_older = self._spare_older, None
        else:
            return PyBytes_FromStringAndSize(NULL, n)
        _spare_total -= n  # in use again; _keep_spare counts it when it is handed over
        (<PyBytesObject*><PyObject*>body).ob_shash = -1  # its hash, if asked, was the old body's
        return body

    cdef inline void _keep_spare(self, bytes body) noexcept:
        """Keep the last two bodies handed over: in ``r = await client.get(...)`` in a
        loop, the last is still the caller's when the next comes in. The one before
        them is let go; the new one is kept only within the budget (_spare_budget)."""
        global _spare_total
        cdef Py_ssize_t n = PyBytes_GET_SIZE(body)
        if n < SPARE_MIN or n > SPARE_MAX:
            return
        _uncount(self._spare_older)
        self._spare_older, self._spare = self._spare, None
        if _spare_total + n <= _spare_budget():
            _spare_total += n
            self._spare = body

    cdef void _drop_spares(self) noexcept:
        _uncount(self._spare)
        _uncount(self._spare_older)
        self._spare = self._spare_older = None

    cdef Py_ssize_t _chunk_data(self, bytes data, const uchar* p, Py_ssize_t pos,
                                Py_ssize_t end) except -1:
        cdef unsigned long long available = end - pos
        cdef unsigned long long remaining = self._remaining
        if available <= remaining:
            self._remaining = remaining - available
            self._on_body(_piece(data, p, pos, end))
            if self._remaining == 0:
                self._state = CHUNK_DATA_END
            return end
        self._remaining = 0
        self._state = CHUNK_DATA_END
        self._on_body(_b(p + pos, <Py_ssize_t>remaining))
        return pos + <Py_ssize_t>remaining

    # -- chunk-size lines and the CRLF after chunk data ------------------------

    cdef Py_ssize_t _chunk_line(self, const uchar* p, Py_ssize_t pos,
                                Py_ssize_t end) except -1:
        """One chunk-size line, or the CRLF after a chunk's data."""
        cdef Py_ssize_t carried = self._buf_len
        cdef Py_ssize_t lf = _find(p + pos, end - pos, b"\n")
        cdef Py_ssize_t n, limit = self.max_chunk_line_size
        cdef const uchar* line
        if not carried:
            self._line_offset = self._offset + pos
            self._progress = Scan(0, 0)
        if lf < 0:
            self._append_capped(p + pos, end - pos, carried, limit)
            self._check_partial(self._buf, self._buf_len, limit)
            return end
        n = carried + lf  # the line, with its CR
        if carried:
            self._append_capped(p + pos, lf + 1, carried, limit)
            line = self._buf
            self._buf_len = 0
        else:
            line = p + pos
        self._check_line_end(line, n, limit)
        if self._state == CHUNK_DATA_END:
            if n > 1:
                self._first_fault(line, n + 1, n + 1)
                self._raise_fault(F_CHUNK, line, 0)  # not reached
            self._state = CHUNK_SIZE
        else:
            self._chunk_size(line, n - 1)
        return pos + lf + 1

    cdef int _chunk_size(self, const uchar* s, Py_ssize_t n) except -1:
        """``size[;ext[=value]]...``: start the chunk's data, or the trailers.

        ``s[n:n + 2]`` is the line's CRLF.
        """
        cdef Py_ssize_t i = 0, first
        cdef unsigned long long size = 0
        while i < n and CLASS[s[i]] & C_HEX:
            i += 1
        if i == 0 or not _chunk_ext_ok(s, i, n):
            self._first_fault(s, n + 2, n + 2)
            raise ProtocolError(  # it ends too early
                f"invalid chunk-size line {_show(s, n)}",
                reason="invalid_chunk_size",
                offset=self._line_offset,
            )
        first = 0
        while first < i and s[first] == b"0":
            first += 1
        if i - first > 16 or (i - first == 16 and s[first] > b"7"):
            raise ProtocolError(
                "chunk size too large", reason="invalid_chunk_size", offset=self._line_offset
            )
        while first < i:
            size = size * 16 + _hex_value(s[first])
            first += 1
        if size == 0:
            self._state = TRAILERS
            self._reset_head()
        else:
            self._remaining = size
            self._state = CHUNK_DATA
        return 0

    # -- the carry buffer -------------------------------------------------------

    cdef int _append(self, const uchar* s, Py_ssize_t n) except -1:
        cdef Py_ssize_t need = self._buf_len + n, cap
        cdef uchar* grown
        if need > self._buf_cap:
            cap = self._buf_cap * 2 if self._buf_cap else 256
            while cap < need:
                cap *= 2
            grown = <uchar*>PyMem_Realloc(self._buf, cap)
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._buf_cap = cap
        memcpy(self._buf + self._buf_len, s, n)
        self._buf_len = need
        return 0

    cdef int _append_capped(self, const uchar* s, Py_ssize_t n, Py_ssize_t carried,
                            Py_ssize_t limit) except -1:
        """Append the next ``n`` bytes of a line that has ``carried`` bytes so far, but
        only up to ``limit + 1`` in all: past that the line fails anyway."""
        return self._append(s, n if carried + n <= limit + 1 else limit + 1 - carried)


# -- helpers without parser state ----------------------------------------------

cdef inline bint _is_name(const uchar* s, Py_ssize_t n, const char* lower) noexcept:
    """Whether the field name ``s[:n]`` is ``lower`` (a NUL-terminated literal), in any case."""
    return LOWER[s[0]] == <uchar>lower[0] and _ieq(s, n, lower, strlen(lower))


cdef inline unsigned int _hex_value(uchar c) noexcept:
    if c <= b"9":
        return c - 48
    return (c | 0x20) - 87


cdef bint _chunk_ext_ok(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """Whether ``s[i:n]`` is a run of ``[ \\t]*;[ \\t]*token([ \\t]*=[ \\t]*(token|quoted))?``."""
    cdef Py_ssize_t name, after_name
    while i < n:
        i = _skip_ws(s, i, n)
        if i >= n or s[i] != b";":
            return False
        i = _skip_ws(s, i + 1, n)
        name = i
        while i < n and CLASS[s[i]] & C_TOKEN:
            i += 1
        if i == name:
            return False
        after_name = i
        i = _skip_ws(s, i, n)
        if i >= n or s[i] != b"=":
            i = after_name  # no value; what follows must be the next extension
            continue
        i = _skip_ws(s, i + 1, n)
        if i < n and CLASS[s[i]] & C_TOKEN:
            while i < n and CLASS[s[i]] & C_TOKEN:
                i += 1
        elif i < n and s[i] == b'"':
            i = _quoted_end(s, i + 1, n)
            if i < 0:
                return False
        else:
            return False
    return True


cdef Py_ssize_t _quoted_end(const uchar* s, Py_ssize_t i, Py_ssize_t n) noexcept:
    """The end of a quoted string whose opening quote is before ``i``, or -1."""
    while i < n:
        if s[i] == b'"':
            return i + 1
        if s[i] == b"\\":
            if i + 1 < n and CLASS[s[i + 1]] & C_QPAIR:
                i += 2
                continue
            return -1
        if not CLASS[s[i]] & C_QDTEXT:
            return -1
        i += 1
    return -1


__all__ = ["ResponseHead", "ResponseParser"]
