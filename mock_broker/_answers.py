"""The broker's answers: the checks of docs/PROTOCOL.md section 5.2, applied to the topic store.

One :class:`Answerer` serves every connection of a broker (the store is
shared). It is pure logic over the store: no I/O, no clock, no fault rules.

The order of checks per request (profile ``spec``; ``reference`` in brackets):
frame errors from the decoder (fatal: answer, then close [close with no
answer]), MESSAGE_TOO_LARGE (the payload is skipped as it streams in [answered
once it has all arrived]), topic name / UTF-8 [CREATE_TOPIC: INTERNAL_ERROR;
PRODUCE/CONSUME: TOPIC_NOT_FOUND; a topic over 255 bytes is skipped as it
arrives and answered so too], missing or existing topic, offset / capacity [INTERNAL_ERROR for a full topic,
as measured; ``max_topics`` is the mock's own limit, RESOURCE_EXHAUSTED in both].
"""

from __future__ import annotations

import struct
from array import array

from mega_client.protocol import (
    ErrorCode,
    MessageType,
    RemoteProtocolError,
    RequestFields,
    encode_consume_ok,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
    layouts,
)
from mega_client.protocol.limits import MAX_TOPIC_BYTES, topic_name_problem

from ._config import BrokerConfig
from ._storage import TopicLog, TopicStore

# The fast path's layouts (the codec's, read in place).
_REQ_HEAD = layouts.REQUEST_HEAD
_REQ_TAIL = layouts.REQUEST_TAIL
_PRODUCE_OK = layouts.PRODUCE_OK
_HEAD_BYTES = _REQ_HEAD.size
#: By topic length: a PRODUCE frame's head and tail in one struct, the topic skipped (``x`` pad bytes):
#: (correlation_id, message_type, topic_length, timestamp, payload_length).
#: Matches no topic: a frame cannot start with more bytes than the longest topic.
_NO_TOPIC = b"\x00" * (MAX_TOPIC_BYTES + 1)
_FRAME_HEADS = tuple(
    struct.Struct(_REQ_HEAD.format + f"{n}x" + _REQ_TAIL.format.lstrip("<>!=@")) for n in range(MAX_TOPIC_BYTES + 1)
)

# Plain ints: the hot path compares and encodes them once per request.
_PRODUCE = int(MessageType.PRODUCE)
_CONSUME = int(MessageType.CONSUME)
_CREATE_TOPIC = int(MessageType.CREATE_TOPIC)
_INVALID_REQUEST = int(ErrorCode.INVALID_REQUEST)
_TOPIC_NOT_FOUND = int(ErrorCode.TOPIC_NOT_FOUND)
_TOPIC_ALREADY_EXISTS = int(ErrorCode.TOPIC_ALREADY_EXISTS)
_INVALID_OFFSET = int(ErrorCode.INVALID_OFFSET)
_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_RESOURCE_EXHAUSTED = int(ErrorCode.RESOURCE_EXHAUSTED)


#: Frames the decoder rejects for their topic: the reference broker answers them like any bad name.
_BAD_NAMES = frozenset(("topic-not-utf8", "topic-too-long"))


