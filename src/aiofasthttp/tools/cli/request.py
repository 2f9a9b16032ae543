"""The request the fetch command sends, from its arguments: method, URL, headers, body."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from .exits import UsageError


def parse_headers(items: Sequence[str]) -> list[tuple[str, str]]:
    """The -H 'Name: value' items (the doctor's too) as (name, value) pairs."""
    headers = []
    for item in items:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            raise UsageError(f"-H wants 'Name: value', not {item!r}")
        headers.append((name.strip(), value.strip()))
    return headers


def with_scheme(text: str) -> str:
    """The URL given, ``http://`` in front when it names no scheme (as curl)."""
    return text if "://" in text else f"http://{text}"


@dataclass
class FetchRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None


def fetch_request_from(args: Any, stdin: IO[bytes] | None = None) -> FetchRequest:
    headers = parse_headers(args.header)
    names = {name.lower() for name, _ in headers}
    body: bytes | None = None
    if args.json is not None:
        try:
            json.loads(args.json)
        except ValueError as exc:
            raise UsageError(f"--json is not valid JSON: {exc}") from None
        body = args.json.encode()
        for name, value in (("Content-Type", "application/json"), ("Accept", "application/json")):
            if name.lower() not in names:
                headers.append((name, value))
    elif args.data is not None:
        body = _read_data(args.data, stdin)
        if "content-type" not in names:
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    posts = body is not None or bool(args.form)
    if args.head and posts:
        raise UsageError("-I (HEAD) sends no body: drop -d/--json/-F")
    default = "HEAD" if args.head else "POST" if posts else "GET"
    method = (args.method or default).upper()
    return FetchRequest(method, with_scheme(args.url), headers, body)


def _read_data(data: str, stdin: IO[bytes] | None) -> bytes:
    if not data.startswith("@"):
        return data.encode()
    if data == "@-":
        return (stdin or sys.stdin.buffer).read()
    try:
        with open(data[1:], "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"-d {data}: {exc.strerror or exc}") from None
