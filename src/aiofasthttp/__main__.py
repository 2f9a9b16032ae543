"""``python -m aiofasthttp``, and the ``aiofasthttp`` script: see :mod:`aiofasthttp.cli`."""

from __future__ import annotations

import sys

from . import cli


def main() -> int:
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
