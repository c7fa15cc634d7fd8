"""What the sync and async clients share: settings, lifecycle, argument checks, requests, answers.

An :class:`Operation` is one call (create_topic, produce or consume) after its
arguments were checked: it builds the request for each attempt's correlation
id, and turns the broker's answer into a result or an exception.
:class:`ClientSettings` holds a client's settings and :class:`ClientState`, and
decides whether a call may start and whether a failed attempt is retried. The
connection's own state is a ``ClientConnection``'s (``mega_client.protocol``);
the clients only add the I/O around both.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from ._results import Consumed, Produced, TopicCreated
from ._retry import RetryPolicy
from .errors import (
    BrokerError,
    ClientStateError,
    InvalidTopicNameError,
    MegaConnectionError,
    MegaProtocolError,
    MegaTimeoutError,
    PayloadTooLargeError,
    ValidationError,
)
from .protocol import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    CreateTopicResponse,
    ErrorResponse,
    MessageType,
    ProduceRequest,
    ProduceResponse,
    Request,
    Response,
)
from .protocol.limits import INT32_MAX, INT32_MIN, MAX_PAYLOAD_BYTES, topic_name_problem

Result = TopicCreated | Produced | Consumed
Delivery = Literal["at-most-once", "at-least-once"]
DELIVERY_MODES: tuple[Delivery, ...] = ("at-most-once", "at-least-once")

log = logging.getLogger("mega_client")


class ClientState(enum.Enum):
    """A client's lifecycle (its connection's is a ClientConnection's ``ConnectionState``)."""

    NEW = "new"  # before connect()
    OPEN = "open"  # between connect() and close(); the connection itself may be down
    CLOSED = "closed"  # after close()


NEW, OPEN, CLOSED = ClientState.NEW, ClientState.OPEN, ClientState.CLOSED


class ClientSettings:
    """What both clients share: their settings (checked once, here), their state, and the
    decisions around it (may a call start, may a failed attempt be retried and after how long).

    The I/O stays in each client: its ``connect`` and its retry loop's sleep.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        request_timeout: float,
        retry: RetryPolicy | None,
        produce_delivery: Delivery,
        first_correlation_id: int = 1,
    ) -> None:
        if produce_delivery not in DELIVERY_MODES:
            raise ValueError(f"produce_delivery must be one of {DELIVERY_MODES}, not {produce_delivery!r}")
        if connect_timeout <= 0 or request_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if not 1 <= first_correlation_id <= INT32_MAX:
            raise ValueError(f"first_correlation_id must be 1..{INT32_MAX}, not {first_correlation_id}")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.produce_delivery: Delivery = produce_delivery
        #: The correlation id of the client's first request (then 2, 3, ..., wrapping to 1).
        self.first_correlation_id = first_correlation_id
        self._state: ClientState = NEW

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is open."""
        raise NotImplementedError

    def _require_open(self) -> None:
        """Raise :class:`ClientStateError` unless the client is between connect() and close()."""
        if self._state is NEW:
            raise ClientStateError("client is not connected: call connect() first")
        if self._state is CLOSED:
            raise ClientStateError("client is closed")

    @contextlib.contextmanager
    def _connecting(self) -> Iterator[None]:
        """connect()'s state change around its tries: open now; if every try fails, back to
        the state before (unless close() ran meanwhile)."""
        if self._state is OPEN and self.connected:
            raise ClientStateError("client is already connected")
        previous, self._state = self._state, OPEN
        try:
            yield
        except BaseException:
            if self._state is OPEN:
                self._state = previous
            raise

    def _retry_delay(
        self,
        exc: MegaConnectionError | MegaTimeoutError,
        operation: Operation | None,
        delays: Iterator[float],
    ) -> float | None:
        """After a failed attempt of ``operation`` (``None``: of connecting): the seconds to wait
        before the next one (logged), or ``None`` when ``exc`` is final. Raises
        :class:`ClientStateError` if the client was closed meanwhile.
        """
        if self._state is CLOSED:
            raise ClientStateError("client was closed during the call") from exc
        if operation is not None and not should_retry(exc, operation, self.produce_delivery):
            return None
        delay = next(delays, None)
        if delay is not None:
            log.info("%s; retrying in %.3fs", exc, delay)
        return delay


def now_ms() -> int:
    """The wall clock in milliseconds since the Unix epoch: every request's timestamp."""
    return time.time_ns() // 1_000_000


