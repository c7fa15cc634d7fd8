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
    Produced,
    TopicAlreadyExistsError,
    TopicNotFoundError,
)
from mega_client.protocol import (
    ClientConnection,
    ProduceRequest,
    RequestDecoder,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
)
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
            pipeline.protocol = ClientConnection(first_correlation_id=INT32_MAX - 1)
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
            outcomes = await asyncio.gather(client.produce("t", b"p"), client.consume("t", 0), return_exceptions=True)
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


# --------------------------------------------------------------------------- many requests in flight when it ends


def requests_begun(received: bytes) -> int:
    """How many requests a broker connection received at least one byte of."""
    decoder = RequestDecoder()
    decoder.feed(received)
    complete = 0
    while decoder.next_request() is not None:
        complete += 1
    return complete + (1 if decoder.buffered else 0)


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_failed_write_still_delivers_the_answers_already_received(scripted: Scripted, how: str) -> None:
    """The broker answers k of n pipelined PRODUCEs, then closes while the client is still writing.

    The client's next write fails (EPIPE or ECONNRESET) with the k answers already in its
    socket's receive buffer: exactly those k succeed, and the others fail with a connection
    error, ``request_sent=False`` only for requests that never reached the broker.
    """
    k, n = 300, 2000
    payload_bytes = 10_000  # 20 MB in all: far more than the kernel buffers, so writing is under way
    topics = Topics()
    topics.logs["t"] = []

    def answer_k_then_go(peer: Peer) -> None:
        requests = [peer.request() for _ in range(k)]
        peer.send(b"".join(answer(r, topics) for r in requests if r is not None))
        getattr(peer, how)()

    b = scripted([answer_k_then_go, lambda peer: peer.reset()])  # any reconnect is refused at once

    async def main() -> list[Produced | BaseException]:
        async with client_for(b, retry=NO_RETRY, request_timeout=30) as client:
            return await asyncio.gather(
                *(client.produce("t", i.to_bytes(4, "big") * (payload_bytes // 4)) for i in range(n)),
                return_exceptions=True,
            )

    outcomes = run(main(), timeout=60)
    acked = [o for o in outcomes if isinstance(o, Produced)]
    assert sorted(r.offset for r in acked) == list(range(k))
    assert sorted(r.correlation_id for r in acked) == list(range(1, k + 1))
    failed = [o for o in outcomes if not isinstance(o, Produced)]
    assert len(failed) == n - k
    assert all(isinstance(o, MegaConnectionError) for o in failed), {type(o) for o in failed}
    maybe_sent = sum(1 for o in failed if isinstance(o, MegaConnectionError) and o.request_sent)
    reached = sum(requests_begun(bytes(peer.received)) for peer in b.peers)
    assert len(acked) + maybe_sent >= reached  # no request that reached a broker is called unsent


def test_request_timeout_counts_from_the_request_s_turn(broker: ThreadedMockBroker) -> None:
    """Each answer comes 5 ms after the one before: 400 pipelined PRODUCEs take over 2 s in all,
    four times the request timeout, and none times out (README, "Timeouts")."""
    n, timeout = 400, 0.5
    broker.create_topic("t")
    broker.faults.add("produce:delay=5")

    async def main() -> list[Produced]:
        async with client_for(broker, request_timeout=timeout, retry=NO_RETRY) as client:
            return await asyncio.gather(*(client.produce("t", f"m{i}") for i in range(n)))

    started = time.monotonic()
    produced = run(main(), timeout=60)
    assert time.monotonic() - started > timeout  # the whole burst outlasted the timeout
    assert sorted(r.offset for r in produced) == list(range(n))
    assert len(broker.messages("t")) == n


def test_requests_never_written_are_not_sent_and_may_be_retried(scripted: Scripted) -> None:
    """A broker that reads nothing: the requests written time out (``request_sent=True``, not
    resent: at most once); those still queued in the client fail with ``request_sent=False``
    and, being certainly unsent, go out again on the next connection, each once."""
    topics = Topics()
    topics.logs["t"] = []
    stalled = threading.Event()

    def never_read(peer: Peer) -> None:
        stalled.wait(10)
        peer.close()

    b = scripted([never_read, lambda peer: peer.serve(topics, timeout=10)])
    n = 40

    async def main() -> list[Produced | BaseException]:
        async with client_for(b, request_timeout=0.5, retry=FAST_RETRY) as client:
            try:
                return await asyncio.gather(
                    *(client.produce("t", bytes([i]) * MAX_PAYLOAD_BYTES) for i in range(n)), return_exceptions=True
                )
            finally:
                stalled.set()

    outcomes = run(main(), timeout=60)
    succeeded = [i for i, o in enumerate(outcomes) if isinstance(o, Produced)]
    failed = [o for o in outcomes if not isinstance(o, Produced)]
    assert failed, "some requests were written on the stalled connection"
    assert isinstance(failed[0], MegaTimeoutError)
    assert all(isinstance(o, (MegaTimeoutError, MegaConnectionError)) and o.request_sent for o in failed)
    assert succeeded, "40 MiB cannot all fit in the kernel's buffers: some were still queued"
    # Each request retried is stored once; none of those that may have reached the broker is resent.
    assert sorted(payload[0] for _ts, payload in topics.logs["t"]) == succeeded


def test_a_call_cancelled_before_its_request_is_written_is_never_sent(scripted: Scripted) -> None:
    topics = Topics()
    topics.logs["t"] = []
    reading = threading.Event()

    def read_later(peer: Peer) -> None:
        reading.wait(10)
        peer.serve(topics, timeout=10)

    b = scripted(read_later)

    async def main() -> None:
        async with client_for(b, request_timeout=10) as client:
            big = [asyncio.ensure_future(client.produce("t", b"x" * MAX_PAYLOAD_BYTES)) for _ in range(24)]
            late = asyncio.ensure_future(client.produce("t", b"cancelled"))
            await asyncio.sleep(0.1)
            late.cancel()
            reading.set()
            assert len(await asyncio.gather(*big)) == 24
            with pytest.raises(asyncio.CancelledError):
                await late

    run(main(), timeout=60)
    assert [payload for _ts, payload in topics.logs["t"]].count(b"cancelled") == 0
    assert b"cancelled" not in b.received
