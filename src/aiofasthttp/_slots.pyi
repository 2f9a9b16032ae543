"""Type stub for aiofasthttp._slots (built from cext/_slots.pyx)."""

from collections.abc import Iterable

def as_slots(cls: type, names: Iterable[str]) -> list[str]:
    """Give ``cls``'s object fields ``names`` member descriptors; return the names done."""