class Answerer:
    """Answers requests against one broker's store, as its profile says."""

    __slots__ = ("_full", "_logs", "_max_messages", "_max_payload", "_max_topic", "_max_topics", "_reference")

    def __init__(self, config: BrokerConfig, store: TopicStore) -> None:
        self._logs = store.logs
        self._max_messages = config.max_messages_per_topic
        self._max_topics = config.max_topics
        self._max_topic = config.max_topic_bytes
        self._max_payload = config.max_payload_bytes
        self._reference = config.reference
        # The reference broker answers a full topic INTERNAL_ERROR: its request handler catches
        # the "capacity reached" exception as any other failure (measured, PROTOCOL.md section 12).
        self._full = _INTERNAL_ERROR if config.reference else _RESOURCE_EXHAUSTED

    def answer(self, req: RequestFields) -> bytes:
        """The answer to a well-formed request; storing or creating what it asks for."""
        mtype, cid, topic, timestamp, offset, payload = req
        if mtype == _PRODUCE:
            log = self._logs.get(topic)
            if log is None:
                return encode_error(cid, self._missing_topic_code(topic))
            if (n := len(log.payloads)) >= self._max_messages:
                return encode_error(cid, self._full)
            log.timestamps.append(timestamp)
            log.payloads.append(payload)
            return encode_produce_ok(cid, timestamp, n)
        if mtype == _CONSUME:
            log = self._logs.get(topic)
            if log is None:
                return encode_error(cid, self._missing_topic_code(topic))
            if offset < 0 or offset >= len(log.payloads):
                return encode_error(cid, _INVALID_OFFSET)
            return encode_consume_ok(cid, log.timestamps[offset], offset + 1, log.payloads[offset])
        # CREATE_TOPIC
        logs = self._logs
        if topic_name_problem(topic) is not None:
            return encode_error(cid, _INTERNAL_ERROR if self._reference else _INVALID_REQUEST)
        if topic in logs:
            return encode_error(cid, _TOPIC_ALREADY_EXISTS)
        if len(logs) >= self._max_topics:  # the mock's own limit (the reference broker has none)
            return encode_error(cid, _RESOURCE_EXHAUSTED)
        logs[topic] = TopicLog()
        return encode_create_topic_ok(cid, timestamp, topic)

    def produce_run(self, data: bytes, pos: int, out: list[bytes], kept: list[RequestFields] | None) -> int:
        """Answer, in place, the run of complete PRODUCE frames at ``data[pos:]`` to existing topics.

        The broker's fast path (measured: about a third fewer instructions per
        PRODUCE than the general one): each frame is read straight from the
        receive buffer with the codec's layouts, in one unpack for its head and
        tail when it names the same topic as the frame before (which then is not
        decoded nor looked up again). It stops at the first frame it cannot
        answer with a plain success (another type, a length out of bounds, an
        incomplete frame, a missing or full topic, a name that is not UTF-8) and
        leaves that one to the general path, which answers exactly as this would
        have (tests/mock_broker/test_fast_path.py compares the two). Appends the
        answers to ``out`` (and the requests to ``kept``); returns the position
        after the last frame it read. A run is bounded by the bytes at hand, and
        every answer is shorter than its request.
        """
        end = len(data)
        answer = out.append
        ok = _PRODUCE_OK.pack
        starts_with = data.startswith
        head_bytes = _HEAD_BYTES
        produce = _PRODUCE
        logs = self._logs
        full = self._max_messages
        max_payload = self._max_payload
        name = _NO_TOPIC  # longer than any topic: no frame starts with it
        name_len = -1
        topic = ""
        fixed = _FRAME_HEADS[0]
        size = fixed.size
        timestamps = array("q")
        payloads: list[bytes] = []
        offset = 0
        while end - pos >= head_bytes:
            if starts_with(name, pos + head_bytes) and end - pos >= size:
                # The topic of the frame before: one unpack for the head and tail, the topic skipped.
                cid, mtype, tlen, timestamp, plen = fixed.unpack_from(data, pos)
                if mtype != produce or tlen != name_len:
                    break
            else:
                cid, mtype, tlen = _REQ_HEAD.unpack_from(data, pos)
                if mtype != produce or not 0 <= tlen < len(_FRAME_HEADS):
                    break
                fixed = _FRAME_HEADS[tlen]
                size = fixed.size
                if end - pos < size:
                    break
                name = data[pos + head_bytes : pos + head_bytes + tlen]
                name_len = tlen
                try:
                    topic = name.decode("utf-8")
                except UnicodeDecodeError:
                    break
                log = logs.get(topic)
                if log is None:
                    break
                timestamps, payloads = log.timestamps, log.payloads
                offset = len(payloads)
                _, _, _, timestamp, plen = fixed.unpack_from(data, pos)
            at = pos + size
            frame_end = at + plen
            if plen < 0 or plen > max_payload or frame_end > end or offset >= full:
                break
            payload = data[at:frame_end]
            timestamps.append(timestamp)
            payloads.append(payload)
            answer(ok(cid, 1, timestamp, offset))
            if kept is not None:
                kept.append((produce, cid, topic, timestamp, 0, payload))
            offset += 1
            pos = frame_end
        return pos

    def _missing_topic_code(self, name: str) -> int:
        """PRODUCE/CONSUME on a topic that does not exist: a bad name is INVALID_REQUEST (spec)."""
        if self._reference or topic_name_problem(name) is None:
            return _TOPIC_NOT_FOUND
        return _INVALID_REQUEST

    def frame_error(self, exc: RemoteProtocolError) -> bytes | None:
        """The answer to a frame the decoder rejected (None: close with no answer, reference profile).

        A fatal error loses the stream: the spec answers it (INVALID_MESSAGE_TYPE /
        INVALID_REQUEST) and closes; the reference broker just closes.
        """
        cid = exc.correlation_id if exc.correlation_id is not None else 0
        if exc.fatal:
            return None if self._reference else encode_error(cid, int(exc.error_code))
        code = int(exc.error_code)
        if exc.reason in _BAD_NAMES and self._reference:
            code = _INTERNAL_ERROR if exc.message_type == _CREATE_TOPIC else _TOPIC_NOT_FOUND
        return encode_error(cid, code)

    @staticmethod
    def internal_error(req: RequestFields) -> bytes:
        """The answer to a request whose handling raised: INTERNAL_ERROR."""
        return encode_error(req[1], _INTERNAL_ERROR)
