"""examples/node-mock-broker: a node:test suite driving the broker over its control API, run as CI runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from tests._proc import ROOT, kit_env

EXAMPLE = ROOT / "examples" / "node-mock-broker" / "broker.test.mjs"


def test_the_node_example_suite_passes():
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for this example (.ci/run installs it when missing)"
    env = kit_env()
    env["MEGA_PYTHON"] = sys.executable  # the interpreter that has this kit
    res = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(EXAMPLE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = res.stdout[-6000:] + res.stderr[-3000:]
    assert res.returncode == 0, report
    assert re.search(r"^# pass 4$", res.stdout, re.M), report
    assert re.search(r"^# fail 0$", res.stdout, re.M), report
