"""The mega-conformance command: exit codes, one-line errors, and well-formed outputs."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance import _cli, _command
from conformance._case import REGISTRY
from tests._proc import run_module

from .conftest import broken_driver

RECORD_KEYS = {"id", "area", "clauses", "level", "outcome", "reason"}


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_module("conformance", *args, timeout=timeout)


def driver_arg(defect: str | None) -> str:
    return subprocess.list2cmdline(broken_driver(defect))


def test_list() -> None:
    proc = run_cli("--list")
    assert proc.returncode == 0, proc.stderr
    assert f"{len(REGISTRY.of('client'))} cases" in proc.stdout
    assert "framing.create-topic.layout" in proc.stdout


def test_list_selects_by_area_and_glob() -> None:
    proc = run_cli("--list", "--area", "lifecycle", "--case", "framing.payload.*")
    assert proc.returncode == 0, proc.stderr
    ids = [line.split()[0] for line in proc.stdout.splitlines() if line and not line.startswith(" ")][:-1]
    assert ids
    assert all(i.startswith(("lifecycle.", "framing.payload.")) for i in ids)


@pytest.mark.parametrize(
    "args",
    [
        ("--case", "no.such.case"),
        ("--area", "nowhere"),
        ("--bogus",),
        ("--json", "/nonexistent-dir/x.json"),
        ("--driver", "/nonexistent/driver --flag"),
        ("--driver", ""),
    ],
)
def test_bad_arguments_are_one_line_errors(args: tuple[str, ...]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mega-conformance: error:")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("option", ["--json", "--junit-xml", "--report"])
def test_unwritable_output_is_refused_before_the_run(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path under a regular file cannot be created, even by root: exit 2 at once, the driver never started."""
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory\n", encoding="utf-8")
    args = ["--driver", "/nonexistent/driver", option, str(blocker / "out")]
    assert _cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"mega-conformance: error: {option} {blocker / 'out'}: {blocker} is not a directory"]


def test_output_failing_after_the_run_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_command, "write_junit", refuse)  # the writes of both halves go through _command
    out = tmp_path / "r.xml"
    args = ["--driver", driver_arg(None), "--case", "framing.create-topic.echo-decoded", "--junit-xml", str(out)]
    assert _cli.main(args) == 2
    captured = capsys.readouterr()
    assert "PASS  framing.create-topic.echo-decoded" in captured.out
    assert captured.err.strip().splitlines() == [f"mega-conformance: error: cannot write {out}: Permission denied"]


def test_exit_zero_when_every_must_case_passes() -> None:
    proc = run_cli("--driver", driver_arg(None), "--case", "framing.create-topic.echo-decoded")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  framing.create-topic.echo-decoded" in proc.stdout
    assert "OK: every MUST case passed" in proc.stdout


def test_exit_one_when_a_must_case_fails() -> None:
    proc = run_cli("--driver", driver_arg("echo-misread"), "--case", "framing.create-topic.echo-decoded")
    assert proc.returncode == 1
    assert "FAIL  framing.create-topic.echo-decoded" in proc.stdout


def test_should_failure_exits_zero_unless_strict() -> None:
    args = ("--driver", driver_arg("timestamp-seconds"), "--case", "framing.timestamp.produce-ms")
    lenient = run_cli(*args)
    assert lenient.returncode == 0, lenient.stdout
    assert "WARN  framing.timestamp.produce-ms" in lenient.stdout
    strict = run_cli(*args, "--strict")
    assert strict.returncode == 1, strict.stdout


class _TagChecker(HTMLParser):
    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


def test_outputs_are_well_formed(tmp_path: Path) -> None:
    json_path, xml_path, html_path = tmp_path / "r.json", tmp_path / "r.xml", tmp_path / "r.html"
    cases = ("framing.create-topic.echo-decoded", "framing.produce.layout", "framing.timestamp.produce-ms")
    args = [a for c in cases for a in ("--case", c)]
    proc = run_cli(
        "--driver",
        driver_arg("echo-misread"),
        *args,
        "--json",
        str(json_path),
        "--junit-xml",
        str(xml_path),
        "--report",
        str(html_path),
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr

    document = json.loads(json_path.read_text())
    assert (document["format"], document["version"]) == ("mega-conformance-results", 2)
    assert document["summary"] == {"cases": 3, "pass": 2, "fail": 1, "non-strict": 0, "not-judged": 0, "skipped": 0}
    records = document["cases"]
    assert sorted(r["id"] for r in records) == sorted(cases)
    for r in records:
        assert set(r) >= RECORD_KEYS
        assert r["outcome"] in ("pass", "fail", "non-strict", "skipped")
        assert r["level"] in ("MUST", "SHOULD")
        assert r["area"] == "framing"
        assert r["clauses"]
    by_id = {r["id"]: r for r in records}
    assert by_id["framing.create-topic.echo-decoded"]["outcome"] == "fail"
    assert "probe-a" in by_id["framing.create-topic.echo-decoded"]["reason"]
    assert by_id["framing.produce.layout"]["outcome"] == "pass"

    root = ET.parse(xml_path).getroot()
    assert root.tag == "testsuites"
    assert root.get("tests") == "3"
    assert root.get("failures") == "1"
    assert root.get("errors") == "0"
    testcases = root.findall(".//testcase")
    assert {tc.get("name") for tc in testcases} == set(cases)
    failed = [tc for tc in testcases if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["framing.create-topic.echo-decoded"]

    page = html_path.read_text()
    checker = _TagChecker()
    checker.feed(page)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert checker.stack == [], checker.stack
    assert not checker.external, checker.external
    assert "<style>" in page
    for case_id in cases:
        assert f'id="{case_id}"' in page
    assert "client &rarr; broker" in page
    assert "broker &rarr; client" in page
    # the PRODUCE of the layout case, dissected: message_type 01, topic_length 00 00 00 07, "probe-a"
    assert "<i>message_type</i><code>01</code><b>0x01 PRODUCE</b>" in page
    assert "<i>topic_length</i><code>00 00 00 07</code><b>7</b>" in page
    assert "<i>topic</i><code>70 72 6f 62 65 2d 61</code><b>&quot;probe-a&quot;</b>" in page
    assert "WIRE-1" in page
