"""Run the client cases under pytest: ``pytest --pyargs conformance --mega-driver CMD``.

Each case is one test (``conformance/test_client_conformance.py``, parametrized
by case id), so ``-k``, ``-x``, ``--junitxml`` and pytest-xdist work as usual.
Under xdist every worker starts its own driver process (a session fixture is
per worker) and every case its own mock broker on an ephemeral port, so
workers share nothing. A failed MUST case (or SHOULD case with
``--mega-strict``) fails its test; a failed SHOULD case without it is reported
as xfail; a case the driver could not finish fails (a SHOULD case says "not judged");
a case that does not apply is skipped.

How the options get registered: this module is a pytest plugin, declared
through the ``pytest11`` entry point ``mega_conformance`` (active wherever the
kit is installed), and ``conformance/conftest.py`` re-exports it (active when
pytest is started next to the ``conformance`` directory of a source checkout,
where ``--pyargs conformance`` resolves to that directory and loads its
conftest early enough to add options). When both are active the second
registration of the options is skipped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from . import REGISTRY, Runner
from ._text import one_line


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mega-conformance", "MEGA client conformance (pytest --pyargs conformance)")
    with contextlib.suppress(ValueError):  # already added by the other registration path
        group.addoption(
            "--mega-driver",
            metavar="CMD",
            default=None,
            help="driver command line for the client under test (default: the bundled mega_client driver)",
        )
        group.addoption(
            "--mega-strict",
            action="store_true",
            default=False,
            help="a SHOULD case that fails fails its test (default: xfail)",
        )


@pytest.fixture(scope="session")
def mega_conformance_runner(request: pytest.FixtureRequest) -> Iterator[Runner]:
    """One driver process for this pytest process (one per xdist worker)."""
    command = request.config.getoption("--mega-driver", default=None)
    strict = bool(request.config.getoption("--mega-strict", default=False))
    with Runner(command, strict=strict) as runner:
        yield runner


def client_case_ids() -> list[str]:
    """Every client case id, in report order."""
    return [c.id for c in REGISTRY.of("client")]


def run_case_as_test(runner: Runner, case_id: str) -> None:
    """Run one case and turn its outcome into pytest's."""
    result = runner.run_case(REGISTRY.get(case_id))
    clauses = ", ".join(result.case.clauses)
    reason = one_line(result.reason)  # driver text, shown on a terminal
    if result.outcome == "fail":
        pytest.fail(f"{case_id} [{result.case.level.value} {clauses}]: {reason}", pytrace=False)
    elif result.outcome == "not-judged":
        pytest.fail(f"{case_id} [SHOULD {clauses}] not judged: {reason}", pytrace=False)
    elif result.outcome == "skipped":
        pytest.skip(f"{case_id}: {reason}")
    elif result.outcome == "non-strict":
        pytest.xfail(f"{case_id} [SHOULD {clauses}] not met: {reason}")
