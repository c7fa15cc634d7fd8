"""Transcripts dissected for the reports: frames by the judge's reader, labelled fields, times, fault marks."""

from __future__ import annotations

from conformance._dissect import dissect, preview, timestamp_text
from conformance._transcript import ConnectionTranscript, FaultNote, Segment

from .test_wire_judge import CONS, CREATE, CREATE_OK, PROD, PRODUCE_OK, UNSOLICITED


def transcript(received: bytes, sent: bytes, **kwargs: object) -> ConnectionTranscript:
    return ConnectionTranscript(broker=0, id=1, peer="127.0.0.1:1", received=received, sent=sent, **kwargs)  # type: ignore[arg-type]


def fields(frame: object) -> dict[str, str]:
    return {f.name: f.value for f in frame.fields}  # type: ignore[attr-defined]


def test_each_field_of_the_spec_examples_is_labelled() -> None:
    d = dissect(transcript(CREATE + PROD, CREATE_OK + PRODUCE_OK))
    assert not d.timed
    titles = [f.title for f in d.frames]
    assert titles == ["CREATE_TOPIC request #1", "CREATE_TOPIC success", "PRODUCE request #2", "PRODUCE success"]
    create, created, produce, produced = d.frames
    assert fields(create) == {
        "correlation_id": "7",
        "message_type": "0x03 CREATE_TOPIC",
        "topic_length": "7",
        "topic": '"probe-a"',
        "timestamp": "1234567890123 = 2009-02-13 23:31:30.123 UTC",
        "payload_length": "0",
        "payload": "(empty)",
    }
    assert [(f.name, f.start, f.size) for f in produce.fields][:3] == [
        ("correlation_id", 28, 4),
        ("message_type", 32, 1),
        ("topic_length", 33, 4),
    ]
    assert fields(produce)["payload"] == '3 bytes: "abc"'
    assert fields(created)["topic_len"] == "7"
    assert created.detail == "answers request #1 (correlation id 7)"
    assert fields(produced) == {
        "correlation_id": "9",
        "success": "1 (success)",
        "timestamp": "1234567890123 = 2009-02-13 23:31:30.123 UTC",
        "offset": "0",
    }
    assert "correlation id 9 is not the request's" in produced.detail  # the spec's example answers cid 10 with 9


def test_bytes_a_fault_changed_are_marked_with_its_rule() -> None:
    wrong = (11).to_bytes(4, "big") + PRODUCE_OK[4:]  # the answer to PRODUCE 10 carries 11
    faults = (FaultNote("produce:wrong-cid:once", "wrong-cid", request_index=2, correlation_id=10),)
    d = dissect(transcript(CREATE + PROD, CREATE_OK + wrong, faults=faults))
    produced = d.frames[-1]
    marked = {f.name: f.changed_by for f in produced.fields if f.changed_by}
    assert marked == {"correlation_id": "produce:wrong-cid:once"}
    assert "fault produce:wrong-cid:once" in d.frames[2].notes


def test_the_unsolicited_frame_and_a_silent_fault_are_shown() -> None:
    faults = (
        FaultNote("produce:unsolicited", "unsolicited", request_index=2, correlation_id=10),
        FaultNote("consume:silent", "silent", request_index=3, correlation_id=11),
    )
    d = dissect(transcript(CREATE + PROD + CONS, CREATE_OK + UNSOLICITED + PRODUCE_OK, faults=faults))
    unsolicited = next(f for f in d.frames if f.title == "unsolicited frame")
    assert unsolicited.changed_by == "produce:unsolicited"
    assert "RESP-7" in unsolicited.detail
    consume = next(f for f in d.frames if f.title == "CONSUME request #3")
    assert "no answer: silent" in consume.notes


def test_unreadable_bytes_say_why() -> None:
    d = dissect(transcript(PROD + b"\x00\x00\x00\x01\x07junk", b""))
    rest = d.frames[-1]
    assert rest.title == "bytes not read as a frame"
    assert "message_type 0x07" in rest.detail


def test_segment_times_order_frames_and_show_slicing() -> None:
    opened = 1000.0
    segments = (
        Segment("received", opened + 0.001, 0, len(PROD)),
        *(Segment("sent", opened + 0.010 + i * 0.005, i, 1) for i in range(len(PRODUCE_OK))),
    )
    d = dissect(transcript(PROD, PRODUCE_OK, segments=segments, opened_at=opened))
    assert d.timed
    request, answer = d.frames
    assert request.segments == 1
    assert answer.segments == len(PRODUCE_OK)
    assert answer.first_at is not None
    assert answer.last_at is not None
    assert round((answer.last_at - answer.first_at) * 1000) == 5 * (len(PRODUCE_OK) - 1)
    assert [round(s.since_open * 1000) for s in d.segments[:3]] == [1, 10, 15]
    assert round(d.segments[2].gap * 1000) == 5


def test_a_transcript_cut_short_still_shows_its_last_frame() -> None:
    big = PROD[:-7] + (1_048_576).to_bytes(4, "big") + b"x" * 100
    d = dissect(transcript(big, b"", received_total=28 + 1_048_576))
    (produce,) = d.frames
    assert fields(produce)["payload_length"] == "1048576"
    assert fields(produce)["payload"].startswith('1048576 bytes: "xxxx')
    assert "only its first 128 of 1048604 bytes were kept" in produce.detail
    assert d.bytes_not_kept == {"received": 1_048_576 - 100}


def test_values_read_like_the_spec() -> None:
    assert timestamp_text(0) == "0 = 1970-01-01 00:00:00.000 UTC"
    assert timestamp_text(-(2**63)).endswith("(not a date)")
    assert preview(b"\x00\x01\xff") == "3 bytes: 00 01 ff"
    assert preview(b"a" * 40) == f'40 bytes: "{"a" * 32}..."'
    assert preview(b"\x1b[2J") == "4 bytes: 1b 5b 32 4a"
