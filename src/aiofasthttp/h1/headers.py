"""Headers: an ordered, case-insensitive, multi-valued view of header pairs.

A response's headers are built lazily from the parser's ``(bytes, bytes)``
pairs: a caller that never looks at them never pays for decoding them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

HeaderPairs = list[tuple[bytes, bytes]]
HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]


class Headers(Mapping[str, str]):
    """Header fields in wire order; lookups ignore case; names keep theirs.

    ``headers[name]`` joins repeated fields with ``", "`` (RFC 9110 5.3);
    ``get_all(name)`` returns each value. Values are ``str`` decoded as
    ISO-8859-1, which maps every byte to one character and loses nothing.
    """

    __slots__ = ("_index", "_pairs")

    def __init__(self, pairs: HeadersLike | None = None) -> None:
        self._pairs: list[tuple[str, str]] = []
        self._index: dict[str, list[str]] | None = None
        if pairs is not None:
            items = pairs.items() if isinstance(pairs, Mapping) else pairs
            self._pairs = [(str(k), str(v)) for k, v in items]

    @classmethod
    def from_raw(cls, raw: HeaderPairs) -> Headers:
        self = cls.__new__(cls)
        self._pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        self._index = None
        return self

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._pairs:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        values = self._lookup().get(name.lower())
        if values is None:
            raise KeyError(name)
        return values[0] if len(values) == 1 else ", ".join(values)

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def get_all(self, name: str) -> list[str]:
        return list(self._lookup().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._pairs:
            key = name.lower()
            if key not in seen:
                seen.add(key)
                yield name

    def __len__(self) -> int:
        return len(self._lookup())

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in wire order, repeats included."""
        return list(self._pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k.lower(), v) for k, v in self._pairs) == sorted(
                (k.lower(), v) for k, v in other._pairs
            )
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"
