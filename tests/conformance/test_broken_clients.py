"""Proof that the suite has teeth: each planted defect fails the cases named for it.

Each broken client is tests/conformance/broken_clients/megaclient.py with one
defect switched on; the correct variant passes every case
(test_reference_drivers.py), so each failure below comes from its defect.
Only the named cases run against each broken client, with --strict so that a
SHOULD case that catches a defect counts as a failure.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance._case import REGISTRY, Case, Level
from conformance._runner import Runner
from conformance.broker import BrokerRunner, Target
from mock_broker import ThreadedMockBroker

from .broken_clients.megaclient import DEFECTS

#: defect -> the cases that must fail against it.
EXPECTED: dict[str, tuple[str, ...]] = {
    "omit-payload-length-consume": ("framing.consume.layout", "framing.consume.payload-length-present"),
    "omit-payload-length-create": ("framing.create-topic.layout", "framing.create-topic.payload-length-present"),
    "recv-once": (
        "framing.response.create-topic-byte-by-byte",
        "framing.response.produce-byte-by-byte",
        "framing.response.consume-byte-by-byte",
        "framing.response.larger-than-4k",
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
    "no-timeout": ("errors.timeout.silent-produce", "lifecycle.connect.times-out"),
    "never-close": ("lifecycle.close.ends-connection", "lifecycle.close.sends-fin"),
    "timestamp-seconds": (
        "framing.timestamp.create-topic-ms",
        "framing.timestamp.produce-ms",
        "framing.timestamp.consume-ms",
    ),
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


def test_every_defect_has_named_cases() -> None:
    assert set(EXPECTED) == set(DEFECTS)
    for ids in EXPECTED.values():
        for case_id in ids:
            assert case_id in REGISTRY, case_id


@pytest.mark.parametrize(("defect", "case_id"), PAIRS, ids=[f"{d}--{c}" for d, c in PAIRS])
def test_defect_fails_named_case(defect: str, case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    result = runner_for(defect, True).run_case(REGISTRY.get(case_id))
    assert result.outcome == "fail", f"{case_id} did not catch {defect!r}: {result.outcome} {result.reason}"
    assert result.reason


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
