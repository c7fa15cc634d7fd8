"""Conformance suite for MEGA clients (and, later, brokers): ``mega-conformance --driver CMD``.

Importing the package registers every case in :data:`REGISTRY`. The pieces:
:mod:`conformance._case` (cases and the registry), :mod:`conformance._driver`
(the driver process), :mod:`conformance._context` (what a client case works
with), :mod:`conformance._runner`, :mod:`conformance._wire` (the judge's own
frame reader), :mod:`conformance._limits` and :mod:`conformance._text` (bounds
on, and safe display of, text from outside), :mod:`conformance._transcript`
and :mod:`conformance._dissect` (wire transcripts, dissected),
:mod:`conformance._results` (the JSON document), :mod:`conformance._report`
(console, JUnit), :mod:`conformance._html` (the report and comparison pages),
:mod:`conformance._cli` and :mod:`conformance.pytest_plugin`; the cases are in
:mod:`conformance.cases`. docs/CONFORMANCE.md describes the driver contract.
"""

from ._case import AREAS, REGISTRY, Case, CaseFailed, CaseSkipped, Level, Registry, case
from .cases import errors, framing, lifecycle, pipelining  # noqa: F401  (importing them registers the cases)

__all__ = ["AREAS", "REGISTRY", "Case", "CaseFailed", "CaseSkipped", "Level", "Registry", "case"]
