"""The broker's sans-IO core: request bytes in, output steps out, with no socket and no loop.

Expected answers are spelled out by hand (``_raw``), as in the socket-level tests.
"""

from __future__ import annotations

import pytest

from mock_broker import BrokerConfig, FaultRegistry
from mock_broker._answers import Answerer
from mock_broker._connection import IDLE_FRAME, BrokerConnection, State
from mock_broker._record import ConnectionRecord
from mock_broker._steps import Close, Reset, Sleep, Sliced, Write
from mock_broker._storage import TopicStore

from ._raw import (
    TS,
    consume,
    consume_ok,
    create,
    create_ok,
    error,
    pipelined,
    produce,
    produce_ok,
    raw_frame,
)


def core(profile: str = "spec", *, recording: bool = True, **config: object) -> BrokerConnection:
    cfg = BrokerConfig(profile=profile, **config)  # type: ignore[arg-type]
    return BrokerConnection(
        ConnectionRecord(
            1, ("127.0.0.1", 1), 0.0, new_decoder=cfg.new_decoder, requests_limit=cfg.record_requests_limit
        ),
        Answerer(cfg, TopicStore()),
        FaultRegistry(),
        cfg.new_decoder(),
        recording=recording,
        record_bytes_limit=cfg.record_bytes_limit,
        now=lambda: 42.0,
    )


def with_faults(conn: BrokerConnection, *rules: str) -> BrokerConnection:
    for rule in rules:
        conn._faults.add(rule)
    return conn


def written(steps: list[object]) -> bytes:
    """The bytes of a list of steps that only write."""
    assert all(type(s) is Write for s in steps), steps
    return b"".join(s.data for s in steps)  # type: ignore[attr-defined]


def test_answers_every_complete_request_in_one_write():
    c = core()
    c.receive_data(pipelined([create(1, "t"), produce(2, "t", b"abc"), consume(3, "t", 0)]))
    steps = c.next_output(1 << 20)
    assert steps == [Write(create_ok(1, "t") + produce_ok(2, 0) + consume_ok(3, TS, 1, b"abc"))]
    assert c.next_output(1 << 20) == []
    assert c.record.request_count == 3


def test_a_request_split_at_every_byte_is_answered_once_complete():
    c = core()
    frame = pipelined([create(7, "topic")])
    for i in range(len(frame) - 1):
        c.receive_data(frame[i : i + 1])
        assert c.next_output(1 << 20) == []
    c.receive_data(frame[-1:])
    assert c.next_output(1 << 20) == [Write(create_ok(7, "topic"))]


def test_the_budget_splits_a_batch_and_nothing_is_lost():
    c = core()
    c.receive_data(pipelined([create(1, "t"), produce(2, "t", b"x"), *(consume(i, "t", 0) for i in range(3, 103))]))
    batches = []
    while steps := c.next_output(100):
        batches.append(written(steps))
    assert len(batches) > 10
    expected = create_ok(1, "t") + produce_ok(2, 0) + b"".join(consume_ok(i, TS, 1, b"x") for i in range(3, 103))
    assert b"".join(batches) == expected
    assert not c.more


def test_a_run_of_produces_is_answered_whole():
    # PRODUCEs take the fast path, bounded by the bytes at hand (each answer is shorter than its
    # request), not by the budget.
    c = core()
    c.receive_data(pipelined([create(1, "t"), *(produce(i, "t", b"x") for i in range(2, 102))]))
    steps = c.next_output(100)
    assert written(steps) == create_ok(1, "t") + b"".join(produce_ok(i, i - 2) for i in range(2, 102))
    assert c.next_output(100) == []
    assert not c.more


def test_frame_lengths_are_known_once_they_arrive():
    c = core()
    frame = pipelined([produce(1, "t", b"x" * 1000)])
    c.receive_data(frame[:20])
    assert c.frame_bytes is None  # the payload_length has not arrived
    c.receive_data(frame[20:30])
    assert c.frame_bytes == len(frame)
    assert c.buffered == 30


@pytest.mark.parametrize(("profile", "answer"), [("spec", error(9, 2)), ("reference", b"")])
def test_a_fatal_frame_is_answered_as_the_profile_says_then_closes(profile, answer):
    c = core(profile)
    c.receive_data(raw_frame(9, 0x07, b"t") + pipelined([create(10, "t")]))
    steps = c.next_output(1 << 20)
    assert steps == ([Write(answer)] if answer else []) + [Close()]
    assert c.state is State.CLOSING
    assert c.record.close_reason == "unknown-message-type"
    c.receive_data(pipelined([create(11, "u")]))  # read and discarded now
    assert c.next_output(1 << 20) == []


def test_a_too_large_payload_is_answered_and_the_stream_goes_on():
    c = core(max_payload_bytes=4)
    c.receive_data(pipelined([create(1, "t"), produce(2, "t", b"12345"), produce(3, "t", b"1234")]))
    assert c.next_output(1 << 20) == [Write(create_ok(1, "t") + error(2, 3) + produce_ok(3, 0))]


def test_idle_timeout_is_network_error_then_close():
    c = core()
    assert c.idle_timeout() == [Write(IDLE_FRAME), Close()]
    assert bytes.fromhex("00 00 00 00 00 08") == IDLE_FRAME
    assert c.record.close_reason == "idle timeout"
    assert c.idle_timeout() == []


def test_close_records_the_first_reason_only():
    c = core()
    assert c.close("peer closed") == [Close()]
    assert c.close("broker stopped") == []
    assert c.record.close_reason == "peer closed"


