"""Seed inputs and the mutations the fuzzers apply to them.

Seeds are the raw messages of ``tests/corpus/responses.json`` (with their
request method) and the cases of ``tests/test_parser_splits.py`` (with their
methods, limits and EOF), read from the repository without importing pytest.
A :class:`Mutator` turns a seed into a hostile variant: byte flips,
insertions of CR, LF, SP, HTAB, NUL, colon and digits, chunk-size edits,
duplicated or deleted slices, truncation and pipelining (another seed appended).
"""

from __future__ import annotations

import ast
import base64
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS_JSON = ROOT / "tests" / "corpus" / "responses.json"
SPLIT_CASES = ROOT / "tests" / "test_parser_splits.py"
MAX_SEED_SIZE = 4096  # the two 80-100 KiB corpus heads would only slow every run down


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    methods: tuple[bytes | str, ...] = ()
    limits: tuple[tuple[str, int], ...] = ()
    eof: bool = True


def corpus_seeds(path: Path = CORPUS_JSON) -> list[Seed]:
    out = []
    for case in json.loads(path.read_text()):
        data = base64.b64decode(case["raw_b64"])
        if len(data) > MAX_SEED_SIZE:
            continue
        method = case.get("request_method", "GET").encode("ascii")
        responses = max(1, len((case.get("expect") or {}).get("messages") or ()))
        out.append(Seed(case["id"], data, (method,) * responses))
    return out


class _CaseStub:
    def __init__(self, id: str, data: bytes, methods: Any = (), eof: bool = False, **kw: Any):
        self.seed = Seed(
            f"splits:{id}",
            data,
            tuple(methods),
            tuple(sorted((kw.get("limits") or {}).items())),
            eof,
        )


