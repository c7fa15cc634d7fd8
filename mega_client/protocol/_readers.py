"""Incremental decoders for both directions.

Both take bytes in chunks of any size (:meth:`feed`) and hand back one
complete frame per call, or ``None`` when more bytes are needed. Lengths read
off the wire are checked against the configured limits *before* anything
waits for or stores the bytes they announce, so a peer cannot make a decoder
hold more than one frame of the largest allowed size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from . import layouts
from ._codes import ErrorCode, MessageType, error_code_or_int
from ._errors import RemoteProtocolError
from ._events import (
    ConsumeResponse,
    CreateTopicResponse,
    ErrorResponse,
    ProduceResponse,
    Request,
    RequestFields,
    Response,
    ResponseEvent,
    UnsolicitedError,
    request_from_fields,
)
from ._receivebuffer import ReceiveBuffer
from .limits import (
    INT32_MAX,
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_BYTES,
    UNSOLICITED_CORRELATION_ID,
)

# Short module-level names for the layouts the decoders' inner loops use on every frame.
_CID = layouts.CORRELATION_ID
_REQ_HEAD = layouts.REQUEST_HEAD
_REQ_TAIL = layouts.REQUEST_TAIL
_REQ_TAIL_CONSUME = layouts.CONSUME_REQUEST_TAIL
_HEAD_BYTES = layouts.REQUEST_HEAD.size
_TYPE_AT = layouts.MESSAGE_TYPE_AT
_FIXED = layouts.REQUEST_FIXED_BYTES
_FIXED_CONSUME = layouts.CONSUME_REQUEST_FIXED_BYTES

_RESP_HEAD = layouts.RESPONSE_HEAD
_ERROR = layouts.ERROR_RESPONSE
_CREATE_OK = layouts.CREATE_TOPIC_OK_HEAD
_PRODUCE_OK = layouts.PRODUCE_OK
_CONSUME_OK = layouts.CONSUME_OK_HEAD

# Plain ints: the hot loop compares against them once per frame.
_PRODUCE = int(MessageType.PRODUCE)
_CONSUME = int(MessageType.CONSUME)
_CREATE_TOPIC = int(MessageType.CREATE_TOPIC)
_KNOWN_TYPES = frozenset((_PRODUCE, _CONSUME, _CREATE_TOPIC))


class _SkipThenRaise:
    """A frame being skipped as it streams in: when the last byte is gone, ``error`` is the answer."""

    __slots__ = ("error",)

    def __init__(self, error: RemoteProtocolError) -> None:
        self.error = error


class _LongTopic:
    """A frame whose topic is too long to keep: the topic is skipped, then its tail is read."""

    __slots__ = ("cid", "mtype")

    def __init__(self, cid: int, mtype: int) -> None:
        self.cid = cid
        self.mtype = mtype


class RequestDecoder:
    """Turns a broker's incoming bytes into request frames.

    :meth:`next_request` raises :class:`RemoteProtocolError` for a malformed
    frame. Its ``error_code`` and ``correlation_id`` are what the broker should
    answer. When ``fatal`` is false the frame has been consumed (an oversized
    payload is skipped as it arrives, never stored) and decoding goes on; when
    it is true the stream is lost and every later call raises the same error.

    Two options read frames the way the reference broker does, without its cost
    in memory: ``skip_long_topics`` skips a topic longer than ``max_topic_bytes``
    as it arrives (the frame is then answered as a bad name, non-fatal
    ``topic-too-long``) instead of losing the stream; ``oversized_after_payload``
    raises MESSAGE_TOO_LARGE once the whole payload has arrived rather than as
    soon as its length is read. A topic or payload length over ``max_length``
    is fatal (the reference broker cannot allocate it and closes).
    """

    # One per broker connection: no per-instance dict.
    __slots__ = (
        "_buf",
        "_error",
        "_skip",
        "_slow",
        "max_length",
        "max_payload_bytes",
        "max_topic_bytes",
        "oversized_after_payload",
        "skip_long_topics",
    )

    def __init__(
        self,
        *,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_topic_bytes: int = MAX_TOPIC_BYTES,
        skip_long_topics: bool = False,
        oversized_after_payload: bool = False,
        max_length: int = INT32_MAX,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.max_topic_bytes = max_topic_bytes
        self.skip_long_topics = skip_long_topics
        self.oversized_after_payload = oversized_after_payload
        self.max_length = max_length
        self._buf = ReceiveBuffer()
        self._skip = 0
        self._error: RemoteProtocolError | None = None
        # Anything but the plain case: a fatal error, or a frame being skipped. The hot path
        # of next_fields reads this one attribute to know it has nothing else to check.
        self._slow: RemoteProtocolError | _SkipThenRaise | _LongTopic | None = None

    @property
    def buffered(self) -> int:
        """Bytes held, waiting to complete a frame."""
        return len(self._buf)

    @property
    def skipping(self) -> int:
        """Bytes of an oversized payload (or too long topic) still to be discarded as they arrive."""
        return self._skip

    @property
    def max_frame_bytes(self) -> int:
        """The most a single allowed frame can take, and so the most held after draining."""
        return _FIXED_CONSUME + self.max_topic_bytes + self.max_payload_bytes

    @property
    def frame_bytes(self) -> int | None:
        """The size of the frame being assembled, once its lengths have arrived; else None.

        None too when nothing is buffered, or when the lengths are ones
        :meth:`next_fields` will reject (or skip) rather than wait for.
        """
        if self._slow is not None:
            return None
        buf = self._buf
        head = buf.peek(_HEAD_BYTES)
        if len(head) < _HEAD_BYTES:
            return None
        mtype: int
        tlen: int
        _, mtype, tlen = _REQ_HEAD.unpack(head)
        if not 0 <= tlen <= self.max_topic_bytes or mtype not in _KNOWN_TYPES:
            return None
        tail = _REQ_TAIL_CONSUME if mtype == _CONSUME else _REQ_TAIL
        head_len = _HEAD_BYTES + tlen + tail.size
        fixed = buf.peek(head_len)
        if len(fixed) < head_len:
            return None
        plen: int = tail.unpack_from(fixed, _HEAD_BYTES + tlen)[-1]
        if not 0 <= plen <= self.max_payload_bytes:
            return None
        return head_len + plen

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes. Call :meth:`next_request` until it returns ``None``."""
        if self._error is not None:
            return
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            if n == len(data):
                return
            data = memoryview(data)[n:]
        self._buf.extend(data)

    def _fail(
        self,
        message: str,
        reason: str,
        error_code: ErrorCode,
        correlation_id: int,
        message_type: int,
    ) -> RemoteProtocolError:
        self._buf.clear()
        self._error = self._slow = RemoteProtocolError(
            message,
            reason=reason,
            fatal=True,
            error_code=error_code,
            correlation_id=correlation_id,
            message_type=message_type,
        )
        return self._error

    def _skip_rest(self, n: int) -> None:
        """Discard the next ``n`` bytes: those buffered now, the rest as they arrive."""
        dropped = min(n, len(self._buf))
        self._buf.consume(dropped)
        self._skip = n - dropped

    def contiguous(self) -> tuple[bytes, int] | None:
        """The buffered bytes that lie in one piece, as ``(data, pos)``: the next frame starts at ``data[pos]``.

        For a hot loop that reads complete frames in place (with :mod:`layouts`)
        and then calls :meth:`consumed_to`; what it cannot read whole it leaves to
        :meth:`next_fields` (more bytes may be waiting beyond ``data``). None while
        an error or a skip is pending: only :meth:`next_fields` handles those.
        """
        if self._slow is not None:
            return None
        return self._buf.data, self._buf.pos

    def consumed_to(self, pos: int) -> None:
        """The frames of ``data[old pos:pos]`` (from :meth:`contiguous`) were read by the caller."""
        self._buf.pos = pos

    def next_request(self) -> Request | None:
        """The next complete request, or ``None`` if more bytes are needed."""
        fields = self.next_fields()
        return None if fields is None else request_from_fields(fields)

    # The broker's hottest function: about a third of its CPU time under pipelined PRODUCE
    # (docs/PERFORMANCE.md, "Where the broker's time goes"), measured at 0.64 us a frame. So it is
    # one flat function on purpose, unlike the response readers below: locals instead of
    # attribute lookups, layouts as module globals, plain tuples out, and no call on the common
    # path but the two unpacks and the topic's decode (a Python call costs a sizeable fraction of
    # that budget). Measure with bench/ before splitting it up.
    def next_fields(self) -> RequestFields | None:  # noqa: PLR0912 - flat on purpose (above)
        """Like :meth:`next_request`, as a plain tuple, for hot loops.

        ``(message_type, correlation_id, topic, timestamp, offset, payload)``,
        with ``offset`` 0 unless the type is CONSUME. It skips building a frame
        object, which is most of the cost of decoding a small request.
        """
        if self._slow is not None:
            return self._next_slow()
        buf = self._buf
        data = buf.data
        pos = buf.pos
        avail = len(data) - pos
        if avail < _HEAD_BYTES:
            if not buf.ensure(_HEAD_BYTES):
                # The type byte alone decides an unknown type (BROKER-3): answer it without waiting.
                if buf.ensure(_TYPE_AT + 1) and (mtype := buf.data[buf.pos + _TYPE_AT]) not in _KNOWN_TYPES:
                    raise self._fail(
                        f"unknown message type 0x{mtype:02x}",
                        "unknown-message-type",
                        ErrorCode.INVALID_MESSAGE_TYPE,
                        _CID.unpack_from(buf.data, buf.pos)[0],
                        mtype,
                    )
                return None
            data = buf.data
            pos = buf.pos
            avail = len(data) - pos
        cid, mtype, tlen = _REQ_HEAD.unpack_from(data, pos)
        if mtype == _CONSUME:
            head_len = tlen + _FIXED_CONSUME
        elif mtype == _PRODUCE or mtype == _CREATE_TOPIC:  # noqa: PLR1714, SIM109 - the fastest test here
            head_len = tlen + _FIXED
        else:
            raise self._fail(
                f"unknown message type 0x{mtype:02x}",
                "unknown-message-type",
                ErrorCode.INVALID_MESSAGE_TYPE,
                cid,
                mtype,
            )
        if tlen < 0 or tlen > self.max_topic_bytes:
            return self._topic_over_limit(cid, mtype, tlen)
        if avail < head_len:
            if not buf.ensure(head_len):
                return None
            data = buf.data
            pos = buf.pos
            avail = len(data) - pos
        if mtype == _CONSUME:
            timestamp, offset, plen = _REQ_TAIL_CONSUME.unpack_from(data, pos + _HEAD_BYTES + tlen)
        else:
            timestamp, plen = _REQ_TAIL.unpack_from(data, pos + _HEAD_BYTES + tlen)
            offset = 0
        if plen < 0 or plen > self.max_payload_bytes:
            buf.consume(head_len)
            return self._payload_over_limit(cid, mtype, plen, None)
        total = head_len + plen
        if avail < total:
            if not buf.ensure(total):
                return None
            data = buf.data
            pos = buf.pos
        buf.pos = pos + total
        try:
            topic = data[pos + _HEAD_BYTES : pos + _HEAD_BYTES + tlen].decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(
                "topic is not valid UTF-8",
                reason="topic-not-utf8",
                fatal=False,
                error_code=ErrorCode.INVALID_REQUEST,
                correlation_id=cid,
                message_type=mtype,
            ) from None
        return (mtype, cid, topic, timestamp, offset, data[pos + head_len : pos + total] if plen else b"")

    # -- the rare paths: lengths out of bounds -------------------------------------------------

    def _topic_over_limit(self, cid: int, mtype: int, tlen: int) -> RequestFields | None:
        if tlen < 0 or tlen > self.max_length or not self.skip_long_topics:
            raise self._fail(
                f"topic_length {tlen} outside 0..{self.max_topic_bytes}",
                "negative-length" if tlen < 0 else "length-over-limit",
                ErrorCode.INVALID_REQUEST,
                cid,
                mtype,
            )
        self._buf.consume(_HEAD_BYTES)
        self._skip_rest(tlen)
        self._slow = _LongTopic(cid, mtype)
        return self._next_slow()

    def _payload_over_limit(
        self, cid: int, mtype: int, plen: int, reason: RemoteProtocolError | None
    ) -> RequestFields | None:
        """After a frame's tail (its head consumed): a payload_length out of bounds, or (``reason``
        given) a frame answered with ``reason`` once its payload, whatever its size, is skipped."""
        if plen < 0 or plen > self.max_length:
            raise self._fail(
                f"payload_length {plen} outside 0..{self.max_payload_bytes}",
                "negative-length" if plen < 0 else "length-over-limit",
                ErrorCode.INVALID_REQUEST,
                cid,
                mtype,
            )
        if plen > self.max_payload_bytes:
            # Answerable without the payload: drop what is here, skip the rest as it comes.
            reason = RemoteProtocolError(
                f"payload_length {plen} over the limit of {self.max_payload_bytes}",
                reason="message-too-large",
                fatal=False,
                error_code=ErrorCode.MESSAGE_TOO_LARGE,
                correlation_id=cid,
                message_type=mtype,
            )
            self._skip_rest(plen)
            if not self.oversized_after_payload:
                raise reason
        else:
            self._skip_rest(plen)
        assert reason is not None
        self._slow = _SkipThenRaise(reason)
        return self._next_slow()

    def _next_slow(self) -> RequestFields | None:
        state = self._slow
        if isinstance(state, RemoteProtocolError):  # fatal: the stream is lost
            raise state
        if self._skip:
            return None
        if isinstance(state, _SkipThenRaise):
            self._slow = None
            raise state.error
        assert isinstance(state, _LongTopic)
        tail = _REQ_TAIL_CONSUME if state.mtype == _CONSUME else _REQ_TAIL
        buf = self._buf
        if not buf.ensure(tail.size):
            return None
        plen: int = tail.unpack_from(buf.data, buf.pos)[-1]
        buf.consume(tail.size)
        self._slow = None
        too_long = RemoteProtocolError(
            "topic too long to be a topic name",
            reason="topic-too-long",
            fatal=False,
            error_code=ErrorCode.INVALID_REQUEST,
            correlation_id=state.cid,
            message_type=state.mtype,
        )
        return self._payload_over_limit(state.cid, state.mtype, plen, too_long)


