"""The case registry: enough cases, each citing clauses that exist in docs/PROTOCOL.md."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from conformance._case import AREAS, REGISTRY, Level, Registry, case

SPEC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
CLAUSE_RE = re.compile(r"^\*\*([A-Z]+-\d+)\*\* \((MUST|SHOULD|MAY)\)", re.MULTILINE)


def spec_clauses() -> dict[str, str]:
    return dict(CLAUSE_RE.findall(SPEC.read_text(encoding="utf-8")))


def test_spec_has_clauses() -> None:
    assert len(spec_clauses()) > 50


@pytest.mark.parametrize("case_id", [c.id for c in REGISTRY])
def test_every_cited_clause_exists(case_id: str) -> None:
    clauses = spec_clauses()
    missing = [c for c in REGISTRY.get(case_id).clauses if c not in clauses]
    assert not missing, f"{case_id} cites clauses not in docs/PROTOCOL.md: {missing}"


def test_must_cases_cite_a_must_clause() -> None:
    clauses = spec_clauses()
    weak = [c.id for c in REGISTRY if c.level is Level.MUST and "MUST" not in {clauses.get(x) for x in c.clauses}]
    assert not weak, f"MUST cases citing no MUST clause: {weak}"


def test_at_least_80_client_cases_in_the_three_areas() -> None:
    cases = REGISTRY.of("client")
    assert len(cases) >= 80
    per_area = Counter(c.area for c in cases)
    assert set(per_area) == set(AREAS["client"])
    assert all(n >= 20 for n in per_area.values()), per_area
    assert {c.level for c in cases} == {Level.MUST, Level.SHOULD}


def test_ids_are_area_prefixed_and_described() -> None:
    for c in REGISTRY:
        assert c.id.startswith(c.area + "."), c.id
        assert re.fullmatch(r"[a-z0-9.-]+", c.id), c.id
        assert len(c.description) > 20, c.id


def test_selection_globs_and_unknown_patterns() -> None:
    assert {c.area for c in REGISTRY.select("client", areas=["errors"])} == {"errors"}
    picked = REGISTRY.select("client", ids=["framing.payload.*"])
    assert picked
    assert all(c.id.startswith("framing.payload.") for c in picked)
    with pytest.raises(LookupError):
        REGISTRY.select("client", ids=["nothing.*"])


def test_registry_rejects_bad_cases() -> None:
    registry = Registry()

    def run(ctx: object) -> None:
        """Does nothing at all, for the registry test."""

    case("framing.x", clauses=("WIRE-1",), registry=registry)(run)
    with pytest.raises(ValueError, match="duplicate"):
        case("framing.x", clauses=("WIRE-1",), registry=registry)(run)
    with pytest.raises(ValueError, match="no clause"):
        case("framing.y", clauses=(), registry=registry)(run)
    with pytest.raises(ValueError, match="area"):
        case("nowhere.z", clauses=("WIRE-1",), registry=registry)(run)
