"""The broker-wide budget of request bytes held while large frames are assembled."""

from __future__ import annotations

from mock_broker._memory import FREE_BYTES, RequestMemory

MIB = 1 << 20


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.grant = 0
        self.woken = 0

    def memory_granted(self) -> None:
        self.woken += 1

    def __repr__(self) -> str:
        return self.name


def test_small_partial_frames_need_no_grant():
    memory = RequestMemory(2 * MIB)
    a = Conn("a")
    assert memory.hold(a, FREE_BYTES, MIB)
    assert a.grant == 0
    assert memory.granted == 0


def test_a_large_frame_is_granted_its_whole_size_then_released():
    memory = RequestMemory(2 * MIB)
    a = Conn("a")
    assert memory.hold(a, FREE_BYTES + 1, MIB)
    assert a.grant == MIB
    assert memory.hold(a, MIB - 1, MIB)  # still within its grant
    assert memory.hold(a, 10, None)  # the frame completed: a small remainder
    assert a.grant == 0
    assert memory.granted == 0


def test_past_the_budget_connections_wait_first_come_first_served():
    memory = RequestMemory(2 * MIB)
    a, b, c, d = (Conn(n) for n in "abcd")
    assert memory.hold(a, 100_000, MIB)
    assert memory.hold(b, 100_000, MIB)
    assert not memory.hold(c, 100_000, MIB)
    assert not memory.hold(d, 100_000, MIB)
    assert memory.waiting == 2
    memory.release(a)
    assert (c.woken, d.woken) == (1, 0)
    assert c.grant == MIB
    memory.release(b)
    assert d.woken == 1
    assert memory.granted == 2 * MIB
    assert memory.waiting == 0


def test_a_frame_larger_than_the_budget_still_goes_when_nothing_else_is_granted():
    memory = RequestMemory(MIB)
    a, b = Conn("a"), Conn("b")
    assert memory.hold(a, 200_000, 3 * MIB)  # progress: alone, it may exceed the budget
    assert not memory.hold(b, 200_000, MIB)
    memory.release(a)
    assert b.woken == 1


def test_a_closed_waiter_is_forgotten():
    memory = RequestMemory(MIB)
    a, b = Conn("a"), Conn("b")
    assert memory.hold(a, 200_000, MIB)
    assert not memory.hold(b, 200_000, MIB)
    memory.release(b)  # b's connection ended while it waited
    memory.release(a)
    assert b.woken == 0
    assert memory.granted == 0