# -- responses (docs/PROTOCOL.md section 4) ---------------------------------------------------
#
# A response is read in two steps, as the spec describes it: the head (correlation_id, success),
# which says whether it is the unsolicited frame, whose answer it is and whether it failed; then
# the body, whose layout depends on the success flag and, for a success, on the type of the
# request it answers (responses carry no type). Each success body has its own small reader in
# READERS. A reader returns ``None`` until the whole frame is buffered and raises
# RemoteProtocolError (always fatal for a client: the stream position is lost) for a length the
# limits refuse or a topic echo that is not UTF-8.


class Limits(Protocol):
    """What a response reader checks lengths against: the decoder's configured limits."""

    max_payload_bytes: int
    max_topic_bytes: int


SuccessReader = Callable[[ReceiveBuffer, int, Limits], Response | None]


def _read_create_topic_ok(buf: ReceiveBuffer, cid: int, limits: Limits) -> CreateTopicResponse | None:
    """RESP: timestamp i64, topic_len u16, then the topic (the request's, echoed)."""
    head = _CREATE_OK.size
    if not buf.ensure(head):
        return None
    _, _, ts, tlen = _CREATE_OK.unpack_from(buf.data, buf.pos)
    if tlen > limits.max_topic_bytes:
        raise _fatal(f"topic echo of {tlen} bytes over the limit of {limits.max_topic_bytes}", "length-over-limit", cid)
    if not buf.ensure(head + tlen):
        return None
    pos = buf.pos
    try:
        topic = buf.data[pos + head : pos + head + tlen].decode("utf-8")
    except UnicodeDecodeError:
        raise _fatal("topic echo is not valid UTF-8", "topic-not-utf8", cid) from None
    buf.pos = pos + head + tlen
    return CreateTopicResponse(cid, ts, topic)


