"""aiofasthttp is POSIX-only: where select.poll is missing (Windows) the import says so."""

from __future__ import annotations

import subprocess
import sys


def test_import_fails_clearly_without_poll() -> None:
    code = "import select; del select.poll; import aiofasthttp"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "ImportError: aiofasthttp runs on POSIX systems" in done.stderr
    assert "select.poll()" in done.stderr
