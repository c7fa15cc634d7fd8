"""The proof-table checks catch what they are for: a case no defect proves, a pass, a crash of the harness, a
failure for another reason than the defect's symptom; and a SHOULD case is judged both without and with --strict.

The runs are real: broker cases against tests/conformance/broker's RawBroker with a planted defect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from conformance._case import Case, CaseFailed, Level
from conformance._runner import CaseResult
from conformance.broker import broker_cases
from conformance.broker._context import BrokerContext
from tests.conformance.broker.broken_brokers import DEFECTS
from tests.conformance.broker.proofs import PROOFS, UNPROVABLE, run_defect

from .case_proofs import (
    Proof,
    by_defect,
    coverage_markdown,
    coverage_problems,
    doc_block,
    names_symptom,
    prove,
    with_doc_block,
)


def _toy(case_id: str, level: Level, run: Callable[[BrokerContext], None]) -> Case:
    return Case(case_id, "layout", ("RESP-3",), level, "a toy case", run=run, subject="broker")


def test_a_symptom_is_pieces_in_order() -> None:
    reason = "answers: expected TOPIC_NOT_FOUND (4) for correlation id 12; got ... (at byte 5 (error_code))"
    assert names_symptom(reason, "expected TOPIC_NOT_FOUND … (at byte 5 (error_code)")
    assert names_symptom(reason, "correlation id 12")
    assert not names_symptom(reason, "(at byte 5 (error_code) … expected TOPIC_NOT_FOUND")
    assert not names_symptom(reason, "correlation id 13")


def test_coverage_names_every_gap() -> None:
    cases = broker_cases()
    assert not coverage_problems(cases, PROOFS, UNPROVABLE, DEFECTS)
    missing = {k: v for k, v in PROOFS.items() if k != "layout.error"}
    assert coverage_problems(cases, missing, {}, DEFECTS) == [
        "layout.error: no defect proves it, and it is not listed as unprovable",
        "defect 'long-error' proves no case",
    ]
    assert coverage_problems(cases, missing, {"layout.error": "a reason"}, DEFECTS) == [
        "defect 'long-error' proves no case"
    ]
    assert "layout.error: listed as unprovable with no reason" in coverage_problems(
        cases, missing, {"layout.error": " "}, DEFECTS
    )
    odd = {**PROOFS, "layout.error": [Proof("no-such-defect", "x"), Proof("long-error", " … ")]}
    problems = coverage_problems(cases, odd, {}, DEFECTS)
    assert "layout.error: proven by 'no-such-defect', which is no defect" in problems
    assert "layout.error: the proof by 'long-error' names no symptom" in problems
    assert "no.such-case: in the proof table, but no such case" in coverage_problems(
        cases, {**PROOFS, "no.such-case": [Proof("long-error", "x")]}, {}, DEFECTS
    )


def test_a_failure_that_does_not_name_the_symptom_does_not_count() -> None:
    table = {"layout.error": [Proof("long-error", "TOPIC_NOT_FOUND … (at bytes 0..3 (correlation_id)")]}
    run = prove("long-error", table, broker_cases(), run_defect)
    (problem,) = run.problems
    assert problem.startswith("layout.error: failed against 'long-error', but the reason does not name the symptom")
    assert run.results[0].outcome == "fail"


def test_a_case_that_passes_does_not_count() -> None:
    run = prove("long-error", {"layout.produce": [Proof("long-error", "x")]}, broker_cases(), run_defect)
    assert run.problems == ["layout.produce: pass, not fail, against 'long-error': ''"]


def test_a_harness_crash_does_not_count() -> None:
    def crash(ctx: BrokerContext) -> None:
        ctx.connect()
        raise ZeroDivisionError("the harness, not the broker")

    case = _toy("layout.toy-crash", Level.MUST, crash)
    run = prove("long-error", {case.id: [Proof("long-error", "error_code")]}, [case], run_defect)
    (problem,) = run.problems
    assert "does not name the symptom" in problem
    assert "harness error" in problem


def test_a_should_case_is_non_strict_then_fails_strictly() -> None:
    calls: list[tuple[list[str], bool]] = []

    def run(defect: str, cases: Sequence[Case], strict: bool) -> list[CaseResult]:
        calls.append(([c.id for c in cases], strict))
        return run_defect(defect, cases, strict)

    def should(ctx: BrokerContext) -> None:
        raise CaseFailed("the symptom")

    def must(ctx: BrokerContext) -> None:
        raise CaseFailed("the symptom")

    cases = [_toy("layout.toy-should", Level.SHOULD, should), _toy("layout.toy-must", Level.MUST, must)]
    table = {c.id: [Proof("long-error", "the symptom")] for c in cases}
    assert not prove("long-error", table, cases, run).problems
    assert calls == [(["layout.toy-should", "layout.toy-must"], False), (["layout.toy-should"], True)]


def test_the_doc_block_round_trips() -> None:
    cases = broker_cases()
    block = coverage_markdown(cases, PROOFS, UNPROVABLE, DEFECTS, noun="broker")
    assert block.startswith(f"**Coverage: {len(cases)} of {len(cases)} broker cases proven**")
    assert f"by {len(by_defect(PROOFS))} defects" in block
    assert "| `layout.error` | MUST | `long-error` |" in block
    text = "intro\n<!-- proofs:broker begin (generated) -->\nold\n<!-- proofs:broker end -->\nafter\n"
    assert doc_block(text, "broker") == "old"
    new = with_doc_block(text, "broker", block)
    assert doc_block(new, "broker") == block
    assert new.startswith("intro\n")
    assert new.endswith("\nafter\n")
    assert doc_block("no markers", "broker") is None
