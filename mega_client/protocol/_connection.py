"""A client's side of one MEGA connection, without I/O: h11's ``Connection``, for MEGA.

::

    conn = ClientConnection()
    request = ProduceRequest(conn.next_correlation_id, "orders", timestamp, b"...")
    sock.sendall(conn.send(request))       # the bytes; the request is now pending
    while (event := conn.next_event()) is None:
        conn.receive_data(sock.recv(65536))  # b"" once the broker has closed
    # event: Answer(request, response), or how the connection ended

It numbers the requests (correlation ids 1, 2, ... wrapping back to 1 after
2**31 - 1, never 0: CLIENT-4, CLIENT-5), keeps those sent and not yet answered
in order, and pairs each answer with its request (CONN-5, CLIENT-6). The
caller moves the bytes and decides when to wait; nothing here blocks, reads a
clock or touches a socket.

States (:class:`ConnectionState`)::

    IDLE    --send()------------------------------------> WAITING
    WAITING --next_event(): the last pending Answer------> IDLE
    IDLE, WAITING --next_event(): UnsolicitedFrame, or
                    EndOfStream (after receive_data(b"")),
                    or close() -------------------------> CLOSED
    IDLE, WAITING --next_event(): ProtocolViolation-----> BROKEN

Each way of ending lists the requests left unanswered: on the event, or as what
:meth:`ClientConnection.close` returns. What they mean for the caller is the
caller's to say (CONN-14: their outcome is unknown); in CLOSED and BROKEN
nothing more is sent and no event comes.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import Request, Response, UnsolicitedError
from ._readers import read_response
from ._receivebuffer import ReceiveBuffer
from ._writers import encode_request
from .limits import INT32_MAX, MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES


class ConnectionState(enum.Enum):
    """Where a :class:`ClientConnection` is (the module docstring has the transitions)."""

    #: Open; no request waits for its answer.
    IDLE = "idle"
    #: Open; at least one request waits for its answer.
    WAITING = "waiting"
    #: Ended in order: the broker closed (EOF or its unsolicited frame), or :meth:`~ClientConnection.close`.
    CLOSED = "closed"
    #: The broker's bytes broke the protocol; the stream cannot be trusted (CLIENT-10).
    BROKEN = "broken"


_OPEN = (ConnectionState.IDLE, ConnectionState.WAITING)


@dataclass(frozen=True, slots=True)
class Answer:
    """The broker's answer to ``request``: an ``ErrorResponse`` or the request type's success."""

    request: Request
    response: Response


@dataclass(frozen=True, slots=True)
class UnsolicitedFrame:
    """The broker's unsolicited error frame (correlation id 0): it is closing (CONN-9)."""

    error_code: int
    unanswered: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The broker's byte stream ended (``receive_data(b"")``) with ``unanswered`` requests.

    ``partial_bytes`` is how much of the next answer had arrived: more than 0
    when the stream ended mid-response (CLIENT-14).
    """

    unanswered: tuple[Request, ...]
    partial_bytes: int


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The broker's bytes break docs/PROTOCOL.md: ``error`` says how (CLIENT-10)."""

    error: RemoteProtocolError
    unanswered: tuple[Request, ...]


ConnectionEvent = Answer | UnsolicitedFrame | EndOfStream | ProtocolViolation


class ClientConnection:
    """The client's side of one connection: requests out, answers paired with them in.

    ``first_correlation_id`` lets a client that reconnects go on numbering
    where its last connection stopped. The limits bound the lengths accepted
    in answers (CLIENT-8, CLIENT-12).
    """

    def __init__(
        self,
        *,
        first_correlation_id: int = 1,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_topic_bytes: int = MAX_TOPIC_BYTES,
    ) -> None:
        if not 1 <= first_correlation_id <= INT32_MAX:
            raise ValueError(f"first_correlation_id must be 1..{INT32_MAX}, not {first_correlation_id}")
        self.max_payload_bytes = max_payload_bytes
        self.max_topic_bytes = max_topic_bytes
        self._next_cid = first_correlation_id
        self._pending: deque[Request] = deque()
        self._buf = ReceiveBuffer()
        self._eof = False
        self._state = ConnectionState.IDLE

    def __repr__(self) -> str:
        return f"<ClientConnection {self._state.name} pending={len(self._pending)} buffered={len(self._buf)}>"

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def next_correlation_id(self) -> int:
        """The correlation id the next request sent must carry."""
        return self._next_cid

    @property
    def pending(self) -> int:
        """How many requests were sent and are not answered yet."""
        return len(self._pending)

    @property
    def oldest_pending(self) -> Request | None:
        """The request the next answer must be for (CONN-5), if any."""
        return self._pending[0] if self._pending else None

    @property
    def buffered(self) -> int:
        """Bytes received that do not make a whole frame yet."""
        return len(self._buf)

    def send(self, request: Request) -> bytes:
        """The bytes of ``request``, now recorded as pending: write them all, in order.

        ``request.correlation_id`` must be :attr:`next_correlation_id`. Raises
        :class:`LocalProtocolError` (and records nothing) for another id, for a
        request the wire cannot carry, and once the connection has ended or the
        broker has closed its side.
        """
        if self._state not in _OPEN or self._eof:
            raise LocalProtocolError("cannot send: the connection has ended")
        cid = request.correlation_id
        if cid != self._next_cid:
            raise LocalProtocolError(f"request carries correlation id {cid}; the next one here is {self._next_cid}")
        data = encode_request(request)
        self._pending.append(request)
        # Ids are handed out in order, so the next one can only meet a pending one after
        # 2**31 - 1 requests in flight: no lookup needed to keep them unique (CLIENT-4).
        self._next_cid = 1 if cid >= INT32_MAX else cid + 1
        self._state = ConnectionState.WAITING
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the broker; ``b""`` means it closed (EOF).

        Call :meth:`next_event` until it returns ``None``. Bytes after EOF, or
        once the connection has ended, are ignored.
        """
        if self._eof or self._state not in _OPEN:
            return
        if data:
            self._buf.extend(data)
        else:
            self._eof = True

    def next_event(self) -> ConnectionEvent | None:
        """The next answer, or how the connection ended; ``None`` until more bytes arrive."""
        if self._state not in _OPEN:
            return None
        pending = self._pending
        oldest = pending[0] if pending else None
        try:
            if oldest is None:
                event = read_response(self._buf, None, 0, self)
            else:
                event = read_response(self._buf, oldest.message_type, oldest.correlation_id, self)
        except RemoteProtocolError as exc:
            self._buf.clear()
            self._state = ConnectionState.BROKEN
            return ProtocolViolation(exc, self._take_pending())
        if event is None:
            if not self._eof:
                return None
            partial = self._buf.clear()
            self._state = ConnectionState.CLOSED
            return EndOfStream(self._take_pending(), partial)
        if isinstance(event, UnsolicitedError):
            self._buf.clear()
            self._state = ConnectionState.CLOSED
            return UnsolicitedFrame(event.error_code, self._take_pending())
        request = pending.popleft()
        if not pending:
            self._state = ConnectionState.IDLE
        return Answer(request, event)

    def close(self) -> tuple[Request, ...]:
        """End the connection from this side (a timeout, a failed write, the caller's close).

        Returns the requests left unanswered, oldest first. Idempotent.
        """
        if self._state in _OPEN:
            self._state = ConnectionState.CLOSED
        self._buf.clear()
        return self._take_pending()

    def _take_pending(self) -> tuple[Request, ...]:
        unanswered = tuple(self._pending)
        self._pending.clear()
        return unanswered
