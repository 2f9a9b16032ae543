"""Build the Cython response parser from cext/ into the package, with the modules
compiled from their own Python source (SOURCES below, each typed by its .pxd file)
and their helper (cext/_slots.pyx).

The extension is optional unless asked for: with AIOFASTHTTP_NO_EXTENSIONS=1, on an
interpreter other than CPython, or when Cython (and a generated .c) or a C compiler
is missing, the install still succeeds and the package uses its pure-Python parser,
after a warning in the build log (and another at import, see aiofasthttp.parser).
With AIOFASTHTTP_REQUIRE_EXTENSIONS=1 any of those is an error instead: release
builds (scripts/wheels) set it, so a wheel without the compiled parser is never made.
"""

import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PYX = "cext/_cparser.pyx"
GENERATED_C = "cext/_cparser.c"
# Each compiled module and its Cython source; the C generated from it sits beside it.
# The parser is the one the warnings name: the others are the same source as a
# pure-Python module that works without them, only slower.
SOURCES = {
    "aiofasthttp._cparser": PYX,
    "aiofasthttp._slots": "cext/_slots.pyx",
    "aiofasthttp.engine.exchange": "src/aiofasthttp/engine/exchange.py",
    "aiofasthttp.h1.response": "src/aiofasthttp/h1/response.py",
    "aiofasthttp.h1.request": "src/aiofasthttp/h1/request.py",
    "aiofasthttp.policy.learning": "src/aiofasthttp/policy/learning.py",
    "aiofasthttp.engine.poolcore": "src/aiofasthttp/engine/poolcore.py",
    "aiofasthttp.engine.connection": "src/aiofasthttp/engine/connection.py",
}


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


REQUIRED = _flag("AIOFASTHTTP_REQUIRE_EXTENSIONS")


class ExtensionBuildError(RuntimeError):
    """The compiled parser could not be built while AIOFASTHTTP_REQUIRE_EXTENSIONS=1."""


_warned = False


def _not_built(reason: str) -> None:
    """Say loudly why the compiled parser is missing; an error when it is required."""
    global _warned
    if REQUIRED:
        raise ExtensionBuildError(
            f"aiofasthttp: the compiled parser was not built: {reason} "
            "(AIOFASTHTTP_REQUIRE_EXTENSIONS=1 makes this an error)"
        )
    if _warned:
        sys.stderr.write(f"aiofasthttp: also not built: {reason}\n")
        return
    _warned = True
    rule = "*" * 78
    sys.stderr.write(
        f"\n{rule}\n"
        "WARNING: aiofasthttp's compiled parser (aiofasthttp._cparser) was NOT built:\n"
        f"  {reason}\n"
        "The pure-Python parser will be used: correct, but several times slower.\n"
        "To build it, install a C compiler and Python's headers (on Debian:\n"
        "`apt-get install gcc python3-dev`) and reinstall. Set\n"
        "AIOFASTHTTP_REQUIRE_EXTENSIONS=1 to make a failed build an error.\n"
        f"{rule}\n\n"
    )


class OptionalBuildExt(build_ext):
    """Build the extension; if that fails, warn (or fail when it is required)."""

    def run(self) -> None:
        try:
            super().run()
        except ExtensionBuildError:
            raise
        except Exception as exc:
            _not_built(f"{type(exc).__name__}: {exc}")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            _not_built(f"compiling {ext.name} failed: {type(exc).__name__}: {exc}")


def _cythonized(exts: list[Extension]) -> list[Extension] | None:
    """The extensions with their sources turned into C, or None when Cython is not there.

    The .pyx files are written for C: no bounds checks, no negative indexes, C
    division. A .py module compiled keeps Python's semantics, whatever its next edit.
    """
    try:
        from Cython.Build import cythonize
    except ImportError:
        return None
    written_for_c = [ext for ext in exts if ext.sources[0].endswith(".pyx")]
    python = [ext for ext in exts if not ext.sources[0].endswith(".pyx")]
    fast = {"boundscheck": False, "wraparound": False, "cdivision": True}
    return [
        *cythonize(
            written_for_c,
            language_level=3,
            compiler_directives={**fast, "embedsignature": True},
        ),
        *cythonize(python, language_level=3, compiler_directives={"embedsignature": True}),
    ]


def _extensions() -> list[Extension]:
    if _flag("AIOFASTHTTP_NO_EXTENSIONS"):
        if REQUIRED:
            raise ExtensionBuildError(
                "aiofasthttp: AIOFASTHTTP_NO_EXTENSIONS and AIOFASTHTTP_REQUIRE_EXTENSIONS "
                "are both set"
            )
        sys.stderr.write("aiofasthttp: AIOFASTHTTP_NO_EXTENSIONS is set; not building the parser\n")
        return []
    if platform.python_implementation() != "CPython":
        _not_built(f"{platform.python_implementation()} is not CPython")
        return []
    exts = [
        Extension(name, [source], extra_compile_args=["-O2"]) for name, source in SOURCES.items()
    ]
    if all(os.path.exists(source) for source in SOURCES.values()):
        try:
            built = _cythonized(exts)
        except Exception as exc:  # a Cython error: the shipped .c may still do
            sys.stderr.write(f"aiofasthttp: cythonize failed ({exc})\n")
            built = None
        if built is not None:
            return built
    generated = [os.path.splitext(source)[0] + ".c" for source in SOURCES.values()]
    if all(os.path.exists(c) for c in generated):  # an sdist built without Cython at hand
        for ext, c in zip(exts, generated, strict=True):
            ext.sources = [c]
        return exts
    _not_built(f"neither Cython with {PYX} nor {GENERATED_C} is available")
    return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
