"""Reading a connection field by field, straight from docs/PROTOCOL.md sections 3.1 and 4.1.

The judge does not trust the code under test, and it does not lean on the
kit's own encoders either: it cuts the raw byte stream the broker received
into requests with the layouts written out below, by hand, so a case can
check each field at its offset (``topic_length`` is bytes 5..8, big-endian,
and so on), and the reports cut both directions into frames the same way to
label every field (:func:`request_fields`, :func:`split_responses`,
:func:`response_fields`). Nothing here builds expected bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mega_client.protocol import ErrorCode, MessageType
from mega_client.protocol.limits import MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES

# The numbers are the protocol's, kept in one place; the layouts below are this judge's own.
PRODUCE = int(MessageType.PRODUCE)
CONSUME = int(MessageType.CONSUME)
CREATE_TOPIC = int(MessageType.CREATE_TOPIC)
TYPE_NAMES = {int(t): t.name for t in MessageType}
CODE_NAMES = {int(c): c.name for c in ErrorCode}
NETWORK_ERROR = int(ErrorCode.NETWORK_ERROR)

MAX_PAYLOAD = MAX_PAYLOAD_BYTES
MAX_TOPIC = MAX_TOPIC_BYTES


def read_i32(data: bytes, at: int) -> int:
    """The big-endian signed 32-bit integer at ``at``."""
    return int.from_bytes(data[at : at + 4], "big", signed=True)


def read_i64(data: bytes, at: int) -> int:
    """The big-endian signed 64-bit integer at ``at``."""
    return int.from_bytes(data[at : at + 8], "big", signed=True)


def pack_i32(value: int) -> bytes:
    """``value`` as the spec's i32: 4 bytes, big-endian, two's complement."""
    return value.to_bytes(4, "big", signed=True)


def pack_i64(value: int) -> bytes:
    """``value`` as the spec's i64: 8 bytes, big-endian, two's complement."""
    return value.to_bytes(8, "big", signed=True)


def pack_u16(value: int) -> bytes:
    """``value`` as the u16 of the CREATE_TOPIC echo: 2 bytes, big-endian, unsigned."""
    return value.to_bytes(2, "big", signed=False)


@dataclass(frozen=True)
class WireRequest:
    """One request as it sat in the stream: ``raw`` is its exact bytes, ``start`` its position."""

    start: int
    raw: bytes
    correlation_id: int
    message_type: int
    topic_length: int
    topic: bytes
    timestamp: int
    offset: int | None
    payload_length: int
    payload: bytes

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.message_type, f"type 0x{self.message_type:02x}")

    @property
    def size(self) -> int:
        """The frame's length on the wire, as its fields declare it."""
        return 21 + self.topic_length + self.payload_length + (4 if self.message_type == CONSUME else 0)

    @property
    def complete(self) -> bool:
        """False for the last request of a ``cut`` split, whose payload goes past the bytes kept."""
        return len(self.raw) == self.size


@dataclass(frozen=True)
class Split:
    """A received stream cut into requests; ``rest`` is what could not be cut (and why)."""

    requests: tuple[WireRequest, ...]
    rest: bytes
    problem: str | None

    def of_type(self, message_type: int) -> list[WireRequest]:
        return [r for r in self.requests if r.message_type == message_type]


def split_requests(data: bytes, *, cut: bool = False) -> Split:
    """Cut ``data`` (everything one connection sent) into requests.

    Stops at the first bytes that do not make a well-formed request (unknown
    type, a length out of range) or at an incomplete tail; ``problem`` says which.
    With ``cut`` (``data`` is only the first bytes of the stream, for a report), a last
    request whose header is whole but whose payload goes past the end is kept, with the
    payload bytes there are (:attr:`WireRequest.complete` is false).
    """
    requests: list[WireRequest] = []
    pos = 0
    n = len(data)
    while pos < n:
        if n - pos < 9:
            return Split(tuple(requests), data[pos:], f"{n - pos} trailing bytes, too few for a request header")
        cid = read_i32(data, pos)
        mtype = data[pos + 4]
        tlen = read_i32(data, pos + 5)
        if mtype not in TYPE_NAMES:
            return Split(tuple(requests), data[pos:], f"byte {pos + 4} is message_type 0x{mtype:02x}, not 1, 2 or 3")
        if not 0 <= tlen <= MAX_TOPIC:
            return Split(tuple(requests), data[pos:], f"bytes {pos + 5}..{pos + 8} give topic_length {tlen}")
        tail = 16 if mtype == CONSUME else 12
        head = 9 + tlen + tail
        if n - pos < head:
            return Split(tuple(requests), data[pos:], f"{n - pos} trailing bytes, an incomplete request")
        ts = read_i64(data, pos + 9 + tlen)
        offset = read_i32(data, pos + 17 + tlen) if mtype == CONSUME else None
        plen = read_i32(data, pos + head - 4)
        if not 0 <= plen <= MAX_PAYLOAD:
            return Split(tuple(requests), data[pos:], f"payload_length {plen} at byte {pos + head - 4}")
        if n - pos < head + plen and not cut:
            return Split(
                tuple(requests), data[pos:], f"{n - pos} trailing bytes, a request announcing {plen} payload bytes"
            )
        raw = data[pos : pos + head + plen]
        requests.append(
            WireRequest(
                start=pos,
                raw=raw,
                correlation_id=cid,
                message_type=mtype,
                topic_length=tlen,
                topic=raw[9 : 9 + tlen],
                timestamp=ts,
                offset=offset,
                payload_length=plen,
                payload=raw[head:],
            )
        )
        pos += head + plen
    return Split(tuple(requests), b"", None)


