"""Each deliberately broken broker fails the named cases; the same broker without its defect passes them all."""

from __future__ import annotations

import pytest

from conformance._case import Level
from conformance._runner import CaseResult
from conformance.broker import broker_cases, verdicts

from .broken_brokers import DEFECTS, RawBroker
from .conftest import CAPACITY, run_split

#: defect -> (cases run, the ones that must fail). The others of the selection must pass.
EXPECTED: dict[str, tuple[list[str], set[str]]] = {
    "wrong-next-offset": (
        ["layout.consume", "semantics.dense-offsets", "layout.produce", "names.empty"],
        {"layout.consume", "semantics.dense-offsets"},
    ),
    "timestamps-not-echoed": (
        ["layout.create-topic", "layout.produce", "semantics.timestamp-extremes", "codes.topic-not-found"],
        {"layout.create-topic", "layout.produce", "semantics.timestamp-extremes"},
    ),
    "no-size-limit": (
        [
            "limits.payload-over-max",
            "limits.payload-over-max-any-type",
            "codes.error-has-no-effect",
            "limits.payload-at-max",
        ],
        {"limits.payload-over-max", "limits.payload-over-max-any-type", "codes.error-has-no-effect"},
    ),
    "close-after-error": (
        [
            "codes.connection-usable-after-errors",
            "names.bad-characters",
            "limits.payload-over-max",
            "malformed.unknown-type",
        ],
        {"codes.connection-usable-after-errors", "names.bad-characters", "limits.payload-over-max"},
    ),
    "max-10-connections": (
        ["connections.fifty-at-once", "connections.stalled-peer", "semantics.create-race"],
        {"connections.fifty-at-once"},
    ),
    "echo-without-length": (
        ["layout.create-topic", "names.max-length", "codes.topic-not-found"],
        {"layout.create-topic", "names.max-length"},
    ),
    "out-of-order": (
        ["streams.pipelined-batch", "layout.section-4-example", "streams.one-byte-at-a-time"],
        {"streams.pipelined-batch", "layout.section-4-example"},
    ),
}


def _run(defect: str | None, ids: list[str] | None = None, *, strict: bool = False) -> list[CaseResult]:
    def start(idle: float | None) -> RawBroker:
        return RawBroker(defect, idle_timeout=idle, capacity=CAPACITY)

    return run_split(broker_cases(ids or ()), start, strict=strict, timeout=1.0)


def test_every_defect_is_tested() -> None:
    assert set(EXPECTED) | {"linear-consume"} == set(DEFECTS)


def test_the_correct_raw_broker_passes_every_case() -> None:
    results = _run(None)
    must = [(r.case.id, r.reason) for r in results if r.case.level is Level.MUST and r.outcome != "pass"]
    assert not must
    assert all(r.outcome in ("pass", "non-strict") for r in results), [(r.case.id, r.reason) for r in results]


@pytest.mark.parametrize("defect", sorted(EXPECTED))
def test_broken_broker_fails_the_named_cases(defect: str) -> None:
    ids, must_fail = EXPECTED[defect]
    results = _run(defect, ids)
    failed = {r.case.id for r in results if r.outcome == "fail"}
    assert failed == must_fail, {r.case.id: r.reason for r in results}
    assert not verdicts(results).spec_conformant


def test_linear_consume_is_a_should_warning() -> None:
    (relaxed,) = _run("linear-consume", ["performance.consume-cost"])
    assert relaxed.outcome == "non-strict", relaxed.reason
    assert "grows with the offset" in relaxed.reason
    assert verdicts([relaxed]).spec_conformant  # a SHOULD case: informative
    (strict,) = _run("linear-consume", ["performance.consume-cost"], strict=True)
    assert strict.outcome == "fail"
