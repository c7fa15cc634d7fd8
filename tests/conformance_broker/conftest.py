"""Fixtures for the broker conformance tests: brokers to check, and one full run per profile."""

from __future__ import annotations

import pytest

from conformance._runner import CaseResult
from conformance.broker import BrokerRunner, Target, broker_cases
from mock_broker import ThreadedMockBroker

#: The idle timeout of every broker the tests start, and the one the runs are told about.
IDLE = 0.5
#: The per-topic capacity of the mock brokers the tests start (small enough to fill).
CAPACITY = 20_000


def run_against_mock(profile: str) -> list[CaseResult]:
    """Every broker case against a fresh in-process mock broker of ``profile``."""
    with ThreadedMockBroker(profile=profile, idle_timeout=IDLE, max_messages_per_topic=CAPACITY, record=False) as b:
        runner = BrokerRunner(Target(b.host, b.port, idle_timeout=IDLE, topic_capacity=CAPACITY))
        return runner.run(broker_cases())


@pytest.fixture(scope="module")
def spec_results() -> list[CaseResult]:
    return run_against_mock("spec")


@pytest.fixture(scope="module")
def reference_results() -> list[CaseResult]:
    return run_against_mock("reference")