#: A field of a frame: its name and its bytes' range within the frame (start inclusive, end exclusive).
FieldSpan = tuple[str, int, int]


def request_fields(r: WireRequest) -> list[FieldSpan]:
    """The fields of a request, in order, as the layouts of section 3.1 place them."""
    n = r.topic_length
    fields: list[FieldSpan] = [
        ("correlation_id", 0, 4),
        ("message_type", 4, 5),
        ("topic_length", 5, 9),
        ("topic", 9, 9 + n),
        ("timestamp", 9 + n, 17 + n),
    ]
    at = 17 + n
    if r.message_type == CONSUME:
        fields.append(("offset", at, at + 4))
        at += 4
    fields.append(("payload_length", at, at + 4))
    fields.append(("payload", at + 4, at + 4 + r.payload_length))
    return fields


@dataclass(frozen=True)
class WireResponse:
    """One response as it sat in the stream.

    ``answers`` is the index (from 0) of the request it answers, taken in order (RESP-2,
    CONN-4); ``None`` for the unsolicited frame (RESP-7) and for an error response that
    arrived while no request was pending. The other fields are ``None`` where its layout has
    none: ``length`` is the CREATE_TOPIC echo's ``topic_len`` or the CONSUME ``payload_length``,
    ``body`` the echoed topic or the payload.
    """

    start: int
    raw: bytes
    correlation_id: int
    success: int
    answers: int | None
    request_type: int | None
    error_code: int | None = None
    timestamp: int | None = None
    offset: int | None = None
    next_offset: int | None = None
    length: int | None = None
    body: bytes | None = None

    @property
    def unsolicited(self) -> bool:
        return self.success == 0 and self.correlation_id == 0 and self.error_code == NETWORK_ERROR

    @property
    def complete(self) -> bool:
        """False for the last response of a ``cut`` split, whose topic or payload goes past the bytes kept."""
        return self.body is None or len(self.body) == self.length

    @property
    def size(self) -> int:
        """The frame's length on the wire, as its fields declare it."""
        if self.success == 0:
            return 6
        if self.request_type == PRODUCE:
            return 17
        return (15 if self.request_type == CREATE_TOPIC else 21) + (self.length or 0)

    @property
    def kind(self) -> str:
        """What the frame is: ``unsolicited frame``, ``error response``, ``PRODUCE success``..."""
        if self.unsolicited:
            return "unsolicited frame"
        if self.success == 0:
            return "error response"
        return f"{TYPE_NAMES.get(self.request_type or 0, '?')} success"


@dataclass(frozen=True)
class ResponseSplit:
    """A sent stream cut into responses; ``rest`` is what could not be cut (and why)."""

    responses: tuple[WireResponse, ...]
    rest: bytes
    problem: str | None


def split_responses(data: bytes, request_types: Sequence[int], *, cut: bool = False) -> ResponseSplit:
    """Cut ``data`` (everything a broker sent on one connection) into responses.

    A response has no type field: its layout follows from the message type of the oldest
    request not yet answered (``request_types``, in the order the requests were sent) and
    from its ``success`` byte. Stops at a ``success`` byte that is neither 0 nor 1, at a
    success response with no request pending, at a length out of range or at an incomplete
    tail; ``problem`` says which. ``cut`` is as for :func:`split_requests`.
    """
    out: list[WireResponse] = []
    pos = 0
    pending = 0
    while pos < len(data):
        rtype = request_types[pending] if pending < len(request_types) else None
        try:
            response = _read_response(data, pos, rtype, pending, cut)
        except _NotAResponse as exc:
            return ResponseSplit(tuple(out), data[pos:], str(exc))
        out.append(response)
        pending += response.answers is not None
        pos += response.size
    return ResponseSplit(tuple(out), b"", None)


class _NotAResponse(Exception):
    """The bytes at a position cannot be read as a response; the message says why. It ends the split."""


