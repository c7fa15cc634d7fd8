"""A run's results as data: the JSON document (``--json``), and reading it back (``compare``).

Every output renders one :class:`RunView`: the HTML report and the JSON document are built
from the view of a run that just ended, and ``mega-conformance compare`` builds views from
JSON documents, so a page made from a file shows what the report of that run showed.

The document's schema is in docs/CONFORMANCE.md section 3; :data:`FORMAT` and
:data:`VERSION` identify it. Reading one back is as careful as reading a driver: the file
size, the nesting depth and every field's type are checked, and every text is bounded, so a
broken or hostile file is a one-line :class:`ResultsFileError`, never a traceback.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ._case import AREAS, OUTCOMES, Case, Outcome
from ._driver import LogLine, too_deep
from ._limits import (
    JSON_WIRE_BYTES,
    LOG_HEAD_LINES,
    LOG_LINE_CHARS,
    LOG_TAIL_LINES,
    NOTE_CHARS,
    REASON_CHARS,
    RESULTS_FILE_BYTES,
    STDERR_CASE_BYTES,
    WIRE_SEGMENTS,
)
from ._runner import CaseResult
from ._text import bounded
from ._transcript import DIRECTIONS, ConnectionTranscript, FaultNote, Segment

#: The value of the document's ``format`` field.
FORMAT = "mega-conformance-results"
#: The schema version; version 1 was a bare list of case records (still read by ``compare``).
VERSION = 2

#: The deepest nesting a results document has (object, cases, case, connections, connection, segments, segment).
_DOCUMENT_DEPTH = 12
_SHORT = 200
_TEXT = 8 * 1024


class ResultsFileError(ValueError):
    """A results file that cannot be read: missing, too large, not JSON, or not of this schema."""


@dataclass(frozen=True)
class CaseView:
    """One case's verdict with everything the reports show of it."""

    id: str
    area: str
    clauses: tuple[str, ...]
    level: str
    outcome: Outcome
    reason: str
    description: str
    duration: float
    note: str = ""
    tags: tuple[str, ...] = ()
    stderr: str = ""
    conversation: tuple[LogLine, ...] = ()
    connections: tuple[ConnectionTranscript, ...] = ()


@dataclass(frozen=True)
class RunView:
    """A run: what was checked, how, and each case's view."""

    subject: str
    target: str
    strict: bool
    cases: tuple[CaseView, ...]
    started: str = ""
    duration: float | None = None
    unusable: str | None = None
    verdicts: tuple[str, ...] = ()
    title: str = ""
    version: int = VERSION


# -- from a run ---------------------------------------------------------------------------------


def case_view(result: CaseResult) -> CaseView:
    c: Case = result.case
    return CaseView(
        id=c.id,
        area=c.area,
        clauses=tuple(c.clauses),
        level=c.level.value,
        outcome=result.outcome,
        reason=result.reason,
        description=c.description,
        duration=result.duration,
        note=result.note,
        tags=tuple(sorted(c.tags)),
        stderr=result.stderr,
        conversation=tuple(result.driver_log),
        connections=tuple(result.transcript),
    )


def run_view(  # noqa: PLR0913 - the id and the run's fields of RunView, each named at the call
    results: Sequence[CaseResult],
    *,
    subject: str = "client",
    target: str = "",
    strict: bool = False,
    duration: float | None = None,
    unusable: str | None = None,
    verdicts: Sequence[str] = (),
    title: str = "",
    started: str | None = None,
) -> RunView:
    return RunView(
        subject=subject,
        target=target,
        strict=strict,
        cases=tuple(case_view(r) for r in results),
        started=started if started is not None else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        duration=duration,
        unusable=unusable,
        verdicts=tuple(verdicts),
        title=title,
    )


def areas_in_order(areas: Iterable[str]) -> list[str]:
    """The distinct ``areas``, in report order (unknown ones last, sorted)."""
    known = [a for subject in AREAS.values() for a in subject]
    seen = set(areas)
    return [a for a in known if a in seen] + sorted(seen - set(known))


