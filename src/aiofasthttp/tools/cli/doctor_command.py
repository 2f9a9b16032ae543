"""``aiofasthttp doctor URL``: run the diagnosis (tools/doctor) and print its report."""

from __future__ import annotations

from typing import IO, Any, TextIO

from ...errors import HTTPError
from .. import cli
from ..doctor import DoctorOptions, render_json, render_text
from .exits import ERROR_KIND, EXIT_OK, exit_code
from .request import parse_headers, with_scheme


async def doctor(args: Any, out: IO[bytes], err: TextIO) -> int:
    options = DoctorOptions(
        max_idle=args.max_idle,
        max_requests=args.max_requests,
        max_lifetime=args.max_lifetime,
        parallel=args.parallel,
        timeout=args.timeout,
        method=args.method,
        headers=tuple(parse_headers(args.header)),
        insecure=args.insecure,
    )
    url = with_scheme(args.url)
    if not args.json:
        err.write(
            f"aiofasthttp doctor: probing {url} (idle gaps up to {args.max_idle:g} s, "
            f"up to {args.max_requests} requests on one connection)...\n"
        )
    try:
        # Looked up on the package when called: ``cli.diagnose`` is the one name to
        # replace for a stand-in diagnosis (tests/test_cli.py does so).
        report = await cli.diagnose(url, options)
    except HTTPError as exc:
        code = exit_code(exc)
        err.write(f"aiofasthttp doctor: {ERROR_KIND.get(code, 'error')}: {exc}\n")
        return code
    text = render_json(report) + "\n" if args.json else render_text(report)
    out.write(text.encode())
    out.flush()
    return EXIT_OK