def check_topic(topic: object) -> str:
    """``topic`` if it is a valid name; else :class:`InvalidTopicNameError` (or TypeError)."""
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, not {type(topic).__name__}")
    problem = topic_name_problem(topic)
    if problem is not None:
        raise InvalidTopicNameError(problem)
    return topic


def payload_bytes(payload: object) -> bytes:
    """The bytes to send: str encoded as UTF-8, bytes-like as is, at most 1 MiB."""
    if isinstance(payload, str):
        try:
            data = payload.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise ValidationError(f"payload text cannot be encoded as UTF-8: {exc}") from exc
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
    else:
        raise TypeError(f"payload must be str or bytes, not {type(payload).__name__}")
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(f"payload is {len(data)} bytes, over the limit of {MAX_PAYLOAD_BYTES} (1 MiB)")
    return data


def check_offset(offset: object) -> int:
    """``offset`` if it fits the wire's int32 (negative ones are the broker's to refuse)."""
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise TypeError(f"offset must be an int, not {type(offset).__name__}")
    if not INT32_MIN <= offset <= INT32_MAX:
        raise ValidationError(f"offset {offset} does not fit in a signed 32-bit integer")
    return offset


@dataclass(frozen=True, slots=True)
class Operation:
    """One checked call, ready to be sent any number of times.

    ``timestamp`` is taken when the call is made, and every attempt sends it:
    a PRODUCE resent under at-least-once delivery carries its first attempt's
    timestamp, so that a consumer can recognise the duplicate.
    """

    kind: MessageType
    topic: str
    payload: bytes = b""
    offset: int = 0
    timestamp: int = field(default_factory=now_ms)

    @classmethod
    def create_topic(cls, topic: object) -> Operation:
        return cls(MessageType.CREATE_TOPIC, check_topic(topic))

    @classmethod
    def produce(cls, topic: object, payload: object) -> Operation:
        return cls(MessageType.PRODUCE, check_topic(topic), payload=payload_bytes(payload))

    @classmethod
    def consume(cls, topic: object, offset: object) -> Operation:
        return cls(MessageType.CONSUME, check_topic(topic), offset=check_offset(offset))

    @property
    def name(self) -> str:
        return self.kind.name

    def may_resend(self, delivery: Delivery) -> bool:
        """Whether the request may be sent again after it may have reached the broker."""
        return self.kind != MessageType.PRODUCE or delivery == "at-least-once"

    def request(self, correlation_id: int) -> Request:
        """The request frame for one attempt."""
        if self.kind == MessageType.PRODUCE:
            return ProduceRequest(correlation_id, self.topic, self.timestamp, self.payload)
        if self.kind == MessageType.CONSUME:
            return ConsumeRequest(correlation_id, self.topic, self.timestamp, self.offset)
        return CreateTopicRequest(correlation_id, self.topic, self.timestamp)

    def result(self, event: Response) -> Result:
        """The result for the answer ``event``, or raise what it means.

        The codec's :class:`ResponseDecoder` has already matched the answer to
        this request by correlation id and read it with this request's layout
        (and the clients deal with the broker's unsolicited frame before this),
        so ``event`` is an :class:`ErrorResponse` or this request's success answer.
        """
        if isinstance(event, ErrorResponse):
            raise BrokerError.for_code(event.error_code, event.correlation_id)
        if self.kind == MessageType.PRODUCE:
            assert isinstance(event, ProduceResponse)
            return Produced(self.topic, event.offset, event.timestamp, event.correlation_id)
        if self.kind == MessageType.CONSUME:
            assert isinstance(event, ConsumeResponse)
            return Consumed(
                self.topic, self.offset, event.payload, event.next_offset, event.timestamp, event.correlation_id
            )
        assert isinstance(event, CreateTopicResponse)
        if event.topic != self.topic:  # PROTOCOL.md CLIENT-23
            raise MegaProtocolError(
                f"CREATE_TOPIC {self.topic!r} was answered with the topic {event.topic!r}",
                reason="topic-echo-mismatch",
                correlation_id=event.correlation_id,
            )
        return TopicCreated(event.topic, event.timestamp, event.correlation_id)


def should_retry(exc: Exception, operation: Operation, delivery: Delivery) -> bool:
    """Whether a failed attempt of ``operation`` may be tried again (see ``_retry``).

    Only connection failures, and timeouts while connecting, are retried; a
    request that may have reached the broker only when it is safe to repeat.
    """
    request_sent = getattr(exc, "request_sent", True)
    if isinstance(exc, MegaTimeoutError):
        return not request_sent
    if isinstance(exc, MegaConnectionError):
        return not request_sent or operation.may_resend(delivery)
    return False
