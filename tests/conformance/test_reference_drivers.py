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
#: The cases a client whose driver does not take the pipeline op skips ("judged as sequential only").
PIPELINING = {c for c in CASES if REGISTRY.get(c).area == "pipelining"}


def _passes_or_sequential(name: str, case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    result = runner_for(name, True).run_case(REGISTRY.get(case_id))
    if case_id in PIPELINING:
        assert result.outcome == "skipped", f"{case_id}: {result.outcome} {result.reason}"
        assert "does not support op 'pipeline'" in result.reason
        return
    assert result.outcome == "pass", f"{case_id}: {result.reason}\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("case_id", CASES)
def test_mega_client_passes(case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    """MessageClient, sequential: every case but the pipelining ones, which it skips."""
    _passes_or_sequential("mega_client", case_id, runner_for)


@pytest.mark.parametrize("case_id", CASES)
def test_async_mega_client_passes(case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    """AsyncMessageClient passes every case, the pipelining ones included."""
    result = runner_for("mega_client --async", True).run_case(REGISTRY.get(case_id))
    assert result.outcome == "pass", f"{case_id}: {result.reason}\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("case_id", CASES)
def test_correct_test_client_passes(case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    """The base the broken clients are made from passes everything: their failures come from their defect."""
    _passes_or_sequential("correct", case_id, runner_for)
