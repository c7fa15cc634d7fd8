"""ConnectionRecord: what one connection sent, received and went through."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mega_client.protocol import Request


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


class ConnectionRecord:
    """The history of one connection, kept by the broker for inspection.

    ``requests`` holds the decoded request frames in order, ``received`` and
    ``sent`` every raw byte each way (when the broker records; each direction
    capped at ``record_bytes_limit``, then ``received_truncated`` /
    ``sent_truncated`` is set; ``bytes_received`` / ``bytes_sent`` always
    count everything), ``faults`` the faults applied to it.
    """

    __slots__ = (
        "_received",
        "_sent",
        "bytes_received",
        "bytes_sent",
        "close_reason",
        "closed_at",
        "faults",
        "id",
        "opened_at",
        "peer",
        "received_truncated",
        "request_count",
        "requests",
        "requests_truncated",
        "sent_truncated",
    )

    def __init__(self, conn_id: int, peer: tuple[str, int] | None, opened_at: float) -> None:
        self.id = conn_id
        self.peer = peer
        self.opened_at = opened_at
        self.closed_at: float | None = None
        self.close_reason: str | None = None
        self.requests: list[Request] = []
        self.request_count = 0
        self.requests_truncated = False
        self._received = bytearray()
        self._sent = bytearray()
        self.received_truncated = False
        self.sent_truncated = False
        self.bytes_received = 0
        self.bytes_sent = 0
        self.faults: list[AppliedFault] = []

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self.closed_at is not None

    @property
    def received(self) -> bytes:
        """Every raw byte received (up to the record limit)."""
        return bytes(self._received)

    @property
    def sent(self) -> bytes:
        """Every raw byte sent (up to the record limit)."""
        return bytes(self._sent)

    def snapshot(self) -> ConnectionRecord:
        """An independent copy (what the threaded broker hands to other threads)."""
        other = copy.copy(self)
        other.requests = list(self.requests)
        other.faults = list(self.faults)
        other._received = bytearray(self._received)
        other._sent = bytearray(self._sent)
        return other

    def __repr__(self) -> str:
        state = f"closed ({self.close_reason})" if self.closed else "open"
        return (
            f"<ConnectionRecord #{self.id} {self.peer} {state}: {self.request_count} requests, "
            f"{self.bytes_received} B in, {self.bytes_sent} B out, {len(self.faults)} faults>"
        )
