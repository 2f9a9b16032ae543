"""The mock server's side of the wire: request bytes in, requests out; responses to bytes.

A :class:`RequestReader` reads what a client Connection writes (a head, then a
body framed by Content-Length or chunked coding) as a server would, so the
handler sees the request as it was actually encoded. It is deliberately plain:
the client it reads is this package's own, which writes well-formed requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ProtocolError
from ..h1.headers import Headers


@dataclass
class MockRequest:
    """A request as the mock server received it.

    ``url`` is absolute (scheme and Host from the connection and the head);
    ``headers`` are the fields actually sent (User-Agent, Accept-Encoding, Host
    included); ``content`` is the whole body, a streamed one gathered.
    """

    method: str
    url: str
    headers: Headers
    content: bytes = b""
    target: str = field(default="", repr=False)  # the request-target as sent


class RequestReader:
    """Bytes written by a client, split into the requests they carry."""

    def __init__(self, scheme: str) -> None:
        self._scheme = scheme
        self._buffer = bytearray()
        self._head: tuple[str, str, Headers] | None = None
        self._body = bytearray()
        self._remaining: int | None = None  # Content-Length still to read
        self._chunked = False
        self.continue_wanted = False  # the latest head asked for "100 Continue"

    def feed(self, data: bytes) -> list[MockRequest]:
        self._buffer += data
        done: list[MockRequest] = []
        while True:
            request = self._step()
            if request is None:
                return done
            done.append(request)

    def _step(self) -> MockRequest | None:
        if self._head is None and not self._read_head():
            return None
        if self._chunked:
            if not self._read_chunks():
                return None
        elif self._remaining:
            take = min(self._remaining, len(self._buffer))
            self._body += self._buffer[:take]
            del self._buffer[:take]
            self._remaining -= take
            if self._remaining:
                return None
        assert self._head is not None
        method, target, headers = self._head
        self._head = None
        body, self._body = bytes(self._body), bytearray()
        return MockRequest(method, self._url(target, headers), headers, body, target)

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        method, target, _version = lines[0].split(" ", 2)
        pairs = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"mock server: a malformed request field {line!r}")
            pairs.append((name.strip(), value.strip()))
        headers = Headers(pairs)
        self._head = (method, target, headers)
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._remaining = int(headers.get("content-length", "0") or 0)
        self.continue_wanted = headers.get("expect", "").lower() == "100-continue"
        return True

    def _read_chunks(self) -> bool:
        """Move whole chunks from the buffer to the body; True at the last chunk."""
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(self._buffer[:line_end]).split(b";")[0], 16)
            if size == 0:
                # The last chunk: no trailers from this client, a blank line ends it.
                if len(self._buffer) < line_end + 4:
                    return False
                del self._buffer[: line_end + 4]
                self._chunked = False
                return True
            start = line_end + 2
            if len(self._buffer) < start + size + 2:
                return False
            self._body += self._buffer[start : start + size]
            del self._buffer[: start + size + 2]

    def _url(self, target: str, headers: Headers) -> str:
        if "://" in target:  # absolute-form, as sent to a forwarding proxy
            return target
        return f"{self._scheme}://{headers.get('host', '')}{target}"


def encode_response(
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    content: bytes,
    method: str,
    http_version: str,
) -> bytes:
    """A response's bytes, framed by Content-Length unless its headers frame it.

    ``Transfer-Encoding: chunked`` among the headers sends ``content`` as one
    chunk; a Content-Length among them is sent as given (a wrong one is the
    client's to detect). A HEAD, 1xx, 204 or 304 response carries no body.
    """
    names = {name.lower() for name, _ in headers}
    bodiless = method == "HEAD" or status in (204, 304) or 100 <= status < 200
    chunked = any(n.lower() == "transfer-encoding" and "chunked" in v.lower() for n, v in headers)
    fields = list(headers)
    if not bodiless and not chunked and "content-length" not in names:
        fields.append(("Content-Length", str(len(content))))
    if bodiless:
        body = b""
    elif chunked:
        body = (b"%x\r\n%b\r\n" % (len(content), content) if content else b"") + b"0\r\n\r\n"
    else:
        body = content
    lines = [f"{http_version} {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
