"""Reading the answers back out of the bytes a connection was sent, paired with its requests."""

from __future__ import annotations

from mega_client.protocol import (
    ConsumeResponse,
    CreateTopicResponse,
    ErrorCode,
    ErrorResponse,
    ProduceResponse,
    UnsolicitedError,
)
from mock_broker._transcript import read_answers

from ._raw import consume_ok, create_ok, error, produce_ok

PRODUCE, CONSUME, CREATE = 1, 2, 3
MAX = 1024 * 1024


def test_in_order_answers_pair_with_their_requests():
    sent = create_ok(1, "t", ts=5) + produce_ok(2, 0, ts=6) + consume_ok(3, 6, 1, b"hi")
    t = read_answers([(CREATE, 1), (PRODUCE, 2), (CONSUME, 3)], sent, MAX)
    assert t.undecoded_at is None
    assert [(a.position, a.size, a.request_index) for a in t.answers] == [(0, 16, 0), (16, 17, 1), (33, 23, 2)]
    assert [a.frame for a in t.answers] == [
        CreateTopicResponse(1, 5, "t"),
        ProduceResponse(2, 6, 0),
        ConsumeResponse(3, 6, 1, b"hi"),
    ]


def test_an_unanswered_request_is_skipped_by_correlation_id():
    # A `silent` rule: request 1 gets no answer; request 2's answer is still its own.
    t = read_answers([(PRODUCE, 1), (PRODUCE, 2)], produce_ok(2, 0), MAX)
    (only,) = t.answers
    assert only.request_index == 1


def test_the_same_correlation_id_twice_pairs_in_order():
    t = read_answers([(PRODUCE, 7), (CREATE, 7)], produce_ok(7, 0) + create_ok(7, "x"), MAX)
    assert [a.request_index for a in t.answers] == [0, 1]
    assert t.undecoded_at is None


def test_the_idle_notice_and_other_stray_error_frames_answer_no_request():
    sent = error(9, 3) + error(0, 4) + bytes.fromhex("00 00 00 00 00 08")
    t = read_answers([(PRODUCE, 0)], sent, MAX)
    assert [(a.frame, a.request_index) for a in t.answers] == [
        (ErrorResponse(9, ErrorCode.MESSAGE_TOO_LARGE), None),  # the answer to a frame the decoder rejected
        (ErrorResponse(0, ErrorCode.TOPIC_NOT_FOUND), 0),
        (UnsolicitedError(ErrorCode.NETWORK_ERROR), None),
    ]


def test_bytes_that_are_no_frame_stop_the_reading_where_they_start():
    sent = produce_ok(1, 0) + bytes.fromhex("deadbeef")
    t = read_answers([(PRODUCE, 1)], sent, MAX)
    assert len(t.answers) == 1
    assert t.undecoded_at == 17
    assert t.undecoded_reason == "an incomplete frame of 4 bytes"


def test_a_bad_success_flag_stops_the_reading_with_the_decoders_reason():
    sent = bytes.fromhex("00 00 00 01 02") + bytes(12)
    t = read_answers([(PRODUCE, 1)], sent, MAX)
    assert t.answers == ()
    assert t.undecoded_at == 0
    assert "success flag" in (t.undecoded_reason or "")


def test_a_success_that_answers_no_request_stops_the_reading():
    t = read_answers([(PRODUCE, 1)], produce_ok(2, 0), MAX)  # a wrong-cid rule
    assert t.answers == ()
    assert t.undecoded_reason == "a success frame with correlation id 2 that answers no recorded request"


def test_a_frame_cut_by_the_record_limit_is_incomplete():
    sent = consume_ok(1, 0, 1, b"x" * 1000)[:500]
    t = read_answers([(CONSUME, 1)], sent, MAX)
    assert (t.answers, t.undecoded_at, t.undecoded_reason) == ((), 0, "an incomplete frame of 500 bytes")


def test_many_large_frames_read_in_linear_time():
    payload = b"p" * 100_000
    sent = b"".join(consume_ok(i, 0, i + 1, payload) for i in range(200))
    t = read_answers([(CONSUME, i) for i in range(200)], sent, MAX)
    assert len(t.answers) == 200
    assert t.answers[-1].frame == ConsumeResponse(199, 0, 200, payload)