def _read_produce_ok(buf: ReceiveBuffer, cid: int, limits: Limits) -> ProduceResponse | None:
    """RESP: timestamp i64, offset i32."""
    if not buf.ensure(_PRODUCE_OK.size):
        return None
    _, _, ts, offset = _PRODUCE_OK.unpack_from(buf.data, buf.pos)
    buf.pos += _PRODUCE_OK.size
    return ProduceResponse(cid, ts, offset)


def _read_consume_ok(buf: ReceiveBuffer, cid: int, limits: Limits) -> ConsumeResponse | None:
    """RESP: timestamp i64, next_offset i32, payload_length i32, then the payload."""
    head = _CONSUME_OK.size
    if not buf.ensure(head):
        return None
    _, _, ts, next_offset, plen = _CONSUME_OK.unpack_from(buf.data, buf.pos)
    if plen < 0:
        raise _fatal(f"negative payload_length {plen}", "negative-length", cid)
    if plen > limits.max_payload_bytes:
        raise _fatal(f"payload_length {plen} over the limit of {limits.max_payload_bytes}", "length-over-limit", cid)
    if not buf.ensure(head + plen):
        return None
    pos = buf.pos
    payload = buf.data[pos + head : pos + head + plen] if plen else b""
    buf.pos = pos + head + plen
    return ConsumeResponse(cid, ts, next_offset, payload)


