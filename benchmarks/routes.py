"""The routes the embedded server answers, and what a correct response to each holds.

Shared by the server (what to send), the workers (what to check) and the
report (what to call each route). Plain data: nothing here imports asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SMALL_BODY = b"aiofasthttp benchmark, a small response: " + b"s" * 58 + b"\n"  # 100 bytes
BIG_BODY = bytes(range(256)) * 256  # 65536 bytes
CHUNK = b"c" * 1023 + b"\n"
CHUNK_COUNT = 8
POST_BODY = b"p" * 4096


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    body: bytes | None = field(repr=False)  # the request body the client sends
    expect_length: int  # the response body length a correct response has


ROUTES: dict[str, Route] = {
    "small": Route("small", "GET", "/small", None, len(SMALL_BODY)),
    "64k": Route("64k", "GET", "/64k", None, len(BIG_BODY)),
    "chunked": Route("chunked", "GET", "/chunked", None, len(CHUNK) * CHUNK_COUNT),
    "post": Route("post", "POST", "/post", POST_BODY, len(SMALL_BODY)),
}
