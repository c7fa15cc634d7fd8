"""Every client case has teeth: a planted defect of a test-only client that it catches, by the defect's symptom.

The proof table is tests/conformance/proofs.py. One test per defect (so that pytest-xdist runs them in
parallel) runs that defect's driver once with every case it proves; the correct variants pass every case
(test_reference_drivers.py: the standalone client, and the kit's own async client that the async defects
are planted in), so each failure comes from the defect.

The per-defect runs take about 40 s on 2 cores (mostly cases waiting out a timeout the defect causes) and
prove the same on every interpreter: tox skips them (``MEGA_PROOFS=skip``) on all but py311.
"""

from __future__ import annotations

import pytest

from tests.conformance.case_proofs import by_defect, coverage_problems, defect_runs, doc_block, prove

from .broken_clients.megaclient import DEFECTS as MEGA_DEFECTS
from .proofs import DOC, ONLY_COMBINED, PROOFS, UNPROVABLE, client_cases, defects, markdown, run_defect


def test_every_client_case_is_proven() -> None:
    """Every registered client case, MUST and SHOULD, is proven by a defect or listed with the reason it cannot
    be; every defect proves some case."""
    problems = coverage_problems(client_cases(), PROOFS, UNPROVABLE, defects())
    assert not problems, "\n".join(problems)


def test_a_defect_shown_only_in_combination_proves_nothing_alone() -> None:
    """A combination plants a flag that cannot show alone together with the one it needs; every other flag of a
    combination proves some case by itself, so a combination is never what gives a flag its only proof."""
    used = set(by_defect(PROOFS))
    combined = {flag for d in used if d.startswith("mega:") and "+" in d for flag in d[5:].split("+")}
    assert combined >= ONLY_COMBINED
    assert not {f"mega:{flag}" for flag in ONLY_COMBINED} & used
    assert {f"mega:{flag}" for flag in combined - ONLY_COMBINED} <= used
    assert set(MEGA_DEFECTS) >= ONLY_COMBINED


@defect_runs
@pytest.mark.parametrize("defect", sorted(by_defect(PROOFS)))
def test_every_case_a_defect_proves_catches_it(defect: str) -> None:
    run = prove(defect, PROOFS, client_cases(), run_defect)
    assert not run.problems, "\n".join(run.problems)
    for r in run.results:  # a driver that hangs, exits or proves unusable is never the catch
        assert not r.reason.startswith(("driver ", "not run")), (r.case.id, r.reason)


def test_the_docs_show_the_proof_table() -> None:
    block = doc_block(DOC.read_text(encoding="utf-8"), "client")
    assert block is not None, f"{DOC}: the proofs:client markers are missing"
    assert block == markdown(), (
        "docs/CONFORMANCE.md does not show the proof table: python -m tests.conformance.proofs --write-doc"
    )
