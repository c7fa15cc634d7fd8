"""Runners for the conformance tests: one driver process per driver command and xdist worker."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance._runner import Runner

BROKEN_DRIVER = Path(__file__).parent / "broken_clients" / "driver.py"
#: The kit's AsyncMessageClient with one planted defect (``--defect NAME``), behind the bundled driver.
ASYNC_DRIVER = Path(__file__).parent / "broken_clients" / "async_driver.py"


def broken_driver(defect: str | None) -> list[str]:
    """The command line of the standalone test client, correct (``None``) or with planted defects
    (``"a"``, or ``"a+b"`` for two)."""
    argv = [sys.executable, str(BROKEN_DRIVER)]
    return argv if defect is None else [*argv, "--defect", defect]


@pytest.fixture(scope="session")
def runner_for() -> Iterator[Callable[[str, bool], Runner]]:
    """``runner_for(name, strict)``: a cached runner; name is "mega_client", "mega_client --async",
    "correct" or a defect of the standalone test client."""
    runners: dict[tuple[str, bool], Runner] = {}

    def get(name: str, strict: bool = True) -> Runner:
        key = (name, strict)
        if key not in runners:
            if name == "mega_client":
                command = None
            elif name == "mega_client --async":
                command = [sys.executable, "-m", "mega_client.conformance_driver", "--async"]
            elif name == "correct":
                command = broken_driver(None)
            else:
                command = broken_driver(name)
            runners[key] = Runner(command, strict=strict)
        return runners[key]

    yield get
    for runner in runners.values():
        runner.close()