def split_case_seeds(path: Path = SPLIT_CASES) -> list[Seed]:
    """The ``CASES`` of test_parser_splits.py, by evaluating its top-level assignments."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return []
    namespace: dict[str, Any] = {"Case": _CaseStub, "field": lambda **kw: None}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            try:
                exec(compile(ast.Module([node], []), str(path), "exec"), namespace)
            except Exception:
                continue
    cases = namespace.get("CASES", [])
    return [c.seed for c in cases if isinstance(c, _CaseStub)]


BUILTIN_SEEDS = [
    Seed("builtin:length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    Seed(
        "builtin:chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;a="b"\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n',
    ),
    Seed(
        "builtin:keep-alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5, max=3\r\n"
        b"Content-Length: 0\r\n\r\n",
    ),
    Seed("builtin:upgrade", b"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n\x00\x01"),
    Seed("builtin:connect", b"HTTP/1.1 200 OK\r\n\r\ntunnel", (b"CONNECT",)),
]


def all_seeds() -> list[Seed]:
    return BUILTIN_SEEDS + split_case_seeds() + corpus_seeds()


# -- mutations ------------------------------------------------------------------

INSERT_BYTES = [b"\r", b"\n", b"\r\n", b" ", b"\t", b"\x00", b":", b"0", b"1", b"9", b"\r\n\r\n"]
DIGITS = b"0123456789"
TOKENS = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 ",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"Content-Length: 3\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 3, 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Keep-Alive: timeout=9, max=1\r\n",
    b"Set-Cookie: a=1\r\n",
    b"X: a\r\n b\r\n",
    b" folded\r\n",
    b"0\r\n\r\n",
    b"0\r\nT: v\r\n\r\n",
    b"1;e=1\r\nx\r\n",
    b';a="\\""',
    b"ffffffffffffffff",
    b"\x7f",
    b"\x80",
    b"\xff",
    b";",
    b"=",
    b'"',
    b",",
]
LIMITS = [
    (),
    (("max_head_size", 64),),
    (("max_headers", 2),),
    (("max_chunk_line_size", 8),),
    (("max_chunk_line_size", 8), ("max_head_size", 48), ("max_headers", 2)),
]
FRAMING_NAMES = [
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"proxy-connection",
    b"keep-alive",
    b"upgrade",
    b"trailer",
    b"set-cookie",
]
VALUE_PIECES = [
    b"chunked", b"gzip", b"identity", b"close", b"keep-alive", b"Keep-Alive", b"upgrade",
    b"timeout", b"max", b"=", b'"', b"5", b"0", b"12", b"1234567890", b"18446744073709551616",
    b",", b", ", b" ", b"\t", b";", b";q=1", b"\r\n ", b"\r\n\t", b"\x80", b"-", b"+",
]  # fmt: skip
METHODS: list[Any] = [b"GET", b"HEAD", b"CONNECT", b"get", b"POST", "HEAD", "connect"]
_CHUNK_SIZE_LINE = re.compile(rb"(?<=\n)([0-9A-Fa-f]+)(?=[;\r ])")
_NEWLINE = re.compile(rb"\n")


class Mutator:
    """Random hostile variants of the seeds; deterministic for a given ``random.Random``."""

    def __init__(self, rng: random.Random, seeds: list[Seed]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.ops = [
            (self.flip, 3),
            (self.insert_byte, 4),
            (self.insert_token, 3),
            (self.replace_byte, 2),
            (self.delete, 2),
            (self.chunk_size, 3),
            (self.duplicate, 2),
            (self.duplicate_line, 2),
            (self.truncate, 1),
            (self.pipeline, 2),
            (self.digits, 2),
            (self.big, 1),
            (self.framing_field, 3),
        ]
        self._weights = [w for _, w in self.ops]

    def mutate(self, data: bytes, count: int) -> bytes:
        buf = bytearray(data)
        for op in self.rng.choices([op for op, _ in self.ops], self._weights, k=count):
            op(buf)
        return bytes(buf)

    def _at(self, buf: bytearray) -> int:
        return self.rng.randint(0, len(buf))

    def flip(self, buf: bytearray) -> None:
        if buf:
            i = self.rng.randrange(len(buf))
            buf[i] ^= 1 << self.rng.randrange(8)

    def insert_byte(self, buf: bytearray) -> None:
        at = self._at(buf)
        buf[at:at] = self.rng.choice(INSERT_BYTES)

    def insert_token(self, buf: bytearray) -> None:
        at = self._line_start(buf) if self.rng.random() < 0.6 else self._at(buf)
        buf[at:at] = self.rng.choice(TOKENS)

    def replace_byte(self, buf: bytearray) -> None:
        if buf:
            buf[self.rng.randrange(len(buf))] = self.rng.choice(
                [0, 9, 10, 13, 32, 34, 44, 58, 59, 61, 92, 127, 128, 255, self.rng.randrange(256)]
            )

    def delete(self, buf: bytearray) -> None:
        if buf:
            at = self.rng.randrange(len(buf))
            del buf[at : at + self.rng.choice([1, 1, 2, 4, 16])]

    def chunk_size(self, buf: bytearray) -> None:
        """Rewrite one chunk-size number (or the start of any line) to another."""
        sizes = list(_CHUNK_SIZE_LINE.finditer(buf))
        if sizes:
            m = self.rng.choice(sizes)
            start, end = m.span(1)
            old = int(m.group(1), 16)
        else:
            start = end = self._line_start(buf)
            old = 0
        new = self.rng.choice(
            [
                b"%x" % max(0, old + self.rng.choice([-2, -1, 1, 2])),
                b"0",
                b"00" + m.group(1) if sizes else b"00",
                b"%X" % self.rng.randrange(1 << 20),
                b"f" * self.rng.choice([15, 16, 17, 20]),
                b"8" + b"0" * 15,
                b"7" + b"f" * 15,
                b"%x;ext" % old,
                b"%x " % old,
                b"-1",
                b"0x%x" % old,
            ]
        )
        buf[start:end] = new

    def duplicate(self, buf: bytearray) -> None:
        if buf:
            a = self.rng.randrange(len(buf))
            b = min(len(buf), a + self.rng.randint(1, 64))
            at = self._at(buf)
            buf[at:at] = buf[a:b]

    def duplicate_line(self, buf: bytearray) -> None:
        start = self._line_start(buf)
        end = buf.find(b"\n", start)
        if end >= 0:
            line = buf[start : end + 1]
            at = self._line_start(buf)
            buf[at:at] = line

    def truncate(self, buf: bytearray) -> None:
        if buf:
            del buf[self.rng.randrange(len(buf)) :]

    def pipeline(self, buf: bytearray) -> None:
        buf += self.rng.choice(self.seeds).data

    def digits(self, buf: bytearray) -> None:
        """Replace a run of digits (a status, a length, a timeout) with other digits."""
        runs = list(re.finditer(rb"[0-9]+", buf))
        if runs:
            m = self.rng.choice(runs)
            n = self.rng.choice([0, 1, 99, 100, 101, 199, 204, 304, 999, 2**31, 2**63, 10**20])
            buf[m.start() : m.end()] = str(n).encode()

    def framing_field(self, buf: bytearray) -> None:
        """A field line that decides framing or keep-alive, with a value made of pieces."""
        rng = self.rng
        name = bytes(c ^ 0x20 if c >= 0x61 and rng.random() < 0.2 else c
                     for c in rng.choice(FRAMING_NAMES))  # fmt: skip
        value = b"".join(rng.choice(VALUE_PIECES) for _ in range(rng.randint(0, 6)))
        at = self._line_start(buf)
        buf[at:at] = name + rng.choice([b":", b": ", b":\t", b" :"]) + value + b"\r\n"

    def big(self, buf: bytearray) -> None:
        """A long run of body-like bytes (heads kept by reference or copied; long lines)."""
        at = len(buf) if self.rng.random() < 0.5 else self._at(buf)
        buf[at:at] = self.rng.choice([b"x", b"ab", b"\xff", b"0"]) * self.rng.choice(
            [4095, 4097, 5000, 9000, 20000]
        )

    def _line_start(self, buf: bytearray) -> int:
        starts = [0] + [m.end() for m in _NEWLINE.finditer(buf)]
        return self.rng.choice(starts)

    # -- the rest of a case ---------------------------------------------------------

    def cuts(self, size: int) -> tuple[int, ...]:
        """Where to cut ``size`` bytes into feeds: whole, a few cuts, byte by byte, or runs."""
        rng = self.rng
        style = rng.random()
        if style < 0.15 or size == 0:
            return ()
        if size > 4096:  # a long input gets a few cuts only, or it takes too long
            style = max(style, 0.4)
        if style < 0.3:
            return tuple(range(1, size))
        if style < 0.4:
            step = rng.randint(2, 7)
            return tuple(range(step, size, step))
        return tuple(sorted(rng.randint(0, size) for _ in range(rng.randint(1, 8))))

    def methods(self, seed: Seed) -> tuple[bytes | str, ...]:
        if seed.methods and self.rng.random() < 0.7:
            return seed.methods
        return tuple(self.rng.choice(METHODS) for _ in range(self.rng.choice([0, 0, 1, 2, 3])))

    def limits(self, seed: Seed) -> tuple[tuple[str, int], ...]:
        rng = self.rng
        if seed.limits and rng.random() < 0.7:
            return seed.limits
        if rng.random() < 0.1:  # anything, down to nothing at all
            return (
                ("max_chunk_line_size", rng.randint(0, 24)),
                ("max_head_size", rng.randint(0, 200)),
                ("max_headers", rng.randint(0, 6)),
            )
        return rng.choice(LIMITS) if rng.random() < 0.3 else ()

    def piece_types(self) -> tuple[int, ...]:
        if self.rng.random() < 0.8:
            return ()
        return tuple(self.rng.randrange(3) for _ in range(self.rng.randint(1, 3)))
