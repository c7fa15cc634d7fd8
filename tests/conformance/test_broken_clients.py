"""The runner around the broken clients: what a hung driver, a crashing case and --strict do, and a conforming
alternative the suite must not fail.

Which defect each case catches, and by what symptom, is tests/conformance/proofs.py (test_proofs.py runs it).
The clients are tests/conformance/broken_clients/: megaclient.py (raw sockets, one flag per defect, and
conforming alternatives) behind driver.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance._case import REGISTRY, Case, Level
from conformance._runner import Runner
from conformance.broker import BrokerRunner, Target
from mock_broker import ThreadedMockBroker

from .broken_clients.megaclient import ALTERNATIVES

#: Each conforming alternative of megaclient, and the cases it must pass although it differs from the default
#: where they look.
ALTERNATIVE_PASSES = {
    "stray-bytes-fail-next-call": ("errors.protocol.bytes-while-idle",),
}


def test_every_alternative_has_named_cases() -> None:
    assert set(ALTERNATIVE_PASSES) == set(ALTERNATIVES)


@pytest.mark.parametrize(
    ("name", "case_id"), [(n, c) for n, ids in ALTERNATIVE_PASSES.items() for c in ids], ids="--".join
)
def test_conforming_alternative_passes(name: str, case_id: str, runner_for: Callable[[str, bool], Runner]) -> None:
    """A client that differs from the default in a way the spec allows passes, strictly."""
    result = runner_for(name, True).run_case(REGISTRY.get(case_id))
    assert result.outcome == "pass", f"{case_id} fails the conforming {name!r}: {result.reason}"


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
