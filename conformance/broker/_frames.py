"""Raw frames for the broker cases: the requests sent, and the exact responses expected.

Requests that are well-formed frames are built with the codec's
``encode_request`` (``mega_client.protocol``); malformed ones, and frames the
codec cannot express (a topic that is not UTF-8), are written out by hand with
:func:`raw_request`.

Expected responses are never produced by the kit's encoders: each helper below
spells out one layout of docs/PROTOCOL.md section 4.1 field by field
(``cid.to_bytes(4, "big", signed=True) + b"\\x00" + code``...), so a broker is
judged against the spec's layouts, not against our own encoder's output. Each
:class:`Expected` carries its field map, so a mismatch is reported as "bytes
13..16 (offset) are 00 00 00 01, expected 00 00 00 02" rather than as two hex
blobs.
"""

from __future__ import annotations

from dataclasses import dataclass

# The protocol's numbers and limits live in one place (mega_client.protocol, through the
# client judge's conformance._wire); the response layouts below are spelled out here, field by
# field, on purpose.
from conformance._wire import CONSUME, hexline, pack_i32, pack_i64, pack_u16, read_i32
from mega_client.protocol import (
    ConsumeRequest,
    CreateTopicRequest,
    ErrorCode,
    ProduceRequest,
    code_name,
    encode_request,
)

INVALID_REQUEST = int(ErrorCode.INVALID_REQUEST)
INVALID_MESSAGE_TYPE = int(ErrorCode.INVALID_MESSAGE_TYPE)
MESSAGE_TOO_LARGE = int(ErrorCode.MESSAGE_TOO_LARGE)
TOPIC_NOT_FOUND = int(ErrorCode.TOPIC_NOT_FOUND)
TOPIC_ALREADY_EXISTS = int(ErrorCode.TOPIC_ALREADY_EXISTS)
INVALID_OFFSET = int(ErrorCode.INVALID_OFFSET)
INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
NETWORK_ERROR = int(ErrorCode.NETWORK_ERROR)
RESOURCE_EXHAUSTED = int(ErrorCode.RESOURCE_EXHAUSTED)


# -- requests ---------------------------------------------------------------------------


def create_topic(cid: int, topic: str, timestamp: int, payload: bytes = b"") -> bytes:
    """A CREATE_TOPIC request (the codec's encoder: a well-formed frame)."""
    return encode_request(CreateTopicRequest(cid, topic, timestamp, payload))


def produce(cid: int, topic: str, payload: bytes, timestamp: int) -> bytes:
    """A PRODUCE request (the codec's encoder: a well-formed frame)."""
    return encode_request(ProduceRequest(cid, topic, timestamp, payload))


def consume(cid: int, topic: str, offset: int, timestamp: int = 0, payload: bytes = b"") -> bytes:
    """A CONSUME request (the codec's encoder: a well-formed frame)."""
    return encode_request(ConsumeRequest(cid, topic, timestamp, offset, payload))


def raw_request(  # noqa: PLR0913 - every field of a request, any of them forced to lie
    cid: int,
    message_type: int,
    topic: bytes = b"",
    timestamp: int = 0,
    *,
    offset: int | None = None,
    payload: bytes = b"",
    topic_length: int | None = None,
    payload_length: int | None = None,
) -> bytes:
    """Any request, by hand, from the layout of section 3.1; lengths may lie.

    ``offset`` is written (after the timestamp) when given or when
    ``message_type`` is CONSUME (then 0 by default).
    """
    tlen = len(topic) if topic_length is None else topic_length
    plen = len(payload) if payload_length is None else payload_length
    out = pack_i32(cid) + bytes([message_type]) + pack_i32(tlen) + topic + pack_i64(timestamp)
    if offset is not None or message_type == CONSUME:
        out += pack_i32(offset or 0)
    return out + pack_i32(plen) + payload


def header_until_payload_length(cid: int, message_type: int, topic: bytes, payload_length: int) -> bytes:
    """A request up to and including its ``payload_length`` field, without the payload."""
    return raw_request(cid, message_type, topic, 0, payload_length=payload_length)


# -- expected responses -----------------------------------------------------------------


Field = tuple[str, int, int]  # name, start, length (length -1: to the end)


@dataclass(frozen=True)
class Expected:
    """One response frame as the spec lays it out: exact bytes, a label, a field map."""

    data: bytes
    label: str
    fields: tuple[Field, ...]

    def __len__(self) -> int:
        return len(self.data)

    def field_at(self, index: int) -> str:
        for name, start, length in self.fields:
            if start <= index and (length < 0 or index < start + length):
                if length == 1:
                    return f"byte {start} ({name})"
                return f"bytes {start}..{start + length - 1} ({name})" if length > 0 else f"bytes {start}.. ({name})"
        return f"byte {index}"


