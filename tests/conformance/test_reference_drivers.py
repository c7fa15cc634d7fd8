"""mega_client, and the correct variant of the standalone test client, pass every case.

Strict: SHOULD cases count too. Parametrized per case so that pytest-xdist
spreads the two full runs over its workers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance._case import REGISTRY
from conformance._runner import Runner
from conformance.pytest_plugin import client_case_ids

CASES = client_case_ids()


@pytest.mark.parametrize("case_id", CASES)
def test_mega_client_passes(case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    result = runner_for("mega_client", True).run_case(REGISTRY.get(case_id))
    assert result.outcome == "pass", f"{case_id}: {result.reason}\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("case_id", CASES)
def test_correct_test_client_passes(case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    """The base the broken clients are made from passes everything: their failures come from their defect."""
    result = runner_for("correct", True).run_case(REGISTRY.get(case_id))
    assert result.outcome == "pass", f"{case_id}: {result.reason}\n{result.stderr[-2000:]}"
