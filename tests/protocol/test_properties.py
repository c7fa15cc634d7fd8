"""Properties every MEGA codec must have, checked with hypothesis.

- encode then decode is the identity for every frame kind;
- any split of a valid byte stream into chunks decodes to the same frames;
- arbitrary bytes fed to either decoder yield only frames or RemoteProtocolError;
- no decoder holds more than one frame of the largest allowed size.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mega_client.protocol import (
    MessageType,
    RemoteProtocolError,
    Request,
    RequestDecoder,
    Response,
    ResponseDecoder,
    ResponseEvent,
    encode_request,
    encode_response,
)

from .strategies import answered_responses, requests, splits


def drain_requests(decoder: RequestDecoder) -> list[Request]:
    out = []
    while (frame := decoder.next_request()) is not None:
        out.append(frame)
    return out


def drain_responses(decoder: ResponseDecoder) -> list[ResponseEvent]:
    out = []
    while (frame := decoder.next_response()) is not None:
        out.append(frame)
    return out


@given(requests)
def test_request_round_trip(request: Request) -> None:
    decoder = RequestDecoder()
    decoder.feed(encode_request(request))
    assert decoder.next_request() == request
    assert decoder.buffered == 0


@given(answered_responses)
def test_response_round_trip(answered: tuple[MessageType, Response]) -> None:
    mtype, response = answered
    decoder = ResponseDecoder()
    decoder.expect(mtype, response.correlation_id)
    decoder.feed(encode_response(response))
    assert decoder.next_response() == response
    assert (decoder.pending, decoder.buffered) == (0, 0)


@given(
    st.lists(requests, max_size=8).flatmap(lambda rs: st.tuples(st.just(rs), splits(b"".join(map(encode_request, rs)))))
)
def test_any_split_of_a_request_stream_decodes_the_same(case: tuple[list[Request], list[bytes]]) -> None:
    frames, chunks = case
    decoder = RequestDecoder()
    got: list[Request] = []
    for chunk in chunks:
        decoder.feed(chunk)
        got += drain_requests(decoder)
    assert got == frames


@given(
    st.lists(answered_responses, max_size=8).flatmap(
        lambda rs: st.tuples(st.just(rs), splits(b"".join(encode_response(r) for _, r in rs)))
    )
)
def test_any_split_of_a_response_stream_decodes_the_same(
    case: tuple[list[tuple[MessageType, Response]], list[bytes]],
) -> None:
    answered, chunks = case
    decoder = ResponseDecoder()
    for mtype, response in answered:
        decoder.expect(mtype, response.correlation_id)
    got: list[ResponseEvent] = []
    for chunk in chunks:
        decoder.feed(chunk)
        got += drain_responses(decoder)
    assert got == [r for _, r in answered]


# Small limits so that random bytes reach them often.
SMALL = {"max_payload_bytes": 64, "max_topic_bytes": 16}


@given(st.lists(st.binary(max_size=96), max_size=16))
def test_arbitrary_bytes_to_the_request_decoder(chunks: list[bytes]) -> None:
    decoder = RequestDecoder(**SMALL)
    for chunk in chunks:
        decoder.feed(chunk)
        while True:
            try:
                frame = decoder.next_request()
            except RemoteProtocolError as exc:
                if exc.fatal:
                    return
                continue
            if frame is None:
                break
            assert len(frame.payload) <= SMALL["max_payload_bytes"]
        assert decoder.buffered < decoder.max_frame_bytes


@given(
    st.lists(st.tuples(st.sampled_from(list(MessageType)), st.integers(-2, 2)), max_size=8),
    st.lists(st.binary(max_size=96), max_size=16),
)
def test_arbitrary_bytes_to_the_response_decoder(pending: list[tuple[MessageType, int]], chunks: list[bytes]) -> None:
    decoder = ResponseDecoder(**SMALL)
    for mtype, cid in pending:
        decoder.expect(mtype, cid)
    for chunk in chunks:
        decoder.feed(chunk)
        try:
            drain_responses(decoder)
        except RemoteProtocolError as exc:
            assert exc.fatal
            assert decoder.buffered == 0
            return
        assert decoder.buffered < decoder.max_frame_bytes


@given(requests, st.data())
def test_mutated_requests_yield_frames_or_the_codec_error(request: Request, data: st.DataObject) -> None:
    raw = bytearray(encode_request(request))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    decoder = RequestDecoder(**SMALL)
    decoder.feed(bytes(raw) + bytes(raw))
    while True:
        try:
            if decoder.next_request() is None:
                break
        except RemoteProtocolError as exc:
            if exc.fatal:
                break
    assert decoder.buffered < decoder.max_frame_bytes
