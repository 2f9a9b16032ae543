"""aiofasthttp: a fast asyncio HTTP/1.1 client whose pool never hands out a closed connection."""

from ._version import __version__
from .client import Client
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .headers import Headers
from .pipeline import PipelineClient
from .response import Response
from .retry import RetryPolicy

__all__ = [
    "Client",
    "Headers",
    "PipelineClient",
    "Response",
    "RetryPolicy",
    "__version__",
    *_errors_all,
]
