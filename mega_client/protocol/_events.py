"""Frames as small frozen dataclasses: three requests, four responses, one notice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ._codes import MessageType


@dataclass(frozen=True, slots=True)
class CreateTopicRequest:
    """CREATE_TOPIC. A payload is legal on the wire and ignored by brokers."""

    correlation_id: int
    topic: str
    timestamp: int
    payload: bytes = b""
    message_type: ClassVar[MessageType] = MessageType.CREATE_TOPIC


@dataclass(frozen=True, slots=True)
class ProduceRequest:
    """PRODUCE: append ``payload`` to ``topic``."""

    correlation_id: int
    topic: str
    timestamp: int
    payload: bytes
    message_type: ClassVar[MessageType] = MessageType.PRODUCE


@dataclass(frozen=True, slots=True)
class ConsumeRequest:
    """CONSUME: read the message at ``offset``. A payload is legal and ignored."""

    correlation_id: int
    topic: str
    timestamp: int
    offset: int
    payload: bytes = b""
    message_type: ClassVar[MessageType] = MessageType.CONSUME


Request = CreateTopicRequest | ProduceRequest | ConsumeRequest

#: A request as plain fields, for hot loops (:meth:`RequestDecoder.next_fields`):
#: ``(message_type, correlation_id, topic, timestamp, offset, payload)``; offset is 0 unless CONSUME.
RequestFields = tuple[int, int, str, int, int, bytes]


def request_from_fields(fields: RequestFields) -> Request:
    """The frame object for a request given as plain fields."""
    mtype, cid, topic, timestamp, offset, payload = fields
    if mtype == MessageType.PRODUCE:
        return ProduceRequest(cid, topic, timestamp, payload)
    if mtype == MessageType.CONSUME:
        return ConsumeRequest(cid, topic, timestamp, offset, payload)
    return CreateTopicRequest(cid, topic, timestamp, payload)


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """``success = 0``: the request failed with ``error_code``.

    ``error_code`` is an :class:`~mega_client.protocol.ErrorCode` member when
    the code is known, else the raw int.
    """

    correlation_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class CreateTopicResponse:
    """CREATE_TOPIC succeeded; ``timestamp`` is the request's, echoed."""

    correlation_id: int
    timestamp: int
    topic: str


@dataclass(frozen=True, slots=True)
class ProduceResponse:
    """PRODUCE succeeded; the message was stored at ``offset``."""

    correlation_id: int
    timestamp: int
    offset: int


@dataclass(frozen=True, slots=True)
class ConsumeResponse:
    """CONSUME succeeded; ``timestamp`` is the one the message was produced with."""

    correlation_id: int
    timestamp: int
    next_offset: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class UnsolicitedError:
    """An error frame with correlation id 0 that answers no request.

    The broker sends it (with NETWORK_ERROR) before closing an idle connection.
    """

    error_code: int


Response = ErrorResponse | CreateTopicResponse | ProduceResponse | ConsumeResponse
ResponseEvent = Response | UnsolicitedError
