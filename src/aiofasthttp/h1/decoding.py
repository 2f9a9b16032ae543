"""Content decoding: gzip and deflate built in; br and zstd when their packages are installed.

A decoder works piece by piece, so a streamed body is decoded as it arrives,
never buffered whole. The size limit (``max_response_body_size``) applies to
the decoded bytes, and the decoders are asked for at most one byte past it,
so a decompression bomb stops there instead of filling memory.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any

from ..errors import ProtocolError, ResponseTooLarge
from .headers import HeaderPairs


def _optional(name: str) -> Any:
    """An optional codec package (the ``brotli`` and ``zstd`` extras), or None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


brotli = _optional("brotli")
zstandard = _optional("zstandard")

ACCEPT_ENCODING = ", ".join(
    ["gzip", "deflate"] + (["br"] if brotli else []) + (["zstd"] if zstandard else [])
)


class Decoder:
    """Decodes one content coding, chunk by chunk, within a size limit."""

    def __init__(self, coding: str, limit: int | None) -> None:
        self.coding = coding
        self._limit = limit
        self._size = 0

    def decode(self, data: bytes) -> bytes:
        try:
            out = self._decode(data, None if self._limit is None else self._limit - self._size + 1)
        except _CODEC_ERRORS as exc:
            raise ProtocolError(
                f"invalid {self.coding} response body: {exc}", reason="invalid_content_coding"
            ) from None
        self._size += len(out)
        if self._limit is not None and self._size > self._limit:
            raise ResponseTooLarge(f"decoded response body larger than {self._limit} bytes")
        return out

    def flush(self) -> bytes:
        return b""

    def _decode(self, data: bytes, room: int | None) -> bytes:
        raise NotImplementedError


class _Zlib(Decoder):
    def __init__(self, coding: str, limit: int | None) -> None:
        super().__init__(coding, limit)
        # "deflate" is zlib-wrapped by the RFC, raw in some servers: sniffed at the first byte.
        self._z: Any = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None

    def _decode(self, data: bytes, room: int | None) -> bytes:
        if self._z is None:
            raw = not data or (data[0] & 0x0F) != 8
            self._z = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return bytes(self._z.decompress(data) if room is None else self._z.decompress(data, room))

    def flush(self) -> bytes:
        return bytes(self._z.flush()) if self._z is not None else b""


class _Brotli(Decoder):
    def __init__(self, coding: str, limit: int | None) -> None:
        super().__init__(coding, limit)
        self._b = brotli.Decompressor()

    def _decode(self, data: bytes, room: int | None) -> bytes:
        if room is None:
            return bytes(self._b.process(data))
        return bytes(self._b.process(data, output_buffer_limit=room))


class _Zstd(Decoder):
    def __init__(self, coding: str, limit: int | None) -> None:
        super().__init__(coding, limit)
        self._z = zstandard.ZstdDecompressor().decompressobj()

    def _decode(self, data: bytes, room: int | None) -> bytes:
        # zstandard's decompressobj takes no output bound; the size check follows each
        # piece, so one piece's expansion is the most that can be held past the limit.
        return bytes(self._z.decompress(data))


_CODEC_ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    *([brotli.error] if brotli is not None else []),
    *([zstandard.ZstdError] if zstandard is not None else []),
)


_DECODERS: dict[bytes, tuple[str, type[Decoder]]] = {
    b"gzip": ("gzip", _Zlib),
    b"x-gzip": ("gzip", _Zlib),
    b"deflate": ("deflate", _Zlib),
}
if brotli is not None:
    _DECODERS[b"br"] = ("br", _Brotli)
if zstandard is not None:
    _DECODERS[b"zstd"] = ("zstd", _Zstd)


def decoder_for(raw_headers: HeaderPairs, limit: int | None) -> Decoder | None:
    """The decoder the Content-Encoding header asks for, if it is one this client offers."""
    for name, value in raw_headers:
        if len(name) == 16 and name.lower() == b"content-encoding":
            found = _DECODERS.get(value.strip().lower())
            if found is not None:
                return found[1](found[0], limit)
    return None
