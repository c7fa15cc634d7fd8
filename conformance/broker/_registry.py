"""Declaring broker cases, and marking the ones whose verdict depends on a reference broker defect.

A broker case is an ordinary :class:`~conformance._case.Case` with
``subject="broker"``. A case that the reference (Java) broker fails because of
one of its known defects (docs/PROTOCOL.md section 12) carries the tag
:data:`REFERENCE_DEFECT` and a second tag naming the row,
``reference-defect:12.N``; its description ends with what the reference broker
does instead. The run's summary reports two verdicts from that:

* spec-conformant: every MUST case passed;
* reference-compatible: every MUST case *not* so marked passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from types import MappingProxyType
from typing import TypeVar

from conformance._case import REGISTRY, Case, Level, Registry, RunFunction

SUBJECT = "broker"

#: The tag of every case whose verdict depends on a known defect of the reference broker.
REFERENCE_DEFECT = "reference-defect"

#: The reference broker's defects that broker cases depend on: "12.<row of section 12>" -> what it does.
REFERENCE_DEFECTS: dict[str, str] = {
    "12.1": "the reference broker answers INTERNAL_ERROR to CREATE_TOPIC with an invalid name (section 12 #1)",
    "12.18": (
        "the reference broker answers TOPIC_NOT_FOUND to PRODUCE/CONSUME naming an invalid or non-UTF-8 topic "
        "(section 12 #18)"
    ),
    "12.2": (
        "the reference broker closes the connection without any response on an unknown message_type (section 12 #2)"
    ),
    "12.3": "the reference broker closes the connection without any response on a negative length (section 12 #3)",
    "12.4": (
        "the reference broker waits for the bytes of a topic_length of 65,536, and closes with no answer at "
        "2,147,483,647 (section 12 #4)"
    ),
    "12.5": (
        "the reference broker reads the whole oversized payload before it answers MESSAGE_TOO_LARGE, allocates "
        "a buffer of a payload_length of 2^30, and closes with no answer at 2^31-1 (section 12 #5)"
    ),
    "12.6": "the reference broker serves at most 10 connections at once (section 12 #6)",
    "12.7": "the reference broker's CONSUME walks the topic from the start: O(offset) (section 12 #7)",
    "12.19": "the reference broker answers INTERNAL_ERROR, not RESOURCE_EXHAUSTED, on a full topic (section 12 #19)",
    "12.20": (
        "the reference broker stores a message and takes its offset in two unlocked steps: under concurrent "
        "PRODUCEs an offset can read back another message than the one it was given to (section 12 #20)"
    ),
}

_CASE_ID = re.compile(r"^[a-z0-9]+(\.[a-z0-9-]+)+$")

F = TypeVar("F", bound=RunFunction)


def reference_defects(case: Case) -> list[str]:
    """The section-12 rows (``"12.2"``...) a case's verdict depends on; empty for most cases."""
    prefix = REFERENCE_DEFECT + ":"
    return sorted(t[len(prefix) :] for t in case.tags if t.startswith(prefix))


def is_reference_defect(case: Case) -> bool:
    return REFERENCE_DEFECT in case.tags


def broker_case(
    case_id: str,
    *,
    clauses: Iterable[str],
    level: Level | str = Level.MUST,
    reference_defect: str | Iterable[str] | None = None,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as a broker case; its docstring is the description.

    The area is the first dotted part of ``case_id`` (one of ``AREAS["broker"]``).
    ``reference_defect`` names the row(s) of :data:`REFERENCE_DEFECTS` the verdict depends on.
    """
    if not _CASE_ID.match(case_id):
        raise ValueError(f"broker case id {case_id!r} must be lowercase dotted words (it becomes part of topic names)")
    rows = [reference_defect] if isinstance(reference_defect, str) else list(reference_defect or ())
    for row in rows:
        if row not in REFERENCE_DEFECTS:
            raise ValueError(f"case {case_id}: unknown reference defect {row!r}")

    def decorate(fn: F) -> F:
        doc = " ".join((fn.__doc__ or "").split())
        if not doc:
            raise ValueError(f"case {case_id} has no docstring to describe it")
        tags: set[str] = set()
        if rows:
            tags.add(REFERENCE_DEFECT)
            tags.update(f"{REFERENCE_DEFECT}:{row}" for row in rows)
            doc += " Reference-defect dependent: " + "; ".join(REFERENCE_DEFECTS[row] for row in rows) + "."
        (registry if registry is not None else REGISTRY).add(
            Case(
                id=case_id,
                area=case_id.split(".", 1)[0],
                clauses=tuple(clauses),
                level=Level(level),
                description=doc,
                run=fn,
                subject=SUBJECT,
                options=MappingProxyType({}),
                tags=frozenset(tags),
            )
        )
        return fn

    return decorate
