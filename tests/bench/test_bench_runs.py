"""The benchmark end to end, at its tiny size: every figure measured, nothing tracked rewritten.

No timing assertions: a shared machine's figures are noise. A plain
``python -m bench --quick`` runs in a copy of the checkout, so that its default
output folder (bench/results/) and the files it must leave alone can both be
checked without touching the real checkout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from bench import report
from tests._proc import ROOT

#: One xdist worker runs every test here, so the module fixture runs the benchmark once (with
#: ``--dist loadgroup``, as tox runs pytest; under plain ``-n`` each worker with a test here runs it).
pytestmark = pytest.mark.xdist_group("bench")

#: What a run needs from the checkout.
COPIED = ("bench", "mega_client", "mock_broker", "docs", "pyproject.toml", "README.md")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "results")


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.parts[len(root.parts) : len(root.parts) + 2]
        != (
            "bench",
            "results",
        )
    }


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the files of the checkout that the benchmark reads."""
    dest = tmp_path_factory.mktemp("checkout")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORED)
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def quick_run(checkout: Path) -> tuple[dict[str, Any], subprocess.CompletedProcess[str], dict[str, str]]:
    before = _digests(checkout)
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=300,  # about 15 s when the machine is quiet; generous for a busy CI
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((checkout / "bench" / "results" / "latest.json").read_text())
    return results, proc, before


@pytest.fixture(scope="module")
def results(quick_run: tuple[dict[str, Any], subprocess.CompletedProcess[str], dict[str, str]]) -> dict[str, Any]:
    return quick_run[0]


def _positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _spread_ok(d: Any, rounds: int) -> bool:
    return (
        isinstance(d, dict) and d["n"] == rounds and 0 < d["low"] <= d["median"] <= d["high"] and _positive(d["median"])
    )


def test_a_plain_run_writes_only_its_results_folder(
    checkout: Path, quick_run: tuple[dict[str, Any], subprocess.CompletedProcess[str], dict[str, str]]
) -> None:
    _, _, before = quick_run
    assert _digests(checkout) == before  # docs/perf-chart.svg and docs/PERFORMANCE.md among them
    out = checkout / "bench" / "results"
    assert sorted(p.name for p in out.iterdir()) == ["latest.json", "perf-chart.svg", "summary.md"]


def test_efficiency_rows_have_every_figure_with_its_spread_and_load(results: dict[str, Any]) -> None:
    rounds = results["meta"]["sizes"]["rounds"]
    assert rounds == 2
    rows = results["efficiency"]
    assert {(r["op"], r["conns"], r["depth"], r["loop"]) for r in rows} == {
        (op, c, 64, "asyncio") for op in ("produce", "consume") for c in (1, 8)
    }
    for row in rows:
        for side in ("floor", "broker"):
            for key in ("cpu_us", "rate", "busy", "answers_per_read", "self_cpu_us", "loadavg1"):
                assert _spread_ok(row[side][key], rounds), (side, key, row[side][key])
            assert len(row[side]["rounds"]) == rounds
            for r in row[side]["rounds"]:
                assert r["generator"] == results["meta"]["loadgen"]
                assert r["requests"] > 0
                assert r["cpu_us"] == pytest.approx(r["server_cpu_seconds"] / r["requests"] * 1e6)
                assert r["others_cores"] is not None
        assert _spread_ok(row["efficiency"], rounds)
        per_round = [
            f["cpu_us"] / b["cpu_us"] for f, b in zip(row["floor"]["rounds"], row["broker"]["rounds"], strict=True)
        ]
        assert row["efficiency"]["low"] == pytest.approx(min(per_round))
        assert row["efficiency"]["high"] == pytest.approx(max(per_round))
        assert row["load"]["loadavg1"] is not None
        assert row["load"]["others_cores"] is not None


def test_deep_topic_and_memory(results: dict[str, Any]) -> None:
    co = results["consume_offset"]
    assert co["deep_offset"] < co["topic_messages"]
    for key in ("offset0", "deep"):
        assert _spread_ok(co[key]["cpu_us"], 2)
    assert _spread_ok(co["cost_ratio"], 2)
    mem = results["memory"]
    assert mem["payload_bytes"] == 100
    assert mem["rss_after"] > mem["rss_before"] > 0
    assert mem["fill"]["all_requests"] == mem["messages"]
    # at least the payload is stored, and nothing absurd (a message is not a megabyte)
    assert 100 <= mem["bytes_per_message"] < 100_000
    assert mem["overhead_bytes_per_message"] == pytest.approx(mem["bytes_per_message"] - 100)


def test_idle_connections(results: dict[str, Any]) -> None:
    idle = results["idle_connections"]
    assert idle["connections"] == 50
    assert len(idle["rounds"]) == 2  # a fresh broker each
    for r in idle["rounds"]:
        assert r["rss_after"] >= r["rss_before"] > 0
        assert r["bytes_per_connection"] == pytest.approx((r["rss_after"] - r["rss_before"]) / 50)
    per = idle["bytes_per_connection"]
    assert per["n"] == 2
    assert per["low"] <= per["median"] <= per["high"]  # 50 connections may not grow RSS by a page


