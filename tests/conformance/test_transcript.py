"""Transcripts from the mock broker's connection records, and the segment times the reports can show."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from conformance._dissect import dissect
from conformance._transcript import from_broker_record, from_broker_records, segments_of
from mock_broker import ThreadedMockBroker
from mock_broker._record import Segment

from .test_wire_judge import CREATE, CREATE_OK


def test_a_real_connection_record_becomes_a_transcript() -> None:
    with ThreadedMockBroker() as broker:
        broker.faults.add("create_topic:slice=7/1")
        with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
            sock.sendall(CREATE)
            answer = b""
            while len(answer) < len(CREATE_OK):
                answer += sock.recv(100)
        (t,) = from_broker_records([broker])  # the answer was recorded before it was written
    assert t.received == CREATE
    assert t.sent[:4] == CREATE_OK[:4]
    assert t.total("sent") == len(CREATE_OK)
    assert [f.action for f in t.faults] == ["slice"]
    assert t.faults[0].request_index == 1
    assert t.opened_at is not None
    d = dissect(t)
    assert d.timed
    request, answer = d.frames
    assert (request.title, answer.title) == ("CREATE_TOPIC request #1", "CREATE_TOPIC success")
    assert any("timing changed by fault create_topic:slice=7/1" in n for n in answer.notes)
    assert answer.segments == 4  # 22 bytes in slices of 7, 1 ms apart: 7 + 7 + 7 + 1
    assert [s.length for s in d.segments if s.direction == "sent"] == [7, 7, 7, 1]
    assert answer.first_at is not None
    assert answer.last_at is not None
    assert answer.last_at > answer.first_at


@dataclass
class _Record:
    """A connection record with mock_broker's attributes, its segments written out by hand."""

    received: bytes
    sent: bytes
    segments: list[Segment]
    id: int = 1
    peer: tuple[str, int] = ("127.0.0.1", 5)
    opened_at: float = 100.0


def test_segments_recorded_by_the_broker_give_each_frame_its_time() -> None:
    record = _Record(
        CREATE,
        CREATE_OK,
        [
            Segment(100.001, "in", CREATE),
            Segment(100.050, "out", CREATE_OK[:7]),
            Segment(100.250, "out", CREATE_OK[7:]),
            Segment(1.0, "sideways", b"x"),  # not a direction: left out
        ],
    )
    assert [(s.direction, s.start, s.length) for s in segments_of(record)] == [
        ("received", 0, 28),
        ("sent", 0, 7),
        ("sent", 7, 15),
    ]
    d = dissect(from_broker_record(0, record))
    assert d.timed
    request, answer = d.frames
    assert (request.segments, answer.segments) == (1, 2)
    assert round((answer.last_at or 0) - 100.0, 3) == 0.25
    assert [round(s.gap, 3) for s in d.segments] == [0.0, 0.049, 0.2]


def test_a_record_without_segments_has_none() -> None:
    @dataclass
    class Old:
        received: bytes = CREATE
        sent: bytes = b""

    assert segments_of(Old()) == ()
    assert not dissect(from_broker_record(0, Old())).timed
