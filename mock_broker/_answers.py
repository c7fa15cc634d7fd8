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

from mega_client.protocol import (
    ErrorCode,
    MessageType,
    RemoteProtocolError,
    RequestFields,
    encode_consume_ok,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
)
from mega_client.protocol.limits import topic_name_problem

from ._config import BrokerConfig
from ._storage import TopicStore

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

    __slots__ = ("_full", "_logs", "_max_messages", "_max_topics", "_reference")

    def __init__(self, config: BrokerConfig, store: TopicStore) -> None:
        self._logs = store.logs
        self._max_messages = config.max_messages_per_topic
        self._max_topics = config.max_topics
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
            if (n := len(log)) >= self._max_messages:
                return encode_error(cid, self._full)
            log.append((timestamp, payload))
            return encode_produce_ok(cid, timestamp, n)
        if mtype == _CONSUME:
            log = self._logs.get(topic)
            if log is None:
                return encode_error(cid, self._missing_topic_code(topic))
            if offset < 0 or offset >= len(log):
                return encode_error(cid, _INVALID_OFFSET)
            stored_ts, stored = log[offset]
            return encode_consume_ok(cid, stored_ts, offset + 1, stored)
        # CREATE_TOPIC
        logs = self._logs
        if topic_name_problem(topic) is not None:
            return encode_error(cid, _INTERNAL_ERROR if self._reference else _INVALID_REQUEST)
        if topic in logs:
            return encode_error(cid, _TOPIC_ALREADY_EXISTS)
        if len(logs) >= self._max_topics:  # the mock's own limit (the reference broker has none)
            return encode_error(cid, _RESOURCE_EXHAUSTED)
        logs[topic] = []
        return encode_create_topic_ok(cid, timestamp, topic)

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
