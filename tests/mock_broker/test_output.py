"""The output scheduler: steps run in order against the loop's clock, with their memory counted."""

from __future__ import annotations

import asyncio

from mock_broker._output import OutputScheduler
from mock_broker._steps import STEP_OVERHEAD, Close, Hold, Reset, Sleep, Sliced, Write


class Target:
    """Records what the scheduler did, with the loop time of each action."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.events: list[tuple[str, bytes]] = []
        self.times: list[float] = []
        self.drained = 0

    def _note(self, what: str, data: bytes = b"") -> None:
        self.events.append((what, data))
        self.times.append(self.loop.time())

    def send(self, data: bytes) -> None:
        self._note("send", data)

    def close_now(self) -> None:
        self._note("close")

    def reset_now(self) -> None:
        self._note("reset")

    def output_drained(self) -> None:
        self.drained += 1


def run(steps: list[object], *, low_water: int = 1 << 20, settle: float = 0.5) -> tuple[Target, OutputScheduler]:
    async def main() -> tuple[Target, OutputScheduler]:
        loop = asyncio.get_running_loop()
        target = Target(loop)
        out = OutputScheduler(loop, target, low_water)
        target.started = loop.time()  # type: ignore[attr-defined]
        out.push(steps)  # type: ignore[arg-type]
        deadline = loop.time() + settle
        while out.busy and loop.time() < deadline:
            await asyncio.sleep(0.005)
        return target, out

    return asyncio.run(main())


def test_plain_writes_go_out_at_once_in_order():
    target, out = run([Write(b"a"), Write(b"b")])
    assert target.events == [("send", b"a"), ("send", b"b")]
    assert not out.busy
    assert out.cost == 0


def test_a_sleep_delays_what_follows():
    target, _ = run([Write(b"a"), Sleep(0.05), Write(b"b")])
    assert target.events == [("send", b"a"), ("send", b"b")]
    assert target.times[1] - target.times[0] >= 0.045


def test_held_bytes_go_out_with_the_next_write():
    target, _ = run([Hold(b"held"), Write(b"next")])
    assert target.events == [("send", b"heldnext")]


def test_a_close_sends_what_is_held_first_and_ends_the_output():
    target, out = run([Hold(b"held"), Close(), Write(b"never")])
    assert target.events == [("send", b"held"), ("close", b"")]
    assert out.done


def test_a_reset_drops_what_is_held():
    target, _ = run([Hold(b"held"), Reset()])
    assert target.events == [("reset", b"")]


def test_a_sliced_write_goes_in_pieces_apart_in_time_and_merges_held_bytes_into_the_first():
    target, out = run([Hold(b">"), Sliced(b"abcde", 2, 0.02), Write(b"!")])
    assert target.events == [("send", b">ab"), ("send", b"cd"), ("send", b"e"), ("send", b"!")]
    assert target.times[2] - target.times[0] >= 0.035
    assert out.cost == 0


def test_cost_counts_bytes_and_steps_and_drains_to_zero():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        target = Target(loop)
        out = OutputScheduler(loop, target, low_water=10)
        out.push([Sleep(0.02), Write(b"x" * 100), Sliced(b"y" * 6, 3, 0.0)])
        assert out.cost == 3 * STEP_OVERHEAD + 100 + 6 - STEP_OVERHEAD  # the Sleep has started
        assert out.busy
        while out.busy:
            await asyncio.sleep(0.005)
        assert out.cost == 0
        assert target.drained == 1  # it went from over the low-water mark to under it once

    asyncio.run(main())


def test_cancel_drops_everything():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        target = Target(loop)
        out = OutputScheduler(loop, target, low_water=10)
        out.push([Sleep(0.01), Write(b"late")])
        out.cancel()
        await asyncio.sleep(0.03)
        assert target.events == []
        assert out.cost == 0
        out.push([Write(b"after")])
        assert target.events == []

    asyncio.run(main())
