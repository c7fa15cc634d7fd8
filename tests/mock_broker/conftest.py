"""Fixtures of the mock broker tests.

The plugin's fixtures are imported here too, so these tests also run from a
checkout where the package (and so its pytest11 entry point) is not installed;
test_pytest_plugin.py checks the entry point itself.
"""

from __future__ import annotations

import pytest

from mock_broker.pytest_plugin import mega_broker, mega_broker_factory

__all__ = ["mega_broker", "mega_broker_factory"]


@pytest.fixture(params=["spec", "reference"])
def profile(request: pytest.FixtureRequest) -> str:
    """Both answering profiles."""
    return str(request.param)
