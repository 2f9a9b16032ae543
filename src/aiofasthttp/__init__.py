"""aiofasthttp: a fast asyncio HTTP/1.1 client whose pool never hands out a closed connection."""

from ._version import __version__
from .engine.client import Client
from .engine.pipeline import PipelineClient
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .h1.auth import BasicAuth, DigestAuth
from .h1.cookies import Cookies
from .h1.headers import Headers
from .h1.response import Response
from .policy.retry import RetryPolicy

__all__ = [
    "BasicAuth",
    "Client",
    "Cookies",
    "DigestAuth",
    "Headers",
    "PipelineClient",
    "Response",
    "RetryPolicy",
    "__version__",
    *_errors_all,
]
