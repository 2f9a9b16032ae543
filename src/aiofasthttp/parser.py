"""The public home of the response parser: see :mod:`aiofasthttp.h1.parser`."""

from .h1.parser import *  # noqa: F403
from .h1.parser import __all__ as __all__
