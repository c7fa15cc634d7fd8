"""The runner survives any driver: one hostile driver per way a driver's output once broke it.

Each test runs ``mega-conformance`` as a subprocess against one of the drivers of
hostile_drivers.py and checks the same four things: the run finished (a summary, exit 0 or
1, no traceback), the runner's peak memory stayed bounded, the JUnit file is well-formed and
valid against the common schema, and the terminal output is clean (no control character, no
line a driver forged); then what is particular to the attack.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from conformance._case import REGISTRY, Level
from conformance._limits import DRIVER_FAULTS_IN_A_ROW, REASON_CHARS
from tests._proc import Measured, run_measured

from .conftest import broken_driver
from .junit_schema import counts_agree, violations

HOSTILE = Path(__file__).parent / "hostile_drivers.py"

#: The runner's peak RSS must stay under this (a run takes about 30 to 50 MB; the attacks once
#: took it to 445 MB and 3.3 GB).
MEMORY_BOUND = 200 * 1024 * 1024

#: Any character a terminal could obey: C0 controls but newline, DEL, C1, line and paragraph
#: separators, bidi marks, embeddings, overrides and isolates.
_OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_CASE_LINE = re.compile(r"^(PASS|FAIL|WARN|NOTJ|SKIP)  (\S+) +(MUST|SHOULD) +\d+\.\d\ds")
_OTHER_LINES = re.compile(
    r"^(mega-conformance: \d+ cases, driver: |area  |-+$|\w+ +\d+ +\d+ +\d+ |\d+ cases in |OK: |FAILED: |NOT JUDGED: "
    r"|DRIVER UNUSABLE: |$)"
)


@dataclass
class Run:
    measured: Measured
    junit: ET.Element
    json: dict[str, object]
    html: str
    lines: dict[str, str]  # case id -> its console line

    def outcome(self, case_id: str) -> str:
        cases = self.json["cases"]
        assert isinstance(cases, list)
        return str(next(c["outcome"] for c in cases if c["id"] == case_id))


def selected(*patterns: str) -> list[str]:
    return [c.id for c in REGISTRY.select("client", ids=patterns)]


def run_hostile(tmp_path: Path, kind: str, *patterns: str, driver_args: str = "") -> Run:
    """Run the cases matching ``patterns`` against hostile driver ``kind``; see :func:`run_driver`."""
    return run_driver(tmp_path, f"{sys.executable} {HOSTILE} {kind} {driver_args}", *patterns)


def run_driver(tmp_path: Path, driver: str, *patterns: str) -> Run:
    """Run the cases matching ``patterns`` against ``driver`` and check what every run must be."""
    outputs = {name: tmp_path / name for name in ("r.json", "r.xml", "r.html")}
    measured = run_measured(
        "conformance",
        "--driver",
        driver,
        *[a for p in patterns for a in ("--case", p)],
        "--json",
        str(outputs["r.json"]),
        "--junit-xml",
        str(outputs["r.xml"]),
        "--report",
        str(outputs["r.html"]),
    )
    out, err = measured.stdout, measured.stderr
    # A finished run.
    assert measured.returncode in (0, 1), f"exit {measured.returncode}: {err[-2000:]}"
    assert "Traceback" not in err, err[-2000:]
    assert "\ntotal " in out, out[-2000:]
    # Bounded memory.
    assert measured.peak_rss < MEMORY_BOUND, f"peak RSS {measured.peak_rss / 2**20:.0f} MiB"
    # A clean terminal: nothing obeyed, no forged line, one line per case and nothing else.
    assert not _OBEYED.search(out), repr(_OBEYED.search(out))
    assert not _OBEYED.search(err), repr(_OBEYED.search(err))
    lines: dict[str, str] = {}
    for line in out.split("\n"):
        m = _CASE_LINE.match(line)
        if m:
            assert m.group(2) not in lines, f"case line printed twice: {line[:200]}"
            lines[m.group(2)] = line
        else:
            assert _OTHER_LINES.match(line), f"a line the runner does not print: {line[:200]!r}"
    assert sorted(lines) == sorted(selected(*patterns))
    # Well-formed JUnit, valid against the common schema, counts that add up.
    root = ET.parse(outputs["r.xml"]).getroot()
    assert violations(root) == []
    assert counts_agree(root) == []
    assert root.get("tests") == str(len(lines))
    document = json.loads(outputs["r.json"].read_text(encoding="utf-8"))
    html = outputs["r.html"].read_text(encoding="utf-8")
    assert not _OBEYED.search(html.replace("\t", "").replace("\n", "")), "a control character in the HTML"
    for path in outputs.values():
        assert path.stat().st_size < 8 * 1024 * 1024, f"{path.name}: {path.stat().st_size} bytes"
    return Run(measured, root, document, html, lines)


def test_a_line_of_5000_brackets_is_noise(tmp_path: Path) -> None:
    """Before each reply: 5,000 ``[``, then a reply-shaped object nested 5,000 deep. Both are ignored."""
    run = run_hostile(tmp_path, "deep-json", "framing.create-topic.layout", "framing.produce.layout")
    assert run.measured.returncode == 0, run.measured.stdout
    assert all(line.startswith("PASS") for line in run.lines.values())
    case = run.json["cases"][0]  # type: ignore[index]
    notes = [line["text"] for line in case["conversation"] if line["dir"] == "!"]
    assert any("nested more than 32 deep: not parsed" in n for n in notes), notes
    assert any("not a JSON object: ignored" in n for n in notes), notes


def test_error_messages_of_20_mb_end_the_run_early(tmp_path: Path) -> None:
    """A reply line over the 4 MiB limit breaks the contract: the case fails at once, three in a row end the run."""
    cases = "framing.create-topic.layout", "framing.produce.layout", "framing.consume.layout", "framing.timestamp.*"
    run = run_hostile(tmp_path, "huge-errors", *cases, driver_args="--size 20000000")
    assert run.measured.returncode == 1
    first = run.lines["framing.create-topic.layout"]
    assert "driver broke its contract: the driver wrote a stdout line longer than 4 MiB" in first
    assert f"DRIVER UNUSABLE: it hung, exited or broke its contract in {DRIVER_FAULTS_IN_A_ROW} cases in a row" in (
        run.measured.stdout
    )
    for case_id in selected("framing.timestamp.*"):  # not run: SHOULD cases not judged, MUST cases failed
        expected = "not-judged" if REGISTRY.get(case_id).level is Level.SHOULD else "fail"
        assert run.outcome(case_id) == expected, case_id
        assert "not run: the driver is unusable" in run.lines[case_id]


def test_error_messages_of_1_mb_are_cut_in_every_output(tmp_path: Path) -> None:
    """Messages under the line limit are read, and cut: to 1,000 characters in the reply, 2,000 in a reason."""
    run = run_hostile(tmp_path, "huge-errors", "framing.*", driver_args="--size 1000000")
    assert run.measured.returncode == 1
    for line in run.lines.values():
        assert len(line) < REASON_CHARS + 200
    for case in run.json["cases"]:  # type: ignore[union-attr]
        assert "more characters]" in case["reason"]
        assert len(case["reason"]) <= REASON_CHARS + 40
    assert len(run.html) < 2 * 1024 * 1024


def test_colour_and_control_characters_on_stderr_leave_the_junit_valid(tmp_path: Path) -> None:
    """A passing run whose driver logs ANSI colour, NUL, BEL, a lone surrogate and bytes that are not UTF-8."""
    run = run_hostile(tmp_path, "ansi-stderr", "framing.create-topic.layout", "errors.broker.topic-not-found*")
    assert run.measured.returncode == 0, run.measured.stdout
    stderr = run.junit.find(".//testcase[@name='framing.create-topic.layout']/system-err")
    assert stderr is not None
    assert stderr.text is not None
    assert "\\x1b[1;31mERROR\\x1b[0m" in stderr.text  # shown, escaped
    assert "NUL\\x00 BEL\\x07 BS\\x08" in stderr.text
    assert "\\x1b]0;title\\x07" in stderr.text
    assert "\\x1b[1;31mERROR" in run.html


def test_forged_lines_and_escape_sequences_stay_inside_their_line(tmp_path: Path) -> None:
    """Every reply an error whose message sets the window title, clears the screen and forges result lines."""
    run = run_hostile(tmp_path, "forge", "framing.create-topic.layout", "framing.produce.layout")
    assert run.measured.returncode == 1
    out = run.measured.stdout
    assert "forged.case.id" not in run.lines
    assert not any(line.startswith(("PASS  forged", "OK: ")) for line in out.split("\n"))
    line = run.lines["framing.create-topic.layout"]
    assert line.startswith("FAIL")
    assert "\\x1b]0;pwned title\\x07\\x1b[2J" in line
    assert "\\nPASS  forged.case.id" in line
    assert "\\u2028PASS  forged.after.line-separator\\u202eevil" in line
    failure = run.junit.find(".//testcase[@name='framing.create-topic.layout']/failure")
    assert failure is not None
    assert "\\x1b[2J" in (failure.get("message") or "")


def test_400_mib_of_stdout_noise_does_not_fill_memory(tmp_path: Path) -> None:
    """1 MiB lines that are not JSON, 16 MiB before each reply, 400 MiB in all; the cases still pass."""
    run = run_hostile(
        tmp_path,
        "stdout-flood",
        "framing.*.layout",
        "framing.payload.*",
        "framing.response.*",
        driver_args=f"--size {16 * 2**20} --total {400 * 2**20}",
    )
    assert run.measured.returncode == 0, run.measured.stdout
    case = run.json["cases"][0]  # type: ignore[index]
    noise = [line for line in case["conversation"] if line["text"].startswith("not json")]
    assert noise
    assert all(len(line["text"]) < 500 for line in noise)  # each line cut to 400 characters


def test_a_driver_that_never_answers_ends_the_run_after_three_cases(tmp_path: Path) -> None:
    """Three hangs in a row make the driver unusable; the cases left are not run (MUST: fail, SHOULD: not-judged)."""
    run = run_hostile(
        tmp_path, "silent", "errors.timeout.silent-*", "lifecycle.connect.refused", "lifecycle.close.twice"
    )
    assert run.measured.returncode == 1
    hung = selected("errors.timeout.silent-*")[:DRIVER_FAULTS_IN_A_ROW]
    for case_id in hung:
        assert "driver hung: the driver did not answer connect" in run.lines[case_id]
    assert "not run: the driver is unusable" in run.lines["lifecycle.connect.refused"]
    assert run.outcome("lifecycle.connect.refused") == "fail"
    assert run.outcome("lifecycle.close.twice") == "not-judged"
    assert run.json["unusable"]
    error = run.junit.find(".//testcase[@name='lifecycle.close.twice']/error")
    assert error is not None
    assert error.get("type") == "not-judged"
    assert "Driver unusable" in run.html


def test_a_driver_that_dies_at_every_command_is_not_a_verdict_on_should_cases(tmp_path: Path) -> None:
    """A driver that exits: its MUST cases fail, its SHOULD cases are not judged, and the run ends after three."""
    run = run_hostile(tmp_path, "dies", "lifecycle.close.*", "lifecycle.connect.*")
    assert run.measured.returncode == 1
    first_three = selected("lifecycle.close.*", "lifecycle.connect.*")[:DRIVER_FAULTS_IN_A_ROW]
    for case_id in first_three:
        assert "driver exited" in run.lines[case_id]
        level = REGISTRY.get(case_id).level.value
        assert run.outcome(case_id) == ("fail" if level == "MUST" else "not-judged")
    assert "NOT JUDGED: " in run.measured.stdout
    assert "OK: " not in run.measured.stdout


def test_the_healthy_driver_passes_the_same_checks(tmp_path: Path) -> None:
    """The checks every hostile run gets are ones a healthy run passes: the correct client's driver."""
    run = run_driver(tmp_path, subprocess.list2cmdline(broken_driver(None)), "framing.*.layout", "errors.broker.*")
    assert run.measured.returncode == 0, run.measured.stdout
    assert all(line.startswith("PASS") for line in run.lines.values())
    assert run.json["unusable"] is None
