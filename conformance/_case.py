"""What a conformance case is, and the registry that holds every case.

A case checks one thing, cites the clauses of docs/PROTOCOL.md it checks, and
carries the level of the clause whose requirement it checks: MUST (a failure
fails the run) or SHOULD (a failure fails the run only with ``--strict``). Its ``run`` function
gets a context object from the harness of its ``subject``: ``"client"`` cases
(this package's first job) get a :class:`~conformance._context.ClientContext`
that drives a client through its driver against an in-process mock broker.
The same registry, records and reports are meant for ``"broker"`` cases, which
drive a broker at an address with raw frames.

``run`` raises :class:`CaseFailed` when the subject breaks a clause and
:class:`CaseSkipped` when the case does not apply; returning means pass.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

#: ``non-strict``: a SHOULD case that failed without ``--strict``. ``not-judged``: a SHOULD case
#: whose verdict could not be reached because the driver hung, exited or broke its contract,
#: or was not run because the driver had proved unusable (docs/CONFORMANCE.md section 2).
Outcome = Literal["pass", "fail", "non-strict", "not-judged", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "non-strict", "not-judged", "skipped")

#: The areas of each subject, in report order.
AREAS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "client": ("framing", "errors", "lifecycle", "pipelining"),
        "broker": (
            "layout",
            "codes",
            "names",
            "semantics",
            "limits",
            "malformed",
            "streams",
            "connections",
            "idle",
            "performance",
        ),
    }
)


class Level(str, enum.Enum):
    """How binding a case is: the level of the clauses it checks."""

    MUST = "MUST"
    SHOULD = "SHOULD"

    def __str__(self) -> str:
        return self.value


class CaseFailed(Exception):
    """The subject broke the clause the case checks; the message is the reason."""


class CaseSkipped(Exception):
    """The case does not apply to this subject (for example an op the driver does not support)."""


RunFunction = Callable[[Any], None]


@dataclass(frozen=True)
class Case:
    """One conformance case.

    ``options`` are harness settings for the case (for a client case: the
    mock broker's settings such as ``idle_timeout`` or ``max_messages_per_topic``,
    and ``timeout_ms``, the client timeout the case connects with).
    ``tags`` are free labels; the broker direction uses them to mark cases whose
    verdict depends on the reference broker's known defects.
    """

    id: str
    area: str
    clauses: tuple[str, ...]
    level: Level
    description: str
    run: RunFunction = field(repr=False, compare=False)
    subject: str = "client"
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.clauses:
            raise ValueError(f"case {self.id} cites no clause")
        areas = AREAS.get(self.subject)
        if areas is None:
            raise ValueError(f"case {self.id}: unknown subject {self.subject!r}")
        if self.area not in areas:
            raise ValueError(f"case {self.id}: area {self.area!r} is not one of {', '.join(areas)}")


class Registry:
    """Every case, in definition order, by id."""

    def __init__(self) -> None:
        self._cases: dict[str, Case] = {}

    def add(self, case: Case) -> Case:
        if case.id in self._cases:
            raise ValueError(f"duplicate case id {case.id}")
        self._cases[case.id] = case
        return case

    def __iter__(self) -> Iterator[Case]:
        return iter(self._cases.values())

    def __len__(self) -> int:
        return len(self._cases)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._cases

    def get(self, case_id: str) -> Case:
        try:
            return self._cases[case_id]
        except KeyError:
            raise KeyError(f"no case {case_id!r}") from None

    def of(self, subject: str) -> list[Case]:
        """The cases of ``subject``, ordered by area then definition order."""
        order = {area: i for i, area in enumerate(AREAS.get(subject, ()))}
        cases = [c for c in self._cases.values() if c.subject == subject]
        return sorted(cases, key=lambda c: order.get(c.area, len(order)))

    def select(
        self,
        subject: str,
        *,
        ids: Iterable[str] = (),
        areas: Iterable[str] = (),
    ) -> list[Case]:
        """The cases of ``subject`` whose id matches one of ``ids`` or whose area matches one of ``areas``.

        Both take shell-style globs (``framing.*``, ``*timeout*``). With neither,
        every case of the subject. Raises ``LookupError`` for a pattern that
        matches nothing, so a typo is not a silently empty run.
        """
        id_patterns = list(ids)
        area_patterns = list(areas)
        cases = self.of(subject)
        if not id_patterns and not area_patterns:
            return cases
        for pattern in id_patterns:
            if not any(fnmatch.fnmatchcase(c.id, pattern) for c in cases):
                raise LookupError(f"no case matches --case {pattern!r}")
        for pattern in area_patterns:
            if not any(fnmatch.fnmatchcase(c.area, pattern) for c in cases):
                known = ", ".join(AREAS.get(subject, ()))
                raise LookupError(f"no area matches --area {pattern!r} (areas: {known})")
        return [
            c
            for c in cases
            if any(fnmatch.fnmatchcase(c.id, p) for p in id_patterns)
            or any(fnmatch.fnmatchcase(c.area, p) for p in area_patterns)
        ]


#: The registry every case module adds to.
REGISTRY = Registry()

F = TypeVar("F", bound=RunFunction)


def case(  # noqa: PLR0913 - a case's id and its registration fields, each named at the call
    case_id: str,
    *,
    clauses: Iterable[str],
    level: Level | str = Level.MUST,
    area: str | None = None,
    subject: str = "client",
    tags: Iterable[str] = (),
    options: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
) -> Callable[[F], F]:
    """Register the decorated function as a case; its docstring is the description.

    ``area`` defaults to the first dotted part of ``case_id``.
    """

    def decorate(fn: F) -> F:
        doc = " ".join((fn.__doc__ or "").split())
        if not doc:
            raise ValueError(f"case {case_id} has no docstring to describe it")
        (REGISTRY if registry is None else registry).add(
            Case(
                id=case_id,
                area=area or case_id.split(".", 1)[0],
                clauses=tuple(clauses),
                level=Level(level),
                description=doc,
                run=fn,
                subject=subject,
                options=MappingProxyType(dict(options or {})),
                tags=frozenset(tags),
            )
        )
        return fn

    return decorate
