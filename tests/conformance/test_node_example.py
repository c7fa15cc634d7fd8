"""examples/node-client: the Node.js client passes the whole client suite, and its own node:test suite.

Every case runs against ``node examples/node-client/driver.js`` (one driver per xdist worker). A
MUST case must pass; a SHOULD case may fail, and is then reported as a warning. Skipped is a
failure too: the example supports every op of the contract, ``pipeline`` included, so a skip
would mean it stopped being judged. Node.js is required, not optional: .ci/run installs it when
it is missing, and without it these tests fail.
"""

from __future__ import annotations

import shutil
import subprocess
import warnings
from collections.abc import Iterator

import pytest

from conformance._case import REGISTRY, Level
from conformance._runner import Runner
from conformance.pytest_plugin import client_case_ids
from tests._proc import ROOT

EXAMPLE = ROOT / "examples" / "node-client"
CASES = client_case_ids()


class ShouldCaseWarning(UserWarning):
    """A SHOULD case the Node.js example fails: reported, not a test failure."""


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is not on PATH: the Node.js example needs Node.js 18 or later (.ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def node_runner() -> Iterator[Runner]:
    runner = Runner([node(), str(EXAMPLE / "driver.js")], strict=False)
    yield runner
    runner.close()


@pytest.mark.parametrize("case_id", CASES)
def test_node_client_passes(case_id: str, node_runner: Runner) -> None:
    result = node_runner.run_case(REGISTRY.get(case_id))
    detail = f"{case_id} [{result.case.level.value}]: {result.outcome}: {result.reason}\n{result.stderr[-2000:]}"
    if result.outcome == "non-strict":
        assert result.case.level is Level.SHOULD
        warnings.warn(ShouldCaseWarning(detail), stacklevel=1)
        return
    assert result.outcome == "pass", detail


def test_node_unit_tests_pass() -> None:
    """The codec against conformance/vectors, the connection state machine, the driver's exact JSON."""
    files = sorted(str(p.relative_to(EXAMPLE)) for p in (EXAMPLE / "test").glob("*.test.js"))
    assert len(files) >= 3, files
    res = subprocess.run(
        [node(), "--test", *files], cwd=EXAMPLE, capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
