"""A connection's transcript dissected for people: frames, labelled fields, times, faults.

Frames are cut by the judge's own reader (:mod:`conformance._wire`: requests by the layouts of
docs/PROTOCOL.md 3.1, responses by those of 4.1 and the types of the requests still pending),
never by the kit's codec. Each field gets a label and a readable value (a timestamp as its
number and as a UTC date, a payload as a short preview), each frame the time its first and
last bytes moved and the number of segments it came in (when the transcript has segment
times), and the bytes a fault of the mock broker changed are marked with the rule, where the
fault's action says which bytes those are. Pure functions over a
:class:`~conformance._transcript.ConnectionTranscript`; the HTML page renders the result.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ._limits import PAYLOAD_PREVIEW_BYTES, WIRE_FRAMES
from ._text import one_line
from ._transcript import DIRECTIONS, ConnectionTranscript, Direction, FaultNote, Segment
from ._wire import (
    CODE_NAMES,
    TYPE_NAMES,
    ResponseSplit,
    Split,
    WireRequest,
    WireResponse,
    read_i32,
    read_i64,
    request_fields,
    response_fields,
    split_requests,
    split_responses,
)

# What each response fault of the mock broker changes in the answer to the request it hit.
_CHANGES_FIELD = {"wrong-cid": "correlation_id", "error": "error_code", "bad-flag": "success"}
_BAD_LENGTH_FIELDS = ("payload_length", "topic_len")
_TIMING_ACTIONS = ("delay", "slice", "hold", "slow-read")
_NO_ANSWER_ACTIONS = ("close", "reset", "silent")


@dataclass(frozen=True)
class Field:
    """A labelled field: its name, where it starts in the stream, its (first) bytes and value."""

    name: str
    start: int
    size: int
    raw: bytes
    value: str
    changed_by: str | None = None


@dataclass(frozen=True)
class Frame:
    """A request, a response or bytes that could not be read, with when and how it moved."""

    direction: Direction
    title: str
    start: int
    size: int
    fields: tuple[Field, ...]
    #: Which request a response answers, or why bytes could not be read.
    detail: str = ""
    first_at: float | None = None
    last_at: float | None = None
    segments: int = 0
    changed_by: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class SegmentRow:
    """One read or write, with its time since the connection opened and the delay since the one before."""

    direction: Direction
    at: float
    since_open: float
    gap: float
    start: int
    length: int


@dataclass(frozen=True)
class Dissection:
    """A connection dissected: frames in the order they went over the wire, and the segments."""

    frames: tuple[Frame, ...]
    segments: tuple[SegmentRow, ...]
    #: Whether the transcript had segment times (else frames are ordered request, then its answer).
    timed: bool
    origin: float | None
    #: Frames left out per direction (past ``max_frames``), and bytes not kept by the transcript.
    frames_left_out: dict[Direction, int] = field(default_factory=dict)
    bytes_not_kept: dict[Direction, int] = field(default_factory=dict)
    #: Connection-level notes (faults on the connection itself).
    notes: tuple[str, ...] = ()


def timestamp_text(ms: int) -> str:
    """An i64 timestamp as its number and a UTC date: ``1234567890123 = 2009-02-13 23:31:30.123 UTC``."""
    try:
        when = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{ms} (not a date)"
    return f"{ms} = {when.strftime('%Y-%m-%d %H:%M:%S')}.{ms % 1000:03d} UTC"


def preview(data: bytes, total: int | None = None) -> str:
    """The start of a payload: its length, and its first bytes as text when printable, else in hex."""
    size = len(data) if total is None else total
    head = data[:PAYLOAD_PREVIEW_BYTES]
    more = "..." if size > len(head) else ""
    if not size:
        return "(empty)"
    printable = all(32 <= b < 127 for b in head)
    shown = one_line(head.decode("ascii")) if printable else head.hex(" ")
    quoted = f'"{shown}{more}"' if printable else f"{shown}{' ' + more if more else ''}"
    return f"{size} byte{'' if size == 1 else 's'}: {quoted}"


def _name_text(raw: bytes) -> str:
    return '"' + one_line(raw.decode("utf-8", "replace")) + '"'


def _request_value(r: WireRequest, name: str, raw: bytes) -> str:
    if name == "correlation_id":
        return str(r.correlation_id)
    if name == "message_type":
        return f"0x{r.message_type:02x} {TYPE_NAMES.get(r.message_type, 'unknown')}"
    if name == "topic_length":
        return str(r.topic_length)
    if name == "topic":
        return _name_text(r.topic)
    if name == "timestamp":
        return timestamp_text(r.timestamp)
    if name == "offset":
        return str(r.offset)
    if name == "payload_length":
        return str(r.payload_length)
    return preview(r.payload, r.payload_length)


def _response_value(r: WireResponse, name: str, raw: bytes) -> str:
    if name == "correlation_id":
        return str(r.correlation_id)
    if name == "success":
        return {0: "0 (error)", 1: "1 (success)"}.get(r.success, f"{r.success} (invalid)")
    if name == "error_code":
        code = r.error_code or 0
        return f"{code} {CODE_NAMES.get(code, 'undefined')}"
    if name == "timestamp":
        return timestamp_text(read_i64(raw, 0))
    if name in ("offset", "next_offset", "payload_length"):
        return str(read_i32(raw, 0))
    if name == "topic_len":
        return str(int.from_bytes(raw, "big"))
    if name == "topic":
        return _name_text(r.body or b"")
    return preview(r.body or b"", r.length)


def _fields(
    start: int, raw: bytes, spans: Sequence[tuple[str, int, int]], value: Callable[[str, bytes], str]
) -> list[Field]:
    out = []
    for name, a, b in spans:
        piece = raw[a:b]
        shown = piece if name not in ("payload", "topic") else piece[:PAYLOAD_PREVIEW_BYTES]
        out.append(Field(name, start + a, b - a, shown, value(name, piece)))
    return out


class _Timeline:
    """Where each byte of a direction arrived: segment positions and times, searchable."""

    def __init__(self, segments: Sequence[Segment], direction: Direction) -> None:
        own = sorted((s for s in segments if s.direction == direction), key=lambda s: s.start)
        self._starts = [s.start for s in own]
        self._segments = own

    def _index(self, pos: int) -> int | None:
        i = bisect.bisect_right(self._starts, pos) - 1
        if i < 0:
            return None
        seg = self._segments[i]
        return i if pos < seg.start + max(seg.length, 1) else None

    def span(self, start: int, end: int) -> tuple[float | None, float | None, int]:
        """Times of the first and last byte of ``[start, end)``, and how many segments carried it."""
        if not self._segments or end <= start:
            return None, None, 0
        first = self._index(start)
        last = self._index(end - 1)
        if first is None or last is None:
            return None, None, 0
        return self._segments[first].at, self._segments[last].at, last - first + 1


@dataclass
class _FaultMarks:
    """What the faults changed, found by :func:`_fault_marks`.

    A response index of ``len(responses)`` stands for the unreadable rest.
    """

    #: (response index, field) -> the rule that changed that field.
    fields: dict[tuple[int, str], str] = field(default_factory=dict)
    #: response index -> the rule that made the whole frame (an unsolicited frame, trailing bytes, a broken answer).
    whole: dict[int, str] = field(default_factory=dict)
    request_notes: dict[int, list[str]] = field(default_factory=dict)
    response_notes: dict[int, list[str]] = field(default_factory=dict)
    #: Faults applied to the connection itself.
    connection: list[str] = field(default_factory=list)


def _fault_marks(
    faults: Sequence[FaultNote], requests: Sequence[WireRequest], responses: Sequence[WireResponse]
) -> _FaultMarks:
    """What each fault changed: fields of responses, whole responses, notes on requests and responses."""
    marks = _FaultMarks()
    answer_of = {r.answers: i for i, r in enumerate(responses) if r.answers is not None}
    for f in faults:
        if f.request_index is None:
            marks.connection.append(f"fault {f.rule} applied to the connection")
            continue
        req = f.request_index - 1
        if not 0 <= req < len(requests):
            continue
        marks.request_notes.setdefault(req, []).append(f"fault {f.rule}")
        answer = answer_of.get(req)
        if answer is None:
            _mark_unanswered(marks, f, req, len(responses))
        else:
            _mark_answered(marks, f, answer, responses)
    return marks


def _mark_unanswered(marks: _FaultMarks, f: FaultNote, req: int, rest: int) -> None:
    """A fault on a request with no answer that could be read: it kept the answer back, or cut or broke it.

    ``rest`` is the index that stands for the unreadable rest of the responses.
    """
    if f.action in _NO_ANSWER_ACTIONS:
        marks.request_notes[req].append(f"no answer: {f.action}")
    elif f.action in ("close-after", "bad-flag", "bad-length"):
        # The answer it cut or broke is what could not be read.
        marks.whole[rest] = f.rule


def _mark_answered(marks: _FaultMarks, f: FaultNote, answer: int, responses: Sequence[WireResponse]) -> None:
    """A fault on a request whose answer (response ``answer``) was read: what it changed there, or around it."""
    action = f.action
    if action in _CHANGES_FIELD:
        marks.fields[(answer, _CHANGES_FIELD[action])] = f.rule
    elif action == "bad-length":
        for name in _BAD_LENGTH_FIELDS:
            marks.fields[(answer, name)] = f.rule
    elif action == "unsolicited":
        # The fault sends its frame just before the answer.
        if answer > 0 and responses[answer - 1].unsolicited:
            marks.whole[answer - 1] = f.rule
    elif action == "trailing":
        # The fault's bytes follow the answer: every frame up to the next answer, or the unreadable rest, is theirs.
        for j in range(answer + 1, len(responses) + 1):
            if j < len(responses) and responses[j].answers is not None:
                break
            marks.whole[j] = f.rule
    elif action in _TIMING_ACTIONS:
        marks.response_notes.setdefault(answer, []).append(f"timing changed by fault {f.rule}")


def _limit(frames: list[Frame], direction: Direction, left_out: dict[Direction, int], most: int) -> list[Frame]:
    if len(frames) > most:
        left_out[direction] = len(frames) - most
        return frames[:most]
    return frames


def dissect(t: ConnectionTranscript, max_frames: int = WIRE_FRAMES) -> Dissection:
    """Cut both directions of ``t`` into frames with labelled fields, times and fault marks.

    At most ``max_frames`` frames each way (the first ones); the rest are counted.
    """
    req_split = split_requests(t.received, cut=t.total("received") > len(t.received))
    resp_split = split_responses(
        t.sent, [r.message_type for r in req_split.requests], cut=t.total("sent") > len(t.sent)
    )
    marks = _fault_marks(t.faults, req_split.requests, resp_split.responses)
    timelines = {d: _Timeline(t.segments, d) for d in DIRECTIONS}
    left_out: dict[Direction, int] = {}
    req_frames = _limit(
        [_timed(f, timelines) for f in _request_frames(t.received, req_split, marks)], "received", left_out, max_frames
    )
    resp_frames = _limit(
        [_timed(f, timelines) for f in _response_frames(t.sent, resp_split, req_split.requests, marks)],
        "sent",
        left_out,
        max_frames,
    )
    if t.segments:
        frames = sorted(
            [*req_frames, *resp_frames],
            key=lambda f: (f.last_at if f.last_at is not None else float("inf"), f.direction == "sent", f.start),
        )
    else:
        frames = _paired(req_frames, resp_frames, resp_split.responses)
    origin, rows = _segment_rows(t)
    return Dissection(
        tuple(frames), rows, bool(t.segments), origin, left_out, _bytes_not_kept(t), tuple(marks.connection)
    )


def _timed(frame: Frame, timelines: dict[Direction, _Timeline]) -> Frame:
    first, last, count = timelines[frame.direction].span(frame.start, frame.end)
    return dataclasses.replace(frame, first_at=first, last_at=last, segments=count)


def _request_frames(received: bytes, split: Split, marks: _FaultMarks) -> list[Frame]:
    """The requests the broker received, with the faults they set off, and the bytes after them that were no request."""
    frames: list[Frame] = []
    for i, r in enumerate(split.requests):
        fields = _fields(r.start, r.raw, request_fields(r), functools.partial(_request_value, r))
        title = f"{r.type_name} request #{i + 1}"
        notes = tuple(marks.request_notes.get(i, ()))
        detail = "" if r.complete else _cut_detail(len(r.raw), r.size)
        frames.append(Frame("received", title, r.start, r.size, tuple(fields), detail, notes=notes))
    if split.rest:
        start = len(received) - len(split.rest)
        frames.append(_unreadable("received", start, split.rest, split.problem, None))
    return frames


def _response_frames(
    sent: bytes, split: ResponseSplit, requests: Sequence[WireRequest], marks: _FaultMarks
) -> list[Frame]:
    """The responses the broker sent, with what faults changed in them, and the bytes after them that were none."""
    frames: list[Frame] = []
    for i, resp in enumerate(split.responses):
        fields = [
            dataclasses.replace(f, changed_by=marks.fields.get((i, f.name)))
            for f in _fields(resp.start, resp.raw, response_fields(resp), functools.partial(_response_value, resp))
        ]
        detail = _answer_detail(resp, requests)
        if not resp.complete:
            detail += "; " + _cut_detail(len(resp.raw), resp.size)
        frames.append(
            Frame(
                "sent",
                resp.kind,
                resp.start,
                resp.size,
                tuple(fields),
                detail,
                changed_by=marks.whole.get(i),
                notes=tuple(marks.response_notes.get(i, ())),
            )
        )
    if split.rest:
        start = len(sent) - len(split.rest)
        rule = marks.whole.get(len(split.responses))
        frames.append(_unreadable("sent", start, split.rest, split.problem, rule))
    return frames


def _answer_detail(resp: WireResponse, requests: Sequence[WireRequest]) -> str:
    """Which request a response answers, and whether its correlation id says the same."""
    if resp.answers is not None:
        asked = requests[resp.answers]
        detail = f"answers request #{resp.answers + 1} (correlation id {asked.correlation_id})"
        if asked.correlation_id != resp.correlation_id:
            detail += f"; correlation id {resp.correlation_id} is not the request's"
        return detail
    if resp.unsolicited:
        return "answers no request: the broker is closing the connection (RESP-7)"
    return "arrived while no request was pending"


def _segment_rows(t: ConnectionTranscript) -> tuple[float | None, tuple[SegmentRow, ...]]:
    """The time the connection opened (else its first segment's), and each segment timed from it and the one before."""
    origin = t.opened_at
    if origin is None and t.segments:
        origin = t.segments[0].at
    rows: list[SegmentRow] = []
    previous: float | None = None
    for s in t.segments:
        rows.append(
            SegmentRow(
                s.direction,
                s.at,
                s.at - origin if origin is not None else 0.0,
                s.at - previous if previous is not None else 0.0,
                s.start,
                s.length,
            )
        )
        previous = s.at
    return origin, tuple(rows)


def _bytes_not_kept(t: ConnectionTranscript) -> dict[Direction, int]:
    """Per direction, the bytes that moved beyond what the transcript kept."""
    not_kept: dict[Direction, int] = {}
    for d in DIRECTIONS:
        extra = t.total(d) - len(t.received if d == "received" else t.sent)
        if extra > 0:
            not_kept[d] = extra
    return not_kept


def _cut_detail(kept: int, size: int) -> str:
    return f"only its first {kept} of {size} bytes were kept"


def _unreadable(direction: Direction, start: int, rest: bytes, problem: str | None, rule: str | None) -> Frame:
    shown = rest[:PAYLOAD_PREVIEW_BYTES]
    more = f" (+{len(rest) - len(shown)} more)" if len(rest) > len(shown) else ""
    return Frame(
        direction,
        "bytes not read as a frame",
        start,
        len(rest),
        (Field("bytes", start, len(rest), shown, f"{len(rest)} bytes{more}"),),
        problem or "",
        changed_by=rule,
    )


def _paired(requests: list[Frame], responses: list[Frame], read: Sequence[WireResponse]) -> list[Frame]:
    """Without times: each request, then what answered it (unsolicited frames where they came)."""
    out: list[Frame] = []
    sent_requests = 0
    for i, frame in enumerate(responses):
        answers = read[i].answers if i < len(read) else None
        if answers is not None:
            while sent_requests <= answers and sent_requests < len(requests):
                out.append(requests[sent_requests])
                sent_requests += 1
        out.append(frame)
    out.extend(requests[sent_requests:])
    # Responses were appended in order; requests never answered come at the end.
    return out
