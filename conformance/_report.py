"""Outputs of a run: console lines and summary, the JSON document, JUnit XML; the HTML pages are in _html.

Every piece of text that came from a driver or a broker is bounded before it gets here
(:mod:`conformance._limits`); here it is made safe for where it goes: one terminal line
with no control character (:func:`~conformance._text.one_line`), XML 1.0 with none of the
characters it cannot carry (:func:`~conformance._text.multiline`).
"""

from __future__ import annotations

import platform
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from ._case import Case
from ._dissect import Dissection, Frame, dissect
from ._html import html_report, write_html
from ._results import (
    FORMAT,
    VERSION,
    CaseView,
    RunView,
    areas_in_order,
    case_view,
    run_view,
    summary_rows,
    write_document,
)
from ._runner import CaseResult
from ._text import multiline, one_line
from ._transcript import ConnectionTranscript

__all__ = [
    "case_line",
    "html_report",
    "junit_xml",
    "run_printing",
    "run_view",
    "summary_rows",
    "summary_table",
    "transcript_text",
    "write_html",
    "write_json",
    "write_junit",
]

_LABELS = {"pass": "PASS", "fail": "FAIL", "non-strict": "WARN", "not-judged": "NOTJ", "skipped": "SKIP"}


# -- console --------------------------------------------------------------------------------


def case_line(result: CaseResult) -> str:
    """The console line of one case, printed as soon as it ends: one line, whatever the reason holds."""
    c = result.case
    line = f"{_LABELS[result.outcome]:<4}  {c.id:<52} {c.level.value:<6} {result.duration:6.2f}s"
    if result.reason and result.outcome != "pass":
        line += f"  {result.reason}"
    if result.note:
        line += f"  [{result.note}]"
    return one_line(line)


def sequential_only(results: Sequence[CaseResult]) -> bool:
    """The driver does not take the pipeline op: its client was judged as sequential only."""
    piped = [r for r in results if r.case.area == "pipelining"]
    return bool(piped) and all(r.outcome == "skipped" and "'pipeline'" in r.reason for r in piped)


def summary_table(
    results: Sequence[CaseResult], duration: float | None = None, unusable: str | None = None, *, strict: bool = False
) -> str:
    head = (
        f"{'area':<12} {'cases':>5} {'MUST':>5} {'SHOULD':>6} {'pass':>5} {'fail':>5} "
        f"{'non-strict':>10} {'not-judged':>10} {'skipped':>7}"
    )
    lines = [head, "-" * len(head)]
    for area, n in summary_rows([case_view(r) for r in results]):
        if area == "total":
            lines.append("-" * len(head))
        lines.append(
            f"{area:<12} {n['cases']:>5} {n['MUST']:>5} {n['SHOULD']:>6} {n['pass']:>5} {n['fail']:>5} "
            f"{n['non-strict']:>10} {n['not-judged']:>10} {n['skipped']:>7}"
        )
    failed = [r for r in results if r.outcome == "fail"]
    unjudged = [r for r in results if r.outcome == "not-judged"]
    if duration is not None:
        lines.append(f"{len(results)} cases in {duration:.1f} s")
    if unusable:
        not_run = sum(1 for r in results if r.reason.startswith("not run:"))
        lines.append(f"DRIVER UNUSABLE: {unusable}; the run ended there, {not_run} case(s) not run")
    if failed:
        lines.append(f"FAILED: {len(failed)} case(s): " + ", ".join(r.case.id for r in failed))
    if unjudged:
        lines.append(f"NOT JUDGED: {len(unjudged)} SHOULD case(s): " + ", ".join(r.case.id for r in unjudged))
    if sequential_only(results):
        lines.append(
            "client judged as sequential only: its driver does not take the pipeline op, "
            "so the pipelining cases were skipped"
        )
    if not failed and not unjudged:
        # The exit status's criterion, as it is: with --strict a SHOULD case that failed is a failure too.
        lines.append("OK: every MUST and SHOULD case passed (--strict)" if strict else "OK: every MUST case passed")
    return "\n".join(one_line(line) for line in lines)


class _CaseRunner(Protocol):
    def run(self, cases: Iterable[Case], on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]: ...


