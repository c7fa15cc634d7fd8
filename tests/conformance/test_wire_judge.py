"""The judge's own request reader, checked against the hand-written examples of docs/PROTOCOL.md 3.1."""

from __future__ import annotations

from conformance._wire import CONSUME, CREATE_TOPIC, PRODUCE, hexdump, split_requests

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
