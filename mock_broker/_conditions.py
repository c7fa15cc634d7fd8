"""Conditions a test waits for instead of sleeping: "3 requests received", "connection 2 closed", ...

Each condition is a small frozen dataclass whose :meth:`observe` reads the
broker (on its loop) and returns what it saw; :func:`wait_for` checks it until
it holds or the timeout passes. The broker announces nothing on its hot path,
so the condition is checked again every few milliseconds (:data:`POLL_SECONDS`);
each check costs O(open connections) at most.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._faults import FaultRule
from ._record import ConnectionRecord

if TYPE_CHECKING:
    from ._server import MockBroker

#: How often a condition is checked again during the first second of a wait, and after it.
POLL_SECONDS = 0.002
SLOW_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Requests:
    """At least ``at_least`` requests received, by every connection or by ``connection``."""

    at_least: int
    connection: int | None = None

    def observe(self, broker: MockBroker) -> int:
        if self.connection is None:
            return broker.totals().requests
        record = _record(broker, self.connection)
        return 0 if record is None else record.request_count

    def met(self, observed: int) -> bool:
        return observed >= self.at_least


@dataclass(frozen=True)
class BytesReceived:
    """At least ``at_least`` bytes received, by every connection or by ``connection``."""

    at_least: int
    connection: int | None = None

    def observe(self, broker: MockBroker) -> int:
        if self.connection is None:
            return broker.totals().bytes_received
        record = _record(broker, self.connection)
        return 0 if record is None else record.bytes_received

    def met(self, observed: int) -> bool:
        return observed >= self.at_least


@dataclass(frozen=True)
class ConnectionsOpen:
    """Exactly ``count`` connections open (0: every connection closed)."""

    count: int

    def observe(self, broker: MockBroker) -> int:
        return broker.totals().connections_open

    def met(self, observed: int) -> bool:
        return observed == self.count


@dataclass(frozen=True)
class ConnectionsClosed:
    """At least ``at_least`` connections closed since the last reset."""

    at_least: int

    def observe(self, broker: MockBroker) -> int:
        return broker.totals().connections_closed

    def met(self, observed: int) -> bool:
        return observed >= self.at_least


@dataclass(frozen=True)
class ConnectionClosed:
    """Connection ``connection`` closed (one not opened yet is waited for)."""

    connection: int

    def observe(self, broker: MockBroker) -> str:
        record = _record(broker, self.connection)
        if record is None:
            return "not seen"
        return "closed" if record.closed else "open"

    def met(self, observed: str) -> bool:
        return observed == "closed"


@dataclass(frozen=True)
class Messages:
    """At least ``at_least`` messages stored in ``topic`` (a topic not created yet holds 0)."""

    topic: str
    at_least: int

    def observe(self, broker: MockBroker) -> int:
        return broker.message_count(self.topic) or 0

    def met(self, observed: int) -> bool:
        return observed >= self.at_least


@dataclass(frozen=True)
class FaultFired:
    """Fault rule ``rule`` applied at least ``at_least`` times."""

    rule: FaultRule
    at_least: int = 1

    def observe(self, broker: MockBroker) -> int:
        return self.rule.fired

    def met(self, observed: int) -> bool:
        return observed >= self.at_least


Condition = Requests | BytesReceived | ConnectionsOpen | ConnectionsClosed | ConnectionClosed | Messages | FaultFired


@dataclass(frozen=True)
class Outcome:
    """How a wait ended: ``met``, what the condition saw last, and how long it took."""

    met: bool
    observed: Any
    waited: float


async def wait_for(broker: MockBroker, condition: Condition, timeout: float) -> Outcome:
    """Check ``condition`` on the broker's loop until it holds or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    while True:
        observed = condition.observe(broker)
        now = loop.time()
        if condition.met(observed):  # type: ignore[arg-type]
            return Outcome(True, observed, now - start)
        if now >= deadline:
            return Outcome(False, observed, now - start)
        pause = POLL_SECONDS if now - start < 1.0 else SLOW_POLL_SECONDS
        await asyncio.sleep(min(pause, deadline - now))


def _record(broker: MockBroker, conn_id: int) -> ConnectionRecord | None:
    try:
        return broker.record(conn_id)
    except KeyError:
        return None
