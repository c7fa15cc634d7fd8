"""Broker conformance: check any MEGA broker at an address with raw frames.

``mega-conformance --broker HOST:PORT`` (``python -m conformance --broker ...``)
runs the cases of subject ``"broker"`` against a running broker: each sends raw
requests over its own TCP connections and judges the exact response bytes,
their order, the limits and the connection behaviour against docs/PROTOCOL.md.
Topics are named ``<run id>.<case id>[...]`` with a random run id, so nothing
assumes an empty broker. From Python::

    from conformance.broker import BrokerRunner, Target, broker_cases, verdict_lines

    runner = BrokerRunner(Target("127.0.0.1", 8080, idle_timeout=0.5))
    results = runner.run(broker_cases())
    print("\\n".join(verdict_lines(results)))
"""

from __future__ import annotations

from collections.abc import Iterable

from conformance._case import REGISTRY, Case

from . import cases as _cases  # noqa: F401  (importing it registers every broker case)
from ._context import BrokerContext, Connection, Target, parse_address
from ._registry import REFERENCE_DEFECT, REFERENCE_DEFECTS, broker_case, is_reference_defect, reference_defects
from ._runner import BrokerRunner, TargetUnreachable, Verdicts, verdict_lines, verdicts


def broker_cases(ids: Iterable[str] = (), areas: Iterable[str] = ()) -> list[Case]:
    """The broker cases (all, or those matching the ``ids`` / ``areas`` globs), in report order."""
    return REGISTRY.select("broker", ids=ids, areas=areas)


__all__ = [
    "REFERENCE_DEFECT",
    "REFERENCE_DEFECTS",
    "BrokerContext",
    "BrokerRunner",
    "Connection",
    "Target",
    "TargetUnreachable",
    "Verdicts",
    "broker_case",
    "broker_cases",
    "is_reference_defect",
    "parse_address",
    "reference_defects",
    "verdict_lines",
    "verdicts",
]
