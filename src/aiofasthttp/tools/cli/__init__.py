"""The command line: ``aiofasthttp URL`` fetches; ``aiofasthttp doctor URL`` diagnoses.

``main(argv)`` parses, runs on a fresh event loop (uvloop when installed, or
as ``--loop`` says) and returns the exit code; ``python -m aiofasthttp`` and
the ``aiofasthttp`` script call it. The fetch command is one :class:`Client`:
with ``--repeat`` it sends the same request again on that client, so with
``-v`` the trace shows connections dialled, reused, closed by the server and
retired, and every retry with its reason.

One job a module: ``parsing`` (the argument parsers), ``request`` (the request
from the arguments), ``curl`` (-u/--digest, -F, -b/-c), ``trace`` (the ``-v``
printer), ``fetch_command``, ``doctor_command``, ``exits`` (the exit codes) and
``dispatch`` (``main``). The names below are the package's, as before the split.
"""

from __future__ import annotations

from ...errors import HTTPError
from ..doctor import DoctorOptions, diagnose, render_json, render_text
from .curl import CurlExtras
from .dispatch import main, new_loop, run
from .doctor_command import doctor
from .exits import (
    EXIT_CLOSED,
    EXIT_CODES,
    EXIT_CONNECT,
    EXIT_FAILURE,
    EXIT_HTTP,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROTOCOL,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    UsageError,
    exit_code,
)
from .fetch_command import RETRY_STATUSES, fetch, progress_bar
from .parsing import doctor_parser, fetch_parser
from .request import FetchRequest, fetch_request_from
from .trace import VerboseTrace

__all__ = [
    "EXIT_CLOSED",
    "EXIT_CODES",
    "EXIT_CONNECT",
    "EXIT_FAILURE",
    "EXIT_HTTP",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROTOCOL",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "RETRY_STATUSES",
    "CurlExtras",
    "DoctorOptions",
    "FetchRequest",
    "HTTPError",
    "UsageError",
    "VerboseTrace",
    "diagnose",
    "doctor",
    "doctor_parser",
    "exit_code",
    "fetch",
    "fetch_parser",
    "fetch_request_from",
    "main",
    "new_loop",
    "progress_bar",
    "render_json",
    "render_text",
    "run",
]
