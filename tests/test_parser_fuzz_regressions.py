"""Regression cases from fuzzing the parsers (``python -m fuzz``; fuzz/README.md).

Every crash, hang or disagreement the fuzzers find goes into ``FOUND`` below
(minimised, with what the fixed parser must do), or, while the parser still
has it, with ``xfail(strict=True, reason=...)``. Any finding file committed
under ``fuzz/findings/`` is replayed too and must no longer reproduce.

So far (see the README's run log) the fuzzers have found no crash, hang or
disagreement in the parsers as of commit dbb5f0f. ``PROBES`` pins the edge
cases worked through by hand around the fuzzers' mutations (numbers at the
2**63 boundary, leading zeros, empty list members, folds in framing fields,
1xx and 101 heads with framing fields): each must give the stated result on
both parsers, fed whole and one byte at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aiofasthttp.errors import ProtocolError
from fuzz import differential
from parser_helpers import byte_by_byte, run

ROOT = Path(__file__).resolve().parent.parent

S200 = b"HTTP/1.1 200 OK\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


@dataclass(frozen=True)
class Probe:
    id: str
    data: bytes
    methods: tuple[bytes, ...] = ()
    eof: bool = False
    # The error the run must end with (reason, offset), or None.
    error: tuple[str, int] | None = None
    # Attributes the last final head must have (when there is no error).
    head: dict[str, Any] = field(default_factory=dict)
    body: bytes | None = None
    upgraded_data: bytes | None = None


# Crashes, hangs and disagreements found by the fuzzers: none so far.
FOUND: list[Probe] = []

PROBES = [
    Probe(
        "content-length-largest",
        S200 + b"Content-Length: 9223372036854775807\r\n\r\nx",
        head={"content_length": 2**63 - 1},
        body=b"x",
    ),
    Probe(
        "content-length-2-to-the-63",
        S200 + b"Content-Length: 9223372036854775808\r\n\r\nx",
        error=("invalid_content_length", len(S200)),
    ),
    Probe(
        "content-length-19-digits-with-leading-zeros",
        S200 + b"Content-Length: 0000000000000000001\r\n\r\nx",
        head={"content_length": 1},
        body=b"x",
    ),
    Probe(
        "content-length-20-digits",
        S200 + b"Content-Length: 00000000000000000001\r\n\r\nx",
        error=("invalid_content_length", len(S200)),
    ),
    Probe(
        "content-length-empty-list-member",
        S200 + b"Content-Length: 1, ,1\r\n\r\nx",
        error=("invalid_content_length", len(S200)),
    ),
    Probe(
        "chunk-size-largest",
        S200 + CHUNKED + b"\r\n7fffffffffffffff\r\nx",
        head={"chunked": True},
        body=b"x",
    ),
    Probe(
        "chunk-size-2-to-the-63",
        S200 + CHUNKED + b"\r\n8000000000000000\r\nx",
        error=("invalid_chunk_size", len(S200 + CHUNKED + b"\r\n")),
    ),
    Probe(
        "chunk-size-many-leading-zeros",
        S200 + CHUNKED + b"\r\n00000000000000000000001\r\nx\r\n0\r\n\r\n",
        head={"chunked": True, "trailers": []},
        body=b"x",
    ),
    Probe(
        "transfer-encoding-only-a-comma-with-content-length",
        S200 + b"Transfer-Encoding: ,\r\nContent-Length: 3\r\n\r\nabc",
        eof=True,
        head={"content_length": None, "keep_alive": False, "chunked": False},
        body=b"abc",
    ),
    Probe(
        "keep-alive-hint-folded-after-the-equals-sign",
        S200 + b"Keep-Alive: timeout=\r\n 5\r\nContent-Length: 0\r\n\r\n",
        head={
            "keep_alive_timeout": None,
            "headers": [(b"Keep-Alive", b"timeout= 5"), (b"Content-Length", b"0")],
        },
    ),
    Probe(
        "keep-alive-hint-quoted-tabs-leading-zeros",
        S200 + b'Keep-Alive: timeout\t=\t"5", MAX=000000007\r\nContent-Length: 0\r\n\r\n',
        head={"keep_alive_timeout": 5, "keep_alive_max": 7},
    ),
    Probe(
        "switching-protocols-ignores-transfer-encoding",
        b"HTTP/1.1 101 Sw\r\n" + CHUNKED + b"\r\nxyz",
        head={"upgrade": True, "chunked": False},
        upgraded_data=b"xyz",
    ),
    Probe(
        "fold-as-first-trailer-line",
        S200 + CHUNKED + b"\r\n0\r\n \r\n\r\n",
        error=("invalid_header_name", len(S200 + CHUNKED + b"\r\n0\r\n")),
    ),
    Probe(
        "interim-head-with-content-length-has-no-body",
        b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n" + S200 + b"Content-Length: 0\r\n\r\n",
        head={"status": 200},
        body=b"",
    ),
]
ALL = FOUND + PROBES


def outcome(impl: ModuleType, probe: Probe, pieces: list[bytes]) -> tuple[Any, ...]:
    out = run(impl, pieces, methods=probe.methods, eof=probe.eof)
    parser = out.parser
    state = None if out.error else (parser.in_message, parser.upgraded, parser.upgraded_data())
    return (out.events, out.error_type, out.reason, out.offset, state)


@pytest.mark.parametrize("probe", ALL, ids=[p.id for p in ALL])
def test_probe(parser_impl: ModuleType, probe: Probe) -> None:
    out = run(parser_impl, probe.data, methods=probe.methods, eof=probe.eof)
    if probe.error is not None:
        assert (out.reason, out.offset) == probe.error
        return
    assert out.error is None, out.error
    head = out.sink.heads[-1]
    for name, want in probe.head.items():
        assert getattr(head, name) == want, name
    if probe.body is not None:
        assert out.sink.body == probe.body
    if probe.upgraded_data is not None:
        assert out.parser.upgraded_data() == probe.upgraded_data


@pytest.mark.parametrize("probe", ALL, ids=[p.id for p in ALL])
def test_probe_same_on_both_parsers_whole_and_byte_by_byte(
    both_parser_impls: tuple[ModuleType, ModuleType], probe: Probe
) -> None:
    python, compiled = both_parser_impls
    whole = outcome(python, probe, [probe.data])
    for impl in (python, compiled):
        assert outcome(impl, probe, [probe.data]) == whole
        assert outcome(impl, probe, byte_by_byte(probe.data)) == whole


class SinkBoom(Exception):
    pass


@pytest.mark.parametrize("at_call", range(1, 8))
def test_an_exception_from_the_sink_passes_through_and_fails_the_parser(
    parser_impl: ModuleType, at_call: int
) -> None:
    """The differential fuzzer's sink-exception runs, as one check per callback."""
    calls: list[str] = []

    class Sink:
        def _tick(self, name: str) -> None:
            calls.append(name)
            if len(calls) == at_call:
                raise SinkBoom(name)

        def on_informational(self, head: Any) -> None:
            self._tick("informational")

        def on_head(self, head: Any) -> None:
            self._tick("head")

        def on_body(self, chunk: Any) -> None:
            self._tick("body")

        def on_complete(self) -> None:
            self._tick("complete")

    data = b"HTTP/1.1 100 Continue\r\n\r\n" + S200 + b"Content-Length: 3\r\n\r\nabc"
    data += S200 + CHUNKED + b"\r\n1\r\nx\r\n0\r\n\r\n"
    parser = parser_impl.ResponseParser(Sink())
    with pytest.raises(SinkBoom):
        parser.feed(data)
    with pytest.raises(ProtocolError) as exc:
        parser.feed(S200)
    assert exc.value.reason == "parser_failed"


def test_committed_findings_no_longer_reproduce(
    both_parser_impls: tuple[ModuleType, ModuleType],
) -> None:
    python, compiled = both_parser_impls
    for path in sorted((ROOT / "fuzz" / "findings").glob("*.json")):
        record = json.loads(path.read_text())
        case = differential.Case.from_json(record["case"])
        verdict = differential.check(case, python, compiled)
        assert verdict is None, f"{path.name}: {verdict.kind} {verdict.detail}"