def run_printing(
    runner: _CaseRunner, cases: Sequence[Case], *, quiet: bool, prog: str
) -> tuple[list[CaseResult], float] | None:
    """Run ``cases``, printing a line per case as it ends (only failures when ``quiet``).

    Returns the results and the wall time, or ``None`` when interrupted (Ctrl-C).
    """

    def show(result: CaseResult) -> None:
        if not quiet or result.outcome in ("fail", "non-strict", "not-judged"):
            print(case_line(result), flush=True)

    started = time.monotonic()
    try:
        results = runner.run(cases, on_result=show)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return None
    return results, time.monotonic() - started


# -- JSON ---------------------------------------------------------------------------------------


def write_json(path: str | Path, view: RunView) -> None:
    """The JSON document of the run (docs/CONFORMANCE.md section 3)."""
    write_document(path, view)


# -- transcripts as text (JUnit system-out) ----------------------------------------------------

_ARROW = {"received": "->", "sent": "<-"}


def _ms(seconds: float) -> str:
    return f"+{seconds * 1000:.1f} ms"


def _frame_lines(frame: Frame, origin: float | None) -> list[str]:
    when = _ms(frame.last_at - origin) if frame.last_at is not None and origin is not None else ""
    where = f"bytes {frame.start}..{frame.end - 1}" if frame.size else f"byte {frame.start}"
    if frame.segments > 1 and frame.first_at is not None and frame.last_at is not None:
        where += f", in {frame.segments} segments over {(frame.last_at - frame.first_at) * 1000:.1f} ms"
    head = f"  {when:>12}  {_ARROW[frame.direction]} {frame.title} ({where})"
    if frame.detail:
        head += f": {frame.detail}"
    if frame.changed_by:
        head += f"  << changed by fault {frame.changed_by}"
    lines = [head]
    for f in frame.fields:
        raw = f.raw[:12].hex(" ") + (" ..." if f.size > 12 else "")
        mark = f"  << changed by fault {f.changed_by}" if f.changed_by else ""
        lines.append(f"{'':16}{f.name:<15} {raw:<40} {f.value}{mark}")
    lines.extend(f"{'':16}{note}" for note in frame.notes)
    return lines


def transcript_text(t: ConnectionTranscript, d: Dissection | None = None) -> str:
    """One connection, dissected, as plain text: frames in wire order with every field labelled."""
    d = d if d is not None else dissect(t)
    head = (
        f"connection {t.id}{f' (broker {t.broker + 1})' if t.broker else ''} from {t.peer}: "
        f"{t.total('received')} bytes client->broker, {t.total('sent')} bytes broker->client"
    )
    if t.close_reason:
        head += f"; {t.close_reason}"
    lines = [head]
    if t.faults:
        lines.append("  faults: " + "; ".join(str(f) for f in t.faults))
    lines.extend(f"  {note}" for note in d.notes)
    if not d.timed:
        lines.append("  (segment times not recorded: frames in request/answer order)")
    for frame in d.frames:
        lines.extend(_frame_lines(frame, d.origin))
    for direction, count in d.frames_left_out.items():
        lines.append(f"  ... {count} more frames {_ARROW[direction]} not shown")
    for direction, count in d.bytes_not_kept.items():
        lines.append(f"  ... {count} more bytes {_ARROW[direction]} not kept")
    return "\n".join(lines)


# -- JUnit XML ----------------------------------------------------------------------------------


def _x(text: object) -> str:
    return multiline(str(text))


def _failure_text(c: CaseView) -> str:
    return f"{c.level} {', '.join(c.clauses)}: {c.reason}"


def _system_out(c: CaseView) -> str:
    parts = [
        f"case: {c.id}",
        f"level: {c.level}",
        f"clauses: {' '.join(c.clauses)}",
        f"outcome: {c.outcome}",
        f"description: {c.description}",
    ]
    if c.reason:
        parts.append(f"reason: {c.reason}")
    if c.note:
        parts.append(f"note: {c.note}")
    if c.outcome == "non-strict":
        parts.append("non-strict: the SHOULD clause is not met (a failure only with --strict)")
    text = "\n".join(parts)
    wire = [transcript_text(t) for t in c.connections]
    if wire:
        text += "\n\n" + "\n\n".join(wire)
    elif c.duration:  # a case that ran (not one left unrun by an unusable driver)
        text += "\n\nno connection reached the broker"
    return text


