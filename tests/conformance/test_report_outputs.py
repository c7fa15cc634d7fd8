"""The outputs of a run: hostile text stays inert everywhere, JUnit is valid, notes and not-judged cases show.

The broker direction shares these writers: a broker that answers every request with escape
sequences, newlines and forged result lines gets a clean terminal and a valid JUnit file too.
"""

from __future__ import annotations

import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance._case import REGISTRY
from conformance._html import html_report
from conformance._limits import WIRE_FRAMES_PASSED
from conformance._report import case_line, junit_xml, summary_table, transcript_text
from conformance._results import run_view
from conformance._runner import CaseResult, not_run
from conformance._transcript import ConnectionTranscript, FaultNote
from tests._proc import run_measured

from .junit_schema import counts_agree, violations
from .test_hostile_drivers import _OBEYED
from .test_wire_judge import CREATE, CREATE_OK

HOSTILE = "\x1b]0;title\x07\x1b[2J\nPASS  forged.case.id\r\u2028\u202e\x00\ud800 <script>alert(1)</script> & ]]>"


def hostile_result(outcome: str = "fail") -> CaseResult:
    case = REGISTRY.get("framing.create-topic.echo-decoded")
    wire = ConnectionTranscript(
        broker=0,
        id=1,
        peer=HOSTILE,
        received=CREATE,
        sent=CREATE_OK,
        faults=(FaultNote(HOSTILE, "slice", 1, 7),),
        close_reason=HOSTILE,
    )
    return CaseResult(case, outcome, HOSTILE, 0.1, [wire], [], stderr=HOSTILE, note=HOSTILE)  # type: ignore[arg-type]


def test_a_console_line_is_one_line_with_nothing_to_obey() -> None:
    line = case_line(hostile_result())
    assert "\n" not in line
    assert not _OBEYED.search(line)
    assert line.startswith("FAIL  framing.create-topic.echo-decoded")
    assert "\\x1b]0;title\\x07\\x1b[2J\\nPASS  forged.case.id\\r\\u2028\\u202e\\x00" in line


def test_junit_with_hostile_text_is_valid_and_shows_it_escaped() -> None:
    data = junit_xml(run_view([hostile_result(), not_run(REGISTRY.get("framing.timestamp.produce-ms"), "gone")]))
    root = ET.fromstring(data)
    assert violations(root) == []
    assert counts_agree(root) == []
    failure = root.find(".//testcase[@name='framing.create-topic.echo-decoded']/failure")
    assert failure is not None
    assert (failure.get("message") or "").startswith("MUST RESP-4, CLIENT-16, WIRE-4: \\x1b]0;title")
    out = root.find(".//testcase[@name='framing.create-topic.echo-decoded']/system-out")
    assert out is not None
    assert "CREATE_TOPIC request #1" in (out.text or "")  # the dissected transcript
    assert "correlation_id  00 00 00 07" in (out.text or "")
    error = root.find(".//testcase[@name='framing.timestamp.produce-ms']/error")
    assert error is not None
    assert error.get("type") == "not-judged"
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["framing.create-topic.echo-decoded.level"] == "MUST"
    assert props["framing.create-topic.echo-decoded.clauses"] == "RESP-4 CLIENT-16 WIRE-4"
    assert props["framing.timestamp.produce-ms.outcome"] == "not-judged"


def test_html_with_hostile_text_escapes_it() -> None:
    page = html_report(run_view([hostile_result()], target=HOSTILE))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not _OBEYED.search(page.replace("\n", "").replace("\t", ""))
    assert "\\x1b]0;title" in page
    page.encode("utf-8")  # no lone surrogate left


def test_a_passing_case_shows_the_first_frames_and_a_failed_one_all_that_is_kept() -> None:
    case = REGISTRY.get("framing.create-topic.echo-decoded")
    wire = ConnectionTranscript(broker=0, id=1, peer="127.0.0.1:1", received=CREATE * 100, sent=CREATE_OK * 100)
    for outcome, shown in (("pass", WIRE_FRAMES_PASSED), ("fail", 100)):
        page = html_report(run_view([CaseResult(case, outcome, "", 0.1, [wire], [])]))  # type: ignore[arg-type]
        assert page.count('<span class="ft">CREATE_TOPIC') == 2 * shown, outcome  # requests and echoes
        left_out = f"{100 - WIRE_FRAMES_PASSED} more frames client&rarr;broker not shown"
        assert (left_out in page) == (outcome == "pass")


def test_notes_show_in_every_output() -> None:
    case = REGISTRY.get("framing.produce.layout")
    result = CaseResult(case, "pass", "", 0.1, note="retried transparently")
    assert case_line(result).endswith("[retried transparently]")
    view = run_view([result])
    assert "note: retried transparently" in html_report(view)
    root = ET.fromstring(junit_xml(view))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["framing.produce.layout.note"] == "retried transparently"


def test_the_summary_names_not_judged_cases_and_an_unusable_driver() -> None:
    results = [not_run(REGISTRY.get("framing.timestamp.produce-ms"), "the driver is unusable")]
    text = summary_table(results, 1.0, "it hung 3 times")
    assert "NOT JUDGED: 1 SHOULD case(s): framing.timestamp.produce-ms" in text
    assert "DRIVER UNUSABLE: it hung 3 times; the run ended there, 1 case(s) not run" in text
    assert "OK:" not in text


def test_the_text_transcript_labels_every_field() -> None:
    text = transcript_text(hostile_result().transcript[0])
    assert "-> CREATE_TOPIC request #1 (bytes 0..27)" in text
    assert "<- CREATE_TOPIC success (bytes 0..21): answers request #1 (correlation id 7)" in text
    assert "timestamp       00 00 01 1f 71 fb 04 cb" in text


# -- a hostile broker ------------------------------------------------------------------------------

GARBAGE = b"\x1b]0;title\x07\x1b[2J\nPASS  forged.case.id\r\n\x00\xff"


@pytest.fixture
def garbage_broker() -> Iterator[str]:
    """A TCP server that answers every connection's first bytes with escape sequences and forged lines."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        conns = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.settimeout(2)
            try:
                if conn.recv(65536):
                    conn.sendall(GARBAGE)
            except OSError:
                pass
        for conn in conns:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    listener.close()


def test_a_broker_answering_escape_sequences_gets_clean_outputs(garbage_broker: str, tmp_path: Path) -> None:
    xml_path, json_path, html_path = tmp_path / "b.xml", tmp_path / "b.json", tmp_path / "b.html"
    run = run_measured(
        "conformance",
        "--broker",
        garbage_broker,
        "--case",
        "layout.create-topic",
        "--case",
        "layout.error",
        "--timeout",
        "0.5",
        "--junit-xml",
        str(xml_path),
        "--json",
        str(json_path),
        "--report",
        str(html_path),
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert not _OBEYED.search(run.stdout)
    assert not any(line.startswith("PASS  forged") for line in run.stdout.split("\n"))
    assert "spec-conformant: NO" in run.stdout
    root = ET.parse(xml_path).getroot()
    assert violations(root) == []
    document = json.loads(json_path.read_text(encoding="utf-8"))
    wire = document["cases"][0]["connections"][0]
    assert bytes.fromhex(wire["sent"]) == GARBAGE  # what the broker sent, kept as bytes
    assert wire["segments"]  # a broker run records the time of each read and write
    assert {s[0] for s in wire["segments"]} == {"received", "sent"}
    page = html_path.read_text(encoding="utf-8")
    assert "bytes not read as a frame" in page
    assert not _OBEYED.search(page.replace("\n", "").replace("\t", ""))
