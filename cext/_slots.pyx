# cython: language_level=3
"""Fields of compiled classes that Python code reads as fast as ``__slots__``.

Cython gives a ``cdef public object`` field a getset descriptor: a C function call
per read from Python code, which CPython 3.11+ does not specialise. ``__slots__``
gives a member descriptor, which it does (``LOAD_ATTR_SLOT``: a pointer load). For a
class whose fields the engine's Python code reads on every request, ``as_slots``
replaces the getset descriptors of the named fields with member descriptors at the
same offsets: compiled code keeps its direct access, Python code gets slot speed.

The offset of each field is found, not assumed: a sentinel is set through the
field's own descriptor and looked for in the instance's memory. A field that is
not found (not an object field, or a layout this code does not know) keeps its
getset descriptor, so the class is never wrong, only slower.

A member descriptor lets ``del obj.field`` leave NULL where compiled code expects
an object. The classes given here are the engine's own, whose fields are never
deleted; a public one must refuse deletion itself (``__delattr__``).
"""

from cpython.mem cimport PyMem_Malloc
from cpython.object cimport PyObject, PyTypeObject


cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
        const char* doc
    int T_OBJECT_EX
    object PyDescr_NewMember(PyTypeObject* cls, PyMemberDef* member)
    void PyType_Modified(PyTypeObject* cls)


# The names and PyMemberDefs live as long as the classes, that is, for ever.
cdef list _kept_names = []


def as_slots(type cls, names):
    """Give ``cls``'s object fields ``names`` member descriptors; return the names done."""
    cdef object probe = cls.__new__(cls)
    # The type's own dict (cls.__dict__ is a read-only proxy of it).
    cdef dict namespace = <dict>(<PyTypeObject*>cls).tp_dict
    cdef list done = []
    cdef Py_ssize_t offset
    cdef PyMemberDef* member
    for name in names:
        offset = _offset_of(probe, cls, name)
        if offset < 0:
            continue
        encoded = name.encode("ascii")
        _kept_names.append(encoded)
        member = <PyMemberDef*>PyMem_Malloc(sizeof(PyMemberDef))
        if member == NULL:
            raise MemoryError
        member.name = <const char*>encoded
        member.type = T_OBJECT_EX
        member.offset = offset
        member.flags = 0
        member.doc = NULL
        namespace[name] = PyDescr_NewMember(<PyTypeObject*>cls, member)
        done.append(name)
    PyType_Modified(<PyTypeObject*>cls)
    return done


cdef Py_ssize_t _offset_of(object probe, type cls, str name) except -2:
    """Where field ``name`` sits in an instance of ``cls``, or -1 if not found."""
    cdef object sentinel = object()
    cdef char* base = <char*><PyObject*>probe
    cdef Py_ssize_t offset, found = -1
    try:
        setattr(probe, name, sentinel)
    except (AttributeError, TypeError):  # not a writable object field
        return -1
    if getattr(probe, name) is sentinel:
        for offset in range(sizeof(PyObject), (<PyTypeObject*>cls).tp_basicsize,
                            sizeof(PyObject*)):
            if (<PyObject**>(base + offset))[0] == <PyObject*>sentinel:
                found = offset
                break
    setattr(probe, name, None)
    return found
