"""Build the Cython response parser from cext/ into the package.

The extension is optional: with AIOFASTHTTP_NO_EXTENSIONS=1, on an interpreter
other than CPython, or when Cython or a C compiler is missing, the install still
succeeds and the package uses its pure-Python parser.
"""

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _want_extensions() -> bool:
    if os.environ.get("AIOFASTHTTP_NO_EXTENSIONS", "") not in ("", "0"):
        return False
    return platform.python_implementation() == "CPython"


class OptionalBuildExt(build_ext):
    """Build the extension, but never fail the install because of it."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        sys.stderr.write(
            f"aiofasthttp: the C parser was not built ({exc}); "
            "the pure-Python parser will be used.\n"
        )


def _extensions() -> list[Extension]:
    if not _want_extensions():
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.stderr.write("aiofasthttp: Cython not found; using the pure-Python parser.\n")
        return []
    ext = Extension(
        "aiofasthttp._cparser",
        ["cext/_cparser.pyx"],
        extra_compile_args=["-O2"],
    )
    if not os.path.exists(ext.sources[0]):
        return []
    try:
        return cythonize(
            [ext],
            language_level=3,
            compiler_directives={
                "boundscheck": False,
                "wraparound": False,
                "cdivision": True,
                "embedsignature": True,
            },
        )
    except Exception as exc:
        sys.stderr.write(f"aiofasthttp: cythonize failed ({exc}); using the pure-Python parser.\n")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
