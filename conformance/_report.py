"""Outputs of a run: console lines and summary, JSON records, JUnit XML, a self-contained HTML page."""

from __future__ import annotations

import html
import json
import platform
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from ._case import AREAS, OUTCOMES, Case
from ._runner import CaseResult
from ._wire import hexdump

_LABELS = {"pass": "PASS", "fail": "FAIL", "non-strict": "WARN", "skipped": "SKIP"}


def _areas_of(results: Sequence[CaseResult]) -> list[str]:
    known = [a for subject in AREAS.values() for a in subject]
    seen = {r.case.area for r in results}
    return [a for a in known if a in seen] + sorted(seen - set(known))


def case_line(result: CaseResult) -> str:
    """The console line of one case, printed as soon as it ends."""
    c = result.case
    line = f"{_LABELS[result.outcome]:<4}  {c.id:<52} {c.level.value:<6} {result.duration:6.2f}s"
    if result.reason and result.outcome != "pass":
        line += f"  {result.reason}"
    return line


def summary_rows(results: Sequence[CaseResult]) -> list[tuple[str, dict[str, int]]]:
    """Counts per area (then a total), for the summary table and the HTML page."""
    rows = []
    for area in [*_areas_of(results), "total"]:
        subset = [r for r in results if area in ("total", r.case.area)]
        counts: dict[str, int] = {o: sum(1 for r in subset if r.outcome == o) for o in OUTCOMES}
        counts["cases"] = len(subset)
        counts["MUST"] = sum(1 for r in subset if r.case.level.value == "MUST")
        counts["SHOULD"] = counts["cases"] - counts["MUST"]
        rows.append((area, counts))
    return rows


def summary_table(results: Sequence[CaseResult], duration: float | None = None) -> str:
    head = (
        f"{'area':<12} {'cases':>5} {'MUST':>5} {'SHOULD':>6} {'pass':>5} {'fail':>5} "
        f"{'non-strict':>10} {'skipped':>7}"
    )
    lines = [head, "-" * len(head)]
    for area, n in summary_rows(results):
        if area == "total":
            lines.append("-" * len(head))
        lines.append(
            f"{area:<12} {n['cases']:>5} {n['MUST']:>5} {n['SHOULD']:>6} {n['pass']:>5} {n['fail']:>5} "
            f"{n['non-strict']:>10} {n['skipped']:>7}"
        )
    failed = [r for r in results if r.outcome == "fail"]
    if duration is not None:
        lines.append(f"{len(results)} cases in {duration:.1f} s")
    if failed:
        lines.append(f"FAILED: {len(failed)} case(s): " + ", ".join(r.case.id for r in failed))
    else:
        lines.append("OK: every MUST case passed")
    return "\n".join(lines)


# -- JSON ---------------------------------------------------------------------


def json_records(results: Iterable[CaseResult]) -> list[dict[str, Any]]:
    return [r.record() for r in results]


def write_json(path: str | Path, results: Sequence[CaseResult]) -> None:
    Path(path).write_text(json.dumps(json_records(results), indent=2) + "\n", encoding="utf-8")


# -- JUnit XML ----------------------------------------------------------------


def junit_xml(results: Sequence[CaseResult], suite_name: str = "mega-conformance") -> bytes:
    """One ``testsuite`` per area; a non-strict case is a passing testcase whose outcome property says so."""
    root = ET.Element("testsuites", name=suite_name)
    total: dict[str, int] = {"tests": 0, "failures": 0, "skipped": 0}
    total_time = 0.0
    for area in _areas_of(results):
        subset = [r for r in results if r.case.area == area]
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{suite_name}.{area}",
            tests=str(len(subset)),
            failures=str(sum(r.outcome == "fail" for r in subset)),
            errors="0",
            skipped=str(sum(r.outcome == "skipped" for r in subset)),
            time=f"{sum(r.duration for r in subset):.3f}",
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
            hostname=platform.node(),
        )
        for r in subset:
            tc = ET.SubElement(
                suite, "testcase", classname=f"conformance.{area}", name=r.case.id, time=f"{r.duration:.3f}"
            )
            props = ET.SubElement(tc, "properties")
            for name, value in (
                ("level", r.case.level.value),
                ("clauses", " ".join(r.case.clauses)),
                ("outcome", r.outcome),
            ):
                ET.SubElement(props, "property", name=name, value=value)
            if r.case.tags:
                ET.SubElement(props, "property", name="tags", value=" ".join(sorted(r.case.tags)))
            if r.outcome == "fail":
                ET.SubElement(tc, "failure", message=r.reason, type=r.case.level.value).text = r.reason
            elif r.outcome == "skipped":
                ET.SubElement(tc, "skipped", message=r.reason)
            elif r.outcome == "non-strict":
                ET.SubElement(tc, "system-out").text = f"non-strict (SHOULD clause not met): {r.reason}"
            if r.stderr:
                ET.SubElement(tc, "system-err").text = r.stderr
        total["tests"] += len(subset)
        total["failures"] += int(suite.get("failures", "0"))
        total["skipped"] += int(suite.get("skipped", "0"))
        total_time += sum(r.duration for r in subset)
    for key, count in total.items():
        root.set(key, str(count))
    root.set("errors", "0")
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def write_junit(path: str | Path, results: Sequence[CaseResult], suite_name: str = "mega-conformance") -> None:
    Path(path).write_bytes(junit_xml(results, suite_name))


