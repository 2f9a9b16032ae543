"""-u/--digest, -F, -b/-c: auth, multipart forms and cookie files, as curl has them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from http.cookiejar import LoadError, MozillaCookieJar
from typing import IO, Any

from ...h1.auth import Auth, BasicAuth, DigestAuth
from ...h1.cookies import Cookies, RFC6265Policy
from .exits import UsageError
from .request import FetchRequest


def add_curl_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-u", "--user", metavar="USER:PASSWORD", help="Basic auth (see --digest)")
    parser.add_argument("--digest", action="store_true", help="with -u: Digest auth, not Basic")
    parser.add_argument(
        "-F",
        "--form",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a multipart/form-data field (POST); NAME=@FILE sends a file; repeat for more",
    )
    parser.add_argument(
        "-b", "--cookie", metavar="FILE|NAME=VALUE", help="send cookies: a cookies.txt file"
    )
    parser.add_argument("-c", "--cookie-jar", metavar="FILE", help="write the cookies to FILE")


@dataclass
class CurlExtras:
    """What -u, -F, -b and -c ask of the client and of each request."""

    auth: Auth | None
    jar: Cookies | bool
    cookie_values: dict[str, str]
    fields: list[tuple[str, str]]
    files: list[tuple[str, IO[bytes]]]
    save_to: str | None

    @classmethod
    def from_args(cls, args: Any, req: FetchRequest) -> CurlExtras:
        if args.form and req.body is not None:
            raise UsageError("-F cannot go with -d or --json")
        auth = _auth(args.user, args.digest)
        jar, values = _cookies_from(args.cookie, args.cookie_jar)
        fields, files = _form(args.form)
        return cls(auth, jar, values, fields, files, args.cookie_jar)

    def form(self) -> dict[str, Any]:
        """The request's own keywords: files (sent from their start each time), cookies."""
        extra: dict[str, Any] = {}
        if self.fields or self.files:
            for _, f in self.files:
                f.seek(0)
            extra.update(data=self.fields, files=self.files)
        if self.cookie_values:
            extra["cookies"] = self.cookie_values
        return extra

    def close(self) -> None:
        for _, f in self.files:
            f.close()
        jar = self.jar.jar if isinstance(self.jar, Cookies) else None
        if self.save_to is not None and isinstance(jar, MozillaCookieJar):
            try:
                jar.save(self.save_to, ignore_discard=True, ignore_expires=True)
            except OSError as exc:
                raise UsageError(f"-c {self.save_to}: {exc.strerror or exc}") from None


def _auth(user: str | None, digest: bool) -> Auth | None:
    if user is None:
        return None
    name, colon, password = user.partition(":")
    if not colon:
        raise UsageError("-u takes USER:PASSWORD")
    return DigestAuth(name, password) if digest else BasicAuth(name, password)


def _cookies_from(given: str | None, save_to: str | None) -> tuple[Cookies | bool, dict[str, str]]:
    """The jar (a cookies.txt file's, kept as curl keeps it) and -b NAME=VALUE cookies.
    Without -b or -c, as in curl, no cookies are kept."""
    values: dict[str, str] = {}
    if given is None and save_to is None:
        return False, values
    jar = MozillaCookieJar()
    jar.set_policy(RFC6265Policy())
    if given is not None and "=" in given:
        for item in given.split(";"):
            name, _, value = item.strip().partition("=")
            if name:
                values[name] = value
    elif given is not None:
        try:
            jar.load(given, ignore_discard=True, ignore_expires=True)
        except FileNotFoundError:
            pass  # as curl: no file, no cookies
        except (OSError, LoadError) as exc:
            raise UsageError(f"-b {given}: {exc}") from None
    return Cookies(jar), values


def _form(items: Sequence[str]) -> tuple[list[tuple[str, str]], list[tuple[str, IO[bytes]]]]:
    fields: list[tuple[str, str]] = []
    files: list[tuple[str, IO[bytes]]] = []
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise UsageError(f"-F {item!r}: use NAME=VALUE or NAME=@FILE")
        if not value.startswith("@"):
            fields.append((name, value))
            continue
        try:
            files.append((name, open(value[1:], "rb")))  # noqa: SIM115 (closed by close())
        except OSError as exc:
            for _, f in files:
                f.close()
            raise UsageError(f"-F {item}: {exc.strerror or exc}") from None
    return fields, files