def summary_rows(cases: Sequence[CaseView]) -> list[tuple[str, dict[str, int]]]:
    """Counts per area (then a total): cases, MUST, SHOULD and each outcome."""
    rows = []
    for area in [*areas_in_order(c.area for c in cases), "total"]:
        subset = [c for c in cases if area in ("total", c.area)]
        counts: dict[str, int] = {o: sum(1 for c in subset if c.outcome == o) for o in OUTCOMES}
        counts["cases"] = len(subset)
        counts["MUST"] = sum(1 for c in subset if c.level == "MUST")
        counts["SHOULD"] = counts["cases"] - counts["MUST"]
        rows.append((area, counts))
    return rows


# -- to JSON ---------------------------------------------------------------------------------


def _connection_record(t: ConnectionTranscript) -> dict[str, Any]:
    record: dict[str, Any] = {
        "broker": t.broker,
        "id": t.id,
        "peer": t.peer,
        "opened_at": t.opened_at,
        "close_reason": t.close_reason,
        "faults": [
            {"rule": f.rule, "action": f.action, "request_index": f.request_index, "correlation_id": f.correlation_id}
            for f in t.faults
        ],
        "received": t.received[:JSON_WIRE_BYTES].hex(),
        "received_total": t.total("received"),
        "sent": t.sent[:JSON_WIRE_BYTES].hex(),
        "sent_total": t.total("sent"),
        "segments": [[s.direction, round(s.at, 6), s.start, s.length] for s in t.segments[:WIRE_SEGMENTS]],
    }
    return record


def view_record(v: CaseView) -> dict[str, Any]:
    """The JSON record of one case (docs/CONFORMANCE.md section 3)."""
    record: dict[str, Any] = {
        "id": v.id,
        "area": v.area,
        "clauses": list(v.clauses),
        "level": v.level,
        "outcome": v.outcome,
        "reason": v.reason,
        "note": v.note,
        "description": v.description,
        "duration_s": round(v.duration, 3),
        "tags": list(v.tags),
        "stderr": v.stderr,
        "conversation": [
            {"at": round(line.at, 4), "dir": line.direction, "text": line.text} for line in v.conversation
        ],
        "connections": [_connection_record(t) for t in v.connections],
    }
    return record


def case_record(result: CaseResult) -> dict[str, Any]:
    return view_record(case_view(result))


def document(view: RunView) -> dict[str, Any]:
    """The JSON document of a run (``--json``)."""
    counts = {o: sum(1 for c in view.cases if c.outcome == o) for o in OUTCOMES}
    return {
        "format": FORMAT,
        "version": VERSION,
        "subject": view.subject,
        "target": view.target,
        "strict": view.strict,
        "started": view.started,
        "duration_s": None if view.duration is None else round(view.duration, 3),
        "unusable": view.unusable,
        "verdicts": list(view.verdicts),
        "summary": {"cases": len(view.cases), **counts},
        "cases": [view_record(c) for c in view.cases],
    }


