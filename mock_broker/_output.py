"""The output scheduler: runs a connection's output steps against the clock, in order.

Only a connection that a fault rule has delayed, sliced or held gets one (with
no rule the protocol writes straight to the transport). It keeps the steps
not yet run, counts what they cost in memory (bytes plus a fixed overhead per
step, :func:`mock_broker._steps.cost`), and tells its owner when that falls
back under the low-water mark, so that the owner stops reading while planned
output piles up and resumes once it has gone out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from ._steps import STEP_OVERHEAD, Close, Hold, Reset, Sleep, Sliced, Step, Write, cost


class OutputTarget(Protocol):
    """What the scheduler drives: the connection's I/O side."""

    def send(self, data: bytes) -> None: ...

    def close_now(self) -> None: ...

    def reset_now(self) -> None: ...

    def output_drained(self) -> None: ...


class OutputScheduler:
    """The steps waiting to run on one connection, and the timer of the one running."""

    __slots__ = ("_cost", "_held", "_loop", "_low_water", "_pos", "_steps", "_target", "_timer", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop, target: OutputTarget, low_water: int) -> None:
        self._loop = loop
        self._target = target
        self._low_water = low_water
        self._steps: deque[Step] = deque()
        self._cost = 0
        self._held = b""
        self._pos = 0  # how far the Sliced step at the front has gone
        self._timer: asyncio.TimerHandle | None = None
        #: Set once a Close or Reset has run: the connection is ending, nothing more goes out.
        self.done = False

    @property
    def cost(self) -> int:
        """The memory the waiting steps stand for (bytes plus a per-step overhead)."""
        return self._cost

    @property
    def busy(self) -> bool:
        """Steps wait, a pause runs or an answer is held: new output must queue behind them."""
        return bool(self._steps) or self._timer is not None or bool(self._held)

    def push(self, steps: Iterable[Step]) -> None:
        """Queue ``steps`` after the ones waiting, and run what can run now."""
        if self.done:
            return
        for step in steps:
            self._steps.append(step)
            self._cost += cost(step)
        if self._timer is None:
            self._run()

    def cancel(self) -> None:
        """Drop every waiting step and stop the timer (the connection is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._steps.clear()
        self._cost = 0
        self._held = b""
        self.done = True

    def _wake(self) -> None:
        self._timer = None
        self._run()

    def _run(self) -> None:
        steps = self._steps
        target = self._target
        was_over = self._cost > self._low_water
        while steps and not self.done:
            step = steps[0]
            kind = type(step)
            if kind is Write:
                assert isinstance(step, Write)
                self._pop(step)
                data, self._held = self._held + step.data, b""
                target.send(data)
            elif kind is Hold:
                assert isinstance(step, Hold)
                self._pop(step)
                self._held += step.data
            elif kind is Sleep:
                assert isinstance(step, Sleep)
                self._pop(step)
                self._timer = self._loop.call_later(step.seconds, self._wake)
                break
            elif kind is Sliced:
                assert isinstance(step, Sliced)
                piece = step.data[self._pos : self._pos + step.size]
                self._pos += step.size
                self._cost -= len(piece)  # the step's bytes leave its cost piece by piece
                data, self._held = self._held + piece, b""
                finished = self._pos >= len(step.data)
                if finished:
                    steps.popleft()
                    self._cost -= STEP_OVERHEAD
                    self._pos = 0
                target.send(data)
                if not finished:
                    self._timer = self._loop.call_later(step.pause, self._wake)
                    break
            elif kind is Close:
                self._pop(step)
                if self._held:
                    held, self._held = self._held, b""
                    target.send(held)
                self.done = True
                target.close_now()
            elif kind is Reset:
                self._pop(step)
                self.done = True
                target.reset_now()
        if was_over and self._cost <= self._low_water and not self.done:
            target.output_drained()

    def _pop(self, step: Step) -> None:
        self._steps.popleft()
        self._cost -= cost(step)
