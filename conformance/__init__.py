"""The MEGA conformance suite: checks any MEGA client (``mega-conformance --driver CMD``) or any broker
at an address (``mega-conformance --broker HOST:PORT``) against docs/PROTOCOL.md.

The public API::

    from conformance import REGISTRY, Runner, CaseResult

    with Runner("node my-driver.js", strict=True) as runner:      # a client, through its driver
        results: list[CaseResult] = runner.run(REGISTRY.select("client", areas=["framing"]))

- :data:`REGISTRY` (a :class:`Registry`) holds every case, importing the package registers
  them; :class:`Case`, :class:`Level`, :data:`AREAS`; :func:`case` to register one, and
  :class:`CaseFailed` / :class:`CaseSkipped` for what a case raises.
- :class:`Runner` runs client cases against a driver command; :class:`CaseResult` is a
  verdict with what the reports show.
- :mod:`conformance.broker` runs the broker cases against an address (``BrokerRunner``).
- :mod:`conformance.pytest_plugin` gives one pytest test per client case
  (``pytest --pyargs conformance --mega-driver CMD``).

Everything else (modules with a leading underscore) is the suite's own. docs/CONFORMANCE.md
describes the driver contract, the outputs and the cases.
"""

from ._case import AREAS, REGISTRY, Case, CaseFailed, CaseSkipped, Level, Registry, case
from ._runner import CaseResult, Runner
from .cases import errors, framing, lifecycle, pipelining  # noqa: F401  (importing them registers the cases)

__all__ = [
    "AREAS",
    "REGISTRY",
    "Case",
    "CaseFailed",
    "CaseResult",
    "CaseSkipped",
    "Level",
    "Registry",
    "Runner",
    "case",
]
