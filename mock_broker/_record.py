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


class _Transcript:
    """The bytes of one connection both ways, as kept (made on the first chunk kept)."""

    __slots__ = ("in_kept", "out_kept", "received_truncated", "segments", "sent_truncated")

    def __init__(self) -> None:
        # Plain tuples: one is made on every read and write; Segment objects when asked for.
        self.segments: list[tuple[float, Literal["in", "out"], bytes]] = []
        self.in_kept = 0
        self.out_kept = 0
        self.received_truncated = False
        self.sent_truncated = False


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

    # What only some connections need (a transcript, applied faults) is made on first use:
    # the broker keeps a record per connection, idle ones included.
    __slots__ = (
        "_faults",
        "_new_decoder",
        "_requests_limit",
        "_transcript",
        "bytes_received",
        "bytes_sent",
        "close_reason",
        "closed_at",
        "faults_applied",
        "id",
        "opened_at",
        "peer",
        "request_count",
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
        self._faults: list[AppliedFault] | None = None
        self._transcript: _Transcript | None = None
        self._new_decoder = new_decoder
        self._requests_limit = requests_limit

    # -- written by the broker ------------------------------------------------------------

    def keep_segment(self, at: float, direction: Literal["in", "out"], data: bytes, limit: int) -> None:
        """Keep a chunk (by reference), up to ``limit`` bytes per direction."""
        t = self._transcript
        if t is None:
            t = self._transcript = _Transcript()
        inbound = direction == "in"
        kept = t.in_kept if inbound else t.out_kept
        if kept + len(data) > limit:
            if inbound:
                t.received_truncated = True
            else:
                t.sent_truncated = True
            if kept >= limit:
                return
            data = data[: limit - kept]
        if inbound:
            t.in_kept = kept + len(data)
        else:
            t.out_kept = kept + len(data)
        t.segments.append((at, direction, data))

    def add_fault(self, fault: AppliedFault) -> None:
        """Count an application of a fault rule; keep it, up to ``requests_limit`` of them."""
        self.faults_applied += 1
        if self._faults is None:
            self._faults = []
        if len(self._faults) < self._requests_limit:
            self._faults.append(fault)

    @property
    def kept_bytes(self) -> int:
        """Bytes of transcript this record holds (what its memory mostly is)."""
        t = self._transcript
        return 0 if t is None else t.in_kept + t.out_kept

    # -- read by tests ---------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self.closed_at is not None

    @property
    def faults(self) -> list[AppliedFault]:
        """The applied faults, in order (up to the record limit); see :meth:`add_fault`."""
        return self._faults if self._faults is not None else []

    @property
    def received_truncated(self) -> bool:
        """True when bytes were received past the record limit (not kept)."""
        return self._transcript is not None and self._transcript.received_truncated

    @property
    def sent_truncated(self) -> bool:
        """True when bytes were sent past the record limit (not kept)."""
        return self._transcript is not None and self._transcript.sent_truncated

    @property
    def segments(self) -> list[Segment]:
        """Every chunk recorded, both ways, in the order they crossed the socket."""
        return [Segment(*s) for s in self._segments()]

    @property
    def received(self) -> bytes:
        """Every raw byte received (up to the record limit)."""
        return b"".join(data for _, direction, data in self._segments() if direction == "in")

    @property
    def sent(self) -> bytes:
        """Every raw byte sent (up to the record limit)."""
        return b"".join(data for _, direction, data in self._segments() if direction == "out")

    def _segments(self) -> list[tuple[float, Literal["in", "out"], bytes]]:
        return [] if self._transcript is None else self._transcript.segments

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
        other._faults = None if self._faults is None else list(self._faults)
        if self._transcript is not None:
            other._transcript = copy.copy(self._transcript)
            other._transcript.segments = list(self._transcript.segments)
        return other

    def __repr__(self) -> str:
        state = f"closed ({self.close_reason})" if self.closed else "open"
        return (
            f"<ConnectionRecord #{self.id} {self.peer} {state}: {self.request_count} requests, "
            f"{self.bytes_received} B in, {self.bytes_sent} B out, {self.faults_applied} faults>"
        )
