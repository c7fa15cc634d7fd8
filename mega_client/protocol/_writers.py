"""Encoders: frames to bytes, both directions.

Every layout is a precompiled ``struct.Struct``; a value the field cannot hold
(an id outside int32, a topic whose UTF-8 is not encodable, ...) becomes a
:class:`LocalProtocolError`, never a ``struct.error``.
"""

from __future__ import annotations

import struct

from . import layouts
from ._errors import LocalProtocolError
from ._events import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicResponse,
    ErrorResponse,
    ProduceResponse,
    Request,
    ResponseEvent,
    UnsolicitedError,
)
from .limits import UINT16_MAX, UNSOLICITED_CORRELATION_ID

_REQ_HEAD = layouts.REQUEST_HEAD
_REQ_TAIL = layouts.REQUEST_TAIL
_REQ_TAIL_CONSUME = layouts.CONSUME_REQUEST_TAIL
_ERROR = layouts.ERROR_RESPONSE
_CREATE_OK_HEAD = layouts.CREATE_TOPIC_OK_HEAD
_PRODUCE_OK = layouts.PRODUCE_OK
_CONSUME_OK_HEAD = layouts.CONSUME_OK_HEAD


def _utf8(topic: str) -> bytes:
    try:
        return topic.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"topic {topic!r} cannot be encoded as UTF-8") from exc


def encode_request(request: Request) -> bytes:
    """The bytes of ``request``, payload_length included for every type."""
    topic = _utf8(request.topic)
    payload = request.payload
    try:
        head = _REQ_HEAD.pack(request.correlation_id, request.message_type, len(topic))
        if isinstance(request, ConsumeRequest):
            tail = _REQ_TAIL_CONSUME.pack(request.timestamp, request.offset, len(payload))
        else:
            tail = _REQ_TAIL.pack(request.timestamp, len(payload))
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode {request!r}: {exc}") from exc
    return b"".join((head, topic, tail, payload))


def encode_error(correlation_id: int, error_code: int) -> bytes:
    """An error response (6 bytes)."""
    try:
        return _ERROR.pack(correlation_id, 0, error_code)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode error {error_code} for {correlation_id}: {exc}") from exc


def encode_create_topic_ok(correlation_id: int, timestamp: int, topic: str) -> bytes:
    """CREATE_TOPIC success: the echo carries a 2-byte unsigned length."""
    name = _utf8(topic)
    if len(name) > UINT16_MAX:
        raise LocalProtocolError(f"topic echo of {len(name)} bytes does not fit a uint16 length")
    try:
        return _CREATE_OK_HEAD.pack(correlation_id, 1, timestamp, len(name)) + name
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode CREATE_TOPIC response: {exc}") from exc


def encode_produce_ok(correlation_id: int, timestamp: int, offset: int) -> bytes:
    """PRODUCE success (17 bytes)."""
    try:
        return _PRODUCE_OK.pack(correlation_id, 1, timestamp, offset)
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode PRODUCE response: {exc}") from exc


def encode_consume_ok(correlation_id: int, timestamp: int, next_offset: int, payload: bytes) -> bytes:
    """CONSUME success: header then payload."""
    try:
        head = _CONSUME_OK_HEAD.pack(correlation_id, 1, timestamp, next_offset, len(payload))
    except struct.error as exc:
        raise LocalProtocolError(f"cannot encode CONSUME response: {exc}") from exc
    return head + payload


def encode_response(response: ResponseEvent) -> bytes:
    """The bytes of any response frame."""
    if isinstance(response, ProduceResponse):
        return encode_produce_ok(response.correlation_id, response.timestamp, response.offset)
    if isinstance(response, ConsumeResponse):
        return encode_consume_ok(response.correlation_id, response.timestamp, response.next_offset, response.payload)
    if isinstance(response, ErrorResponse):
        return encode_error(response.correlation_id, response.error_code)
    if isinstance(response, CreateTopicResponse):
        return encode_create_topic_ok(response.correlation_id, response.timestamp, response.topic)
    if isinstance(response, UnsolicitedError):
        return encode_error(UNSOLICITED_CORRELATION_ID, response.error_code)
    raise LocalProtocolError(f"not a response frame: {response!r}")