def write_document(path: str | Path, view: RunView) -> None:
    Path(path).write_text(json.dumps(document(view), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# -- from JSON ---------------------------------------------------------------------------------


class _Reader:
    """Typed access to one decoded JSON value, with the path for error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> ResultsFileError:
        return ResultsFileError(f"{self.source}: {where}: {what}")

    def obj(self, value: object, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "not an object")
        return cast(Mapping[str, Any], value)

    def lst(self, value: object, where: str, limit: int) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, "not a list")
        if len(value) > limit:
            raise self.fail(where, f"more than {limit} items")
        return value

    def text(self, m: Mapping[str, Any], key: str, where: str, limit: int, default: str | None = None) -> str:
        value = m.get(key, default)
        if value is None and default is None and key not in m:
            raise self.fail(f"{where}.{key}", "missing")
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", "not a string")
        return bounded(value, limit)

    def number(self, m: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float | None:
        value = m.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"{where}.{key}", "not a number")
        return float(value)

    def integer(self, value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, "not an integer")
        return value

    def hex(self, m: Mapping[str, Any], key: str, where: str) -> bytes:
        value = m.get(key, "")
        if not isinstance(value, str):
            raise self.fail(f"{where}.{key}", "not a string")
        try:
            return bytes.fromhex(value[: 2 * JSON_WIRE_BYTES])
        except (ValueError, binascii.Error):
            raise self.fail(f"{where}.{key}", "not hex") from None


def _connection(r: _Reader, value: object, where: str) -> ConnectionTranscript:
    m = r.obj(value, where)
    faults = []
    for i, f in enumerate(r.lst(m.get("faults", []), f"{where}.faults", 1000)):
        fm = r.obj(f, f"{where}.faults[{i}]")
        index = fm.get("request_index")
        cid = fm.get("correlation_id")
        faults.append(
            FaultNote(
                rule=r.text(fm, "rule", f"{where}.faults[{i}]", _SHORT),
                action=r.text(fm, "action", f"{where}.faults[{i}]", _SHORT, ""),
                request_index=None if index is None else r.integer(index, f"{where}.faults[{i}].request_index"),
                correlation_id=None if cid is None else r.integer(cid, f"{where}.faults[{i}].correlation_id"),
            )
        )
    segments = []
    for i, s in enumerate(r.lst(m.get("segments", []), f"{where}.segments", WIRE_SEGMENTS)):
        item = r.lst(s, f"{where}.segments[{i}]", 4)
        if len(item) != 4 or item[0] not in DIRECTIONS or isinstance(item[1], bool):
            raise r.fail(f"{where}.segments[{i}]", "not [direction, time, start, length]")
        if not isinstance(item[1], (int, float)):
            raise r.fail(f"{where}.segments[{i}]", "time is not a number")
        start = r.integer(item[2], f"{where}.segments[{i}][2]")
        length = r.integer(item[3], f"{where}.segments[{i}][3]")
        segments.append(Segment(item[0], float(item[1]), start, length))
    opened = r.number(m, "opened_at", where)
    received_total = r.number(m, "received_total", where)
    sent_total = r.number(m, "sent_total", where)
    return ConnectionTranscript(
        broker=r.integer(m.get("broker", 0), f"{where}.broker"),
        id=r.integer(m.get("id", 0), f"{where}.id"),
        peer=r.text(m, "peer", where, _SHORT, ""),
        received=r.hex(m, "received", where),
        sent=r.hex(m, "sent", where),
        faults=tuple(faults),
        close_reason=r.text(m, "close_reason", where, _SHORT, "") or None,
        segments=tuple(segments),
        opened_at=opened,
        received_total=None if received_total is None else int(received_total),
        sent_total=None if sent_total is None else int(sent_total),
    )


def _case(r: _Reader, value: object, where: str) -> CaseView:
    m = r.obj(value, where)
    outcome = m.get("outcome")
    if outcome not in OUTCOMES:
        raise r.fail(f"{where}.outcome", f"not one of {', '.join(OUTCOMES)}")
    clauses = r.lst(m.get("clauses", []), f"{where}.clauses", 100)
    if not all(isinstance(c, str) for c in clauses):
        raise r.fail(f"{where}.clauses", "not a list of strings")
    tags = r.lst(m.get("tags", []), f"{where}.tags", 100)
    if not all(isinstance(t, str) for t in tags):
        raise r.fail(f"{where}.tags", "not a list of strings")
    conversation = []
    lines = r.lst(m.get("conversation", []), f"{where}.conversation", LOG_HEAD_LINES + LOG_TAIL_LINES + 1)
    for i, line in enumerate(lines):
        lm = r.obj(line, f"{where}.conversation[{i}]")
        at = r.number(lm, "at", f"{where}.conversation[{i}]", 0.0)
        conversation.append(
            LogLine(
                at or 0.0,
                r.text(lm, "dir", f"{where}.conversation[{i}]", 1, "!"),
                r.text(lm, "text", f"{where}.conversation[{i}]", LOG_LINE_CHARS + 40, ""),
            )
        )
    connections = r.lst(m.get("connections", []), f"{where}.connections", 1000)
    return CaseView(
        id=r.text(m, "id", where, _SHORT),
        area=r.text(m, "area", where, _SHORT, ""),
        clauses=tuple(bounded(c, _SHORT) for c in clauses),
        level=r.text(m, "level", where, _SHORT, ""),
        outcome=cast(Outcome, outcome),
        reason=r.text(m, "reason", where, REASON_CHARS + 40, ""),
        description=r.text(m, "description", where, _TEXT, ""),
        duration=r.number(m, "duration_s", where, 0.0) or 0.0,
        note=r.text(m, "note", where, NOTE_CHARS + 40, ""),
        tags=tuple(bounded(t, _SHORT) for t in tags),
        stderr=r.text(m, "stderr", where, STDERR_CASE_BYTES + 100, ""),
        conversation=tuple(conversation),
        connections=tuple(_connection(r, c, f"{where}.connections[{i}]") for i, c in enumerate(connections)),
    )


def view_from_json(data: object, source: str = "results") -> RunView:
    """The view of a decoded results document (version 2, or a version 1 bare list of records)."""
    r = _Reader(source)
    if isinstance(data, list):
        cases = r.lst(data, "the document", 100_000)
        return RunView(
            subject="client",
            target="",
            strict=False,
            cases=tuple(_case(r, c, f"[{i}]") for i, c in enumerate(cases)),
            version=1,
        )
    m = r.obj(data, "the document")
    if m.get("format") != FORMAT:
        raise r.fail("format", f"not {FORMAT!r}: not a mega-conformance --json file")
    version = m.get("version")
    if version != VERSION:
        raise r.fail("version", f"{version!r}; this mega-conformance reads versions 1 and {VERSION}")
    cases = r.lst(m.get("cases"), "cases", 100_000)
    verdicts = r.lst(m.get("verdicts", []), "verdicts", 100)
    unusable = m.get("unusable")
    if unusable is not None and not isinstance(unusable, str):
        raise r.fail("unusable", "not a string")
    return RunView(
        subject=r.text(m, "subject", "the document", _SHORT, "client"),
        target=r.text(m, "target", "the document", 2 * _SHORT, ""),
        strict=m.get("strict") is True,
        cases=tuple(_case(r, c, f"cases[{i}]") for i, c in enumerate(cases)),
        started=r.text(m, "started", "the document", _SHORT, ""),
        duration=r.number(m, "duration_s", "the document"),
        unusable=None if unusable is None else bounded(unusable, REASON_CHARS + 200),
        verdicts=tuple(bounded(str(v), REASON_CHARS) for v in verdicts),
    )


def load(path: str | Path) -> RunView:
    """Read a ``--json`` results file; :class:`ResultsFileError` (one line) if it cannot be used."""
    source = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(RESULTS_FILE_BYTES + 1)
    except OSError as exc:
        raise ResultsFileError(f"{source}: {exc.strerror or exc}") from None
    if len(data) > RESULTS_FILE_BYTES:
        raise ResultsFileError(f"{source}: larger than {RESULTS_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsFileError(f"{source}: not UTF-8 (byte {exc.start})") from None
    if too_deep(text, _DOCUMENT_DEPTH):
        raise ResultsFileError(f"{source}: JSON nested more than {_DOCUMENT_DEPTH} deep: not a results file")
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ResultsFileError(f"{source}: not JSON ({exc})") from None
    return view_from_json(decoded, source)
