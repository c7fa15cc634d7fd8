"""Proof tables: for every conformance case, the planted defects it catches, and the checks over such a table.

A case has teeth when a deliberately broken implementation fails it while the correct one passes. A *proof
table* says, for each case id of a subject (``"client"`` or ``"broker"``), which defects of the test-only broken
implementation prove it, each with its *symptom*: a piece of the reason the case gives when it catches that
defect. A harness crash or a failure for another reason does not name the symptom, so it does not count.

The subject supplies three things: its table, its list of cases that no defect can make fail from outside
(each with its reason; expected nearly empty), and a runner that runs some cases against one defect::

    run(defect, cases, strict) -> results

Then :func:`coverage_problems` checks that every registered case is proven or listed, :func:`prove` runs one
defect once with every case it proves (and the SHOULD ones again with ``--strict``), and
:func:`coverage_markdown` writes the table docs/CONFORMANCE.md shows, between the markers of
:func:`doc_block`. The broker half is tests/conformance/broker/proofs.py and test_proofs.py; a client half
takes the same shape::

    PROOFS = {"framing.consume.layout": [Proof("omit-payload-length-consume", "payload_length")], ...}

    def run_defect(defect, cases, strict):
        with Runner(broken_driver(defect), strict=strict) as runner:
            return runner.run(cases)

    coverage_problems(REGISTRY.of("client"), PROOFS, UNPROVABLE, DEFECTS)  # every client case proven
    prove(defect, PROOFS, REGISTRY.of("client"), run_defect)               # one test per defect
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest

from conformance._case import Case, Level
from conformance._runner import CaseResult

#: The per-defect runs prove the same on every interpreter and take about a minute: tox runs them on
#: py311 only (``MEGA_PROOFS=skip`` elsewhere); the coverage and docs tests run everywhere.
defect_runs = pytest.mark.skipif(
    os.environ.get("MEGA_PROOFS") == "skip", reason="MEGA_PROOFS=skip: tox runs them on py311"
)

#: Separates the pieces of a symptom that must appear in the reason, in this order.
ELLIPSIS = "…"


class Proof(NamedTuple):
    """A defect a case catches, and the piece of the case's reason that names the defect's symptom.

    ``symptom`` may hold several pieces separated by ``…``: each must appear in the reason, in order.
    """

    defect: str
    symptom: str


#: case id -> the defects that prove it.
ProofTable = Mapping[str, Sequence[Proof]]
#: case id -> why no defect can make it fail from outside.
Unprovable = Mapping[str, str]
#: ``run(defect, cases, strict)``: the results of ``cases`` against the implementation with ``defect``.
RunDefect = Callable[[str, Sequence[Case], bool], Sequence[CaseResult]]


def names_symptom(reason: str, symptom: str) -> bool:
    """True when every piece of ``symptom`` appears in ``reason``, in order."""
    at = 0
    for piece in (p.strip() for p in symptom.split(ELLIPSIS)):
        found = reason.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def by_defect(table: ProofTable) -> dict[str, dict[str, str]]:
    """defect -> {case id: symptom}: what one run of each defect has to show."""
    out: dict[str, dict[str, str]] = {}
    for case_id, proofs in table.items():
        for proof in proofs:
            out.setdefault(proof.defect, {})[case_id] = proof.symptom
    return out


def coverage_problems(
    cases: Sequence[Case], table: ProofTable, unprovable: Unprovable, defects: Collection[str]
) -> list[str]:
    """What keeps ``table`` from proving every one of ``cases``: a case neither proven nor listed as unprovable,
    an unknown case or defect, a defect that proves nothing, an empty symptom or reason."""
    ids = {c.id for c in cases}
    problems = [
        f"{i}: no defect proves it, and it is not listed as unprovable"
        for i in sorted(ids)
        if not (table.get(i) or i in unprovable)
    ]
    problems += [f"{i}: in the proof table, but no such case" for i in sorted(set(table) - ids)]
    problems += [f"{i}: listed as unprovable, but no such case" for i in sorted(set(unprovable) - ids)]
    problems += [f"{i}: proven, and listed as unprovable too" for i in sorted(set(unprovable) & set(table))]
    problems += [f"{i}: listed as unprovable with no reason" for i, why in unprovable.items() if not why.strip()]
    for case_id, proofs in table.items():
        seen = set()
        for proof in proofs:
            if proof.defect not in defects:
                problems.append(f"{case_id}: proven by {proof.defect!r}, which is no defect")
            if proof.defect in seen:
                problems.append(f"{case_id}: proven twice by {proof.defect!r}")
            seen.add(proof.defect)
            if not proof.symptom.replace(ELLIPSIS, "").strip():
                problems.append(f"{case_id}: the proof by {proof.defect!r} names no symptom")
    used = set(by_defect(table))
    problems += [f"defect {d!r} proves no case" for d in sorted(set(defects) - used)]
    return problems


@dataclass
class ProofRun:
    """One defect's run: what went wrong (empty: every case it proves caught it), and every result."""

    defect: str
    problems: list[str] = field(default_factory=list)
    results: list[CaseResult] = field(default_factory=list)


