"""The public conformance corpus (tests/corpus/, see its README.md), for both parsers.

Every ``strict`` case and every ``h11-head-only`` case is fed to a fresh parser
without EOF and compared by the rules of the corpus's ``check_corpus.py``:
error versus no error, then, for the messages the source specifies, the count
and each message's status, reason, version, headers, body and ``complete``
(an error case compares only the messages completed before the error; a
``partial`` case only the listed ones, and no further complete message may
appear). Secondary fields (keep-alive, chunked, trailers) never decide.

Two adjustments, both from the shape of our interface:

- A head is reported only once complete, so a trailing message whose head was
  still incomplete cannot be compared; instead ``parser.in_message`` must be
  true at the end.
- 1xx interim heads (``on_informational``) count as complete messages, as they
  do in llhttp's log.

A case where we deliberately differ is listed in ``corpus/deviations.txt``
with its reason. The list must stay honest: an unlisted case that disagrees
fails, and so does a listed case that agrees.

``lenient-*`` cases are inputs llhttp accepts only when told to be lenient; we
have no leniency switches, so each must be rejected. The one ``limit-*`` case
runs with its 80 KiB head limit and must raise HeadTooLarge.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aiofasthttp.errors import HeadTooLarge, ProtocolError
from parser_helpers import byte_by_byte

CORPUS_DIR = Path(__file__).parent / "corpus"
CASES: list[dict[str, Any]] = json.loads((CORPUS_DIR / "responses.json").read_text())
COMPARED_MODES = ("strict", "h11-head-only")
# Each final response gets its request's method queued; more than any case holds.
MAX_MESSAGES = 64


def load_deviations() -> dict[str, str]:
    deviations = {}
    for line in (CORPUS_DIR / "deviations.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        case_id, sep, reason = line.partition("\t")
        assert sep and reason.strip(), f"deviations.txt: no tab-separated reason in {line!r}"
        assert case_id not in deviations, f"deviations.txt: {case_id!r} listed twice"
        deviations[case_id] = reason
    return deviations


DEVIATIONS = load_deviations()


def cases_in(*modes: str) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in CASES if case["mode"] in modes]


# -- our side: a sink shaped like the corpus's messages ------------------------


class MessageSink:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._head: Any = None

    def _message(self, head: Any, complete: bool) -> dict[str, Any]:
        message = {
            "status": head.status,
            "reason": bytes(head.reason),
            "version": "{}.{}".format(*head.version),
            "headers": [(bytes(n), bytes(v)) for n, v in head.headers],
            "body": b"",
            "complete": complete,
            "keep_alive": head.keep_alive,
            "chunked": head.chunked,
        }
        self.messages.append(message)
        return message

    def on_informational(self, head: Any) -> None:
        self._message(head, complete=True)

    def on_head(self, head: Any) -> None:
        self._head = head
        self._message(head, complete=False)

    def on_body(self, chunk: bytes) -> None:
        self.messages[-1]["body"] += bytes(chunk)

    def on_complete(self) -> None:
        self.messages[-1]["complete"] = True


@dataclass
class Actual:
    error: ProtocolError | None
    messages: list[dict[str, Any]]
    in_message: bool
    upgraded_data: bytes | None


def parse_case(
    impl: ModuleType, case: dict[str, Any], pieces: list[bytes] | None = None, **limits: int
) -> Actual:
    raw = base64.b64decode(case["raw_b64"])
    sink = MessageSink()
    parser = impl.ResponseParser(sink, **limits)
    for _ in range(MAX_MESSAGES):
        parser.expect(case["request_method"])
    error = None
    try:
        for piece in [raw] if pieces is None else pieces:
            parser.feed(piece)
    except ProtocolError as exc:
        error = exc
    upgraded = parser.upgraded_data() if error is None and parser.upgraded else None
    in_message = error is None and parser.in_message
    return Actual(error, sink.messages, in_message, upgraded)


# -- the comparison (check_corpus.py's primary fields) -------------------------


def _text(value: Any) -> bytes | None:
    return None if value is None else str(value).encode("latin-1")


def _expected(message: dict[str, Any], hints: dict[str, str]) -> dict[str, Any]:
    def pairs(items: list[list[str]] | None) -> list[tuple[bytes, bytes]] | None:
        if items is None:
            return None
        return [_hinted(_text(n), _text(v), hints) for n, v in items]  # type: ignore[arg-type]

    body = message.get("body_b64")
    return {
        "status": message.get("status"),
        "reason": _text(message.get("reason")),
        "version": message.get("version"),
        "headers": pairs(message.get("headers")),
        "body": None if body is None else base64.b64decode(body),
        "complete": message.get("complete"),
    }


def _hinted(name: bytes, value: bytes, hints: dict[str, str]) -> tuple[bytes, bytes]:
    if hints.get("header_name_case") == "insensitive":
        name = name.lower()
    if hints.get("header_value_ws") == "strip":
        value = value.strip(b" \t")
    return name, value


def disagreements(case: dict[str, Any], actual: Actual) -> list[str]:
    """The primary-field differences between a case and our result (empty: agree)."""
    expect = case["expect"]
    hints = case.get("compare", {})
    diffs = []
    if expect["error"] is not None and (actual.error is not None) != expect["error"]:
        diffs.append(f"error: expected {expect['error']}, got {actual.error!r}")
    expected = expect.get("messages")
    if expected is None:
        return diffs
    got = actual.messages
    if expect["error"]:
        got = [m for m in got if m["complete"]]
        if len(got) != len(expected):
            diffs.append(f"messages completed before the error: {len(expected)} != {len(got)}")
    else:
        if expected and expected[-1].get("status") is None:
            # A trailing message whose head is incomplete: we cannot report it.
            expected = expected[:-1]
            if not actual.in_message:
                diffs.append("a trailing incomplete head, but in_message is false")
        if expect.get("partial"):
            if len(got) < len(expected):
                diffs.append(f"messages: expected at least {len(expected)}, got {len(got)}")
            if any(m["complete"] for m in got[len(expected) :]):
                diffs.append("unexpected extra complete message")
        elif len(got) != len(expected):
            diffs.append(f"message count: expected {len(expected)}, got {len(got)}")
    for i, (want, have) in enumerate(zip(expected, got, strict=False)):
        want = _expected(want, hints)
        have = dict(have, headers=[_hinted(n, v, hints) for n, v in have["headers"]])
        for key, value in want.items():
            if value is not None and have[key] != value:
                diffs.append(f"msg[{i}].{key}: {_first_difference(value, have[key])}")
    return diffs


def _first_difference(want: Any, have: Any) -> str:
    if isinstance(want, list) and isinstance(have, list):
        for j, (w, h) in enumerate(zip(want, have, strict=False)):
            if w != h:
                return f"[{j}] expected {w!r:.100}, got {h!r:.100}"
        return f"expected {len(want)} items, got {len(have)}"
    return f"expected {want!r:.100}, got {have!r:.100}"


# -- the tests -----------------------------------------------------------------


@pytest.mark.parametrize("case", cases_in(*COMPARED_MODES))
def test_corpus_case(parser_impl: ModuleType, case: dict[str, Any]) -> None:
    actual = parse_case(parser_impl, case)
    diffs = disagreements(case, actual)
    if case["id"] in DEVIATIONS:
        assert diffs, (
            f"listed in deviations.txt ({DEVIATIONS[case['id']]}) but now agrees: "
            "remove it from the list"
        )
        return
    assert not diffs, "\n".join(diffs)
    upgrade_offset = case["expect"].get("upgrade_offset")
    if upgrade_offset is not None:
        raw = base64.b64decode(case["raw_b64"])
        assert actual.upgraded_data == raw[upgrade_offset:]


def error_key(error: ProtocolError | None) -> tuple[str, str | None, int] | None:
    return None if error is None else (type(error).__name__, error.reason, error.offset)


@pytest.mark.parametrize("case", cases_in("strict"))
def test_corpus_case_byte_by_byte(parser_impl: ModuleType, case: dict[str, Any]) -> None:
    """Fed one byte at a time, a case has the same outcome as fed whole, error offset included."""
    whole = parse_case(parser_impl, case)
    raw = base64.b64decode(case["raw_b64"])
    split = parse_case(parser_impl, case, byte_by_byte(raw))
    assert error_key(split.error) == error_key(whole.error)
    assert split.messages == whole.messages
    assert (split.in_message, split.upgraded_data) == (whole.in_message, whole.upgraded_data)


def eof_cases() -> list[Any]:
    """Agreeing strict cases that end without an error and specify their messages."""
    return [
        param
        for param in cases_in("strict")
        if param.values[0]["id"] not in DEVIATIONS
        and param.values[0]["expect"]["error"] is False
        and not param.values[0]["expect"].get("partial")
        and param.values[0]["expect"]["messages"]
    ]


@pytest.mark.parametrize("case", eof_cases())
def test_corpus_case_at_eof(parser_impl: ModuleType, case: dict[str, Any]) -> None:
    """EOF completes a close-delimited last message and fails one that was cut short."""
    expected = case["expect"]["messages"]
    raw = base64.b64decode(case["raw_b64"])
    sink = MessageSink()
    parser = parser_impl.ResponseParser(sink)
    for _ in range(MAX_MESSAGES):
        parser.expect(case["request_method"])
    parser.feed(raw)
    last = expected[-1]
    if last["complete"] or last.get("complete_on_eof"):
        parser.feed_eof()
        assert len(sink.messages) == len(expected)
        assert all(m["complete"] for m in sink.messages)
    else:  # a head or body cut short
        with pytest.raises(ProtocolError) as info:
            parser.feed_eof()
        assert info.value.reason == "incomplete_response"


def test_deviations_name_existing_cases() -> None:
    ids = {case["id"] for case in CASES if case["mode"] in COMPARED_MODES}
    assert set(DEVIATIONS) <= ids, set(DEVIATIONS) - ids


@pytest.mark.parametrize(
    "case", cases_in(*[m for m in {c["mode"] for c in CASES} if m.startswith("lenient-")])
)
def test_lenient_case_is_rejected(parser_impl: ModuleType, case: dict[str, Any]) -> None:
    actual = parse_case(parser_impl, case)
    assert actual.error is not None, actual.messages


@pytest.mark.parametrize("case", cases_in("limit-http-parser-80KiB-head"))
def test_head_limit_case(parser_impl: ModuleType, case: dict[str, Any]) -> None:
    actual = parse_case(parser_impl, case, max_head_size=80 * 1024, max_headers=1 << 20)
    assert isinstance(actual.error, HeadTooLarge)
    assert case["expect"]["error"] is True
