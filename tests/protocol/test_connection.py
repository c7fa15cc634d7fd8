"""ClientConnection: a client's side of one connection, as docs/PROTOCOL.md sections 5 and 8 say.

Requests go out numbered (CLIENT-4, CLIENT-5), answers come back paired with
them in order (CONN-5, CLIENT-6), and every way a connection ends lists the
requests left unanswered (CLIENT-10, CLIENT-14, CONN-9).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from mega_client.protocol import (
    Answer,
    ClientConnection,
    ConnectionState,
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    CreateTopicResponse,
    EndOfStream,
    ErrorCode,
    ErrorResponse,
    LocalProtocolError,
    ProduceRequest,
    ProduceResponse,
    ProtocolViolation,
    Request,
    UnsolicitedFrame,
    encode_consume_ok,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
    encode_request,
)
from mega_client.protocol.limits import INT32_MAX
from mock_broker import ThreadedMockBroker

UNSOLICITED = bytes.fromhex("000000000008")


def produce(conn: ClientConnection, payload: bytes = b"m") -> ProduceRequest:
    """Send a PRODUCE on ``conn`` with its next id; return the request."""
    request = ProduceRequest(conn.next_correlation_id, "t", 42, payload)
    conn.send(request)
    return request


def produce_ok(request: Request, offset: int) -> bytes:
    return encode_produce_ok(request.correlation_id, request.timestamp, offset)


def events(conn: ClientConnection) -> list[object]:
    out: list[object] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


# --------------------------------------------------------------------------- sending


def test_send_returns_the_request_s_bytes_and_records_it() -> None:
    conn = ClientConnection()
    assert conn.state is ConnectionState.IDLE
    request = CreateTopicRequest(conn.next_correlation_id, "orders", 7)
    assert conn.send(request) == encode_request(request)
    assert (conn.state, conn.pending, conn.oldest_pending) == (ConnectionState.WAITING, 1, request)


def test_correlation_ids_count_up_and_wrap_past_zero() -> None:
    conn = ClientConnection()
    assert [produce(conn).correlation_id for _ in range(3)] == [1, 2, 3]
    conn = ClientConnection(first_correlation_id=INT32_MAX - 1)
    assert [produce(conn).correlation_id for _ in range(3)] == [INT32_MAX - 1, INT32_MAX, 1]


@pytest.mark.parametrize("first", [0, -1, INT32_MAX + 1])
def test_the_first_id_is_a_positive_int32(first: int) -> None:
    with pytest.raises(ValueError, match="first_correlation_id"):
        ClientConnection(first_correlation_id=first)


def test_a_request_with_another_id_is_refused_and_nothing_is_recorded() -> None:
    conn = ClientConnection()
    with pytest.raises(LocalProtocolError, match="correlation id 5"):
        conn.send(ProduceRequest(5, "t", 0, b""))
    with pytest.raises(LocalProtocolError):  # an offset the wire's int32 cannot carry
        conn.send(ConsumeRequest(1, "t", 0, INT32_MAX + 1))
    assert (conn.pending, conn.next_correlation_id, conn.state) == (0, 1, ConnectionState.IDLE)


# --------------------------------------------------------------------------- answers


def test_answers_are_paired_with_their_requests_in_order() -> None:
    conn = ClientConnection()
    create = CreateTopicRequest(conn.next_correlation_id, "t", 1)
    conn.send(create)
    first = produce(conn, b"a")
    consume = ConsumeRequest(conn.next_correlation_id, "t", 3, 0)
    conn.send(consume)
    missing = produce(conn)
    conn.receive_data(
        encode_create_topic_ok(1, 1, "t")
        + produce_ok(first, 0)
        + encode_consume_ok(3, 42, 1, b"a")
        + encode_error(4, ErrorCode.TOPIC_NOT_FOUND)
    )
    assert events(conn) == [
        Answer(create, CreateTopicResponse(1, 1, "t")),
        Answer(first, ProduceResponse(2, 42, 0)),
        Answer(consume, ConsumeResponse(3, 42, 1, b"a")),
        Answer(missing, ErrorResponse(4, ErrorCode.TOPIC_NOT_FOUND)),
    ]
    assert (conn.state, conn.pending) == (ConnectionState.IDLE, 0)


def test_answers_split_at_every_byte_boundary() -> None:
    conn = ClientConnection()
    requests = [produce(conn) for _ in range(3)]
    stream = b"".join(produce_ok(r, i) for i, r in enumerate(requests))
    got: list[object] = []
    for i in range(len(stream)):
        conn.receive_data(stream[i : i + 1])
        got += events(conn)
    assert got == [Answer(r, ProduceResponse(r.correlation_id, 42, i)) for i, r in enumerate(requests)]


# --------------------------------------------------------------------------- endings


def test_eof_after_k_of_n_answers_ends_with_the_rest_unanswered() -> None:
    conn = ClientConnection()
    requests = [produce(conn) for _ in range(5)]
    conn.receive_data(produce_ok(requests[0], 0) + produce_ok(requests[1], 1))
    conn.receive_data(b"")
    got = events(conn)
    assert [type(e) for e in got] == [Answer, Answer, EndOfStream]
    assert got[2] == EndOfStream(tuple(requests[2:]), partial_bytes=0)
    assert conn.state is ConnectionState.CLOSED
    assert conn.next_event() is None


def test_eof_mid_response_says_how_much_of_it_arrived() -> None:
    conn = ClientConnection()
    request = produce(conn)
    conn.receive_data(produce_ok(request, 0)[:11])
    assert conn.next_event() is None
    conn.receive_data(b"")
    assert conn.next_event() == EndOfStream((request,), partial_bytes=11)


def test_the_unsolicited_frame_ends_the_connection_and_fails_every_pending_request() -> None:
    conn = ClientConnection()
    requests = [produce(conn) for _ in range(3)]
    conn.receive_data(produce_ok(requests[0], 0) + UNSOLICITED + produce_ok(requests[1], 1))
    assert events(conn) == [
        Answer(requests[0], ProduceResponse(1, 42, 0)),
        UnsolicitedFrame(ErrorCode.NETWORK_ERROR, tuple(requests[1:])),
    ]
    assert conn.state is ConnectionState.CLOSED
    with pytest.raises(LocalProtocolError, match="ended"):
        produce(conn)


def test_the_unsolicited_frame_on_an_idle_connection() -> None:
    conn = ClientConnection()
    conn.receive_data(UNSOLICITED)
    assert conn.next_event() == UnsolicitedFrame(ErrorCode.NETWORK_ERROR, ())


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda frame: frame[:3] + bytes([frame[3] ^ 0x40]) + frame[4:], "correlation-mismatch"),
        (lambda frame: frame[:4] + b"\x02" + frame[5:], "bad-success-flag"),
    ],
    ids=["wrong-correlation-id", "bad-success-flag"],
)
def test_a_bad_5th_of_10_answers_leaves_the_first_four_answered(mangle: Callable[[bytes], bytes], reason: str) -> None:
    conn = ClientConnection()
    requests = [produce(conn) for _ in range(10)]
    frames = [produce_ok(r, i) for i, r in enumerate(requests)]
    frames[4] = mangle(frames[4])
    conn.receive_data(b"".join(frames))
    got = events(conn)
    assert got[:4] == [Answer(r, ProduceResponse(r.correlation_id, 42, i)) for i, r in enumerate(requests[:4])]
    (violation,) = got[4:]
    assert isinstance(violation, ProtocolViolation)
    assert violation.error.reason == reason
    assert violation.unanswered == tuple(requests[4:])
    assert conn.state is ConnectionState.BROKEN
    conn.receive_data(frames[5])
    assert conn.next_event() is None


def test_bytes_while_nothing_is_pending_are_a_protocol_violation() -> None:
    conn = ClientConnection()
    conn.receive_data(encode_error(1, ErrorCode.INTERNAL_ERROR))
    event = conn.next_event()
    assert isinstance(event, ProtocolViolation)
    assert (event.error.reason, event.unanswered) == ("unexpected-frame", ())


def test_close_returns_the_unanswered_requests() -> None:
    conn = ClientConnection()
    requests = [produce(conn) for _ in range(3)]
    conn.receive_data(produce_ok(requests[0], 0) + produce_ok(requests[1], 1)[:5])
    assert events(conn) == [Answer(requests[0], ProduceResponse(1, 42, 0))]
    assert conn.close() == tuple(requests[1:])
    assert (conn.state, conn.buffered, conn.pending) == (ConnectionState.CLOSED, 0, 0)
    assert conn.close() == ()
    conn.receive_data(produce_ok(requests[1], 1))
    assert conn.next_event() is None


def test_nothing_is_sent_once_the_broker_closed_its_side() -> None:
    conn = ClientConnection()
    request = produce(conn)
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        produce(conn)
    conn.receive_data(produce_ok(request, 0))  # after EOF: ignored
    assert conn.next_event() == EndOfStream((request,), 0)


# --------------------------------------------------------------------------- with a socket


def test_a_socket_around_a_client_connection_is_a_client() -> None:
    """The module docstring's loop, on a real socket against the mock broker."""
    with ThreadedMockBroker(port=0) as broker, socket.create_connection((broker.host, broker.port), timeout=5) as sock:
        conn = ClientConnection()
        requests: list[Request] = [CreateTopicRequest(conn.next_correlation_id, "orders", 1)]
        sock.sendall(conn.send(requests[-1]))
        for payload in (b"first", b"second"):
            requests.append(ProduceRequest(conn.next_correlation_id, "orders", 2, payload))
            sock.sendall(conn.send(requests[-1]))  # pipelined: both before any answer
        answers = []
        while len(answers) < 3:
            while (event := conn.next_event()) is None:
                conn.receive_data(sock.recv(65536))
            answers.append(event)
        assert answers == [
            Answer(requests[0], CreateTopicResponse(1, 1, "orders")),
            Answer(requests[1], ProduceResponse(2, 2, 0)),
            Answer(requests[2], ProduceResponse(3, 2, 1)),
        ]
        assert conn.state is ConnectionState.IDLE
        sock.shutdown(socket.SHUT_WR)
        conn.receive_data(sock.recv(65536))  # the broker closes in turn: b""
        assert conn.next_event() == EndOfStream((), 0)
