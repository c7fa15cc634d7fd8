"""The fault planner: rules that fired, to typed output steps. Pure functions, checked without a broker."""

from __future__ import annotations

import pytest

from mock_broker import FaultRule
from mock_broker._planner import as_int8, mutate, plan_answer, plan_connect, replacement_error
from mock_broker._steps import Close, Hold, Reset, Sleep, Sliced, Write

from ._raw import consume_ok, create_ok, error, produce_ok

ANSWER = produce_ok(7, 3)
PRODUCE, CONSUME, CREATE_TOPIC = 1, 2, 3


def rules(*texts: str) -> list[FaultRule]:
    return [FaultRule.parse(t) for t in texts]


def test_no_delivery_rule_is_one_plain_write():
    plan = plan_answer(rules("produce:wrong-cid"), ANSWER, PRODUCE)
    assert plan.steps == (Write(produce_ok(8, 3)),)
    assert plan.immediate


def test_unsolicited_goes_before_and_trailing_after_the_answer():
    plan = plan_answer(rules("any:trailing=abcd", "any:unsolicited=NETWORK_ERROR"), ANSWER, PRODUCE)
    assert plan.steps == (Write(bytes.fromhex("00 00 00 00 00 08")), Write(ANSWER + bytes.fromhex("ab cd")))
    assert plan.immediate


def test_delays_add_up_and_come_first():
    plan = plan_answer(rules("any:delay=100", "produce:delay=50"), ANSWER, PRODUCE)
    assert plan.steps == (Sleep(0.15), Write(ANSWER))
    assert not plan.immediate


@pytest.mark.parametrize(
    ("rule", "steps", "ends"),
    [
        ("any:slice=4/20", (Sliced(ANSWER, 4, 0.02),), False),
        ("any:hold", (Hold(ANSWER),), False),
        ("any:close", (Close(),), True),
        ("any:close-after=0", (Close(),), True),
        ("any:close-after=6", (Write(ANSWER[:6]), Close()), True),
        ("any:reset", (Reset(),), True),
    ],
)
def test_each_delivery_action(rule, steps, ends):
    plan = plan_answer(rules(rule), ANSWER, PRODUCE)
    assert plan.steps == steps
    assert (plan.ends_by is not None) == ends
    assert not plan.immediate


def test_the_last_delivery_rule_decides_and_trailing_bytes_go_with_the_answer():
    plan = plan_answer(rules("any:hold", "any:trailing=ff", "any:slice=10"), ANSWER, PRODUCE)
    assert plan.steps == (Sliced(ANSWER + b"\xff", 10, 0.01),)


def test_silent_drops_the_answer_but_not_the_trailing_bytes():
    assert plan_answer(rules("any:silent"), ANSWER, PRODUCE).steps == (Write(b""),)
    assert plan_answer(rules("any:silent", "any:trailing=00"), ANSWER, PRODUCE).steps == (Write(b"\x00"),)
    assert plan_answer(rules("any:silent", "any:delay=5"), ANSWER, PRODUCE).steps == (Sleep(0.005),)


def test_slow_read_is_not_an_output_step():
    plan = plan_answer(rules("any:slow-read=2048"), ANSWER, PRODUCE)
    assert plan.slow_read == 2048
    assert plan.steps == (Write(ANSWER),)


def test_replacement_error_is_the_last_error_rule():
    assert replacement_error(rules("any:delay=1")) is None
    assert replacement_error(rules("any:error=TOPIC_NOT_FOUND", "any:error=200")) == 200
    assert as_int8(200) == -56
    assert as_int8(9) == 9


@pytest.mark.parametrize(
    ("rule", "answer", "mtype", "expected"),
    [
        ("any:wrong-cid", error(2**31 - 1, 4), PRODUCE, error(-(2**31), 4)),
        ("any:bad-flag", ANSWER, PRODUCE, ANSWER[:4] + b"\x02" + ANSWER[5:]),
        ("any:bad-flag=255", ANSWER, PRODUCE, ANSWER[:4] + b"\xff" + ANSWER[5:]),
        ("any:bad-length=-1", consume_ok(1, 5, 2, b"ab"), CONSUME, consume_ok(1, 5, 2, b"")[:-4] + b"\xff" * 4 + b"ab"),
        ("any:bad-length=65537", create_ok(1, "t"), CREATE_TOPIC, create_ok(1, "t")[:-3] + b"\x00\x01t"),
        ("any:bad-length=9", ANSWER, PRODUCE, ANSWER),  # no length field: unchanged
        ("any:bad-length=9", error(1, 4), CONSUME, error(1, 4)),  # an error answer has none either
    ],
)
def test_mutations_rewrite_one_field(rule, answer, mtype, expected):
    assert mutate(answer, [FaultRule.parse(rule).effect], mtype).hex(" ") == expected.hex(" ")


def test_connect_plan_stops_at_the_first_close_or_reset():
    plan = plan_connect(rules("connect:refuse=250", "connect:slow-read=10", "connect:reset", "connect:close"))
    assert plan.refuse == (0.25,)
    assert plan.slow_read == 10
    assert isinstance(plan.ends_with, Reset)
    assert [str(r) for r in plan.applied] == ["connect:refuse=250", "connect:slow-read=10", "connect:reset"]


def test_connect_silent():
    plan = plan_connect(rules("connect:silent"))
    assert plan.silent
    assert plan.ends_with is None
