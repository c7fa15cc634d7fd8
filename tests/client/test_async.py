"""AsyncMessageClient on real sockets: pipelining, matching, failures shared by pending requests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import pytest

from mega_client import (
    NO_RETRY,
    AsyncMessageClient,
    BrokerError,
    ClientStateError,
    ConnectionClosedByBroker,
    ErrorCode,
    InvalidOffsetError,
    InvalidTopicNameError,
    MegaConnectionError,
    MegaProtocolError,
    MegaTimeoutError,
    PayloadTooLargeError,
    TopicAlreadyExistsError,
    TopicNotFoundError,
)
from mega_client._operations import CorrelationIds
from mega_client.protocol import ProduceRequest, encode_create_topic_ok, encode_error, encode_produce_ok
from mega_client.protocol.limits import INT32_MAX, MAX_PAYLOAD_BYTES
from mock_broker import ThreadedMockBroker

from .conftest import FAST_RETRY, eventually, run
from .scripted import UNSOLICITED, Peer, Script, ScriptedBroker, Topics, answer

Scripted = Callable[[Script | list[Script]], ScriptedBroker]


def client_for(broker: ScriptedBroker | ThreadedMockBroker, **options: object) -> AsyncMessageClient:
    settings: dict[str, object] = {"connect_timeout": 2.0, "request_timeout": 2.0, "retry": FAST_RETRY}
    settings.update(options)
    return AsyncMessageClient(broker.host, broker.port, **settings)  # type: ignore[arg-type]


def batch_then_serve(count: int, topics: Topics, make: Callable[[list[bytes]], bytes] = b"".join) -> Script:
    """Read ``count`` requests, answer them all in one write (``make`` may mangle it), then serve."""

    def script(peer: Peer) -> None:
        requests = [peer.request() for _ in range(count)]
        assert all(r is not None for r in requests)
        peer.send(make([answer(r, topics) for r in requests if r is not None]))
        peer.serve(topics)

    return script


# --------------------------------------------------------------------------- against the mock broker


def test_create_produce_consume(broker: ThreadedMockBroker) -> None:
    async def main() -> None:
        async with client_for(broker) as client:
            created = await client.create_topic("test-topic")
            assert str(created) == "test-topic"
            produced = await client.produce("test-topic", "Hello, MEGA!")
            assert produced["offset"] == 0
            consumed = await client.consume("test-topic", 0)
            assert consumed.payload == b"Hello, MEGA!"
            assert consumed["payload"] == "Hello, MEGA!"
            assert consumed.timestamp == produced.timestamp
            with pytest.raises(TopicAlreadyExistsError):
                await client.create_topic("test-topic")
            with pytest.raises(InvalidOffsetError):
                await client.consume("test-topic", 1)
            with pytest.raises(TopicNotFoundError) as info:
                await client.produce("missing", b"")
            assert info.value.correlation_id == 6

    run(main())
    assert len(broker.records()) == 1


@pytest.mark.parametrize(
    "payload",
    [bytes(range(256)), "Grüße 🚀".encode(), b"", bytes(i % 253 for i in range(MAX_PAYLOAD_BYTES))],
    ids=["binary-256", "utf8", "empty", "1MiB"],
)
def test_payloads_round_trip(broker: ThreadedMockBroker, payload: bytes) -> None:
    async def main() -> None:
        async with client_for(broker) as client:
            await client.create_topic("t")
            offset = (await client.produce("t", payload)).offset
            assert (await client.consume("t", offset)).payload == payload

    run(main())


def test_hundreds_of_concurrent_requests_on_one_connection(broker: ThreadedMockBroker) -> None:
    n = 400

    async def main() -> None:
        async with client_for(broker) as client:
            await asyncio.gather(*(client.create_topic(f"t{i % 4}") for i in range(4)))
            payloads = [f"message {i} ".encode() * (i % 7) + bytes([i % 256]) for i in range(n)]
            produced = await asyncio.gather(*(client.produce(f"t{i % 4}", p) for i, p in enumerate(payloads)))
            # Each caller got its own answer: offsets are a permutation per topic...
            for t in range(4):
                offsets = sorted(r.offset for i, r in enumerate(produced) if i % 4 == t)
                assert offsets == list(range(n // 4))
            assert len({r.correlation_id for r in produced}) == n
            # ... and consuming each offset gives back that caller's payload.
            consumed = await asyncio.gather(*(client.consume(r.topic, r.offset) for r in produced))
            assert [c.payload for c in consumed] == payloads
            # Errors are matched too, in the middle of successes.
            mixed = await asyncio.gather(
                *(client.consume("t0", i if i % 3 else -1) for i in range(60)), return_exceptions=True
            )
            for i, outcome in enumerate(mixed):
                if i % 3:
                    assert not isinstance(outcome, BaseException)
                    assert outcome.offset == i
                else:
                    assert isinstance(outcome, InvalidOffsetError)

    run(main())
    (record,) = broker.records()
    assert record.request_count == 4 + 2 * n + 60


def test_lifecycle(broker: ThreadedMockBroker) -> None:
    async def main() -> None:
        client = client_for(broker)
        with pytest.raises(ClientStateError, match="connect"):
            await client.create_topic("t")
        await client.connect()
        assert client.connected
        with pytest.raises(ClientStateError, match="already"):
            await client.connect()
        await client.create_topic("t")
        await client.close()
        await client.close()
        assert not client.connected
        with pytest.raises(ClientStateError, match="closed"):
            await client.produce("t", b"")
        async with client:  # reconnects a closed client
            assert (await client.produce("t", b"x")).offset == 0
        assert "AsyncMessageClient" in repr(client)

    run(main())
    broker.wait_closed_connections(5)
    assert len(broker.records()) == 2


def test_invalid_arguments_are_refused_before_sending(broker: ThreadedMockBroker) -> None:
    async def main() -> None:
        async with client_for(broker) as client:
            with pytest.raises(InvalidTopicNameError):
                await client.create_topic("no spaces")
            with pytest.raises(InvalidTopicNameError):
                await client.consume("", 0)
            with pytest.raises(PayloadTooLargeError):
                await client.produce("t", b"x" * (MAX_PAYLOAD_BYTES + 1))
            await client.create_topic("ok")

    run(main())
    (record,) = broker.records()
    assert [r.topic for r in record.requests] == ["ok"]


def test_tcp_nodelay_and_correlation_ids(broker: ThreadedMockBroker) -> None:
    async def main() -> None:
        async with client_for(broker) as client:
            pipeline = client._pipeline
            assert pipeline is not None
            assert pipeline._transport is not None
            sock = pipeline._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            client._cids = CorrelationIds(INT32_MAX - 1)
            await asyncio.gather(*(client.create_topic(f"t{i}") for i in range(3)))

    run(main())
    assert [r.correlation_id for r in broker.records()[0].requests] == [INT32_MAX - 1, INT32_MAX, 1]


def test_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        client = AsyncMessageClient("127.0.0.1", port, retry=FAST_RETRY)
        started = time.monotonic()
        with pytest.raises(MegaConnectionError) as info:
            await client.connect()
        assert time.monotonic() - started < 1
        assert isinstance(info.value.__cause__, ConnectionRefusedError)

    run(main())


def test_connect_timeout(unresponsive_port: int) -> None:
    async def main() -> None:
        client = AsyncMessageClient("127.0.0.1", unresponsive_port, connect_timeout=0.2, retry=NO_RETRY)
        started = time.monotonic()
        with pytest.raises(MegaTimeoutError, match="connecting"):
            await client.connect()
        assert 0.2 <= time.monotonic() - started < 1.0
        with pytest.raises(ClientStateError):
            await client.consume("t", 0)

    run(main())


# --------------------------------------------------------------------------- scripted brokers


def test_coalesced_answers_are_split_and_matched(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(i, f"m{i}".encode()) for i in range(20)]
    b = scripted(batch_then_serve(20, topics))

    async def main() -> None:
        async with client_for(b) as client:
            results = await asyncio.gather(*(client.consume("t", i) for i in range(20)))
            assert [r.payload for r in results] == [f"m{i}".encode() for i in range(20)]
            assert [r.timestamp for r in results] == list(range(20))

    run(main())


def test_pipelined_answers_one_byte_at_a_time(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(i, bytes([i]) * i) for i in range(10)]

    def trickle(peer: Peer) -> None:
        requests = [peer.request() for _ in range(10)]
        data = b"".join(answer(r, topics) for r in requests if r is not None)
        peer.send_in_pieces(data, size=1, pause=0.0005)
        peer.serve(topics)

    b = scripted(trickle)

    async def main() -> None:
        async with client_for(b) as client:
            results = await asyncio.gather(*(client.consume("t", i) for i in range(10)))
            assert [r.payload for r in results] == [bytes([i]) * i for i in range(10)]

    run(main())


@pytest.mark.parametrize("code", [*ErrorCode, 99], ids=[*(c.name for c in ErrorCode), "unknown-99"])
def test_each_error_code_raises_its_exception(scripted: Scripted, code: int) -> None:
    topics = Topics()

    def script(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        peer.send(encode_error(request.correlation_id, code))
        peer.serve(topics)

    b = scripted(script)

    async def main() -> None:
        async with client_for(b) as client:
            with pytest.raises(BrokerError) as info:
                await client.produce("t", b"x")
            assert type(info.value) is type(BrokerError.for_code(code))
            assert (info.value.code, info.value.correlation_id) == (code, 1)
            await client.create_topic("t")

    run(main())
    assert b.connections == 1


def test_protocol_error_fails_every_pending_request(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(1, b"m")]

    def wrong_second_cid(answers: list[bytes]) -> bytes:
        second = bytearray(answers[1])
        second[3] ^= 0x40  # flip a bit of the correlation id
        return answers[0] + bytes(second) + b"".join(answers[2:])

    b = scripted([batch_then_serve(5, topics, wrong_second_cid), lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b) as client:
            outcomes = await asyncio.gather(*(client.consume("t", 0) for _ in range(5)), return_exceptions=True)
            assert not isinstance(outcomes[0], BaseException)  # answered before the bad frame
            for outcome in outcomes[1:]:
                assert isinstance(outcome, MegaProtocolError)
                assert outcome.reason == "correlation-mismatch"
            assert not client.connected
            assert (await client.consume("t", 0)).payload == b"m"  # reconnects

    run(main())
    assert b.connections == 2


def test_unsolicited_frame_fails_pending_requests_with_a_connection_error(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(1, b"m")]

    def closing(peer: Peer) -> None:
        for _ in range(3):
            peer.request()
        peer.send(UNSOLICITED)
        peer.close()

    b = scripted([closing, lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b) as client:
            produce = asyncio.ensure_future(client.produce("t", b"p"))
            consumes = [asyncio.ensure_future(client.consume("t", 0)) for _ in range(2)]
            with pytest.raises(ConnectionClosedByBroker) as info:
                await produce
            assert info.value.code == ErrorCode.NETWORK_ERROR
            assert info.value.request_sent
            for consume in consumes:  # safe to repeat: retried on a new connection
                assert (await consume).payload == b"m"

    run(main())
    assert b.connections == 2
    assert len([r for r in b.requests() if isinstance(r, ProduceRequest)]) == 1


def test_unsolicited_frame_while_idle_then_reconnect(scripted: Scripted) -> None:
    topics = Topics()
    closed = threading.Event()

    def idle_close(peer: Peer) -> None:
        peer.serve(topics, count=1)
        peer.send(UNSOLICITED)
        peer.close()
        closed.set()

    b = scripted([idle_close, lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b, retry=NO_RETRY) as client:
            await client.create_topic("t")
            await eventually(lambda: closed.is_set() and not client.connected, what="the client saw the idle close")
            assert (await client.produce("t", b"x")).offset == 0

    run(main())
    assert b.connections == 2


def test_broker_vanishing_mid_answer(scripted: Scripted) -> None:
    def vanish(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        peer.send(encode_produce_ok(request.correlation_id, request.timestamp, 0)[:11])
        time.sleep(0.05)
        peer.close()

    b = scripted(vanish)

    async def main() -> None:
        async with client_for(b) as client:
            with pytest.raises(MegaConnectionError, match="mid-response") as info:
                await client.produce("t", b"x")
            assert info.value.request_sent

    run(main())
    assert b.connections == 1


def test_timeout_closes_the_connection_and_fails_the_others(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(1, b"m")]
    b = scripted([lambda peer: peer.wait_eof(10), lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b, request_timeout=0.2, retry=NO_RETRY) as client:
            started = time.monotonic()
            outcomes = await asyncio.gather(
                client.produce("t", b"p"), client.consume("t", 0), return_exceptions=True
            )
            assert time.monotonic() - started < 1.5  # not the 2 s default
            assert isinstance(outcomes[0], MegaTimeoutError)
            assert outcomes[0].request_sent
            # The second one timed out too, or failed when the first closed the connection.
            assert isinstance(outcomes[1], (MegaTimeoutError, MegaConnectionError))
            assert not client.connected
            assert (await client.consume("t", 0)).payload == b"m"

    run(main())
    assert b.connections == 2


def test_cancelled_call_leaves_the_connection_in_step(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(1, b"first"), (2, b"second")]

    def slow_first(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        time.sleep(0.2)
        peer.send(answer(request, topics))
        peer.serve(topics)

    b = scripted(slow_first)

    async def main() -> None:
        async with client_for(b) as client:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(client.consume("t", 0), 0.05)
            # The cancelled call's answer is read and dropped; this one gets its own.
            assert (await client.consume("t", 1)).payload == b"second"
            assert client.connected

    run(main())
    assert b.connections == 1


def test_close_fails_pending_requests(scripted: Scripted) -> None:
    b = scripted(lambda peer: peer.wait_eof(10))

    async def main() -> None:
        client = client_for(b, request_timeout=5)
        await client.connect()
        pending = asyncio.ensure_future(client.consume("t", 0))
        await asyncio.sleep(0.05)
        await client.close()
        with pytest.raises(ClientStateError):
            await pending

    run(main())
    b.join()
    assert b.peers[0].eof


def _drop_after_reading(peer: Peer) -> None:
    peer.request()
    peer.close()


def test_produce_is_not_resent_by_default(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = []
    b = scripted([_drop_after_reading, lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b) as client:
            with pytest.raises(MegaConnectionError) as info:
                await client.produce("t", b"once")
            assert info.value.request_sent

    run(main())
    assert [r.payload for r in b.requests()] == [b"once"]


def test_produce_is_resent_with_at_least_once(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = []
    b = scripted([_drop_after_reading, lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b, produce_delivery="at-least-once") as client:
            assert (await client.produce("t", b"twice")).offset == 0

    run(main())
    assert [r.payload for r in b.requests()] == [b"twice", b"twice"]


def test_many_callers_share_one_reconnect(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = [(1, b"m")]

    closed = threading.Event()

    def serve_one(peer: Peer) -> None:
        peer.serve(topics, count=1)
        peer.close()
        closed.set()

    b = scripted([serve_one, lambda peer: peer.serve(topics)])

    async def main() -> None:
        async with client_for(b, retry=NO_RETRY) as client:
            await client.consume("t", 0)
            await eventually(lambda: closed.is_set() and not client.connected, what="the client saw the close")
            results = await asyncio.gather(*(client.consume("t", 0) for _ in range(50)))
            assert all(r.payload == b"m" for r in results)

    run(main())
    assert b.connections == 2


def test_topic_echo_mismatch_is_a_protocol_error(scripted: Scripted) -> None:
    def wrong_echo(peer: Peer) -> None:
        request = peer.request()
        assert request is not None
        peer.send(encode_create_topic_ok(request.correlation_id, request.timestamp, "other"))
        peer.wait_eof()

    b = scripted(wrong_echo)

    async def main() -> None:
        async with client_for(b) as client:
            with pytest.raises(MegaProtocolError) as info:
                await client.create_topic("asked")
            assert info.value.reason == "topic-echo-mismatch"
            assert not client.connected

    run(main())