#: The success body's reader for each request type (h11's READERS).
READERS: dict[int, SuccessReader] = {
    MessageType.CREATE_TOPIC: _read_create_topic_ok,
    MessageType.PRODUCE: _read_produce_ok,
    MessageType.CONSUME: _read_consume_ok,
}


def _fatal(message: str, reason: str, correlation_id: int | None) -> RemoteProtocolError:
    return RemoteProtocolError(message, reason=reason, fatal=True, correlation_id=correlation_id)


def read_response(buf: ReceiveBuffer, oldest_type: int | None, oldest_cid: int, limits: Limits) -> ResponseEvent | None:
    """The next response in ``buf``, or ``None`` until it is complete; consumes it.

    ``oldest_type`` and ``oldest_cid`` describe the oldest pending request
    (``oldest_type`` is ``None`` when nothing is pending): a response must
    carry its correlation id (CLIENT-6), and is read with its type's layout.
    Raises :class:`RemoteProtocolError` when the bytes break the spec.
    """
    if not buf.ensure(_RESP_HEAD.size):
        return None
    cid, success = _RESP_HEAD.unpack_from(buf.data, buf.pos)
    if cid == UNSOLICITED_CORRELATION_ID and success == 0:
        # `00 00 00 00 00 08` is always the broker's notice, never an answer (RESP-7);
        # any other code with id 0 is judged like any other response below.
        if not buf.ensure(_ERROR.size):
            return None
        if _ERROR.unpack_from(buf.data, buf.pos)[2] == ErrorCode.NETWORK_ERROR:
            buf.pos += _ERROR.size
            return UnsolicitedError(ErrorCode.NETWORK_ERROR)
    if oldest_type is None:
        raise _fatal(f"response with correlation id {cid} while no request is pending", "unexpected-frame", cid)
    if cid != oldest_cid:
        raise _fatal(
            f"response correlation id {cid} does not match the oldest pending request's {oldest_cid}",
            "correlation-mismatch",
            cid,
        )
    if success == 0:
        if not buf.ensure(_ERROR.size):
            return None
        code = _ERROR.unpack_from(buf.data, buf.pos)[2]
        buf.pos += _ERROR.size
        return ErrorResponse(cid, error_code_or_int(code))
    if success != 1:
        raise _fatal(f"success flag is {success & 0xFF:#04x}, neither 0 nor 1", "bad-success-flag", cid)
    reader = READERS.get(oldest_type)
    if reader is None:  # a request of a type the protocol does not have can only fail (BROKER-3)
        raise _fatal(f"a success answer to a request of unknown type {oldest_type:#04x}", "unexpected-success", cid)
    return reader(buf, cid, limits)


