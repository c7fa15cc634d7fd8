"""``mega-conformance --broker``: a full run against ``python -m mock_broker``, exit codes, output files."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import _command
from conformance._cli import main
from conformance.broker import broker_cases
from mock_broker import ThreadedMockBroker
from tests._proc import run_module, start_mock_broker, stop

IDLE = "0.5"
CAPACITY = "20000"


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_module("conformance", *args, timeout=timeout)


def _mock(profile: str) -> Iterator[str]:
    proc, host, port = start_mock_broker(
        "--profile", profile, "--idle-timeout", IDLE, "--max-messages-per-topic", CAPACITY
    )
    try:
        yield f"{host}:{port}"
    finally:
        stop(proc)


@pytest.fixture
def spec_broker() -> Iterator[str]:
    yield from _mock("spec")


@pytest.fixture
def reference_broker() -> Iterator[str]:
    yield from _mock("reference")


def test_full_run_against_the_mock_broker(spec_broker: str, tmp_path: Path) -> None:
    out = {name: tmp_path / name for name in ("run.json", "run.xml", "run.html")}
    proc = run_cli(
        "--broker",
        spec_broker,
        "--idle-timeout",
        IDLE,
        "--topic-capacity",
        CAPACITY,
        "--json",
        str(out["run.json"]),
        "--junit-xml",
        str(out["run.xml"]),
        "--report",
        str(out["run.html"]),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "spec-conformant: yes" in proc.stdout
    assert "reference-compatible: yes" in proc.stdout
    document = json.loads(out["run.json"].read_text(encoding="utf-8"))
    assert document["subject"] == "broker"
    records = document["cases"]
    assert [r["id"] for r in records] == [c.id for c in broker_cases()]
    assert {r["outcome"] for r in records if r["level"] == "MUST"} == {"pass"}
    marked = [r for r in records if "reference-defect" in r.get("tags", ())]
    assert {r["id"] for r in marked} >= {"malformed.unknown-type", "connections.fifty-at-once"}
    suites = ET.parse(out["run.xml"]).getroot()
    assert suites.get("name") == "mega-conformance-broker"
    assert suites.get("tests") == str(len(records))
    assert suites.get("failures") == "0"
    tags = suites.find(".//testsuite/properties/property[@name='malformed.unknown-type.tags']")
    assert tags is not None
    assert "reference-defect" in (tags.get("value") or "")
    page = out["run.html"].read_text(encoding="utf-8")
    assert "spec-conformant: yes" in page
    assert f"broker: <code>{spec_broker}" in page
    assert "client &rarr; broker" in page  # the wire transcripts


def test_reference_profile_fails_only_marked_cases(reference_broker: str, tmp_path: Path) -> None:
    report = tmp_path / "ref.json"
    proc = run_cli("--broker", reference_broker, "--area", "names", "--area", "malformed", "--json", str(report), "-q")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "spec-conformant: NO" in proc.stdout
    assert "reference-compatible: yes" in proc.stdout
    records = json.loads(report.read_text(encoding="utf-8"))["cases"]
    failed = [r for r in records if r["outcome"] == "fail"]
    assert failed
    assert all("reference-defect" in r.get("tags", ()) for r in failed)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--broker", "no-port-here"), "is not HOST:PORT"),
        (("--broker", "127.0.0.1:0"), "port 0"),
        (("--idle-timeout", "1"), "only with --broker"),
        (("--broker", "127.0.0.1:9", "--driver", "x"), "exclude each other"),
        (("--broker", "127.0.0.1:9", "--idle-timeout", "-1"), "positive"),
        (("--broker", "127.0.0.1:9", "--topic-capacity", "0"), "1..2147483647"),
        (("--broker", "127.0.0.1:9", "--case", "nothing.*"), "no case matches"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_unreachable_broker_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused, and the port stays ours
        port = s.getsockname()[1]
        assert main(["--broker", f"127.0.0.1:{port}"]) == 2
    assert "cannot connect to the broker" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--json", "--junit-xml", "--report"])
def test_unwritable_output_is_refused_before_connecting(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory\n", encoding="utf-8")
    assert main(["--broker", "127.0.0.1:9", option, str(blocker / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mega-conformance: error: {option} {blocker / 'out'}: {blocker} is not a directory"]


def test_output_failing_after_the_run_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_command, "write_json", refuse)  # the writes of both halves go through _command
    out = tmp_path / "r.json"
    with ThreadedMockBroker(record=False) as broker:
        address = f"{broker.host}:{broker.port}"
        assert main(["--broker", address, "--case", "layout.create-topic", "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert "spec-conformant: yes" in captured.out
    assert captured.err.strip().splitlines() == [f"mega-conformance: error: cannot write {out}: Permission denied"]


def test_list_needs_no_connection(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--broker", "127.0.0.1:9", "--list", "--area", "idle"]) == 0
    out = capsys.readouterr().out
    assert "idle.unsolicited-frame" in out
    assert out.strip().endswith(f"{len(broker_cases(areas=['idle']))} cases")