# -- HTML ---------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}td.n{text-align:right}
.pass{color:#13721d}.fail{color:#b00020;font-weight:bold}.non-strict{color:#a15c00}.skipped{color:#666}
section.case{border:1px solid #ddd;border-left:6px solid #ccc;margin:.7em 0;padding:.4em .8em}
section.case.o-pass{border-left-color:#2e9b3a}section.case.o-fail{border-left-color:#b00020}
section.case.o-non-strict{border-left-color:#e09000}section.case.o-skipped{border-left-color:#999}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto;font-size:12px;line-height:1.3}
code{font-size:12px}summary{cursor:pointer}.meta{color:#555}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def html_report(
    results: Sequence[CaseResult],
    *,
    title: str = "MEGA conformance report",
    driver: str = "",
    strict: bool = False,
    verdicts: Sequence[str] = (),
    subject_label: str = "driver",
) -> str:
    """A page with no external resources: summary by area, then every case with its wire transcript.

    ``verdicts`` are extra lines shown under the summary (a broker run's spec-conformant /
    reference-compatible verdicts); ``subject_label`` names what ``driver`` describes.
    """
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">{_esc(subject_label)}: <code>{_esc(driver)}</code> &middot; '
        f"{'strict' if strict else 'not strict'}"
        f" &middot; {time.strftime('%Y-%m-%d %H:%M:%S')} &middot; {len(results)} cases</p>",
        "<h2>Summary by area</h2><table><tr><th>area</th><th>cases</th><th>MUST</th><th>SHOULD</th>"
        + "".join(f'<th class="{o}">{o}</th>' for o in OUTCOMES)
        + "</tr>",
    ]
    for area, n in summary_rows(results):
        out.append(
            f"<tr><th>{_esc(area)}</th>"
            + "".join(f'<td class="n">{n[k]}</td>' for k in ("cases", "MUST", "SHOULD", *OUTCOMES))
            + "</tr>"
        )
    out.append("</table>")
    failed = [r for r in results if r.outcome == "fail"]
    verdict = (
        f'<p class="fail">{len(failed)} case(s) failed.</p>'
        if failed
        else '<p class="pass">Every MUST case passed.</p>'
    )
    out.append(verdict)
    out.extend(f'<p class="meta">{_esc(line)}</p>' for line in verdicts)
    for area in _areas_of(results):
        out.append(f'<h2 id="area-{_esc(area)}">{_esc(area)}</h2>')
        for r in (r for r in results if r.case.area == area):
            out.append(_case_html(r))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _case_html(r: CaseResult) -> str:
    c = r.case
    parts = [
        f'<section class="case o-{r.outcome}" id="{_esc(c.id)}">',
        f'<div><b class="{r.outcome}">{_esc(r.outcome.upper())}</b> <code>{_esc(c.id)}</code> '
        f"&middot; {_esc(c.level.value)} &middot; {_esc(', '.join(c.clauses))} &middot; {r.duration:.2f} s</div>",
        f"<div>{_esc(c.description)}</div>",
    ]
    if r.reason:
        parts.append(f'<div class="{r.outcome}">reason: {_esc(r.reason)}</div>')
    for t in r.transcript:
        label = f"broker {t.broker + 1}, " if t.broker else ""
        close = f", closed: {t.close_reason}" if t.close_reason else ""
        faults = f", faults: {'; '.join(t.faults)}" if t.faults else ""
        parts.append(
            f"<details><summary>wire, {label}connection {t.id} from {_esc(t.peer)}: "
            f"{len(t.received)} bytes client&rarr;broker, {len(t.sent)} bytes broker&rarr;client{_esc(close)}"
            f"{_esc(faults)}</summary>"
            f"<div>client &rarr; broker</div><pre>{_esc(hexdump(t.received) or '(nothing)')}</pre>"
            f"<div>broker &rarr; client</div><pre>{_esc(hexdump(t.sent) or '(nothing)')}</pre></details>"
        )
    if not r.transcript:
        parts.append('<div class="meta">no connection reached the broker</div>')
    if r.driver_log:
        log = "\n".join(f"{line.at:7.3f} {line.direction} {line.text}" for line in r.driver_log)
        parts.append(f"<details><summary>driver conversation</summary><pre>{_esc(log)}</pre></details>")
    if r.stderr:
        parts.append(f"<details><summary>driver stderr</summary><pre>{_esc(r.stderr)}</pre></details>")
    parts.append("</section>")
    return "\n".join(parts)


def write_html(path: str | Path, results: Sequence[CaseResult], **kwargs: Any) -> None:
    Path(path).write_text(html_report(results, **kwargs), encoding="utf-8")


class _CaseRunner(Protocol):
    def run(
        self, cases: Iterable[Case], on_result: Callable[[CaseResult], None] | None = None
    ) -> list[CaseResult]: ...


def run_printing(
    runner: _CaseRunner, cases: Sequence[Case], *, quiet: bool, prog: str
) -> tuple[list[CaseResult], float] | None:
    """Run ``cases``, printing a line per case as it ends (only failures when ``quiet``).

    Returns the results and the wall time, or ``None`` when interrupted (Ctrl-C).
    """

    def show(result: CaseResult) -> None:
        if not quiet or result.outcome in ("fail", "non-strict"):
            print(case_line(result), flush=True)

    started = time.monotonic()
    try:
        results = runner.run(cases, on_result=show)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return None
    return results, time.monotonic() - started
