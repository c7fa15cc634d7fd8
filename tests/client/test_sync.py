"""MessageClient on real sockets: the mock broker for correct behaviour, scripted brokers for the rest."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest

from mega_client import (
    NO_RETRY,
    BrokerError,
    ClientStateError,
    ConnectionClosedByBroker,
    Consumed,
    ErrorCode,
    InvalidOffsetError,
    InvalidTopicNameError,
    MegaConnectionError,
    MegaProtocolError,
    MegaTimeoutError,
    MessageClient,
    MessageTooLargeError,
    PayloadTooLargeError,
    Produced,
    ResourceExhaustedError,
    TopicAlreadyExistsError,
    TopicCreated,
    TopicNotFoundError,
    ValidationError,
)
from mega_client.protocol import (
    ClientConnection,
    ConsumeRequest,
    CreateTopicRequest,
    ProduceRequest,
    Request,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
)
from mega_client.protocol.limits import INT32_MAX, MAX_PAYLOAD_BYTES
from mock_broker import ThreadedMockBroker

from .conftest import FAST_RETRY
from .scripted import UNSOLICITED, Peer, Script, ScriptedBroker, Topics, answer

Scripted = Callable[[Script | list[Script]], ScriptedBroker]

PAYLOADS = {
    "binary-all-256-values": bytes(range(256)) * 3,
    "utf8-text": "Hello, MEGA! Grüße, 日本語, 🚀".encode(),
    "empty": b"",
    "exactly-1MiB": bytes(i % 251 for i in range(MAX_PAYLOAD_BYTES)),
}


def client_for(broker: ScriptedBroker | ThreadedMockBroker, **options: object) -> MessageClient:
    settings: dict[str, object] = {"connect_timeout": 2.0, "request_timeout": 2.0, "retry": FAST_RETRY}
    settings.update(options)
    return MessageClient(broker.host, broker.port, **settings)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- against the mock broker


def test_create_produce_consume(client: MessageClient, broker: ThreadedMockBroker) -> None:
    created = client.create_topic("test-topic")
    assert isinstance(created, TopicCreated)
    assert created.topic == "test-topic"
    assert str(created) == "test-topic"
    produced = client.produce("test-topic", "Hello, MEGA!")
    assert isinstance(produced, Produced)
    assert produced.offset == 0
    assert produced["offset"] == 0
    consumed = client.consume("test-topic", 0)
    assert isinstance(consumed, Consumed)
    assert consumed.payload == b"Hello, MEGA!"
    assert consumed["payload"] == "Hello, MEGA!"
    assert consumed.next_offset == 1
    assert consumed.timestamp == produced.timestamp
    assert client.produce("test-topic", b"second").offset == 1
    assert broker.topics() == {"test-topic": 2}


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_payloads_round_trip_byte_for_byte(client: MessageClient, payload: bytes) -> None:
    client.create_topic("t")
    offset = client.produce("t", payload).offset
    assert client.consume("t", offset).payload == payload


def test_text_payload_is_sent_as_utf8(client: MessageClient, broker: ThreadedMockBroker) -> None:
    client.create_topic("t")
    client.produce("t", "Grüße 🚀")
    assert broker.messages("t")[0].payload == "Grüße 🚀".encode()
    assert client.consume("t", 0).text == "Grüße 🚀"


def test_requests_on_the_wire(client: MessageClient, broker: ThreadedMockBroker) -> None:
    before = time.time() * 1000
    client.create_topic("t")
    client.produce("t", b"abc")
    client.consume("t", 0)
    after = time.time() * 1000
    (record,) = broker.records()
    create, produce, consume = record.requests
    assert isinstance(create, CreateTopicRequest)
    assert isinstance(produce, ProduceRequest)
    assert isinstance(consume, ConsumeRequest)
    assert [r.correlation_id for r in record.requests] == [1, 2, 3]
    assert (create.topic, create.payload) == ("t", b"")
    assert (produce.topic, produce.payload) == ("t", b"abc")
    assert (consume.topic, consume.offset, consume.payload) == ("t", 0, b"")
    for request in record.requests:
        assert before - 1 <= request.timestamp <= after + 1  # wall clock, milliseconds
    # payload_length is on every request (PROTOCOL.md CLIENT-1): 21 + 1 topic byte (+3, +4 for the offset)
    assert len(record.received) == 22 + 25 + 26


def test_tcp_nodelay_is_set(client: MessageClient) -> None:
    conn = client._conn
    assert conn is not None
    assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_broker_errors_from_the_mock_broker_keep_the_connection(
    broker_factory: Callable[..., ThreadedMockBroker],
) -> None:
    broker = broker_factory(max_messages_per_topic=1, max_payload_bytes=10)
    with client_for(broker) as client:
        with pytest.raises(TopicNotFoundError) as info:
            client.consume("missing", 0)
        assert info.value.code == ErrorCode.TOPIC_NOT_FOUND
        assert info.value.correlation_id == 1
        with pytest.raises(TopicNotFoundError):
            client.produce("missing", b"x")
        client.create_topic("t")
        with pytest.raises(TopicAlreadyExistsError) as exists:
            client.create_topic("t")
        assert exists.value.code_name == "TOPIC_ALREADY_EXISTS"
        with pytest.raises(InvalidOffsetError):
            client.consume("t", 0)
        with pytest.raises(InvalidOffsetError):
            client.consume("t", -1)
        with pytest.raises(MessageTooLargeError):
            client.produce("t", b"x" * 11)
        client.produce("t", b"x" * 10)
        with pytest.raises(ResourceExhaustedError) as full:
            client.produce("t", b"y")
        assert full.value.correlation_id == 9
        assert client.consume("t", 0).payload == b"x" * 10
    assert len(broker.records()) == 1  # every error above left the connection usable


def test_invalid_arguments_are_refused_before_sending(client: MessageClient, broker: ThreadedMockBroker) -> None:
    for name in ["", "x" * 256, "a b", "café", "a/b"]:
        with pytest.raises(InvalidTopicNameError):
            client.create_topic(name)
        with pytest.raises(InvalidTopicNameError):
            client.produce(name, b"x")
        with pytest.raises(InvalidTopicNameError):
            client.consume(name, 0)
    with pytest.raises(PayloadTooLargeError):
        client.produce("t", b"x" * (MAX_PAYLOAD_BYTES + 1))
    with pytest.raises(ValidationError):
        client.consume("t", 2**31)
    with pytest.raises(TypeError):
        client.produce("t", 5)  # type: ignore[arg-type]
    client.create_topic("still-fine")
    (record,) = broker.records()
    assert [r.topic for r in record.requests] == ["still-fine"]  # nothing was sent before it
    assert len(record.received) == 21 + len("still-fine")


def test_lifecycle(broker: ThreadedMockBroker) -> None:
    client = client_for(broker)
    assert not client.connected
    with pytest.raises(ClientStateError, match="connect"):
        client.create_topic("t")
    assert broker.records() == []  # no connection before connect()
    client.connect()
    assert client.connected
    with pytest.raises(ClientStateError, match="already"):
        client.connect()
    client.create_topic("t")
    client.close()
    client.close()  # idempotent
    assert not client.connected
    for call in (lambda: client.create_topic("u"), lambda: client.produce("t", b""), lambda: client.consume("t", 0)):
        with pytest.raises(ClientStateError, match="closed"):
            call()
    client.connect()  # a closed client may be connected again
    assert client.consume("t", 0) if False else client.produce("t", b"again").offset == 0
    client.close()
    broker.wait_closed_connections(5)
    assert len(broker.records()) == 2  # one connection per connect()


def test_context_manager_connects_and_closes(broker: ThreadedMockBroker) -> None:
    with client_for(broker) as client:
        assert client.connected
        client.create_topic("t")
    assert not client.connected
    broker.wait_closed_connections(5)
    assert "MessageClient" in repr(client)


def test_close_sends_fin(scripted: Scripted) -> None:
    topics = Topics()
    b = scripted(lambda peer: peer.serve(topics))
    client = client_for(b)
    client.connect()
    client.create_topic("t")
    client.close()
    b.join()
    (peer,) = b.peers
    assert peer.eof  # an orderly EOF (FIN) ended serve(), not a reset or the timeout


def test_refused_connection_is_a_connection_error_quickly() -> None:
    with socket.socket() as s:  # find a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = MessageClient("127.0.0.1", port, retry=FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(MegaConnectionError) as info:
        client.connect()
    assert time.monotonic() - started < 1.0
    assert info.value.request_sent is False
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    with pytest.raises(ClientStateError):
        client.create_topic("t")  # connect() failed: still not connected


def test_connect_timeout(unresponsive_port: int) -> None:
    client = MessageClient("127.0.0.1", unresponsive_port, connect_timeout=0.2, retry=NO_RETRY)
    started = time.monotonic()
    with pytest.raises(MegaTimeoutError, match="connecting") as info:
        client.connect()
    assert 0.2 <= time.monotonic() - started < 1.0
    assert not info.value.request_sent
    # Connecting is retried: three tries of 0.2 s.
    client = MessageClient("127.0.0.1", unresponsive_port, connect_timeout=0.2, retry=FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(MegaTimeoutError):
        client.connect()
    assert 0.6 <= time.monotonic() - started < 2.0


def test_connect_retries_until_the_broker_is_up(broker: ThreadedMockBroker) -> None:
    port = broker.port
    broker.stop()
    restarted: list[ThreadedMockBroker] = []

    def start_later() -> None:
        time.sleep(0.15)
        restarted.append(ThreadedMockBroker(port=port).start())

    thread = threading.Thread(target=start_later)
    thread.start()
    client = MessageClient("127.0.0.1", port, retry=FAST_RETRY.__class__(attempts=20, initial_backoff=0.05))
    try:
        client.connect()
        client.create_topic("t")
    finally:
        client.close()
        thread.join()
        for b in restarted:
            b.stop()


def test_correlation_ids_wrap_within_int32(client: MessageClient, broker: ThreadedMockBroker) -> None:
    client._protocol = ClientConnection(first_correlation_id=INT32_MAX - 1)
    client.create_topic("a")
    client.create_topic("b")
    client.create_topic("c")
    assert [r.correlation_id for r in broker.records()[0].requests] == [INT32_MAX - 1, INT32_MAX, 1]


# --------------------------------------------------------------------------- scripted brokers


def first_then_serve(make: Callable[[Request], bytes], topics: Topics | None = None) -> Script:
    """Answer the first request with ``make(request)``, then answer correctly until the client closes."""
    state = topics if topics is not None else Topics()

    def script(peer: Peer) -> None:
        request = peer.request()
        if request is None:
            return
        peer.send(make(request))
        peer.serve(state)

    return script


ERROR_CODES = [*ErrorCode, 42, -3]


@pytest.mark.parametrize("code", ERROR_CODES, ids=[getattr(c, "name", str(c)) for c in ERROR_CODES])
def test_each_error_code_raises_its_exception(scripted: Scripted, code: int) -> None:
    topics = Topics()
    b = scripted(first_then_serve(lambda req: encode_error(req.correlation_id, code), topics))
    with client_for(b) as client:
        with pytest.raises(BrokerError) as info:
            client.consume("t", 0)
        exc = info.value
        assert exc.code == code
        assert exc.correlation_id == 1
        expected = BrokerError.for_code(code)
        assert type(exc) is type(expected)
        assert exc.code_name == expected.code_name
        client.create_topic("t")  # the same connection goes on
    assert b.connections == 1


def _wrong_cid(req: Request) -> bytes:
    return encode_produce_ok(req.correlation_id + 1, req.timestamp, 0)


def _flag(value: int) -> Callable[[Request], bytes]:
    return lambda req: struct.pack(">iBqi", req.correlation_id, value, req.timestamp, 0)


def _consume_length(length: int) -> Callable[[Request], bytes]:
    return lambda req: struct.pack(">ibqii", req.correlation_id, 1, 0, 1, length) + b"x" * 8


def _echo_length(length: int) -> Callable[[Request], bytes]:
    return lambda req: struct.pack(">ibqH", req.correlation_id, 1, req.timestamp, length) + b"x" * 8


def _echo(topic: str) -> Callable[[Request], bytes]:
    return lambda req: encode_create_topic_ok(req.correlation_id, req.timestamp, topic)


PROTOCOL_ERRORS: dict[str, tuple[str, Callable[[Request], bytes], str]] = {
    "wrong-correlation-id": ("produce", _wrong_cid, "correlation-mismatch"),
    "success-flag-2": ("produce", _flag(2), "bad-success-flag"),
    "success-flag-0xff": ("produce", _flag(0xFF), "bad-success-flag"),
    "negative-payload-length": ("consume", _consume_length(-1), "negative-length"),
    "payload-length-over-1MiB": ("consume", _consume_length(MAX_PAYLOAD_BYTES + 1), "length-over-limit"),
    "topic-echo-over-255": ("create", _echo_length(256), "length-over-limit"),
    "topic-echo-mismatch": ("create", _echo("other"), "topic-echo-mismatch"),
    # Only 00 00 00 00 00 08 is the unsolicited frame (PROTOCOL.md RESP-7); another code with id 0 answers nothing.
    "error-frame-with-id-0": ("consume", lambda req: encode_error(0, 4), "correlation-mismatch"),
}


def _call(client: MessageClient, what: str) -> object:
    if what == "produce":
        return client.produce("t", b"payload")
    if what == "consume":
        return client.consume("t", 0)
    return client.create_topic("t")


@pytest.mark.parametrize(("what", "make", "reason"), PROTOCOL_ERRORS.values(), ids=PROTOCOL_ERRORS.keys())
def test_protocol_errors_close_the_connection(
    scripted: Scripted, what: str, make: Callable[[Request], bytes], reason: str
) -> None:
    topics = Topics()
    b = scripted([first_then_serve(make, topics), lambda peer: peer.serve(topics)])
    with client_for(b) as client:
        started = time.monotonic()
        with pytest.raises(MegaProtocolError) as info:
            _call(client, what)
        assert info.value.reason == reason
        assert time.monotonic() - started < 1.5  # found when the length/flag is read, not after 2 s
        assert not client.connected
        assert b.connections == 1  # protocol errors are not retried
        client.create_topic("after")  # the next call reconnects
        assert b.connections == 2


def test_unsolicited_frame_instead_of_an_answer(scripted: Scripted) -> None:
    b = scripted(first_then_serve(lambda req: UNSOLICITED))
    with client_for(b) as client:
        with pytest.raises(ConnectionClosedByBroker) as info:
            client.produce("t", b"x")
        assert info.value.code == ErrorCode.NETWORK_ERROR
        assert info.value.code_name == "NETWORK_ERROR"
        assert info.value.request_sent
        assert isinstance(info.value, ConnectionError)
        assert not client.connected
        assert b.connections == 1  # PRODUCE is not resent


def test_unsolicited_frame_on_a_safe_request_is_retried(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(5, b"m")]

    def closing(peer: Peer) -> None:
        peer.request()
        peer.send(UNSOLICITED)
        peer.close()

    b = scripted([closing, lambda peer: peer.serve(topics)])
    with client_for(b) as client:
        assert client.consume("t", 0).payload == b"m"
    assert b.connections == 2


def test_unsolicited_frame_while_idle_means_reconnect(scripted: Scripted) -> None:
    topics = Topics()
    closed = threading.Event()

    def idle_close(peer: Peer) -> None:
        peer.serve(topics, count=1)
        time.sleep(0.05)
        peer.send(UNSOLICITED)
        peer.close()
        closed.set()

    b = scripted([idle_close, lambda peer: peer.serve(topics)])
    with client_for(b, retry=NO_RETRY) as client:
        client.create_topic("t")
        assert closed.wait(5)  # the broker gave up on the idle connection
        assert client.produce("t", b"x").offset == 0  # not sent on the dead connection: no retry needed
    assert b.connections == 2
    assert [type(r) for r in b.requests()] == [CreateTopicRequest, ProduceRequest]


def test_answer_coalesced_with_the_unsolicited_frame(scripted: Scripted) -> None:
    topics = Topics()

    def coalesce(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        peer.send(answer(request, topics) + UNSOLICITED)
        peer.close()

    b = scripted([coalesce, lambda peer: peer.serve(topics)])
    with client_for(b, retry=NO_RETRY) as client:
        assert client.create_topic("t").topic == "t"
        assert client.produce("t", b"x").offset == 0
    assert b.connections == 2


def test_bytes_while_idle_are_a_protocol_error(scripted: Scripted) -> None:
    topics = Topics()

    sent = threading.Event()

    def chatty(peer: Peer) -> None:
        peer.serve(topics, count=1)
        peer.send(b"\x00\x00\x00\x07\x01")
        sent.set()
        peer.wait_eof()

    b = scripted([chatty, lambda peer: peer.serve(topics)])
    with client_for(b) as client:
        client.create_topic("t")
        assert sent.wait(5)
        with pytest.raises(MegaProtocolError) as info:
            client.produce("t", b"x")
        assert info.value.reason == "unexpected-frame"
        assert client.produce("t", b"x").offset == 0
    b.join()
    assert len(b.peers[0].requests) == 1  # the PRODUCE was never sent on the bad connection


@pytest.mark.parametrize("what", ["create", "produce", "consume"])
def test_answers_one_byte_at_a_time(scripted: Scripted, what: str) -> None:
    topics = Topics()
    topics.logs["t"] = [(42, bytes(range(256)))]

    def trickle(peer: Peer) -> None:
        while (request := peer.request()) is not None:
            peer.send_in_pieces(answer(request, topics), size=1, pause=0.001)

    b = scripted(trickle)
    with client_for(b) as client:
        if what == "create":
            assert client.create_topic("new-topic").topic == "new-topic"
        elif what == "produce":
            assert client.produce("t", b"x").offset == 1
        else:
            consumed = client.consume("t", 0)
            assert (consumed.payload, consumed.timestamp, consumed.next_offset) == (bytes(range(256)), 42, 1)


def test_big_answer_in_random_slices(scripted: Scripted) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    topics = Topics()
    topics.logs["t"] = [(1, payload)]

    def slices(peer: Peer) -> None:
        while (request := peer.request()) is not None:
            peer.send_in_pieces(answer(request, topics), size=65521)

    b = scripted(slices)
    with client_for(b) as client:
        assert client.consume("t", 0).payload == payload


def test_broker_vanishing_mid_answer(scripted: Scripted) -> None:
    def vanish(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        peer.send(encode_produce_ok(request.correlation_id, request.timestamp, 0)[:9])
        time.sleep(0.05)
        peer.close()

    b = scripted(vanish)
    with client_for(b) as client:
        with pytest.raises(MegaConnectionError, match="mid-response") as info:
            client.produce("t", b"x")
        assert info.value.request_sent
        assert not client.connected
    assert b.connections == 1


def test_reset_while_waiting(scripted: Scripted) -> None:
    def reset(peer: Peer) -> None:
        peer.request()
        peer.reset()

    b = scripted(reset)
    with client_for(b) as client, pytest.raises(MegaConnectionError):
        client.produce("t", b"x")


def test_broker_that_never_answers_times_out(scripted: Scripted) -> None:
    b = scripted(lambda peer: peer.wait_eof(10))
    with client_for(b, request_timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(MegaTimeoutError) as info:
            client.consume("t", 0)
        elapsed = time.monotonic() - started
        assert 0.2 <= elapsed < 1.0
        assert info.value.request_sent
        assert isinstance(info.value, TimeoutError)
        assert not client.connected  # a late answer must not be read as the next one
    b.join()
    assert b.peers[0].eof
    assert len(b.requests()) == 1  # a timeout is not retried


def test_request_timeout_is_an_overall_deadline(scripted: Scripted) -> None:
    """A broker dripping a byte every 100 ms must not stretch a 0.3 s timeout to 1.7 s."""

    def drip(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        peer.send_in_pieces(encode_produce_ok(request.correlation_id, request.timestamp, 0), pause=0.1)

    b = scripted(drip)
    with client_for(b, request_timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(MegaTimeoutError):
            client.produce("t", b"x")
        assert time.monotonic() - started < 1.2


def _drop_after_reading(peer: Peer) -> None:
    peer.request()
    peer.close()


def test_produce_is_not_resent_by_default(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = []
    b = scripted([_drop_after_reading, lambda peer: peer.serve(topics)])
    with client_for(b) as client:
        with pytest.raises(MegaConnectionError) as info:
            client.produce("t", b"once")
        assert info.value.request_sent  # it may have been stored: the caller decides
        assert b.connections == 1
        assert client.produce("t", b"next").offset == 0  # the next call reconnects
    assert [r.payload for r in b.requests() if isinstance(r, ProduceRequest)] == [b"once", b"next"]


def test_produce_is_resent_with_at_least_once(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = []
    b = scripted([_drop_after_reading, lambda peer: peer.serve(topics)])
    with client_for(b, produce_delivery="at-least-once") as client:
        assert client.produce("t", b"twice").offset == 0
    assert [r.payload for r in b.requests()] == [b"twice", b"twice"]
    assert b.connections == 2


@pytest.mark.parametrize("what", ["consume", "create"])
def test_safe_requests_are_retried_after_a_drop(scripted: Scripted, what: str) -> None:
    topics = Topics()
    topics.logs["t"] = [(1, b"m")]
    b = scripted([_drop_after_reading, lambda peer: peer.serve(topics)])
    with client_for(b) as client:
        if what == "consume":
            assert client.consume("t", 0).payload == b"m"
        else:
            assert client.create_topic("new").topic == "new"
    assert b.connections == 2


def test_retries_are_bounded(scripted: Scripted) -> None:
    b = scripted(_drop_after_reading)
    with client_for(b) as client, pytest.raises(MegaConnectionError):
        client.consume("t", 0)
    assert b.connections == FAST_RETRY.attempts


def test_reconnect_after_the_broker_closed_the_idle_connection(scripted: Scripted) -> None:
    topics = Topics()
    closed = threading.Event()

    def serve_one(peer: Peer) -> None:
        peer.serve(topics, count=1)
        peer.close()
        closed.set()

    b = scripted([serve_one, lambda peer: peer.serve(topics)])
    with client_for(b, retry=NO_RETRY) as client:
        client.create_topic("t")
        assert closed.wait(5)
        assert client.produce("t", b"x").offset == 0  # even a PRODUCE: it was never sent on the dead socket
    assert b.connections == 2
    assert len([r for r in b.requests() if isinstance(r, ProduceRequest)]) == 1


def test_reconnect_after_the_broker_restarts(broker: ThreadedMockBroker) -> None:
    port = broker.port
    client = client_for(broker)
    client.connect()
    client.create_topic("t")
    broker.stop()
    with ThreadedMockBroker(port=port) as again:
        assert client.create_topic("t").topic == "t"  # a fresh broker: the topic is new again
        client.close()
        assert again.topics() == {"t": 0}


def test_close_from_another_thread_interrupts_a_call(scripted: Scripted) -> None:
    b = scripted(lambda peer: peer.wait_eof(10))
    client = client_for(b, request_timeout=5)
    client.connect()
    threading.Timer(0.1, client.close).start()
    started = time.monotonic()
    with pytest.raises(ClientStateError):
        client.consume("t", 0)
    assert time.monotonic() - started < 2