class ResponseDecoder:
    """Turns a client's incoming bytes into response frames.

    Responses carry no type, so the decoder is told, in order, what each
    request sent was (:meth:`expect`). Every response's correlation id is
    checked against the oldest pending request. An error frame with
    correlation id 0 that matches no pending request is the broker's
    unsolicited notice, returned as :class:`UnsolicitedError`.

    Every malformed response is fatal: :meth:`next_response` raises
    :class:`RemoteProtocolError` now and on every later call.
    (:class:`~mega_client.protocol.ClientConnection` does the same, and also
    keeps the requests themselves, numbers them and tracks the connection's state.)
    """

    def __init__(
        self,
        *,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        max_topic_bytes: int = MAX_TOPIC_BYTES,
    ) -> None:
        self.max_payload_bytes = max_payload_bytes
        self.max_topic_bytes = max_topic_bytes
        self._buf = ReceiveBuffer()
        self._pending: deque[tuple[int, int]] = deque()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held, waiting to complete a frame."""
        return len(self._buf)

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    @property
    def max_frame_bytes(self) -> int:
        """The largest response frame the limits allow."""
        return _CONSUME_OK.size + max(self.max_payload_bytes, self.max_topic_bytes)

    def expect(self, message_type: int, correlation_id: int) -> None:
        """Record that a request of ``message_type`` with ``correlation_id`` was sent."""
        self._pending.append((message_type, correlation_id))

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Add received bytes. Call :meth:`next_response` until it returns ``None``."""
        if self._error is None:
            self._buf.extend(data)

    def next_response(self) -> ResponseEvent | None:
        """The next complete response, or ``None`` if more bytes are needed."""
        if self._error is not None:
            raise self._error
        pending = self._pending
        oldest_type, oldest_cid = pending[0] if pending else (None, 0)
        try:
            event = read_response(self._buf, oldest_type, oldest_cid, self)
        except RemoteProtocolError as exc:
            self._buf.clear()
            self._error = exc
            raise
        if event is not None and not isinstance(event, UnsolicitedError):
            pending.popleft()
        return event
