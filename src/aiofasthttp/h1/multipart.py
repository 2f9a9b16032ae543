"""Request bodies from files: ``multipart/form-data`` (``files=``), and sync iterables
and binary files as ``content=``.

A body is a :class:`Payload`: its bytes when every part is bytes, or a factory
of an async iterator of chunks when a file is in it. Files are read
``chunk_size`` bytes at a time, so a 1 GiB upload holds one chunk, not the
file. Reads are the file's own (blocking) ``read``, as httpx does: a local
file's read is a page-cache copy; wrap a slow file in an async iterable to
keep it off the loop.

A body with files is replayable (the retry and redirect code may send it
again) when every file is seekable: each send seeks back to where the file
stood when the body was made. Otherwise it is one-shot. Its length is known
when every file's size is (a seekable file's is), so the head can say
``Content-Length`` instead of chunking; a file that ends before the size it
had then ends the body with :class:`FileChangedError`, never a short body.

No I/O of its own and no asyncio: the async iterators only wrap ``read``.
"""

from __future__ import annotations

import inspect
import io
import mimetypes
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import IO, Any, NamedTuple, TypeAlias

from ..errors import HTTPError, InvalidHeader

CHUNK_SIZE = 64 * 1024

FileContent: TypeAlias = bytes | bytearray | memoryview | IO[bytes]
FileValue: TypeAlias = (
    FileContent | tuple[str | None, FileContent] | tuple[str | None, FileContent, str | None]
)
FilesArg: TypeAlias = Mapping[str, FileValue] | Iterable[tuple[str, FileValue]]
FormArg: TypeAlias = Mapping[str, Any] | Iterable[tuple[str, Any]]

_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The HTML standard's escapes for names and filenames in Content-Disposition
# (what browsers send and servers parse): the quote and line breaks.
_NAME_ESCAPES = {ord('"'): "%22", ord("\r"): "%0D", ord("\n"): "%0A"}


class FileChangedError(HTTPError):
    """A file sent in a body ended before the size it had when the body was made."""


class Payload(NamedTuple):
    """A request body: the first four fields are ``request.Body``'s.

    ``data`` is the whole body, or None when ``make_stream`` makes it (afresh
    each call when ``replayable``; a second call of a one-shot body raises
    RuntimeError). ``length`` is the size in bytes when known.
    """

    data: bytes | None
    make_stream: Callable[[], AsyncIterable[bytes]] | None
    replayable: bool
    content_type: str | None
    length: int | None


class _FileSource:
    """One file of a body: where it started, how much of it is sent."""

    __slots__ = ("file", "size", "start")

    def __init__(self, file: IO[bytes]) -> None:
        if isinstance(file, io.TextIOBase):
            raise TypeError(f"file {_file_name(file)!r} is open in text mode: open it with 'rb'")
        if inspect.iscoroutinefunction(file.read):
            raise TypeError(
                f"file {_file_name(file)!r} reads asynchronously: pass an async iterable "
                "of its chunks as content= instead"
            )
        self.file = file
        self.start: int | None = None
        self.size: int | None = None
        if _seekable(file):
            self.start = file.tell()
            self.size = file.seek(0, os.SEEK_END) - self.start
            file.seek(self.start)

    def rewind(self) -> None:
        if self.start is not None:
            self.file.seek(self.start)

    async def chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        left = self.size
        while left is None or left > 0:
            chunk = self.file.read(chunk_size if left is None else min(chunk_size, left))
            if not chunk:
                break
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"file {_file_name(self.file)!r} gave {type(chunk).__name__}")
            if left is not None:
                left -= len(chunk)
            yield bytes(chunk)
        if left:
            raise FileChangedError(
                f"file {_file_name(self.file)!r} ended {left} bytes before the size "
                f"it had when the request was made ({self.size} bytes)"
            )


