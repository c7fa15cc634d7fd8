"""The benchmark runs end to end at its tiny size and reports every figure.

No timing assertions: the figures of a shared machine are noise. This checks
that ``python -m bench --quick`` finishes, and that its results file holds
every figure with a sane value (positive rates, computed ratios).
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

#: One xdist worker runs every test here, so the module fixture runs the benchmark once (with
#: ``--dist loadgroup``, as tox runs pytest; under plain ``-n`` each worker with a test here runs it).
pytestmark = pytest.mark.xdist_group("bench")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--spin", "never", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,  # about 10 s when the machine is quiet; generous for a busy CI
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "latest.json").read_text()), out


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_throughput_cells_all_measured(results: tuple[dict[str, Any], Path]) -> None:
    r, _ = results
    cells = r["throughput"]
    seen = {(c["op"], c["conns"], c["depth"]) for c in cells}
    assert seen == {(op, c, d) for op in ("produce", "consume") for c in (1, 8) for d in (1, 64)}
    for c in cells:
        assert _positive(c["floor_rps"]), c
        assert _positive(c["broker_rps"]), c
        assert c["ratio"] == pytest.approx(c["broker_rps"] / c["floor_rps"])


def test_deep_topic_and_memory(results: tuple[dict[str, Any], Path]) -> None:
    r, _ = results
    co = r["consume_offset"]
    assert co["deep_offset"] < co["topic_messages"]
    for key in ("fill_rps", "offset0_rps", "deep_rps", "cost_ratio"):
        assert _positive(co[key]), (key, co)
    assert co["cost_ratio"] == pytest.approx(co["offset0_rps"] / co["deep_rps"])
    mem = r["memory"]
    assert mem["payload_bytes"] == 100
    assert mem["rss_after"] > mem["rss_before"] > 0
    # at least the payload is stored, and nothing absurd (a message is not a megabyte)
    assert 100 <= mem["bytes_per_message"] < 100_000
    assert mem["overhead_bytes_per_message"] == pytest.approx(mem["bytes_per_message"] - 100)


def test_client_figures(results: tuple[dict[str, Any], Path]) -> None:
    r, _ = results
    cl = r["client"]
    for key in ("raw_rps", "sync_rps", "async_rps", "slowdown"):
        assert _positive(cl[key]), (key, cl)
    assert cl["slowdown"] == pytest.approx(cl["raw_rps"] / cl["sync_rps"])
    assert cl["async_concurrency"] == 64


def test_targets_all_evaluated(results: tuple[dict[str, Any], Path]) -> None:
    r, _ = results
    targets = r["targets"]
    assert len(targets) == 5
    for t in targets:
        assert _positive(t["measured"]), t
        assert isinstance(t["met"], bool)


def test_megaload_cross_check_ran_or_said_why(results: tuple[dict[str, Any], Path]) -> None:
    r, _ = results
    ml = r["megaload"]
    assert isinstance(ml["available"], bool)
    assert ml["note"]
    if ml["available"]:
        assert ml["cells"]
        for c in ml["cells"]:
            assert _positive(c["floor_rps"]), c
            assert _positive(c["broker_rps"]), c
        assert _positive(ml["deep"]["cost_ratio"])


def test_chart_and_summary_written(results: tuple[dict[str, Any], Path]) -> None:
    _, out = results
    root = ET.fromstring((out / "perf-chart.svg").read_text())
    assert root.tag.endswith("svg")
    assert len(root) > 20
    summary = (out / "summary.md").read_text()
    assert "broker/floor" in summary
    assert "target" in summary
