"""Proof that the suite has teeth: each planted defect fails the cases named for it.

Each broken client is tests/conformance/broken_clients/megaclient.py with one
defect switched on; the correct variant passes every case
(test_reference_drivers.py), so each failure below comes from its defect.
Only the named cases run against each broken client, with --strict so that a
SHOULD case that catches a defect counts as a failure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance._case import REGISTRY, Case, Level
from conformance._runner import Runner
from conformance.broker import BrokerRunner, Target
from mock_broker import ThreadedMockBroker

from .broken_clients.async_driver import DEFECTS as ASYNC_DEFECTS
from .broken_clients.megaclient import DEFECTS

ASYNC_DRIVER = Path(__file__).parent / "broken_clients" / "async_driver.py"

#: defect -> the cases that must fail against it.
EXPECTED: dict[str, tuple[str, ...]] = {
    "omit-payload-length-consume": ("framing.consume.layout", "framing.consume.payload-length-present"),
    "omit-payload-length-create": ("framing.create-topic.layout", "framing.create-topic.payload-length-present"),
    "recv-once": (
        "framing.response.create-topic-byte-by-byte",
        "framing.response.produce-byte-by-byte",
        "framing.response.consume-byte-by-byte",
        "framing.response.larger-than-4k",
        "framing.response.long-text-in-segments",
    ),
    "char-lengths": ("framing.lengths.payload-utf8-bytes",),
    "little-endian": (
        "framing.create-topic.layout",
        "framing.lengths.topic-length-big-endian",
        "framing.lengths.payload-length-big-endian",
    ),
    "no-cid-check": (
        "errors.protocol.wrong-correlation-id",
        "errors.protocol.wrong-correlation-id-consume",
        "errors.protocol.stray-frame-with-id-0",
    ),
    "no-timeout": (
        "errors.timeout.silent-produce",
        "lifecycle.connect.times-out",
        "lifecycle.no-duplicate.produce-after-timeout",
    ),
    "never-close": ("lifecycle.close.ends-connection", "lifecycle.close.sends-fin"),
    "timestamp-seconds": (
        "framing.timestamp.unit-is-milliseconds",
        "framing.timestamp.create-topic-ms",
        "framing.timestamp.produce-ms",
        "framing.timestamp.consume-ms",
    ),
    "timestamp-microseconds": ("framing.timestamp.unit-is-milliseconds", "framing.timestamp.produce-ms"),
    "discard-extra-bytes": ("framing.response.coalesced-with-next-frame", "errors.protocol.bytes-while-idle"),
    "echo-misread": ("framing.create-topic.echo-decoded", "framing.create-topic.echo-255-bytes"),
    "constant-cid": ("framing.correlation-id.fresh-per-request",),
    "lax-success-flag": ("errors.protocol.bad-success-flag-2", "errors.protocol.bad-success-flag-ff"),
    "resend-produce-on-timeout": (
        "lifecycle.no-duplicate.produce-after-timeout",
        "errors.timeout.late-answer-not-taken",
    ),
    "no-idle-check": ("errors.protocol.bytes-while-idle",),
}

PAIRS = [(defect, case_id) for defect, ids in EXPECTED.items() for case_id in ids]

#: The verdict fixes of issue 11, each pinned to the symptom the old verdict let through (or, for an
#: alternative, wrongly failed): (defect or alternative, case, what the reason must say; "" for a pass).
PINNED = [
    ("timestamp-seconds", "framing.timestamp.unit-is-milliseconds", "the time in seconds, not milliseconds"),
    ("timestamp-microseconds", "framing.timestamp.unit-is-milliseconds", "the time in microseconds"),
    ("no-timeout", "lifecycle.no-duplicate.produce-after-timeout", "expected a timeout error, got success"),
    ("discard-extra-bytes", "framing.response.coalesced-with-next-frame", "went out on the connection whose"),
    ("recv-once", "framing.response.long-text-in-segments", "shorter than expected (1400 bytes)"),
    ("echo-misread", "errors.client-check.valid-edge-names-accepted", "misdecoded (RESP-4"),
    ("stray-bytes-fail-next-call", "errors.protocol.bytes-while-idle", ""),
]

#: Broken copies of the kit's own AsyncMessageClient (broken_clients/async_driver.py), with the
#: pipelining cases each must fail and the symptom its reason names.
ASYNC_EXPECTED = {
    "reuse-cid": [
        ("pipelining.cid.unique-among-pending", "reuse an id pending already"),
        ("pipelining.cid.unique-across-the-wrap", "ids repeat across the wrap"),
    ],
    "fail-oldest-only": [
        ("pipelining.protocol.wrong-correlation-id-fifth", "expected a protocol or connection error, got timeout"),
        ("pipelining.protocol.bad-success-flag-fifth", "expected a protocol or connection error, got timeout"),
        ("pipelining.protocol.bad-length-fifth", "expected a protocol or connection error, got timeout"),
    ],
    "discard-answers-at-end": [
        ("pipelining.end.unsolicited-after-five-answers", "answered before the unsolicited frame): expected success"),
        ("pipelining.protocol.wrong-correlation-id-fifth", "(before the broken answer): expected success"),
        ("pipelining.protocol.stray-bytes-after-the-last-answer", "expected success, got error protocol"),
    ],
}
ASYNC_PAIRS = [(d, c, symptom) for d, pairs in ASYNC_EXPECTED.items() for c, symptom in pairs]


def test_every_defect_has_named_cases() -> None:
    assert set(EXPECTED) == set(DEFECTS)
    assert set(ASYNC_EXPECTED) == set(ASYNC_DEFECTS)
    for ids in EXPECTED.values():
        for case_id in ids:
            assert case_id in REGISTRY, case_id


@pytest.mark.parametrize(("defect", "case_id"), PAIRS, ids=[f"{d}--{c}" for d, c in PAIRS])
def test_defect_fails_named_case(defect: str, case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    result = runner_for(defect, True).run_case(REGISTRY.get(case_id))
    assert result.outcome == "fail", f"{case_id} did not catch {defect!r}: {result.outcome} {result.reason}"
    assert result.reason


@pytest.mark.parametrize(("name", "case_id", "symptom"), PINNED, ids=[f"{n}--{c}" for n, c, _ in PINNED])
def test_verdict_fixes_pin_their_symptom(
    name: str, case_id: str, symptom: str, runner_for: Callable[[str, bool], Runner]
) -> None:
    """Without --strict: the verdicts fixed in issue 11 fail (a MUST) for the defect named, or pass a
    conforming alternative that the old verdict failed."""
    result = runner_for(name, False).run_case(REGISTRY.get(case_id))
    if not symptom:
        assert result.outcome == "pass", f"{case_id} fails the conforming {name!r}: {result.reason}"
        return
    assert result.outcome == "fail", f"{case_id} let {name!r} through: {result.outcome} {result.reason}"
    assert symptom in result.reason, result.reason


@pytest.mark.parametrize(("defect", "case_id", "symptom"), ASYNC_PAIRS, ids=[f"{d}--{c}" for d, c, _ in ASYNC_PAIRS])
def test_broken_async_client_fails_named_case(defect: str, case_id: str, symptom: str) -> None:
    """A broken copy of the kit's own async client fails the pipelining case about its defect, for that reason."""
    runner = Runner([sys.executable, str(ASYNC_DRIVER), "--defect", defect], strict=True)
    try:
        result = runner.run_case(REGISTRY.get(case_id))
    finally:
        runner.close()
    assert result.outcome == "fail", f"{case_id} did not catch {defect!r}: {result.outcome} {result.reason}"
    assert symptom in result.reason, result.reason


