"""Fixtures for the broker conformance tests: brokers to check, and one full run per profile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import pytest

from conformance import CaseResult
from conformance._case import Case
from conformance.broker import BrokerRunner, Target, broker_cases
from conformance.broker._context import DEFAULT_TIMEOUT
from mock_broker import ThreadedMockBroker

#: The idle timeout of the brokers the idle.* cases run against, and the one those runs are told about.
IDLE = 0.5
#: The per-topic capacity of the brokers the tests start (small enough to fill).
CAPACITY = 20_000


class _Address(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def run_split(
    cases: Sequence[Case],
    start_broker: Callable[[float | None], AbstractContextManager[_Address]],
    *,
    strict: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[CaseResult]:
    """``cases`` in two runs: ``idle.*`` against a broker with the short :data:`IDLE` timeout, every other case
    against one without an idle timeout (and a target that knows it), so that on a loaded machine no other case
    has a connection closed for idleness under it. Results in the order of ``cases``.

    ``start_broker(idle_timeout)`` starts a broker with that idle timeout (``None``: never).
    """
    results: list[CaseResult] = []
    for idle in (None, IDLE):
        selected = [c for c in cases if (c.area == "idle") == (idle is not None)]
        if not selected:
            continue
        with start_broker(idle) as broker:
            target = Target(broker.host, broker.port, timeout=timeout, idle_timeout=idle, topic_capacity=CAPACITY)
            results += BrokerRunner(target, strict=strict).run(selected)
    order = {c.id: i for i, c in enumerate(cases)}
    return sorted(results, key=lambda r: order[r.case.id])


def run_against_mock(profile: str) -> list[CaseResult]:
    """Every broker case against fresh in-process mock brokers of ``profile``."""

    def start(idle: float | None) -> ThreadedMockBroker:
        return ThreadedMockBroker(profile=profile, idle_timeout=idle, max_messages_per_topic=CAPACITY, record=False)

    return run_split(broker_cases(), start)


@pytest.fixture(scope="module")
def spec_results() -> list[CaseResult]:
    return run_against_mock("spec")


@pytest.fixture(scope="module")
def reference_results() -> list[CaseResult]:
    return run_against_mock("reference")
