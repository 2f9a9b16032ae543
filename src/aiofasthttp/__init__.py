"""aiofasthttp: a fast asyncio HTTP/1.1 client whose pool never hands out a closed connection."""

from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

__all__ = ["__version__", *_errors_all]