def prove(defect: str, table: ProofTable, cases: Sequence[Case], run: RunDefect) -> ProofRun:
    """Run every case that ``defect`` proves, once, against that defect: each must fail (a SHOULD case:
    ``non-strict``, and ``fail`` when run again strictly) with a reason naming its symptom."""
    wanted = by_defect(table).get(defect, {})
    selected = [c for c in cases if c.id in wanted]
    out = ProofRun(defect)
    if len(selected) != len(wanted):
        out.problems.append(f"unknown case(s) {sorted(set(wanted) - {c.id for c in selected})}")
    relaxed = list(run(defect, selected, False))
    should = [c for c in selected if c.level is Level.SHOULD]
    strict = list(run(defect, should, True)) if should else []
    out.results = relaxed + strict
    for results, is_strict in ((relaxed, False), (strict, True)):
        got = {r.case.id: r for r in results}
        for case in selected if not is_strict else should:
            result = got.get(case.id)
            if result is None:
                out.problems.append(f"{case.id}: no result")
                continue
            expected = "non-strict" if case.level is Level.SHOULD and not is_strict else "fail"
            how = " (strict)" if is_strict else ""
            if result.outcome != expected:
                out.problems.append(
                    f"{case.id}{how}: {result.outcome}, not {expected}, against {defect!r}: {result.reason!r}"
                )
            elif not names_symptom(result.reason, wanted[case.id]):
                out.problems.append(
                    f"{case.id}{how}: failed against {defect!r}, but the reason does not name the symptom "
                    f"{wanted[case.id]!r}: {result.reason!r}"
                )
    return out


# -- the figure in the docs ---------------------------------------------------------------------


def coverage_line(cases: Sequence[Case], table: ProofTable, unprovable: Unprovable, noun: str) -> str:
    """``Coverage: 63 of 63 broker cases proven ...``."""
    proven = [c for c in cases if table.get(c.id)]
    defects = by_defect(table)
    pairs = sum(len(v) for v in defects.values())
    must = sum(1 for c in proven if c.level is Level.MUST)
    listed = (
        "no case is listed as unprovable"
        if not unprovable
        else f"{len(unprovable)} listed as unprovable: " + ", ".join(f"`{i}`" for i in sorted(unprovable))
    )
    per = pairs / len(defects) if defects else 0.0
    return (
        f"**Coverage: {len(proven)} of {len(cases)} {noun} cases proven** ({must} MUST, {len(proven) - must} "
        f"SHOULD; {listed}), by {len(defects)} defects, {pairs} (defect, case) pairs: {per:.1f} cases per "
        "defect on average."
    )


def coverage_markdown(
    cases: Sequence[Case],
    table: ProofTable,
    unprovable: Unprovable,
    defects: Mapping[str, str],
    *,
    noun: str,
) -> str:
    """The coverage line, a table (case, level, the defects that prove it) and the defects, as Markdown."""
    lines = [coverage_line(cases, table, unprovable, noun), "", "| case | level | proven by |", "|---|---|---|"]
    for case in cases:
        proofs = table.get(case.id, ())
        cell = ", ".join(f"`{p.defect}`" for p in proofs) or f"not provable: {unprovable.get(case.id, '?')}"
        lines.append(f"| `{case.id}` | {case.level.value} | {cell} |")
    used = by_defect(table)
    lines += ["", f"<details><summary>The {len(used)} defects</summary>", ""]
    lines += [f"- `{name}`: {_one_line(defects[name])}" for name in sorted(used) if name in defects]
    lines += ["", "</details>"]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def doc_markers(subject: str) -> tuple[str, str]:
    return f"<!-- proofs:{subject} begin (generated) -->", f"<!-- proofs:{subject} end -->"


def doc_block(text: str, subject: str) -> str | None:
    """The generated block of ``subject`` in ``text`` (without its markers), None when the markers are missing."""
    begin, end = doc_markers(subject)
    if text.count(begin) != 1 or text.count(end) != 1:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def with_doc_block(text: str, subject: str, block: str) -> str:
    """``text`` with the generated block of ``subject`` replaced by ``block``."""
    begin, end = doc_markers(subject)
    head, rest = text.split(begin, 1)
    return f"{head}{begin}\n{block}\n{end}{rest.split(end, 1)[1]}"
