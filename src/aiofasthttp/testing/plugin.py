"""The pytest plugin (entry point ``aiofasthttp`` in the ``pytest11`` group).

The ``aiofasthttp_mock`` fixture is a :class:`~aiofasthttp.testing.MockRouter`;
at the end of a test that passed, it asserts every required route was called
and no request went unmatched (a test that failed already has its news: the
check would only add noise). ``aiofasthttp_mock.client()`` is a Client bound to it.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from .router import MockRouter

_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Note whether the test's own call failed, for the fixture's teardown."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed


@pytest.fixture
def aiofasthttp_mock(request: pytest.FixtureRequest) -> Iterator[MockRouter]:
    """A router of mocked routes; checked when the test ends (see MockRouter)."""
    router = MockRouter()
    yield router
    if not request.node.stash.get(_CALL_FAILED, False):
        router.assert_all_called()