def _read_response(data: bytes, pos: int, rtype: int | None, pending: int, cut: bool) -> WireResponse:
    """The response at ``pos``; ``rtype`` is the type of the oldest pending request (its index ``pending``)."""
    left = len(data) - pos
    if left < 5:
        raise _NotAResponse(f"{left} trailing bytes, too few for a response header")
    cid = read_i32(data, pos)
    success = data[pos + 4]
    if success == 0:
        if left < 6:
            raise _NotAResponse("5 trailing bytes, an incomplete error response")
        code = data[pos + 5]
        # The unsolicited frame (RESP-7) answers no request, even while one is pending.
        unsolicited = cid == 0 and code == NETWORK_ERROR
        answers = None if unsolicited or rtype is None else pending
        return WireResponse(pos, data[pos : pos + 6], cid, 0, answers, rtype, error_code=code)
    if success != 1:
        raise _NotAResponse(f"byte {pos + 4} is success 0x{success:02x}, neither 0 nor 1")
    if rtype is None:
        raise _NotAResponse(f"a success response at byte {pos} while no request is pending")
    return _read_success(data, pos, rtype, pending, cut)


def _read_success(data: bytes, pos: int, rtype: int, pending: int, cut: bool) -> WireResponse:
    """The success response at ``pos`` to request ``pending``, of type ``rtype``, laid out as section 4.1 says."""
    name = TYPE_NAMES[rtype]
    size = _success_size(data, pos, rtype)
    left = len(data) - pos
    # With ``cut``, a topic or payload may go past the bytes kept; a PRODUCE success has neither.
    if left < size and not (cut and rtype != PRODUCE):
        raise _NotAResponse(f"{left} trailing bytes, an incomplete {name} success of {size} bytes")
    raw = data[pos : pos + size]
    cid = read_i32(raw, 0)
    ts = read_i64(raw, 5)
    if rtype == PRODUCE:
        return WireResponse(pos, raw, cid, 1, pending, rtype, timestamp=ts, offset=read_i32(raw, 13))
    if rtype == CREATE_TOPIC:
        return WireResponse(pos, raw, cid, 1, pending, rtype, timestamp=ts, length=size - 15, body=raw[15:])
    return WireResponse(
        pos,
        raw,
        cid,
        1,
        pending,
        rtype,
        timestamp=ts,
        next_offset=read_i32(raw, 13),
        length=size - 21,
        body=raw[21:],
    )


def _success_size(data: bytes, pos: int, rtype: int) -> int:
    """The length of the success response of type ``rtype`` at ``pos``, from its length field where it has one."""
    left = len(data) - pos
    if rtype == PRODUCE:
        return 17
    if rtype == CREATE_TOPIC:
        if left < 15:
            raise _NotAResponse(f"{left} trailing bytes, an incomplete {TYPE_NAMES[rtype]} success")
        return 15 + int.from_bytes(data[pos + 13 : pos + 15], "big")
    if left < 21:
        raise _NotAResponse(f"{left} trailing bytes, an incomplete {TYPE_NAMES[rtype]} success")
    plen = read_i32(data, pos + 17)
    if not 0 <= plen <= MAX_PAYLOAD:
        raise _NotAResponse(f"payload_length {plen} at byte {pos + 17}")
    return 21 + plen


def response_fields(r: WireResponse) -> list[FieldSpan]:
    """The fields of a response, in order, as the layouts of section 4.1 place them."""
    fields: list[FieldSpan] = [("correlation_id", 0, 4), ("success", 4, 5)]
    if r.success == 0:
        fields.append(("error_code", 5, 6))
        return fields
    fields.append(("timestamp", 5, 13))
    if r.request_type == PRODUCE:
        fields.append(("offset", 13, 17))
    elif r.request_type == CREATE_TOPIC:
        fields += [("topic_len", 13, 15), ("topic", 15, r.size)]
    else:
        fields += [("next_offset", 13, 17), ("payload_length", 17, 21), ("payload", 21, r.size)]
    return fields


def hexdump(data: bytes, limit: int = 2048) -> str:
    """Offset, 16 hex bytes and their ASCII per line; cut after ``limit`` bytes."""
    lines = []
    shown = data[:limit]
    for at in range(0, len(shown), 16):
        chunk = shown[at : at + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{at:08x}  {hexes:<47}  {text}")
    if len(data) > limit:
        lines.append(f"... {len(data) - limit} more bytes ({len(data)} in all)")
    return "\n".join(lines)


def hexline(data: bytes, limit: int = 64) -> str:
    """Bytes as ``00 01 ..`` on one line, cut after ``limit`` bytes; ``(nothing)`` for none."""
    if not data:
        return "(nothing)"
    text = data[:limit].hex(" ")
    return text + (f" ... ({len(data)} bytes)" if len(data) > limit else "")
