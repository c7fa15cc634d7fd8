"""Every broker case has teeth: a planted defect of RawBroker that it catches, by the defect's symptom.

The proof table is tests/conformance/broker/proofs.py. One test per defect (so that pytest-xdist runs them in
parallel) runs that defect's broker once with every case it proves; the correct RawBroker and the mock broker
pass every case (test_broken_brokers.py, test_mock_broker.py), so each failure comes from the defect.
"""

from __future__ import annotations

import pytest

from conformance.broker import broker_cases
from conformance.broker._context import RECORD_LIMIT
from tests.conformance.case_proofs import by_defect, coverage_problems, defect_runs, doc_block, prove

from .broken_brokers import DEFECTS
from .proofs import DOC, PROOFS, UNPROVABLE, markdown, run_defect

#: The longest reason a case may give, whatever the broker sent.
REASON_LIMIT = 2000


def test_every_broker_case_is_proven() -> None:
    """Every registered broker case, MUST and SHOULD, is proven by a defect or listed with the reason it cannot be;
    every defect proves some case."""
    problems = coverage_problems(broker_cases(), PROOFS, UNPROVABLE, DEFECTS)
    assert not problems, "\n".join(problems)


@defect_runs
@pytest.mark.parametrize("defect", sorted(by_defect(PROOFS)))
def test_every_case_a_defect_proves_catches_it(defect: str) -> None:
    run = prove(defect, PROOFS, broker_cases(), run_defect)
    assert not run.problems, "\n".join(run.problems)
    for r in run.results:  # whatever the broken broker sends, the verdict stays small
        assert len(r.reason) <= REASON_LIMIT, (r.case.id, len(r.reason))
        assert all(len(t.sent) <= RECORD_LIMIT and len(t.received) <= RECORD_LIMIT for t in r.transcript)


def test_the_docs_show_the_proof_table() -> None:
    block = doc_block(DOC.read_text(encoding="utf-8"), "broker")
    assert block is not None, f"{DOC}: the proofs:broker markers are missing"
    assert block == markdown(), (
        "docs/CONFORMANCE.md does not show the proof table: python -m tests.conformance.broker.proofs --write-doc"
    )
