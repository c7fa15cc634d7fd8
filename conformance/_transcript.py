"""A connection as it went over the wire: the bytes both ways, when they moved, the faults applied.

Directions are named from the broker's side, whoever the subject is: ``received`` is what
went client to broker (requests), ``sent`` what went broker to client (responses).

:func:`from_broker_record` adapts a connection record of the in-process mock broker
(``mock_broker.ConnectionRecord``, read by duck typing so that any broker object with the
same attributes works), with the time of each chunk it read or wrote (:func:`segments_of`);
a transcript without segments makes the reports say that the times were not recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ._limits import WIRE_CASE_BYTES, WIRE_CONNECTIONS, WIRE_KEEP_BYTES, WIRE_SEGMENTS

Direction = Literal["received", "sent"]
DIRECTIONS: tuple[Direction, ...] = ("received", "sent")


@dataclass(frozen=True)
class Segment:
    """One read or write: ``length`` bytes at position ``start`` of its direction's stream.

    ``at`` is wall-clock time (seconds since the epoch, as ``time.time()``).
    """

    direction: Direction
    at: float
    start: int
    length: int


@dataclass(frozen=True)
class FaultNote:
    """A fault rule the broker applied to the connection; ``request_index`` counts requests from 1."""

    rule: str
    action: str = ""
    request_index: int | None = None
    correlation_id: int | None = None

    def __str__(self) -> str:
        return self.rule if self.request_index is None else f"{self.rule} (request {self.request_index})"


@dataclass(frozen=True)
class ConnectionTranscript:
    """The bytes of one connection both ways, as the broker saw them.

    ``received_total`` / ``sent_total`` count every byte when more went over the wire than
    ``received`` / ``sent`` keep (``None``: all kept). ``segments`` are in time order, and empty
    when the times were not recorded. ``opened_at`` is wall-clock time, ``None`` if unknown.
    """

    broker: int
    id: int
    peer: str
    received: bytes
    sent: bytes
    faults: tuple[FaultNote, ...] = ()
    close_reason: str | None = None
    segments: tuple[Segment, ...] = ()
    opened_at: float | None = None
    received_total: int | None = None
    sent_total: int | None = None

    def total(self, direction: Direction) -> int:
        """Bytes that went over the wire in ``direction``, kept or not."""
        kept = self.received if direction == "received" else self.sent
        counted = self.received_total if direction == "received" else self.sent_total
        return len(kept) if counted is None else max(counted, len(kept))


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_BROKER_DIRECTIONS: dict[object, Direction] = {"in": "received", "out": "sent"}


def segments_of(record: Any) -> tuple[Segment, ...]:
    """The segments of a mock broker connection record (``record.segments``), positioned; else ``()``.

    The mock broker keeps each chunk as it crossed the socket, ``Segment(at, direction, data)``
    with ``direction`` ``"in"`` or ``"out"``, in order: a chunk's position in its direction's
    stream is the length of the chunks before it. At most ``WIRE_SEGMENTS`` are used; a record
    without segments (a broker that does not record) gives none.
    """
    raw = getattr(record, "segments", None)
    if raw is None:
        return ()
    position: dict[Direction, int] = {"received": 0, "sent": 0}
    out: list[Segment] = []
    for item in raw:
        direction = _BROKER_DIRECTIONS.get(getattr(item, "direction", None))
        data = getattr(item, "data", None)
        at = getattr(item, "at", None)
        if direction is None or not isinstance(data, (bytes, bytearray, memoryview)):
            continue
        if not isinstance(at, (int, float)) or isinstance(at, bool):
            continue
        if len(out) < WIRE_SEGMENTS:
            out.append(Segment(direction, float(at), position[direction], len(data)))
        position[direction] += len(data)
    return tuple(out)


def faults_of(record: Any) -> tuple[FaultNote, ...]:
    """The faults a broker's connection record says were applied (mock_broker.AppliedFault)."""
    return tuple(
        FaultNote(
            rule=str(getattr(f, "rule", f)),
            action=str(getattr(f, "action", "") or ""),
            request_index=_int_or_none(getattr(f, "request_index", None)),
            correlation_id=_int_or_none(getattr(f, "correlation_id", None)),
        )
        for f in getattr(record, "faults", ())
    )


def from_broker_record(broker_index: int, record: Any, keep: int = WIRE_KEEP_BYTES) -> ConnectionTranscript:
    """A transcript from one connection record of the mock broker (``ThreadedMockBroker.records()``),
    keeping at most ``keep`` bytes of each direction."""
    peer = getattr(record, "peer", None)
    keep = min(keep, WIRE_KEEP_BYTES)
    received = bytes(record.received)[:keep]
    sent = bytes(record.sent)[:keep]
    opened = getattr(record, "opened_at", None)
    return ConnectionTranscript(
        broker=broker_index,
        id=int(getattr(record, "id", 0)),
        peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer),
        received=received,
        sent=sent,
        faults=faults_of(record),
        close_reason=getattr(record, "close_reason", None),
        segments=segments_of(record),
        opened_at=float(opened) if isinstance(opened, (int, float)) else None,
        received_total=_int_or_none(getattr(record, "bytes_received", None)),
        sent_total=_int_or_none(getattr(record, "bytes_sent", None)),
    )


def from_broker_records(brokers: Iterable[Any]) -> list[ConnectionTranscript]:
    """Every connection of every broker of a case, broker by broker (a broker that fails is left out).

    At most ``WIRE_CONNECTIONS`` connections and ``WIRE_CASE_BYTES`` bytes in all are kept; the
    byte counts of each transcript still say how much went over the wire.
    """
    out: list[ConnectionTranscript] = []
    budget = WIRE_CASE_BYTES
    for index, broker in enumerate(brokers):
        try:
            records = broker.records()
        except Exception:
            continue
        for rec in records:
            if len(out) >= WIRE_CONNECTIONS:
                return out
            t = from_broker_record(index, rec, keep=budget // 2)
            budget -= len(t.received) + len(t.sent)
            out.append(t)
    return out
