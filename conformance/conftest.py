"""Registers the conformance pytest plugin when pytest runs from a source checkout.

See :mod:`conformance.pytest_plugin` for why both this file and the ``pytest11``
entry point exist.
"""

from conformance.pytest_plugin import mega_conformance_runner, pytest_addoption

__all__ = ["mega_conformance_runner", "pytest_addoption"]