def _seekable(file: IO[bytes]) -> bool:
    try:
        return bool(file.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def _file_name(file: object) -> str:
    name = getattr(file, "name", None)
    return name if isinstance(name, str) else type(file).__name__


_Source: TypeAlias = bytes | _FileSource


def encode_multipart(
    data: FormArg | None,
    files: FilesArg,
    *,
    boundary: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Payload:
    """``data=`` fields then ``files=`` parts, as ``multipart/form-data`` (RFC 7578).

    A file is bytes, a binary file object, or a tuple ``(filename, content)``
    or ``(filename, content, content_type)``; without a type it is guessed from
    the filename, else ``application/octet-stream``.
    """
    if isinstance(data, str | bytes | bytearray | memoryview):
        raise TypeError("data= alongside files= is a mapping (or pairs) of form fields")
    if boundary is None:
        boundary = os.urandom(16).hex()
    elif not _BOUNDARY.match(boundary):
        raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046: 1-70 bchars)")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    parts: list[tuple[bytes, _Source]] = []
    for name, value in _pairs(data or {}):
        parts.extend((delimiter + head, body) for head, body in _field_parts(name, value))
    for name, value in _pairs(files):
        head, source = _file_part(name, value)
        parts.append((delimiter + head, source))
    tail = f"--{boundary}--\r\n".encode("ascii")
    content_type = f"multipart/form-data; boundary={boundary}"
    sources = [s for _, s in parts if isinstance(s, _FileSource)]
    if not sources:
        body = b"".join(head + src + b"\r\n" for head, src in parts if isinstance(src, bytes))
        body += tail
        return Payload(body, None, True, content_type, len(body))
    length: int | None = len(tail)
    for head, src in parts:
        size = len(src) if isinstance(src, bytes) else src.size
        length = None if length is None or size is None else length + len(head) + size + 2

    def make_stream() -> AsyncIterator[bytes]:
        return _stream_parts(parts, tail, chunk_size)

    replayable = all(s.start is not None for s in sources)
    factory = make_stream if replayable else _one_shot(make_stream)
    return Payload(None, factory, replayable, content_type, length)


async def _stream_parts(
    parts: list[tuple[bytes, _Source]], tail: bytes, chunk_size: int
) -> AsyncIterator[bytes]:
    for _, src in parts:
        if isinstance(src, _FileSource):
            src.rewind()  # a replay starts each file where the first send did
    for head, src in parts:
        if isinstance(src, bytes):
            yield head + src + b"\r\n"
            continue
        yield head
        async for chunk in src.chunks(chunk_size):
            yield chunk
        yield b"\r\n"
    yield tail


def _pairs(items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Iterable[tuple[str, Any]]:
    return items.items() if isinstance(items, Mapping) else items


def _quoted(text: str) -> str:
    return '"' + text.translate(_NAME_ESCAPES) + '"'


def _disposition(name: str, filename: str | None) -> str:
    line = f"Content-Disposition: form-data; name={_quoted(name)}"
    return line if filename is None else f"{line}; filename={_quoted(filename)}"


def _field_parts(name: str, value: Any) -> Iterable[tuple[bytes, bytes]]:
    """One part per value: a list or tuple of values is the field repeated."""
    values = value if isinstance(value, list | tuple) else [value]
    head = (_disposition(name, None) + "\r\n\r\n").encode("utf-8")
    for item in values:
        if isinstance(item, str):
            yield head, item.encode("utf-8")
        elif isinstance(item, bytes | bytearray | memoryview):
            yield head, bytes(item)
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield head, str(item).encode("ascii")
        else:
            raise TypeError(
                f"data field {name!r}: {type(item).__name__} is not str, bytes, int or float"
            )


def _file_part(name: str, value: FileValue) -> tuple[bytes, _Source]:
    filename: str | None
    content_type: str | None = None
    if isinstance(value, tuple):
        if len(value) not in (2, 3):
            raise TypeError(f"file {name!r}: use (filename, content) or (filename, content, type)")
        filename, content = value[0], value[1]
        if len(value) == 3:
            content_type = value[2]
    else:
        filename, content = None, value
    source: _Source
    if isinstance(content, bytes | bytearray | memoryview):
        source = bytes(content)
    elif hasattr(content, "read"):
        source = _FileSource(content)
        if filename is None:
            filename = os.path.basename(_file_name(content)) if _has_name(content) else None
    else:
        raise TypeError(
            f"file {name!r}: {type(content).__name__} is not bytes or a binary file object"
        )
    if filename is None:
        filename = name
    if content_type is None:
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if _CONTROL.search(content_type):
        raise InvalidHeader(f"file {name!r}: control character in content type {content_type!r}")
    head = f"{_disposition(name, filename)}\r\nContent-Type: {content_type}\r\n\r\n"
    return head.encode("utf-8"), source


def _has_name(file: object) -> bool:
    return isinstance(getattr(file, "name", None), str)


# -- sync iterables and files as content= -------------------------------------------------


def sync_content(content: object, *, chunk_size: int = CHUNK_SIZE) -> Payload | None:
    """``content=`` given as a binary file object or a sync iterable of bytes, as a
    streamed :class:`Payload`; None for anything else (bytes, str, async iterables
    and factories are ``request.encode_body``'s).

    A seekable file is replayable and of known length; a list or tuple of bytes
    too; a generator or other one-pass iterator is one-shot.
    """
    if isinstance(content, bytes | bytearray | memoryview | str):
        return None
    read = getattr(content, "read", None)
    if read is not None and inspect.iscoroutinefunction(read):
        return None  # an async file: request.encode_body's (as an async iterable)
    if read is not None:
        source = _FileSource(content)  # type: ignore[arg-type]

        def read_file() -> AsyncIterator[bytes]:
            return _file_stream(source, chunk_size)

        replayable = source.start is not None
        factory = read_file if replayable else _one_shot(read_file)
        return Payload(None, factory, replayable, None, source.size)
    if not isinstance(content, Iterable) or isinstance(content, Mapping):
        return None
    items: Iterable[Any] = content
    length = None
    if isinstance(content, list | tuple):
        _check_chunks(content)
        length = sum(len(c) for c in content)

    def iterate() -> AsyncIterator[bytes]:
        return _iterate(items)

    replayable = iter(content) is not content  # a container, not a one-pass iterator
    return Payload(None, iterate if replayable else _one_shot(iterate), replayable, None, length)


async def _file_stream(source: _FileSource, chunk_size: int) -> AsyncIterator[bytes]:
    source.rewind()
    async for chunk in source.chunks(chunk_size):
        yield chunk


async def _iterate(items: Iterable[Any]) -> AsyncIterator[bytes]:
    for chunk in items:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"content iterable gave {type(chunk).__name__}, not bytes")
        yield bytes(chunk)


def _check_chunks(chunks: list[Any] | tuple[Any, ...]) -> None:
    for chunk in chunks:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"content iterable holds {type(chunk).__name__}, not bytes")


def _one_shot(factory: Callable[[], AsyncIterator[bytes]]) -> Callable[[], AsyncIterator[bytes]]:
    """``factory`` callable once: a second send of a one-shot body is a clear error."""
    used = False

    def once() -> AsyncIterator[bytes]:
        nonlocal used
        if used:
            raise RuntimeError(
                "this request body streams a one-pass iterable or an unseekable file; "
                "it was already sent and cannot be sent again"
            )
        used = True
        return factory()

    return once