def test_should_case_is_non_strict_without_strict(runner_for: Callable[[str, bool], Runner]) -> None:
    """Without --strict a SHOULD case that catches a defect is non-strict, not fail."""
    result = runner_for("timestamp-seconds", False).run_case(REGISTRY.get("framing.timestamp.produce-ms"))
    assert result.outcome == "non-strict"
    assert "seconds" in result.reason


def test_hung_driver_is_replaced(runner_for: Callable[[str, bool], Runner]) -> None:
    """A driver that misses its deadline fails the case and a fresh driver serves the next case."""
    runner = runner_for("no-timeout", True)
    hung = runner.run_case(REGISTRY.get("errors.timeout.silent-produce"))
    assert hung.outcome == "fail"
    assert "driver hung" in hung.reason
    assert not runner.driver.alive  # killed after the hang
    starts = runner.driver.starts
    after = runner.run_case(REGISTRY.get("framing.create-topic.echo-decoded"))
    assert after.outcome == "pass", after.reason
    assert runner.driver.starts == starts + 1  # the next case started a fresh driver


def _crash(ctx: object) -> None:
    raise ZeroDivisionError("the case itself is broken")


@pytest.mark.parametrize("subject", ["client", "broker"])
def test_a_case_that_crashes_fails_whatever_its_level(subject: str, runner_for: Callable[[str, bool], Runner]) -> None:
    """A harness error is a failure even of a SHOULD case without --strict, and says where it happened."""
    area = "framing" if subject == "client" else "layout"
    case = Case(f"{area}.crash", area, ("WIRE-1",), Level.SHOULD, "Crashes.", _crash, subject=subject)
    if subject == "client":
        result = runner_for("correct", False).run_case(case)
    else:
        with ThreadedMockBroker(record=False) as broker:
            result = BrokerRunner(Target(broker.host, broker.port)).run_case(case)
    assert result.outcome == "fail"
    assert result.reason.startswith("harness error at test_broken_clients.py:")
    assert result.reason.endswith("ZeroDivisionError: the case itself is broken")
