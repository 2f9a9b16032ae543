"""Parser fixtures: every parser test runs against both implementations.

``parser_impl`` is the module of one implementation, ``aiofasthttp.h1._pyparser``
(id ``python``) or the compiled ``aiofasthttp._cparser`` (id ``c``). When the
compiled module cannot be imported the ``c`` tests fail, because a build that
silently fell back to pure Python is a broken build; only when
``AIOFASTHTTP_NO_EXTENSIONS`` is set are they skipped.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

PARSER_MODULES = {"python": "aiofasthttp.h1._pyparser", "c": "aiofasthttp._cparser"}


def extensions_disabled() -> bool:
    """The same test as aiofasthttp.parser: set to anything but "" or "0"."""
    return os.environ.get("AIOFASTHTTP_NO_EXTENSIONS", "") not in ("", "0")


def load_parser_module(name: str) -> ModuleType:
    """Import one implementation, failing (or skipping, if opted out) when it is missing."""
    if name == "c" and extensions_disabled():
        pytest.skip("AIOFASTHTTP_NO_EXTENSIONS is set: the compiled parser is not expected")
    try:
        return importlib.import_module(PARSER_MODULES[name])
    except ImportError as exc:
        pytest.fail(
            f"the {name!r} parser ({PARSER_MODULES[name]}) did not import: {exc!r}; "
            "build it with `pip install -e .`, or set AIOFASTHTTP_NO_EXTENSIONS=1",
            pytrace=False,
        )


# Session scope: the module is the same object for every test, and hypothesis
# refuses function-scoped fixtures in @given tests.
@pytest.fixture(scope="session", params=["python", "c"])
def parser_impl(request: pytest.FixtureRequest) -> ModuleType:
    """One parser implementation (a module with ResponseParser and ResponseHead)."""
    return load_parser_module(request.param)


@pytest.fixture(scope="session")
def both_parser_impls() -> tuple[ModuleType, ModuleType]:
    """The pure-Python and the compiled parser, for tests that compare the two."""
    return load_parser_module("python"), load_parser_module("c")