def test_requests_are_recorded_as_frames_up_to_the_limit():
    c = core(record_requests_limit=2)
    c.receive_data(pipelined([create(1, "t"), produce(2, "t", b"a"), produce(3, "t", b"b")]))
    c.next_output(1 << 20)
    assert [r.correlation_id for r in c.record.requests] == [1, 2]
    assert c.record.requests_truncated
    assert c.record.request_count == 3


def test_the_requests_recorded_are_the_well_formed_frames_received():
    c = core()
    stream = pipelined([create(1, "t")]) + raw_frame(2, 1, b"\xff\xfe", payload=b"x")
    stream += pipelined([produce(3, "t", b"a"), produce(4, "t", b"b")])[:-1]  # the last frame not complete yet
    c.receive_data(stream)
    c.next_output(1 << 20)
    assert c.record.received == stream
    assert c.record.bytes_received == len(stream)
    assert [r.correlation_id for r in c.record.requests] == [1, 3]  # cid 2 (not UTF-8) was answered INVALID_REQUEST
    assert not c.record.requests_truncated


def test_a_frame_that_loses_the_stream_ends_the_requests_recorded():
    c = core()
    c.receive_data(pipelined([create(1, "t")]) + raw_frame(2, 9, b"t") + pipelined([produce(3, "t")]))
    c.next_output(1 << 20)
    assert c.closing
    assert [r.correlation_id for r in c.record.requests] == [1]
    assert not c.record.requests_truncated


def test_not_recording_keeps_no_requests():
    c = core(recording=False)
    c.receive_data(pipelined([create(1, "t")]))
    c.next_output(1 << 20)
    assert c.record.requests == []
    assert c.record.request_count == 1


def test_a_handler_that_raises_is_internal_error_and_keeps_the_traceback():
    class Broken(Answerer):
        def answer(self, req):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    c = core()
    c._answerer = Broken(BrokerConfig(), TopicStore())
    c.receive_data(pipelined([create(5, "t")]))
    assert c.next_output(1 << 20) == [Write(error(5, 7))]
    assert "RuntimeError: boom" in c._internal_errors[-1]


# -- with fault rules: the planner's steps come out in order -------------------------------------


def test_a_delayed_answer_is_a_sleep_then_its_write_after_the_plain_ones():
    c = with_faults(core(), "produce:delay=300:nth=2")
    c.receive_data(pipelined([create(1, "t"), produce(2, "t"), produce(3, "t"), produce(4, "t")]))
    assert c.next_output(1 << 20) == [
        Write(create_ok(1, "t") + produce_ok(2, 0)),
        Sleep(0.3),
        Write(produce_ok(3, 1)),
        Write(produce_ok(4, 2)),
    ]
    assert [(f.rule, f.request_index, f.correlation_id, f.at) for f in c.record.faults] == [
        ("produce:delay=300:nth=2", 3, 3, 42.0)
    ]


def test_a_sliced_answer_is_one_step_however_small_the_pieces():
    c = with_faults(core(), "create_topic:slice=1/50")
    c.receive_data(pipelined([create(1, "t")]))
    assert c.next_output(1 << 20) == [Sliced(create_ok(1, "t"), 1, 0.05)]


def test_an_error_rule_replaces_the_answer_and_the_request_has_no_effect():
    c = with_faults(core(), "create_topic:error=RESOURCE_EXHAUSTED")
    c.receive_data(pipelined([create(1, "t"), produce(2, "t")]))
    assert c.next_output(1 << 20) == [Write(error(1, 9) + error(2, 4))]


def test_a_close_rule_ends_reading_and_its_plan_closes():
    c = with_faults(core(), "produce:close-after=5")
    c.receive_data(pipelined([create(1, "t"), produce(2, "t"), produce(3, "t")]))
    assert c.next_output(1 << 20) == [Write(create_ok(1, "t")), Write(produce_ok(2, 0)[:5]), Close()]
    assert c.closing
    assert c.record.close_reason == "fault produce:close-after=5"
    assert c.record.request_count == 2  # the third request was never read


def test_a_reset_rule_plans_a_reset():
    c = with_faults(core(), "create_topic:reset")
    c.receive_data(pipelined([create(1, "t")]))
    assert c.next_output(1 << 20) == [Reset()]


def test_a_slow_read_rule_sets_the_read_rate():
    c = with_faults(core(), "create_topic:slow-read=1000:once")
    c.receive_data(pipelined([create(1, "t")]))
    c.next_output(1 << 20)
    assert c.read_rate == 1000


def test_faults_apply_to_the_answer_of_a_rejected_frame():
    c = with_faults(core(max_payload_bytes=1), "produce:wrong-cid")
    c.receive_data(pipelined([produce(4, "t", b"xy")]))
    assert c.next_output(1 << 20) == [Write(error(5, 3))]


def test_connect_rules_make_a_plan():
    c = with_faults(core(), "connect:refuse=100:once", "connect:close", "connect:silent")
    plan = c.connect_plan()
    assert plan is not None
    assert plan.refuse == ()  # a once-refuse rule was spent when it was added
    assert isinstance(plan.ends_with, Close)
    assert [str(r) for r in plan.applied] == ["connect:close"]  # nothing after the close
    assert c.closing


def test_no_rule_no_connect_plan():
    assert core().connect_plan() is None


def test_the_cost_of_planned_steps_bounds_a_batch():
    c = with_faults(core(), "produce:delay=1")
    c.receive_data(pipelined([create(1, "t"), *(produce(i, "t") for i in range(2, 1000))]))
    steps = c.next_output(10_000)
    # Each delayed answer is a Sleep and a Write, each costing its bytes plus an overhead:
    # far fewer than the 998 requests fit a 10,000-byte budget.
    sleeps = [s for s in steps if type(s) is Sleep]
    assert 10 < len(sleeps) < 60
    assert c.buffered > 0
