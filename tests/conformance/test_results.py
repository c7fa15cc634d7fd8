"""The JSON results document: what it holds, and reading it back as carefully as a driver's output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import CaseResult, Runner
from conformance._case import REGISTRY, Case, Level
from conformance._context import ClientContext
from conformance._limits import JSON_WIRE_BYTES
from conformance._results import FORMAT, VERSION, ResultsFileError, document, load, run_view, write_document

CASES = ("framing.create-topic.echo-decoded", "framing.produce.layout", "errors.protocol.wrong-correlation-id")


def _noted(ctx: ClientContext) -> None:
    """Connect, say which behaviour was seen, pass."""
    ctx.ok(ctx.connect(), "connect")
    ctx.note("retried transparently")


NOTED = Case(
    id="framing.note.example",
    area="framing",
    clauses=("CLIENT-20",),
    level=Level.SHOULD,
    description="a case that passes with a note",
    run=_noted,
)


@pytest.fixture(scope="module")
def results(runner_for: Callable[[str, bool], Runner]) -> list[CaseResult]:
    runner = runner_for("no-cid-check", False)
    return runner.run([*(REGISTRY.get(i) for i in CASES), NOTED])


def test_the_document_names_its_format_and_version(results: list[CaseResult], tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_document(path, run_view(results, target="./driver", strict=True, duration=1.5))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert (data["format"], data["version"]) == (FORMAT, VERSION)
    assert (data["subject"], data["target"], data["strict"], data["unusable"]) == ("client", "./driver", True, None)
    assert data["summary"]["cases"] == 4
    by_id = {c["id"]: c for c in data["cases"]}
    assert by_id["errors.protocol.wrong-correlation-id"]["outcome"] == "fail"
    assert by_id["framing.note.example"]["note"] == "retried transparently"
    assert by_id["framing.note.example"]["outcome"] == "pass"
    wire = by_id["errors.protocol.wrong-correlation-id"]["connections"][0]
    assert wire["faults"][0]["action"] == "wrong-cid"
    assert bytes.fromhex(wire["received"])[4] == 0x03  # CREATE_TOPIC first
    assert wire["received_total"] >= len(bytes.fromhex(wire["received"]))
    expected = {"id", "area", "clauses", "level", "outcome", "reason", "note", "description", "duration_s", "tags"}
    assert expected | {"stderr", "conversation", "connections"} == set(by_id["framing.produce.layout"])


def test_a_document_reads_back_as_the_view_it_came_from(results: list[CaseResult], tmp_path: Path) -> None:
    view = run_view(results, target="./driver")
    path = tmp_path / "r.json"
    write_document(path, view)
    again = load(path)
    assert [(c.id, c.outcome, c.reason, c.note, c.clauses) for c in again.cases] == [
        (c.id, c.outcome, c.reason, c.note, c.clauses) for c in view.cases
    ]
    for before, after in zip(view.cases, again.cases, strict=True):
        for t0, t1 in zip(before.connections, after.connections, strict=True):
            assert t1.received == t0.received[:JSON_WIRE_BYTES]
            assert t1.faults == t0.faults
            assert t1.total("received") == t0.total("received")
    assert document(again)["cases"] == document(view)["cases"]


def test_version_1_a_bare_list_of_records_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    record = {"id": "framing.produce.layout", "area": "framing", "clauses": ["WIRE-1"], "level": "MUST"}
    path.write_text(json.dumps([{**record, "outcome": "pass", "reason": "", "duration_s": 0.1}]), encoding="utf-8")
    view = load(path)
    assert view.version == 1
    assert view.cases[0].id == "framing.produce.layout"


NOT_HEX = {"id": "x", "outcome": "pass", "connections": [{"sent": "z"}]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[" * 100_000, "nested more than"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not JSON"),
        (json.dumps({"format": "other"}).encode(), "not a mega-conformance --json file"),
        (json.dumps({"format": FORMAT, "version": 99, "cases": []}).encode(), "version: 99"),
        (json.dumps({"format": FORMAT, "version": 2, "cases": [{"id": "x", "outcome": "won"}]}).encode(), "outcome"),
        (json.dumps({"format": FORMAT, "version": 2, "cases": [{"outcome": "pass"}]}).encode(), "cases[0].id: missing"),
        (json.dumps({"format": FORMAT, "version": 2, "cases": [NOT_HEX]}).encode(), "not hex"),
        (json.dumps({"format": FORMAT, "version": 2, "cases": {}}).encode(), "cases: not a list"),
    ],
)
def test_a_broken_file_is_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ResultsFileError, match=r"bad\.json") as info:
        load(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_text_in_a_file_is_bounded_when_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    case = {"id": "x", "outcome": "fail", "reason": "r" * 1_000_000, "stderr": "e" * 1_000_000}
    path.write_text(json.dumps({"format": FORMAT, "version": 2, "cases": [case]}), encoding="utf-8")
    (read,) = load(path).cases
    assert len(read.reason) < 2100
    assert len(read.stderr) < 17_000
