"""Encoders: exact bytes per layout, and a typed error for what the wire cannot carry."""

from __future__ import annotations

import pytest

from mega_client.protocol import (
    ConsumeRequest,
    CreateTopicRequest,
    CreateTopicResponse,
    ErrorCode,
    ErrorResponse,
    LocalProtocolError,
    ProduceRequest,
    ProduceResponse,
    UnsolicitedError,
    encode_request,
    encode_response,
)
from mega_client.protocol.limits import INT32_MAX, INT64_MIN


def test_produce_matches_the_notes_byte_for_byte() -> None:
    assert encode_request(ProduceRequest(10, "probe-a", 42, b"abc")) == bytes.fromhex(
        "0000000a 01 00000007 70726f62652d61 000000000000002a 00000003 616263"
    )


def test_payload_length_is_present_in_every_request_type() -> None:
    assert encode_request(CreateTopicRequest(1, "t", 0)).endswith(b"\0\0\0\0")
    assert encode_request(ConsumeRequest(1, "t", 0, 3)).endswith(b"\0\0\0\3\0\0\0\0")


def test_topic_length_counts_utf8_bytes_not_characters() -> None:
    raw = encode_request(CreateTopicRequest(1, "\u00e9\u2603", 0))
    assert raw[5:9] == (5).to_bytes(4, "big")
    assert raw[9:14] == "\u00e9\u2603".encode()


def test_responses_match_the_notes() -> None:
    assert encode_response(CreateTopicResponse(7, 1234567890123, "probe-a")) == bytes.fromhex(
        "00000007 01 0000011f71fb04cb 0007 70726f62652d61"
    )
    assert encode_response(ErrorResponse(8, ErrorCode.TOPIC_ALREADY_EXISTS)) == bytes.fromhex("00000008 00 05")
    assert encode_response(ProduceResponse(9, 1234567890123, 0)) == bytes.fromhex(
        "00000009 01 0000011f71fb04cb 00000000"
    )
    assert encode_response(UnsolicitedError(ErrorCode.NETWORK_ERROR)) == bytes.fromhex("00000000 00 08")


@pytest.mark.parametrize(
    "frame",
    [
        ProduceRequest(INT32_MAX + 1, "t", 0, b""),
        ProduceRequest(1, "t", INT64_MIN - 1, b""),
        ConsumeRequest(1, "t", 0, -(2**31) - 1),
        CreateTopicRequest(1, "\ud800", 0),  # a lone surrogate has no UTF-8
    ],
)
def test_unencodable_requests_raise_local_protocol_error(frame: ProduceRequest) -> None:
    with pytest.raises(LocalProtocolError):
        encode_request(frame)


def test_unencodable_responses_raise_local_protocol_error() -> None:
    with pytest.raises(LocalProtocolError):
        encode_response(ErrorResponse(1, 300))
    with pytest.raises(LocalProtocolError):
        encode_response(CreateTopicResponse(1, 0, "x" * 65536))
    with pytest.raises(ValueError, match="PRODUCE"):  # LocalProtocolError is a ValueError too
        encode_response(ProduceResponse(1, 0, INT32_MAX + 1))
