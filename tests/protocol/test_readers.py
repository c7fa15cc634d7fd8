"""The incremental decoders: frames out, partial bytes kept, malformed input typed."""

from __future__ import annotations

import pytest

from mega_client.protocol import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    CreateTopicResponse,
    ErrorCode,
    ErrorResponse,
    MessageType,
    ProduceRequest,
    ProduceResponse,
    RemoteProtocolError,
    RequestDecoder,
    ResponseDecoder,
    UnsolicitedError,
)
from mega_client.protocol._readers import READERS
from mega_client.protocol.limits import INT32_MAX

# The notes' PRODUCE example: correlation 10, topic "probe-a", timestamp 42, payload "abc".
PRODUCE_PROBE_A = bytes.fromhex("0000000a 01 00000007 70726f62652d61 000000000000002a 00000003 616263")


def request_head(cid: int, mtype: int, topic: bytes) -> bytes:
    return cid.to_bytes(4, "big", signed=True) + bytes([mtype]) + len(topic).to_bytes(4, "big") + topic


def decode_all_requests(decoder: RequestDecoder) -> list[object]:
    out: list[object] = []
    while (frame := decoder.next_request()) is not None:
        out.append(frame)
    return out


class TestRequestDecoder:
    def test_decodes_the_notes_produce_example(self) -> None:
        d = RequestDecoder()
        d.feed(PRODUCE_PROBE_A)
        assert d.next_request() == ProduceRequest(10, "probe-a", 42, b"abc")
        assert d.next_request() is None
        assert d.buffered == 0

    def test_frame_bytes_is_the_frame_size_once_its_lengths_arrived(self) -> None:
        decoder = RequestDecoder()
        sizes = []
        for i in range(len(PRODUCE_PROBE_A)):
            decoder.feed(PRODUCE_PROBE_A[i : i + 1])
            sizes.append(decoder.frame_bytes)
        # head (9) + topic (7) + timestamp (8) + payload_length (4) = 28 bytes before the size is known
        assert sizes[:27] == [None] * 27
        assert sizes[27:] == [len(PRODUCE_PROBE_A)] * (len(PRODUCE_PROBE_A) - 27)
        assert decoder.next_request() is not None
        assert decoder.frame_bytes is None

    def test_frame_bytes_is_none_for_lengths_the_decoder_will_reject(self) -> None:
        decoder = RequestDecoder(max_payload_bytes=2)
        decoder.feed(PRODUCE_PROBE_A)  # payload_length 3, over the limit: skipped, not waited for
        assert decoder.frame_bytes is None

    def test_every_strict_prefix_needs_more_data(self) -> None:
        for cut in range(len(PRODUCE_PROBE_A)):
            d = RequestDecoder()
            d.feed(PRODUCE_PROBE_A[:cut])
            assert d.next_request() is None, cut
            assert d.buffered == cut

    def test_one_byte_at_a_time_then_the_next_frame(self) -> None:
        d = RequestDecoder()
        frames: list[object] = []
        for byte in PRODUCE_PROBE_A * 2:
            d.feed(bytes([byte]))
            frames += decode_all_requests(d)
        assert frames == [ProduceRequest(10, "probe-a", 42, b"abc")] * 2

    def test_create_topic_and_consume_carry_payload_length(self) -> None:
        create = request_head(1, 3, b"t") + (7).to_bytes(8, "big") + (0).to_bytes(4, "big")
        consume = request_head(2, 2, b"t") + (8).to_bytes(8, "big") + (5).to_bytes(4, "big") + b"\0\0\0\2xy"
        d = RequestDecoder()
        d.feed(create + consume)
        assert decode_all_requests(d) == [
            CreateTopicRequest(1, "t", 7),
            ConsumeRequest(2, "t", 8, 5, b"xy"),
        ]

    @pytest.mark.parametrize("mtype", [0x00, 0x04, 0x7F, 0xFF])
    def test_unknown_message_type_is_fatal_invalid_message_type(self, mtype: int) -> None:
        d = RequestDecoder()
        d.feed(request_head(99, mtype, b"t"))
        with pytest.raises(RemoteProtocolError) as info:
            d.next_request()
        err = info.value
        assert (err.error_code, err.correlation_id, err.fatal, err.reason) == (
            ErrorCode.INVALID_MESSAGE_TYPE,
            99,
            True,
            "unknown-message-type",
        )
        # The stream is lost: later bytes are ignored and the same error is raised again.
        d.feed(PRODUCE_PROBE_A)
        with pytest.raises(RemoteProtocolError) as again:
            d.next_request()
        assert again.value is err

    def test_negative_topic_length_is_fatal_invalid_request(self) -> None:
        d = RequestDecoder()
        d.feed(b"\0\0\0\5\1\xff\xff\xff\xff")
        with pytest.raises(RemoteProtocolError) as info:
            d.next_request()
        assert (info.value.error_code, info.value.correlation_id, info.value.fatal) == (
            ErrorCode.INVALID_REQUEST,
            5,
            True,
        )
        assert info.value.reason == "negative-length"

    def test_topic_length_over_the_limit_is_fatal_before_any_topic_byte_arrives(self) -> None:
        d = RequestDecoder()
        d.feed(b"\0\0\0\5\1\0\0\1\0")  # topic_length 256
        with pytest.raises(RemoteProtocolError) as info:
            d.next_request()
        assert info.value.reason == "length-over-limit"
        assert info.value.fatal

    def test_negative_payload_length_is_fatal(self) -> None:
        d = RequestDecoder()
        d.feed(request_head(6, 1, b"t") + bytes(8) + b"\x80\0\0\0")
        with pytest.raises(RemoteProtocolError) as info:
            d.next_request()
        assert (info.value.error_code, info.value.fatal, info.value.reason) == (
            ErrorCode.INVALID_REQUEST,
            True,
            "negative-length",
        )

    def test_oversized_payload_is_answered_then_skipped_as_it_streams_in(self) -> None:
        limit = 1024
        d = RequestDecoder(max_payload_bytes=limit)
        d.feed(request_head(7, 1, b"big") + bytes(8) + (limit + 1).to_bytes(4, "big") + b"x" * 100)
        with pytest.raises(RemoteProtocolError) as info:
            d.next_request()
        err = info.value
        assert (err.error_code, err.correlation_id, err.fatal) == (ErrorCode.MESSAGE_TOO_LARGE, 7, False)
        assert d.buffered == 0
        assert d.skipping == limit + 1 - 100
        for _ in range(9):
            d.feed(b"x" * 100)
            assert d.buffered == 0
        d.feed(b"x" * (limit + 1 - 1000) + PRODUCE_PROBE_A)
        assert d.skipping == 0
        assert decode_all_requests(d) == [ProduceRequest(10, "probe-a", 42, b"abc")]

    def test_a_2gib_length_prefix_holds_no_memory(self) -> None:
        d = RequestDecoder()
        d.feed(request_head(8, 1, b"t") + bytes(8) + INT32_MAX.to_bytes(4, "big"))
        with pytest.raises(RemoteProtocolError):
            d.next_request()
        chunk = bytes(1 << 20)
        for _ in range(8):
            d.feed(chunk)
        assert d.buffered == 0
        assert d.skipping == INT32_MAX - 8 * len(chunk)

    def test_payload_exactly_at_the_limit_is_a_frame(self) -> None:
        d = RequestDecoder(max_payload_bytes=16)
        d.feed(request_head(9, 1, b"t") + bytes(8) + (16).to_bytes(4, "big") + b"p" * 16)
        assert d.next_request() == ProduceRequest(9, "t", 0, b"p" * 16)

    def test_topic_not_utf8_is_invalid_request_and_decoding_goes_on(self) -> None:
        d = RequestDecoder()
        d.feed(request_head(11, 3, b"\xff\xfe") + bytes(8) + bytes(4) + PRODUCE_PROBE_A)
        with pytest.raises(RemoteProtocolError) as info:
            d.next_request()
        assert (info.value.error_code, info.value.correlation_id, info.value.fatal) == (
            ErrorCode.INVALID_REQUEST,
            11,
            False,
        )
        assert info.value.reason == "topic-not-utf8"
        assert decode_all_requests(d) == [ProduceRequest(10, "probe-a", 42, b"abc")]

    def test_topic_names_are_not_judged_by_the_decoder(self) -> None:
        # Name rules are the broker's business: the frame itself is well formed.
        d = RequestDecoder()
        name = "caf\u00e9 \u2603".encode()
        d.feed(request_head(12, 3, name) + bytes(8) + bytes(4))
        assert d.next_request() == CreateTopicRequest(12, "caf\u00e9 \u2603", 0)


