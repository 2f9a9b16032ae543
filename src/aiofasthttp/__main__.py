"""``python -m aiofasthttp``, and the ``aiofasthttp`` script: see :mod:`aiofasthttp.tools.cli`."""

from __future__ import annotations

import sys

from .tools import cli


def main() -> int:
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