def junit_xml(view: RunView, suite_name: str = "mega-conformance") -> bytes:
    """JUnit XML valid against the common schema (Jenkins' junit-10.xsd, pytest's xunit2).

    One ``testsuite`` per area, one ``testcase`` per case (``name`` the case id). ``fail`` is a
    ``failure`` whose message names the level, the clauses and the reason; ``not-judged`` an
    ``error``; ``skipped`` a ``skipped``; ``non-strict`` a passing testcase that says so in its
    system-out. The schema has no properties on a testcase, so each case's level, clauses and
    outcome are also properties of its suite (``<case id>.level`` ...). system-out holds the
    case's dissected wire transcript, system-err the driver's stderr.
    """
    root = ET.Element("testsuites", name=_x(suite_name))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    for area in areas_in_order(c.area for c in view.cases):
        subset = [c for c in view.cases if c.area == area]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_x(f"{suite_name}.{area}"),
            tests=str(len(subset)),
            failures=str(sum(c.outcome == "fail" for c in subset)),
            errors=str(sum(c.outcome == "not-judged" for c in subset)),
            skipped=str(sum(c.outcome == "skipped" for c in subset)),
            time=f"{sum(c.duration for c in subset):.3f}",
            timestamp=stamp,
            hostname=_x(platform.node()),
        )
        _add_properties(suite, view, subset)
        for c in subset:
            _add_testcase(suite, c, f"{suite_name}.{area}")
        totals["tests"] += len(subset)
        totals["failures"] += int(suite.get("failures", "0"))
        totals["errors"] += int(suite.get("errors", "0"))
        total_time += sum(c.duration for c in subset)
    for key, count in totals.items():
        root.set(key, str(count))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def _add_properties(suite: ET.Element, view: RunView, cases: Sequence[CaseView]) -> None:
    """A suite's properties: the run's settings, then each case's level, clauses, outcome, tags and note.

    The schema has no properties on a testcase, so a case's are its suite's, named ``<case id>.level`` ...
    """
    props = ET.SubElement(suite, "properties")
    run_props = [
        ("format", f"{FORMAT} {VERSION}"),
        ("subject", view.subject),
        ("target", view.target),
        ("strict", "yes" if view.strict else "no"),
    ]
    if view.unusable:
        run_props.append(("unusable", view.unusable))
    for name, value in run_props:
        ET.SubElement(props, "property", name=name, value=_x(value))
    for c in cases:
        case_props = [("level", c.level), ("clauses", " ".join(c.clauses)), ("outcome", c.outcome)]
        if c.tags:
            case_props.append(("tags", " ".join(c.tags)))
        if c.note:
            case_props.append(("note", c.note))
        for name, value in case_props:
            ET.SubElement(props, "property", name=_x(f"{c.id}.{name}"), value=_x(value))


def _add_testcase(suite: ET.Element, c: CaseView, classname: str) -> None:
    """One case: its verdict as JUnit spells it, its dissected wire transcript and the driver's stderr."""
    tc = ET.SubElement(suite, "testcase", classname=_x(classname), name=_x(c.id), time=f"{c.duration:.3f}")
    if c.outcome == "fail":
        ET.SubElement(tc, "failure", message=_x(_failure_text(c)), type=c.level).text = _x(_failure_text(c))
    elif c.outcome == "not-judged":
        text = _x(f"not judged: {_failure_text(c)}")
        ET.SubElement(tc, "error", message=text, type="not-judged").text = text
    elif c.outcome == "skipped":
        ET.SubElement(tc, "skipped", message=_x(c.reason))
    ET.SubElement(tc, "system-out").text = _x(_system_out(c))
    if c.stderr:
        ET.SubElement(tc, "system-err").text = _x(c.stderr)


def write_junit(path: str | Path, view: RunView, suite_name: str = "mega-conformance") -> None:
    Path(path).write_bytes(junit_xml(view, suite_name))
