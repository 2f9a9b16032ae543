"""The compiled build's classes: their fields read by Python code as slots.

setup.py compiles exchange.py, connection.py, poolcore.py, learning.py, response.py
and request.py with their .pxd files, and the parser from cext/. Cython gives the
public fields of a compiled class getset descriptors, which are slower to read from
Python than slots (see cext/_slots.pyx). Each of these modules calls
``read_as_slots`` on its classes once, at import (learning.py need not: the pool
reads its ServerMemory as a C struct). As plain Python, the classes already have
``__slots__`` (or an instance dict), and this does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence


def read_as_slots(cls: type, names: Sequence[str]) -> None:
    """Give compiled ``cls``'s object fields ``names`` member descriptors."""
    if type(cls.__dict__.get(names[0])).__name__ != "getset_descriptor":
        return  # plain Python: slots, or a plain instance dict, already
    try:
        from ._slots import as_slots
    except ImportError:  # built without it: correct, a little slower
        return
    as_slots(cls, names)
