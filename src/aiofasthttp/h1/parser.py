"""The sans-I/O HTTP/1.1 response parser, public so it can be used on its own.

::

    parser = ResponseParser(sink, max_head_size=65536, max_headers=128)
    parser.expect(b"HEAD")   # the method of each request sent, in order; default GET
    parser.feed(data)        # raises ProtocolError (or a LimitExceeded subclass)
    parser.feed_eof()        # ends a close-delimited body; raises IncompleteResponse

The sink gets ``on_head(head)``, ``on_body(chunk)``, ``on_complete()`` and,
if defined, ``on_informational(head)`` for 1xx interim heads. With
``collect_limit=N`` a Content-Length body of at most N bytes is gathered whole
(``body_buffer()`` / ``body_written(n)`` let a transport read straight into it),
and a sink's ``on_response(head, body)``, if defined, takes a response whole in
one feed in one call.

Two implementations share this interface and one test suite: the compiled one
built from ``cext/`` and the pure-Python twin. The compiled one is used unless
``AIOFASTHTTP_NO_EXTENSIONS`` is set (to anything but ``0``) or it was not
built. ``IMPLEMENTATION`` says which is active: ``"c"`` or ``"python"``.
On CPython a missing compiled parser (no compiler at install time) is reported
at import by a ``ParserFallbackWarning``, shown by default (and under ``-W default``).
"""

from __future__ import annotations

import os
import platform
import warnings
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


class ParserFallbackWarning(RuntimeWarning):
    """The compiled parser was expected (CPython, not opted out) but did not import."""


def _select() -> tuple[type[_pyparser.ResponseParser], type[_pyparser.ResponseHead], str]:
    if not _extensions_disabled():
        try:
            from .. import _cparser  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            _warn_fallback(exc)
        else:
            return _cparser.ResponseParser, _cparser.ResponseHead, "c"
    return _pyparser.ResponseParser, _pyparser.ResponseHead, "python"


def _warn_fallback(exc: ImportError) -> None:
    # Elsewhere than CPython the pure-Python parser is the intended one: no warning.
    if platform.python_implementation() != "CPython":
        return
    warnings.warn(
        f"aiofasthttp: the compiled parser did not import ({exc}); using the pure-Python "
        "parser, which is several times slower. It is built at install time when a C "
        "compiler and Python's headers are present (Debian: apt-get install gcc python3-dev); "
        "set AIOFASTHTTP_NO_EXTENSIONS=1 to choose the pure-Python parser silently.",
        ParserFallbackWarning,
        stacklevel=4,
    )


if TYPE_CHECKING:
    from ._pyparser import ResponseHead, ResponseParser

    IMPLEMENTATION: str
else:
    ResponseParser, ResponseHead, IMPLEMENTATION = _select()


def kept_body_bytes() -> int:
    """The bytes of the gathered bodies the compiled parsers keep for reuse now, all
    parsers together (at most 16 MiB, or 64 KiB for each parser alive if that is more); 0
    with the pure-Python parser, which keeps none."""
    if IMPLEMENTATION != "c":
        return 0
    from .. import _cparser  # type: ignore[attr-defined,unused-ignore]

    return int(_cparser.kept_body_bytes())


__all__ = [
    "IMPLEMENTATION",
    "ChunkLineTooLong",
    "HeadTooLarge",
    "IncompleteResponse",
    "LimitExceeded",
    "ParserFallbackWarning",
    "ProtocolError",
    "ResponseHead",
    "ResponseParser",
    "TooManyHeaders",
    "kept_body_bytes",
]
