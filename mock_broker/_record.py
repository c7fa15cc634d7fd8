"""ConnectionRecord: what one connection sent, received and went through.

Recording is cheap by design, because the in-process brokers record by
default: a received or sent chunk is kept by reference with its time (no copy,
no parsing), and that is all. The requests are decoded from the received
bytes when a test asks for them, with a decoder like the connection's: keeping
a decoded copy of every request as it was answered cost the pipelined PRODUCE
path about a tenth of its CPU time, and memory the record bounds did not count.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from mega_client.protocol import RemoteProtocolError, Request, RequestDecoder, RequestFields, request_from_fields


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """One application of a fault rule.

    ``rule`` is the rule's text; for a request fault ``request_index`` (1-based,
    counting every request frame of the connection) and ``correlation_id`` name
    the request it hit; both are ``None`` for a ``connect`` fault.
    """

    rule: str
    action: str
    at: float
    request_index: int | None = None
    correlation_id: int | None = None


class Segment(NamedTuple):
    """One chunk of bytes as it crossed the socket: ``direction`` ``"in"`` (received) or ``"out"`` (sent).

    ``at`` is the wall-clock time (``time.time()``) of the read or the write;
    a received segment is one read, a sent one one write.
    """

    at: float
    direction: Literal["in", "out"]
    data: bytes


class ConnectionRecord:
    """The history of one connection, kept by the broker for inspection.

    Always kept: ``id``, ``peer``, ``opened_at``, ``closed_at``,
    ``close_reason``, the counts (``request_count``, ``bytes_received``,
    ``bytes_sent``, ``faults_applied``) and the applied ``faults`` (capped at
    ``requests_limit``). When the broker records (``record=True``):
    ``segments`` (every chunk both ways with its time; each direction capped at
    ``record_bytes_limit`` bytes, then ``received_truncated`` /
    ``sent_truncated`` is set), ``received`` / ``sent`` (those chunks joined) and
    ``requests`` (the request frames in the received bytes kept, decoded by
    ``new_decoder()`` when asked for, at most ``requests_limit`` of them; then
    ``requests_truncated``).
    """

    __slots__ = (
        "_in_kept",
        "_new_decoder",
        "_out_kept",
        "_requests_limit",
        "_segments",
        "bytes_received",
        "bytes_sent",
        "close_reason",
        "closed_at",
        "faults",
        "faults_applied",
        "id",
        "opened_at",
        "peer",
        "received_truncated",
        "request_count",
        "sent_truncated",
    )

    def __init__(
        self,
        conn_id: int,
        peer: tuple[str, int] | None,
        opened_at: float,
        *,
        new_decoder: Callable[[], RequestDecoder] = RequestDecoder,
        requests_limit: int = 100_000,
    ) -> None:
        self.id = conn_id
        self.peer = peer
        self.opened_at = opened_at
        self.closed_at: float | None = None
        self.close_reason: str | None = None
        self.request_count = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.faults_applied = 0
        self.faults: list[AppliedFault] = []
        self.received_truncated = False
        self.sent_truncated = False
        # Made on first use: an idle connection that records nothing costs no list.
        self._segments: list[tuple[float, Literal["in", "out"], bytes]] | None = None
        self._new_decoder = new_decoder
        self._requests_limit = requests_limit
        self._in_kept = 0
        self._out_kept = 0

    # -- written by the broker ------------------------------------------------------------

    def keep_segment(self, at: float, direction: Literal["in", "out"], data: bytes, limit: int) -> None:
        """Keep a chunk (by reference), up to ``limit`` bytes per direction."""
        inbound = direction == "in"
        kept = self._in_kept if inbound else self._out_kept
        if kept + len(data) > limit:
            if inbound:
                self.received_truncated = True
            else:
                self.sent_truncated = True
            if kept >= limit:
                return
            data = data[: limit - kept]
        if inbound:
            self._in_kept = kept + len(data)
        else:
            self._out_kept = kept + len(data)
        if self._segments is None:
            self._segments = []
        # A plain tuple: this runs on every read and write; Segment objects are made when asked for.
        self._segments.append((at, direction, data))

    def add_fault(self, fault: AppliedFault) -> None:
        """Count an application of a fault rule; keep it, up to ``requests_limit`` of them."""
        self.faults_applied += 1
        if len(self.faults) < self._requests_limit:
            self.faults.append(fault)

    @property
    def kept_bytes(self) -> int:
        """Bytes of transcript this record holds (what its memory mostly is)."""
        return self._in_kept + self._out_kept

    # -- read by tests ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self.closed_at is not None

    @property
    def segments(self) -> list[Segment]:
        """Every chunk recorded, both ways, in the order they crossed the socket."""
        return [Segment(*s) for s in self._segments or ()]

    @property
    def received(self) -> bytes:
        """Every raw byte received (up to the record limit)."""
        return b"".join(data for _, direction, data in self._segments or () if direction == "in")

    @property
    def sent(self) -> bytes:
        """Every raw byte sent (up to the record limit)."""
        return b"".join(data for _, direction, data in self._segments or () if direction == "out")

    @property
    def requests(self) -> list[Request]:
        """The request frames received, in order (up to the record limits), decoded now."""
        return [request_from_fields(f) for f in self._decode()[0]]

    @property
    def requests_truncated(self) -> bool:
        """True when :attr:`requests` misses some of the requests received (a record limit)."""
        return self._decode()[1]

    def _decode(self) -> tuple[list[RequestFields], bool]:
        """The well-formed requests in the received bytes kept, and whether some are missing.

        Frames the decoder rejects are no requests (the broker answered them with
        an error); a fatal one ends the stream, as it ended the connection.
        """
        decoder = self._new_decoder()
        decoder.feed(self.received)
        fields: list[RequestFields] = []
        frames = 0
        while True:
            try:
                f = decoder.next_fields()
            except RemoteProtocolError as exc:
                frames += 1
                if exc.fatal:
                    break
                continue
            if f is None:
                break
            frames += 1
            if len(fields) == self._requests_limit:
                return fields, True
            fields.append(f)
        return fields, frames < self.request_count

    def snapshot(self) -> ConnectionRecord:
        """An independent copy (what the threaded broker hands to other threads)."""
        other = copy.copy(self)
        other.faults = list(self.faults)
        other._segments = None if self._segments is None else list(self._segments)
        return other

    def __repr__(self) -> str:
        state = f"closed ({self.close_reason})" if self.closed else "open"
        return (
            f"<ConnectionRecord #{self.id} {self.peer} {state}: {self.request_count} requests, "
            f"{self.bytes_received} B in, {self.bytes_sent} B out, {self.faults_applied} faults>"
        )
