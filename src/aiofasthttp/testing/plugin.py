"""The pytest plugin (entry point ``aiofasthttp`` in the ``pytest11`` group).

The ``aiofasthttp_mock`` fixture is a :class:`~aiofasthttp.testing.MockRouter`;
at the end of the test it asserts every required route was called and no
request went unmatched. ``aiofasthttp_mock.client()`` is a Client bound to it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .router import MockRouter


@pytest.fixture
def aiofasthttp_mock() -> Iterator[MockRouter]:
    """A router of mocked routes; checked when the test ends (see MockRouter)."""
    router = MockRouter()
    yield router
    router.assert_all_called()