class TestResponseDecoder:
    def test_decodes_the_notes_examples_in_one_stream(self) -> None:
        d = ResponseDecoder()
        for mtype, cid in [
            (MessageType.CREATE_TOPIC, 7),
            (MessageType.CREATE_TOPIC, 8),
            (MessageType.PRODUCE, 9),
            (MessageType.CONSUME, 11),
        ]:
            d.expect(mtype, cid)
        d.feed(
            bytes.fromhex(
                "00000007 01 0000011f71fb04cb 0007 70726f62652d61"
                "00000008 00 05"
                "00000009 01 0000011f71fb04cb 00000000"
                "0000000b 01 000000000000002a 00000002 00000003 616263"
            )
        )
        frames = []
        while (frame := d.next_response()) is not None:
            frames.append(frame)
        assert frames == [
            CreateTopicResponse(7, 1234567890123, "probe-a"),
            ErrorResponse(8, ErrorCode.TOPIC_ALREADY_EXISTS),
            ProduceResponse(9, 1234567890123, 0),
            ConsumeResponse(11, 42, 2, b"abc"),
        ]
        assert d.pending == 0

    def test_waits_for_exact_lengths(self) -> None:
        raw = bytes.fromhex("0000000b 01 000000000000002a 00000002 00000003 616263")
        for cut in range(len(raw)):
            d = ResponseDecoder()
            d.expect(MessageType.CONSUME, 11)
            d.feed(raw[:cut])
            assert d.next_response() is None
            assert d.pending == 1

    def test_correlation_mismatch_is_fatal(self) -> None:
        d = ResponseDecoder()
        d.expect(MessageType.PRODUCE, 1)
        d.feed(bytes.fromhex("00000002 01 0000000000000000 00000000"))
        with pytest.raises(RemoteProtocolError) as info:
            d.next_response()
        assert (info.value.reason, info.value.fatal) == ("correlation-mismatch", True)

    def test_a_frame_with_nothing_pending_is_unexpected(self) -> None:
        d = ResponseDecoder()
        d.feed(bytes.fromhex("00000001 00 04"))
        with pytest.raises(RemoteProtocolError) as info:
            d.next_response()
        assert info.value.reason == "unexpected-frame"

    def test_unsolicited_network_error_leaves_pending_requests_alone(self) -> None:
        d = ResponseDecoder()
        d.expect(MessageType.PRODUCE, 5)
        d.feed(bytes.fromhex("00000000 00 08"))
        assert d.next_response() == UnsolicitedError(ErrorCode.NETWORK_ERROR)
        assert d.pending == 1

    @pytest.mark.parametrize("flag", [b"\x02", b"\xff", b"\x80"])
    def test_success_flag_neither_0_nor_1_is_fatal(self, flag: bytes) -> None:
        d = ResponseDecoder()
        d.expect(MessageType.PRODUCE, 3)
        d.feed(b"\0\0\0\3" + flag + bytes(12))
        with pytest.raises(RemoteProtocolError) as info:
            d.next_response()
        assert info.value.reason == "bad-success-flag"

    def test_consume_payload_length_negative_or_over_limit(self) -> None:
        for length, reason in [(b"\xff\xff\xff\xff", "negative-length"), (b"\x00\x10\x00\x01", "length-over-limit")]:
            d = ResponseDecoder()
            d.expect(MessageType.CONSUME, 4)
            d.feed(b"\0\0\0\4\1" + bytes(8) + b"\0\0\0\1" + length)
            with pytest.raises(RemoteProtocolError) as info:
                d.next_response()
            assert info.value.reason == reason
            assert d.buffered == 0

    def test_create_topic_echo_over_limit(self) -> None:
        d = ResponseDecoder()
        d.expect(MessageType.CREATE_TOPIC, 4)
        d.feed(b"\0\0\0\4\1" + bytes(8) + b"\x01\x00")
        with pytest.raises(RemoteProtocolError) as info:
            d.next_response()
        assert info.value.reason == "length-over-limit"

    def test_unknown_error_codes_are_kept_as_ints(self) -> None:
        d = ResponseDecoder()
        d.expect(MessageType.CONSUME, 4)
        d.feed(b"\0\0\0\4\0\x2a")
        frame = d.next_response()
        assert frame == ErrorResponse(4, 42)
        assert isinstance(frame, ErrorResponse)
        assert not isinstance(frame.error_code, ErrorCode)

    def test_every_message_type_has_a_success_reader(self) -> None:
        assert set(READERS) == set(MessageType)

    def test_a_request_of_an_unknown_type_can_only_fail(self) -> None:
        d = ResponseDecoder()
        d.expect(0x07, 1)
        d.expect(0x07, 2)
        d.feed(bytes.fromhex("00000001 00 02") + bytes.fromhex("00000002 01 0000000000000000 00000000"))
        assert d.next_response() == ErrorResponse(1, ErrorCode.INVALID_MESSAGE_TYPE)
        with pytest.raises(RemoteProtocolError) as info:
            d.next_response()
        assert (info.value.reason, info.value.correlation_id) == ("unexpected-success", 2)

    def test_after_a_fatal_error_every_call_raises_it_again(self) -> None:
        d = ResponseDecoder()
        d.expect(MessageType.PRODUCE, 1)
        d.feed(bytes.fromhex("00000002 01 0000000000000000 00000000"))
        with pytest.raises(RemoteProtocolError) as first:
            d.next_response()
        d.feed(bytes.fromhex("00000001 00 04"))
        with pytest.raises(RemoteProtocolError) as again:
            d.next_response()
        assert again.value is first.value
        assert d.buffered == 0
