"""The verb helpers' signature (``client.get``, ``.post``, ...), written once for the
type checker.

At run time each helper passes its keywords on to ``request()`` as they came (naming
all thirteen in the call would cost every request their matching); this Protocol
gives mypy request()'s keywords, typed, so a misspelt one is an error.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..h1.headers import HeadersLike
from ..h1.multipart import FilesArg
from ..h1.request import Content, QueryParams
from ..h1.response import Response
from .calls import AuthArg, RequestTimeouts

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Verb(Protocol):
    """``client.get(url, ...)`` and its kin: ``request(METHOD, url, ...)``'s keywords."""

    def __call__(
        self,
        url: str,
        *,
        params: QueryParams | None = None,
        headers: HeadersLike | None = None,
        content: Content | None = None,
        json: Any = None,
        data: Any = None,
        files: FilesArg | None = None,
        cookies: Mapping[str, str] | None = None,
        auth: AuthArg | None = None,
        timeout: float | None = ...,
        connection_close: bool = False,
        follow_redirects: bool | None = None,
        **timeouts: Unpack[RequestTimeouts],
    ) -> Coroutine[Any, Any, Response]: ...
