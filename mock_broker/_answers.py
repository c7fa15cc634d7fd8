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
from ._storage import SHARED_TOPIC_BYTES, TopicLog, TopicStore

# The fast path's layouts (the codec's, read in place).
_REQ_HEAD = layouts.REQUEST_HEAD
_REQ_TAIL = layouts.REQUEST_TAIL
_PRODUCE_OK = layouts.PRODUCE_OK
_HEAD_BYTES = _REQ_HEAD.size
_TAIL_BYTES = _REQ_TAIL.size
_CID = layouts.CORRELATION_ID
#: Bytes of a frame's key: its message_type and topic_length, before the topic.
_KEY_HEAD_BYTES = _HEAD_BYTES - _CID.size
#: By topic length: a PRODUCE frame up to its payload in one struct: (correlation_id, key,
#: timestamp, payload_length), where the key is the message_type, topic_length and topic as
#: bytes, so that one comparison tells a frame to the topic of the frame before (a fifth of
#: the instructions of ``bytes.startswith`` and three comparisons, measured).
_PRODUCE_KEYED = tuple(
    struct.Struct(_CID.format + f"{_KEY_HEAD_BYTES + n}s" + _REQ_TAIL.format.lstrip("<>!=@"))
    for n in range(SHARED_TOPIC_BYTES + 1)
)
#: The same for CONSUME: (correlation_id, key, timestamp, offset, payload_length).
_CONSUME_KEYED = tuple(
    struct.Struct(_CID.format + f"{_KEY_HEAD_BYTES + n}s" + layouts.CONSUME_REQUEST_TAIL.format.lstrip("<>!=@"))
    for n in range(MAX_TOPIC_BYTES + 1)
)
_CONSUME_OK_HEAD = layouts.CONSUME_OK_HEAD

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