def test_client_figures(results: dict[str, Any]) -> None:
    cl = results["client"]
    for key in ("raw_us_per_request", "sync_us_per_request", "sync_time_ratio", "async_share_of_capacity"):
        assert _spread_ok(cl[key], 2), (key, cl[key])
    for kind in ("raw", "sync", "async"):
        assert _spread_ok(cl[kind]["self_cpu_us"], 2)  # the client's own CPU per request
    assert _spread_ok(cl["capacity"]["cpu_us"], 2)  # the broker's, under the load generator
    assert cl["async_concurrency"] == 64


def test_targets_all_evaluated(results: dict[str, Any]) -> None:
    keys = [t["key"] for t in results["targets"]]
    assert keys == [
        "produce_efficiency_1",
        "produce_efficiency_8",
        "consume_deep_cost",
        "stored_overhead_bytes",
        "idle_connection_bytes",
        "sync_client_time_ratio",
    ]
    for t in results["targets"]:
        assert _positive(t["measured"]), t
        assert isinstance(t["met"], bool)


def test_meta_says_how_and_under_what_load(results: dict[str, Any]) -> None:
    meta = results["meta"]
    assert meta["loadgen"] in ("c", "python")
    assert meta["loadgen_note"]
    assert len(meta["loadavg_start"]) == 3
    assert len(meta["loadavg_end"]) == 3
    assert meta["seconds"] > 0


def test_printed_summary_and_chart(
    checkout: Path, quick_run: tuple[dict[str, Any], subprocess.CompletedProcess[str], dict[str, str]]
) -> None:
    _, proc, _ = quick_run
    assert "efficiency" in proc.stdout
    assert "load average" in proc.stdout
    summary = (checkout / "bench" / "results" / "summary.md").read_text()
    assert summary in proc.stdout
    root = ET.fromstring((checkout / "bench" / "results" / "perf-chart.svg").read_text())
    assert root.tag.endswith("svg")
    assert len(root) > 20


def test_write_docs_replaces_only_the_figures_block(results: dict[str, Any], tmp_path: Path) -> None:
    doc = tmp_path / "PERFORMANCE.md"
    original = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    doc.write_text(original)
    report.write_docs(results, doc)
    text = doc.read_text()
    head, rest = original.split(report.BEGIN, 1)
    tail = rest.split(report.END, 1)[1]
    assert text.startswith(head + report.BEGIN)
    assert text.endswith(report.END + tail)
    assert report.summary_markdown(results) in text


def test_write_docs_refuses_a_partial_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--write-docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--write-docs needs a full run" in proc.stderr


def test_help_shows_defaults_and_the_duration() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "Duration: the default run takes about" in text
    for default in ("default: 5", "default: 1.0", "default: 0.3", "default: auto", "default: bench/results/"):
        assert default in text, default


@pytest.mark.parametrize("generator", ["c", "python"])
def test_load_generators_stop_at_an_error_answer(generator: str, tmp_path: Path) -> None:
    """PRODUCE to a topic that does not exist: every answer is an error, none may be counted."""
    from bench.loadgen import PRODUCE_ANSWER_BYTES, Job, LoadError, LoadGenerator, Ring, produce_ring
    from bench.servers import Server, running

    try:
        gen = LoadGenerator.choose(generator)
    except LoadError as exc:
        pytest.skip(f"no C compiler here: {exc}")  # the python case still runs
    ring = Ring.write(tmp_path, "missing", produce_ring("missing", 100), PRODUCE_ANSWER_BYTES)
    with running(Server.broker(tmp_path)) as (broker,), pytest.raises(LoadError, match="not a success"):
        gen.run(Job(broker.port, ring, 1, 8, count=100))


@pytest.mark.parametrize("generator", ["c", "python"])
def test_load_generators_count_exactly(generator: str, tmp_path: Path) -> None:
    from bench.loadgen import PRODUCE_ANSWER_BYTES, Job, LoadError, LoadGenerator, Ring, produce_ring
    from bench.servers import Server, create_topics, running

    try:
        gen = LoadGenerator.choose(generator)
    except LoadError as exc:
        pytest.skip(f"no C compiler here: {exc}")
    ring = Ring.write(tmp_path, "t", produce_ring("t", 100), PRODUCE_ANSWER_BYTES)
    with running(Server.broker(tmp_path)) as (broker,):
        create_topics(broker.port, ["t"])
        sample = gen.run(Job(broker.port, ring, 3, 16, count=1000, server_pid=broker.pid))
    assert sample.generator == generator
    assert sample.requests == sample.all_requests == 3000
    assert sample.server_cpu_seconds is not None
    assert sample.server_cpu_seconds > 0


def test_broker_loop_option(tmp_path: Path) -> None:
    """``--loop uvloop`` serves on uvloop when it is installed, and says how to install it when not."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        proc = subprocess.run(
            [sys.executable, "-m", "mock_broker", "--port", "0", "--loop", "uvloop"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2
        assert "pip install 'mega-testkit[uvloop]'" in proc.stderr
        assert "Traceback" not in proc.stderr
        return
    from bench.servers import Server, exchange, running
    from mega_client.protocol import CreateTopicRequest, CreateTopicResponse

    with running(Server.broker(tmp_path, loop="uvloop")) as (broker,):
        (answer,) = exchange(broker.port, [CreateTopicRequest(7, "on-uvloop", 1)])
        assert isinstance(answer, CreateTopicResponse)
        maps = Path(f"/proc/{broker.pid}/maps").read_text()
        assert "/uvloop/loop." in maps  # uvloop's extension is loaded in the broker process
        assert broker.stop() == 0  # a clean stop on SIGINT, as on the stdlib loop
