"""Checks made before sending, correlation ids, and what is retried."""

from __future__ import annotations

import pytest

from mega_client import (
    InvalidTopicNameError,
    MegaConnectionError,
    MegaProtocolError,
    MegaTimeoutError,
    PayloadTooLargeError,
    TopicNotFoundError,
    ValidationError,
)
from mega_client._operations import Operation, check_topic, payload_bytes, should_retry
from mega_client.protocol import CreateTopicResponse
from mega_client.protocol.limits import INT32_MAX, MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("name", ["a", "A-z_0.9", "x" * 255, "test-topic"])
def test_valid_topic_names(name: str) -> None:
    assert check_topic(name) == name


@pytest.mark.parametrize("name", ["", "x" * 256, "a b", "café", "a/b", "tab\t", "日本"])
def test_invalid_topic_names(name: str) -> None:
    with pytest.raises(InvalidTopicNameError):
        check_topic(name)
    with pytest.raises(ValueError, match="topic name"):  # callers may catch the builtin
        check_topic(name)


def test_topic_must_be_text() -> None:
    with pytest.raises(TypeError):
        check_topic(b"bytes")


def test_payloads() -> None:
    assert payload_bytes("héllo") == "héllo".encode()
    assert payload_bytes(b"\x00\xff") == b"\x00\xff"
    assert payload_bytes(bytearray(b"ab")) == b"ab"
    assert payload_bytes(memoryview(b"ab")) == b"ab"
    assert payload_bytes("") == b""
    assert len(payload_bytes(b"x" * MAX_PAYLOAD_BYTES)) == MAX_PAYLOAD_BYTES
    with pytest.raises(PayloadTooLargeError):
        payload_bytes(b"x" * (MAX_PAYLOAD_BYTES + 1))
    # The limit counts encoded bytes, not characters.
    with pytest.raises(PayloadTooLargeError):
        payload_bytes("é" * (MAX_PAYLOAD_BYTES // 2 + 1))
    with pytest.raises(ValidationError):
        payload_bytes("\ud800")  # a lone surrogate has no UTF-8
    with pytest.raises(TypeError):
        payload_bytes(12)


def test_offsets() -> None:
    assert Operation.consume("t", -1).offset == -1  # the broker's to refuse: INVALID_OFFSET
    assert Operation.consume("t", INT32_MAX).offset == INT32_MAX
    with pytest.raises(ValidationError):
        Operation.consume("t", INT32_MAX + 1)
    with pytest.raises(TypeError):
        Operation.consume("t", True)
    with pytest.raises(TypeError):
        Operation.consume("t", 1.0)


def test_what_is_retried() -> None:
    produce = Operation.produce("t", b"x")
    consume = Operation.consume("t", 0)
    create = Operation.create_topic("t")
    not_sent = MegaConnectionError("refused", request_sent=False)
    sent = MegaConnectionError("reset", request_sent=True)
    for op in (produce, consume, create):
        assert should_retry(not_sent, op, "at-most-once")
        assert should_retry(MegaTimeoutError("connect", request_sent=False), op, "at-most-once")
        assert not should_retry(MegaTimeoutError("answer", request_sent=True), op, "at-least-once")
        assert not should_retry(MegaProtocolError("x", reason="r"), op, "at-least-once")
        assert not should_retry(TopicNotFoundError(4, 1), op, "at-least-once")
    assert should_retry(sent, consume, "at-most-once")
    assert should_retry(sent, create, "at-most-once")
    assert not should_retry(sent, produce, "at-most-once")
    assert should_retry(sent, produce, "at-least-once")


def test_result_checks_the_echoed_topic() -> None:
    op = Operation.create_topic("asked")
    assert op.result(CreateTopicResponse(1, 5, "asked")).topic == "asked"
    with pytest.raises(MegaProtocolError) as info:
        op.result(CreateTopicResponse(1, 5, "other"))
    assert info.value.reason == "topic-echo-mismatch"
