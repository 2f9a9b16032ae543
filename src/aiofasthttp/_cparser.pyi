"""Type stub for the compiled response parser (built from cext/_cparser.pyx).

The interface is the same as :mod:`aiofasthttp.h1._pyparser`'s. The classes are
declared here as subtypes of the twin's (at run time they are not): the
selector in :mod:`aiofasthttp.h1.parser` hands out either implementation under
the twin's types, and this way the checker also verifies that each signature
below is compatible with the twin's.
"""

from typing import Any

from .h1 import _pyparser

DEFAULT_MAX_HEAD_SIZE: int
DEFAULT_MAX_HEADERS: int
DEFAULT_MAX_CHUNK_LINE_SIZE: int

def kept_body_bytes() -> int:
    """The bytes of the gathered bodies all parsers keep for reuse now."""

def _set_spare_budget(budget: int) -> int:
    """Set the budget of kept bodies (tests); return the old one."""

class ResponseHead(_pyparser.ResponseHead):
    """One response head: status line, header pairs and the framing decided from them."""

    status: int
    reason: bytes
    version: tuple[int, int]
    keep_alive: bool
    chunked: bool
    content_length: int | None
    keep_alive_timeout: int | None
    keep_alive_max: int | None
    trailers: list[tuple[bytes, bytes]] | None
    upgrade: bool
    has_content_encoding: bool
    has_set_cookie: bool
    # Built from the head's bytes on first access, then kept.
    headers: list[tuple[bytes, bytes]]

    def __init__(self) -> None: ...

class ResponseParser(_pyparser.ResponseParser):
    """Incremental HTTP/1.1 response parser (compiled)."""

    max_head_size: int
    max_headers: int
    max_chunk_line_size: int
    upgrade_offset: int | None
    messages_completed: int

    def __init__(
        self,
        sink: Any,
        *,
        max_head_size: int = ...,
        max_headers: int = ...,
        max_chunk_line_size: int = ...,
    ) -> None: ...
    def expect(self, method: bytes | str) -> None: ...
    @property
    def in_message(self) -> bool: ...
    @property
    def upgraded(self) -> bool: ...
    def upgraded_data(self) -> bytes: ...
    def feed(self, data: bytes | bytearray | memoryview) -> None: ...
    def feed_eof(self) -> None: ...

__all__ = ["ResponseHead", "ResponseParser"]