def _keep(log: TopicLog, frames: bytes, starts: list[int]) -> None:
    """Store the messages whose tails start at ``starts`` in ``frames``; clear ``starts``."""
    n = len(starts)
    log.frames.extend([frames] * n)
    # One pack for the run: array.append parses its argument the slow way, about 300
    # instructions per message (measured).
    log.starts.frombytes(struct.pack(f"{n}q", *starts))
    starts.clear()


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
            if len(log) >= self._max_messages:
                return encode_error(cid, self._full)
            return encode_produce_ok(cid, timestamp, log.append(timestamp, payload))
        if mtype == _CONSUME:
            log = self._logs.get(topic)
            if log is None:
                return encode_error(cid, self._missing_topic_code(topic))
            if offset < 0 or offset >= len(log):
                return encode_error(cid, _INVALID_OFFSET)
            stored_at, payload = log.message(offset)
            return encode_consume_ok(cid, stored_at, offset + 1, payload)
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

    def fast_run(self, data: bytes, pos: int, out: list[bytes], room: int) -> tuple[int, int, int]:
        """Answer the run of PRODUCEs or of CONSUMEs at ``data[pos:]`` the fast way (see below).

        Returns the position after the frames it took, how many, and the bytes
        it added to ``out`` (0 frames: the general path must take the next one).
        """
        before = len(out)
        end = self.produce_run(data, pos, out)
        if end != pos:
            n = len(out) - before
            return end, n, n * _PRODUCE_OK.size
        end, added = self.consume_run(data, pos, out, room)
        return end, (len(out) - before) // 2, added  # a head and a payload per CONSUME

    # The two runs are the broker's innermost loops, inlined on purpose: a call per frame
    # costs more than a split would make them read better (measure with bench/ first).
    def produce_run(self, data: bytes, pos: int, out: list[bytes]) -> int:  # noqa: PLR0915
        """Answer, in place, the run of complete PRODUCE frames at ``data[pos:]`` to existing topics.

        The broker's fast path (measured: about a third fewer instructions per
        PRODUCE than the general one, and no object per message): each frame is
        read straight from the receive buffer with the codec's layouts, in one
        unpack when it names the same topic as the frame before (which then is
        not decoded nor looked up again). The frames to one
        topic are stored as one slice of ``data`` (see :mod:`mock_broker._storage`).
        It stops at the first frame it cannot answer with a plain success (another
        type, a length out of bounds, an incomplete frame, a missing or full topic,
        a name that is not UTF-8 or longer than ``SHARED_TOPIC_BYTES``) and leaves
        that one to the general path, which answers exactly as this would have
        (tests/mock_broker/test_fast_path.py compares the two). Appends the answers
        to ``out``; returns the position after the last frame it read. A run is
        bounded by the bytes at hand, and every answer is shorter than its request.
        """
        end = len(data)
        answer = out.append
        ok = _PRODUCE_OK.pack
        head_bytes = _HEAD_BYTES
        tail_bytes = _TAIL_BYTES
        produce = _PRODUCE
        logs = self._logs
        full = self._max_messages
        max_payload = self._max_payload
        key = b""  # no frame's key: the first frame is read as naming a new topic
        fixed = _PRODUCE_KEYED[0]
        size = fixed.size
        log: TopicLog | None = None
        starts: list[int] = []  # where the tails of the current topic's frames start, from first
        keep = starts.append
        offset = 0
        first = pos  # where the frames of the current topic began
        while end - pos >= head_bytes:
            same = False
            if end - pos >= size:
                cid, frame_key, timestamp, plen = fixed.unpack_from(data, pos)
                same = frame_key == key
            if not same:
                if log is not None and starts:
                    _keep(log, data[first:pos], starts)
                    log = None
                _, mtype, tlen = _REQ_HEAD.unpack_from(data, pos)
                if mtype != produce or not 0 <= tlen < len(_PRODUCE_KEYED):
                    break
                fixed = _PRODUCE_KEYED[tlen]
                size = fixed.size
                if end - pos < size:
                    break
                cid, key, timestamp, plen = fixed.unpack_from(data, pos)
                try:
                    topic = key[_KEY_HEAD_BYTES:].decode("utf-8")
                except UnicodeDecodeError:
                    break
                log = logs.get(topic)
                if log is None:
                    break
                offset = len(log)
                first = pos
            at = pos + size
            frame_end = at + plen
            if plen < 0 or plen > max_payload or frame_end > end or offset >= full:
                break
            keep(at - tail_bytes - first)
            answer(ok(cid, 1, timestamp, offset))
            offset += 1
            pos = frame_end
        if log is not None and starts:
            _keep(log, data[first:pos], starts)
        return pos

    def consume_run(self, data: bytes, pos: int, out: list[bytes], room: int) -> tuple[int, int]:  # noqa: PLR0915
        """Answer, in place, the run of complete CONSUME frames at ``data[pos:]`` for stored messages.

        The CONSUME twin of :meth:`produce_run` (same reading of frames, same
        general path for any frame it does not take: a missing topic, an offset
        out of range, a payload over the limit...). Each answer is its head and
        the stored payload, two items of ``out``. Answers can be much longer
        than requests, so it stops once it has added ``room`` bytes or more.
        Returns the position after the last frame it read and the bytes added.
        """
        end = len(data)
        answer = out.append
        ok_head = _CONSUME_OK_HEAD.pack
        tail = _REQ_TAIL.unpack_from
        head_bytes = _HEAD_BYTES
        tail_bytes = _TAIL_BYTES
        consume = _CONSUME
        logs = self._logs
        max_payload = self._max_payload
        key = b""
        fixed = _CONSUME_KEYED[0]
        size = fixed.size
        frames: list[bytes] = []
        starts = array("q")
        count = 0
        added = 0
        while end - pos >= head_bytes and added < room:
            same = False
            if end - pos >= size:
                cid, frame_key, _, offset, plen = fixed.unpack_from(data, pos)
                same = frame_key == key
            if not same:
                _, mtype, tlen = _REQ_HEAD.unpack_from(data, pos)
                if mtype != consume or not 0 <= tlen < len(_CONSUME_KEYED):
                    break
                fixed = _CONSUME_KEYED[tlen]
                size = fixed.size
                if end - pos < size:
                    break
                cid, key, _, offset, plen = fixed.unpack_from(data, pos)
                try:
                    topic = key[_KEY_HEAD_BYTES:].decode("utf-8")
                except UnicodeDecodeError:
                    break
                log = logs.get(topic)
                if log is None:
                    break
                frames, starts = log.frames, log.starts
                count = len(frames)
            frame_end = pos + size + plen
            if plen < 0 or plen > max_payload or frame_end > end or not 0 <= offset < count:
                break
            stored = frames[offset]
            at = starts[offset]
            timestamp, n = tail(stored, at)
            at += tail_bytes
            answer(ok_head(cid, 1, timestamp, offset + 1, n))
            answer(stored[at : at + n])
            added += _CONSUME_OK_HEAD.size + n
            pos = frame_end
        return pos, added

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
