"""Output steps: what a connection's core asks the I/O side to do, in order.

The sans-IO core (:mod:`mock_broker._connection`) turns requests into steps;
the fault planner (:mod:`mock_broker._planner`) adds the unusual ones; the
output scheduler (:mod:`mock_broker._output`) runs them against the clock and
the transport. With no fault rule the core only ever produces :class:`Write`
and :class:`Close`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Write:
    """Send ``data`` (after anything held back)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Sleep:
    """Send nothing more for ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep ``data`` back: it goes out with the next write, in the same segment."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Sliced:
    """Send ``data`` ``size`` bytes at a time, ``pause`` seconds apart."""

    data: bytes
    size: int
    pause: float


@dataclass(frozen=True, slots=True)
class Close:
    """Close gracefully once everything before has gone out (FIN; CONN-11)."""


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the connection (RST) now."""


Step = Write | Sleep | Hold | Sliced | Close | Reset

#: What a step costs beyond its bytes while it waits in a queue (the object, its slot):
#: the bound on a connection's planned output counts this, so that many tiny steps are not free.
STEP_OVERHEAD = 128


def cost(step: Step) -> int:
    """The memory a waiting step stands for, in bytes."""
    data = getattr(step, "data", b"")
    return len(data) + STEP_OVERHEAD


#: Steps that only write: with nothing waiting, they go straight to the transport.
IMMEDIATE = (Write,)