_ERROR_FIELDS: tuple[Field, ...] = (("correlation_id", 0, 4), ("success", 4, 1), ("error_code", 5, 1))


def error(cid: int, code: int) -> Expected:
    """Error response (RESP-3), 6 bytes: correlation_id i32 | success 0 | error_code i8."""
    data = pack_i32(cid) + b"\x00" + code.to_bytes(1, "big", signed=True)
    return Expected(data, f"error response {code_name(code)} ({code}) for correlation id {cid}", _ERROR_FIELDS)


#: The unsolicited frame (RESP-7): correlation id 0, success 0, NETWORK_ERROR.
UNSOLICITED = Expected(bytes.fromhex("000000000008"), "the unsolicited frame 00 00 00 00 00 08 (RESP-7)", _ERROR_FIELDS)


def create_ok(cid: int, timestamp: int, topic: bytes | str) -> Expected:
    """CREATE_TOPIC success (RESP-4), 15 + n bytes: cid | 1 | timestamp i64 | topic_len u16 | topic."""
    name = topic.encode("utf-8") if isinstance(topic, str) else topic
    data = pack_i32(cid) + b"\x01" + pack_i64(timestamp) + pack_u16(len(name)) + name
    fields: tuple[Field, ...] = (
        ("correlation_id", 0, 4),
        ("success", 4, 1),
        ("timestamp, echoed", 5, 8),
        ("topic_len, u16", 13, 2),
        ("topic", 15, -1),
    )
    shown = name if len(name) <= 40 else name[:37] + b"..."
    return Expected(data, f"CREATE_TOPIC success for correlation id {cid} echoing {shown!r}", fields)


def produce_ok(cid: int, timestamp: int, offset: int) -> Expected:
    """PRODUCE success (RESP-5), 17 bytes: cid | 1 | timestamp i64 | offset i32."""
    data = pack_i32(cid) + b"\x01" + pack_i64(timestamp) + pack_i32(offset)
    fields: tuple[Field, ...] = (
        ("correlation_id", 0, 4),
        ("success", 4, 1),
        ("timestamp, echoed", 5, 8),
        ("offset", 13, 4),
    )
    return Expected(data, f"PRODUCE success for correlation id {cid} at offset {offset}", fields)


def consume_ok(cid: int, timestamp: int, next_offset: int, payload: bytes) -> Expected:
    """CONSUME success (RESP-6), 21 + p bytes.

    cid | 1 | timestamp i64 | next_offset i32 | payload_length i32 | payload.
    """
    data = pack_i32(cid) + b"\x01" + pack_i64(timestamp) + pack_i32(next_offset) + pack_i32(len(payload)) + payload
    fields: tuple[Field, ...] = (
        ("correlation_id", 0, 4),
        ("success", 4, 1),
        ("timestamp, as produced", 5, 8),
        ("next_offset", 13, 4),
        ("payload_length", 17, 4),
        ("payload", 21, -1),
    )
    return Expected(
        data,
        f"CONSUME success for correlation id {cid}, next_offset {next_offset}, {len(payload)}-byte payload",
        fields,
    )


def describe_response(data: bytes) -> str:
    """A best guess at what ``data`` (the start of what the broker sent) is, for failure messages."""
    if len(data) < 5:
        return f"{len(data)} bytes: {hexline(data)}"
    cid = read_i32(data, 0)
    flag = data[4]
    if flag == 0 and len(data) >= 6:
        code = int.from_bytes(data[5:6], "big", signed=True)
        if cid == 0 and code == NETWORK_ERROR:
            return "the unsolicited frame 00 00 00 00 00 08"
        return f"an error response {code_name(code)} ({code}) with correlation id {cid}"
    if flag == 1:
        return f"a success response with correlation id {cid}: {hexline(data)}"
    return f"a frame with correlation id {cid} and success byte {flag} (not 0 or 1): {hexline(data)}"


def explain(got: bytes, expected: Expected) -> str | None:
    """Why ``got`` is not ``expected`` (None when it is): the first differing field, named."""
    want = expected.data
    if got == want:
        return None
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            where = expected.field_at(i)
            return f"at {where}: got {hexline(got[i : i + 8], 8)}, expected {hexline(want[i : i + 8], 8)}"
    if len(got) < len(want):
        return f"only {len(got)} of its {len(want)} bytes arrived"
    return f"{len(got) - len(want)} extra bytes"
