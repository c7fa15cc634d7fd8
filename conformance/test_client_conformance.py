"""One pytest test per client case: ``pytest --pyargs conformance --mega-driver CMD``."""

from __future__ import annotations

import pytest

from conformance._runner import Runner
from conformance.pytest_plugin import client_case_ids, run_case_as_test


@pytest.mark.parametrize("case_id", client_case_ids())
def test_client_case(case_id: str, mega_conformance_runner: Runner) -> None:
    run_case_as_test(mega_conformance_runner, case_id)
