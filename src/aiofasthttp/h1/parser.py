"""The sans-I/O HTTP/1.1 response parser, public so it can be used on its own.

::

    parser = ResponseParser(sink, max_head_size=65536, max_headers=128)
    parser.expect(b"HEAD")   # the method of each request sent, in order; default GET
    parser.feed(data)        # raises ProtocolError (or a LimitExceeded subclass)
    parser.feed_eof()        # ends a close-delimited body; raises IncompleteResponse

The sink gets ``on_head(head)``, ``on_body(chunk)``, ``on_complete()`` and,
if defined, ``on_informational(head)`` for 1xx interim heads.

Two implementations share this interface and one test suite: the compiled one
built from ``cext/`` and the pure-Python twin. The compiled one is used unless
``AIOFASTHTTP_NO_EXTENSIONS`` is set (to anything but ``0``) or it was not
built. ``IMPLEMENTATION`` says which is active: ``"c"`` or ``"python"``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import (
    ChunkLineTooLong,
    HeadTooLarge,
    IncompleteResponse,
    LimitExceeded,
    ProtocolError,
    TooManyHeaders,
)
from . import _pyparser


def _extensions_disabled() -> bool:
    return os.environ.get("AIOFASTHTTP_NO_EXTENSIONS", "") not in ("", "0")


def _select() -> tuple[type[_pyparser.ResponseParser], type[_pyparser.ResponseHead], str]:
    if not _extensions_disabled():
        try:
            from .. import _cparser  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            pass
        else:
            return _cparser.ResponseParser, _cparser.ResponseHead, "c"
    return _pyparser.ResponseParser, _pyparser.ResponseHead, "python"


if TYPE_CHECKING:
    from ._pyparser import ResponseHead, ResponseParser

    IMPLEMENTATION: str
else:
    ResponseParser, ResponseHead, IMPLEMENTATION = _select()

__all__ = [
    "IMPLEMENTATION",
    "ChunkLineTooLong",
    "HeadTooLarge",
    "IncompleteResponse",
    "LimitExceeded",
    "ProtocolError",
    "ResponseHead",
    "ResponseParser",
    "TooManyHeaders",
]
