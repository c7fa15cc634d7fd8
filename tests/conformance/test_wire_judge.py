"""The judge's own request reader, checked against the hand-written examples of docs/PROTOCOL.md 3.1."""

from __future__ import annotations

from conformance._wire import CONSUME, CREATE_TOPIC, PRODUCE, hexdump, response_fields, split_requests, split_responses

CREATE = bytes.fromhex("00000007 03 00000007 70726f62652d61 0000011f71fb04cb 00000000")
PROD = bytes.fromhex("0000000a 01 00000007 70726f62652d61 000000000000002a 00000003 616263")
CONS = bytes.fromhex("0000000b 02 00000007 70726f62652d61 0000011f71fb04cb 00000001 00000000")


def test_spec_examples_split_into_their_fields() -> None:
    split = split_requests(CREATE + PROD + CONS)
    assert split.problem is None
    assert split.rest == b""
    create, produce, consume = split.requests
    assert (create.correlation_id, create.message_type, create.topic, create.timestamp) == (
        7,
        CREATE_TOPIC,
        b"probe-a",
        1234567890123,
    )
    assert create.payload_length == 0
    assert len(create.raw) == 28
    assert (produce.correlation_id, produce.message_type, produce.payload, produce.timestamp) == (
        10,
        PRODUCE,
        b"abc",
        42,
    )
    assert (consume.correlation_id, consume.message_type, consume.offset, consume.payload_length) == (
        11,
        CONSUME,
        1,
        0,
    )
    assert consume.start == 28 + 31


def test_missing_payload_length_leaves_an_incomplete_tail() -> None:
    short = CREATE[:-4]  # the short document's "header only" CREATE_TOPIC
    split = split_requests(short)
    assert split.requests == ()
    assert split.rest == short
    assert split.problem is not None
    assert "incomplete" in split.problem


def test_bad_type_and_length_stop_the_split() -> None:
    assert "message_type" in str(split_requests(PROD + b"\x00\x00\x00\x01\x07" + bytes(20)).problem)
    little = bytes.fromhex("0000000a 01 07000000") + bytes(30)
    assert "topic_length" in str(split_requests(little).problem)


def test_hexdump_cuts_long_data() -> None:
    text = hexdump(bytes(100), limit=32)
    assert text.count("\n") == 2
    assert "68 more bytes" in text


# The answers of docs/PROTOCOL.md 4.1 to CREATE_TOPIC 7, CREATE_TOPIC 8, PRODUCE 9 and CONSUME 11, pipelined.
CREATE_OK = bytes.fromhex("00000007 01 0000011f71fb04cb 0007 70726f62652d61")
EXISTS = bytes.fromhex("00000008 00 05")
PRODUCE_OK = bytes.fromhex("00000009 01 0000011f71fb04cb 00000000")
CONSUME_OK = bytes.fromhex("0000000b 01 000000000000002a 00000002 00000003 616263")
UNSOLICITED = bytes.fromhex("00000000 00 08")


def test_the_spec_pipelined_answers_split_by_the_pending_types() -> None:
    data = CREATE_OK + EXISTS + PRODUCE_OK + CONSUME_OK
    assert len(data) == 69
    split = split_responses(data, [CREATE_TOPIC, CREATE_TOPIC, PRODUCE, CONSUME])
    assert split.problem is None
    created, exists, produced, consumed = split.responses
    assert (created.kind, created.correlation_id, created.body) == ("CREATE_TOPIC success", 7, b"probe-a")
    assert (exists.kind, exists.answers, exists.error_code) == ("error response", 1, 5)
    assert (produced.kind, produced.offset, produced.timestamp) == ("PRODUCE success", 0, 1234567890123)
    assert (consumed.kind, consumed.next_offset, consumed.body, consumed.start) == ("CONSUME success", 2, b"abc", 45)
    assert [name for name, _, _ in response_fields(consumed)] == [
        "correlation_id",
        "success",
        "timestamp",
        "next_offset",
        "payload_length",
        "payload",
    ]


def test_the_unsolicited_frame_answers_no_request() -> None:
    split = split_responses(UNSOLICITED + PRODUCE_OK, [PRODUCE])
    unsolicited, produced = split.responses
    assert unsolicited.unsolicited
    assert unsolicited.answers is None
    assert produced.answers == 0


def test_a_bad_success_byte_or_a_success_nobody_asked_for_stops_the_split() -> None:
    bad = PRODUCE_OK[:4] + b"\x02" + PRODUCE_OK[5:]
    assert "success 0x02, neither 0 nor 1" in str(split_responses(bad, [PRODUCE]).problem)
    assert "no request is pending" in str(split_responses(PRODUCE_OK, []).problem)
    assert "incomplete" in str(split_responses(CONSUME_OK[:-1], [CONSUME]).problem)


def test_a_cut_stream_keeps_its_last_frame_with_the_bytes_there_are() -> None:
    big = PROD[:-7] + (1_048_576).to_bytes(4, "big") + b"x" * 100  # a 1 MiB PRODUCE, first 100 payload bytes kept
    assert split_requests(big).requests == ()
    (cut,) = split_requests(big, cut=True).requests
    assert (cut.payload_length, len(cut.payload), cut.complete, cut.size) == (1_048_576, 100, False, 28 + 1_048_576)
    answer = CONSUME_OK[:17] + (1_048_576).to_bytes(4, "big") + b"y" * 10
    (partial,) = split_responses(answer, [CONSUME], cut=True).responses
    assert (partial.length, partial.body, partial.complete) == (1_048_576, b"y" * 10, False)
