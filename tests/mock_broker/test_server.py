"""MockBroker's Python API: lifecycle, inspection, records, reset, leaks."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
import sys
import warnings

import pytest

from mega_client.protocol import (
    ConsumeRequest,
    CreateTopicRequest,
    ProduceRequest,
    ResponseDecoder,
    encode_request,
)
from mock_broker import BrokerConfig, MockBroker, StoredMessage, ThreadedMockBroker

from ._raw import (
    RawClient,
    consume,
    create,
    create_ok,
    error,
    pipelined,
    produce,
    produce_ok,
    raw_frame,
    wait_until,
)


async def _roundtrip(address: tuple[str, int], *requests: object) -> list[object]:
    reader, writer = await asyncio.open_connection(*address)
    dec = ResponseDecoder()
    for r in requests:
        dec.expect(r.message_type, r.correlation_id)  # type: ignore[attr-defined]
    writer.write(b"".join(encode_request(r) for r in requests))  # type: ignore[arg-type]
    out: list[object] = []
    while len(out) < len(requests):
        dec.feed(await reader.read(65536))
        while (ev := dec.next_response()) is not None:
            out.append(ev)
    writer.close()
    await writer.wait_closed()
    return out


def test_async_context_manager_and_inspection():
    async def main() -> None:
        async with MockBroker(port=0) as broker:
            assert broker.host == "127.0.0.1"
            assert broker.port > 0
            assert broker.address == (broker.host, broker.port)
            got = await _roundtrip(
                broker.address,
                CreateTopicRequest(1, "a", 5),
                ProduceRequest(2, "a", 6, b"x"),
                ProduceRequest(3, "a", 7, b"y"),
                ConsumeRequest(4, "a", 8, 1),
            )
            assert len(got) == 4
            assert broker.topics() == {"a": 2}
            assert broker.messages("a") == [StoredMessage(0, 6, b"x"), StoredMessage(1, 7, b"y")]
            await broker.wait_closed_connections(2)
            (rec,) = broker.records()
            assert rec.closed
            assert rec.closed_at is not None
            assert rec.id == 1
            assert [r.correlation_id for r in rec.requests] == [1, 2, 3, 4]
            assert rec.received == b"".join(encode_request(r) for r in rec.requests)
            assert rec.sent.startswith(create_ok(1, "a", ts=5))
            assert broker.connections() == []
            assert broker.internal_errors == []
            with pytest.raises(KeyError):
                broker.messages("nope")

    asyncio.run(main())


def test_config_object_and_keyword_overrides():
    cfg = BrokerConfig(profile="reference", max_topics=7)
    b = MockBroker(config=cfg, max_topics=3)
    assert (b.config.profile, b.config.max_topics) == ("reference", 3)
    assert MockBroker(cfg).config is cfg
    with pytest.raises(TypeError, match="no_such_option"):
        MockBroker(no_such_option=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"profile": "other"},
        {"port": 70000},
        {"max_topics": 0},
        {"idle_timeout": -1},
        {"max_payload_bytes": -1},
        {"max_payload_bytes": 2**31},  # lengths are int32 on the wire
        {"max_messages_per_topic": 2**31},  # and so are offsets
        {"write_buffer_high_water": 0},
        {"faults": "produce:close"},
    ],
)
def test_bad_config_is_a_value_error(kwargs):
    with pytest.raises(ValueError, match=r"\w"):
        BrokerConfig(**kwargs)


def test_config_defaults():
    cfg = BrokerConfig()
    assert (cfg.host, cfg.port, cfg.profile, cfg.max_payload_bytes, cfg.max_messages_per_topic, cfg.idle_timeout) == (
        "127.0.0.1",
        0,
        "spec",
        1048576,
        1_000_000,
        30.0,
    )
    assert cfg.max_topic_bytes == 255
    # The reference profile keeps no longer topic either: it skips one as it arrives.
    assert BrokerConfig(profile="reference").max_topic_bytes == 255
    assert BrokerConfig(profile="reference").new_decoder().skip_long_topics
    assert not cfg.new_decoder().skip_long_topics
    assert cfg.connection_pool is None
    assert cfg.replace(idle_timeout=0).effective_idle_timeout is None


def test_threaded_broker_records_reset_and_helpers():
    with ThreadedMockBroker(port=0) as broker:
        broker.create_topic("pre")
        assert broker.produce("pre", b"seed", timestamp=3) == 0
        with pytest.raises(ValueError, match="outside"):
            broker.create_topic("bad name")
        with RawClient(broker.address) as c:
            c.send(consume(1, "pre", 0), produce(2, "pre", b"x"))
            c.responses(2)
            (live,) = broker.connections()
            assert live.peer == c.sock.getsockname()
            assert not live.closed
            assert live.request_count == 2
        broker.wait_closed_connections()
        assert broker.topics() == {"pre": 2}
        assert len(broker.records()) == 1
        assert broker.record(1).close_reason == "peer closed"
        broker.reset()
        assert broker.topics() == {}
        assert broker.records() == []
        with RawClient(broker.address) as c:
            c.send(produce(3, "pre", b"x"))
            c.expect_bytes(error(3, 4))
        broker.wait_closed_connections()
        assert [r.id for r in broker.records()] == [2]
    # Stopping twice is harmless.
    broker.stop()


def test_recording_is_capped_and_flagged(mega_broker_factory):
    broker = mega_broker_factory(record_bytes_limit=100, record_requests_limit=3)
    with RawClient(broker.address) as c:
        c.send(create(1, "t"), *[produce(10 + i, "t", b"p" * 40) for i in range(5)])
        c.responses(6)
    broker.wait_closed_connections()
    rec = broker.records()[0]
    assert len(rec.received) == 100
    assert rec.received_truncated
    assert len(rec.sent) == 100
    assert rec.sent_truncated
    assert rec.bytes_received > 100
    assert rec.bytes_sent == 16 + 5 * 17
    assert [r.correlation_id for r in rec.requests] == [1, 10]  # the frames within the 100 bytes kept
    assert rec.requests_truncated
    assert rec.request_count == 6


def test_requests_recorded_are_capped_and_flagged(mega_broker_factory):
    broker = mega_broker_factory(record_requests_limit=3)
    with RawClient(broker.address) as c:
        c.send(create(1, "t"), *[produce(10 + i, "t", b"p" * 40) for i in range(5)])
        c.responses(6)
    broker.wait_closed_connections()
    rec = broker.records()[0]
    assert not rec.received_truncated
    assert [r.correlation_id for r in rec.requests] == [1, 10, 11]
    assert rec.requests_truncated
    assert rec.request_count == 6


def test_recording_off(mega_broker_factory):
    broker = mega_broker_factory(record=False)
    with RawClient(broker.address) as c:
        c.send(create(1, "t"))
        c.responses(1)
    broker.wait_closed_connections()
    rec = broker.records()[0]
    assert rec.received == b""
    assert rec.sent == b""
    assert rec.requests == []
    assert rec.bytes_received == 22
    assert rec.request_count == 1


def test_responses_after_client_half_close(mega_broker):
    """CONN-13: requests received in full are answered even after the client's EOF."""
    with RawClient(mega_broker.address) as c:
        c.send_raw(pipelined([create(1, "t"), produce(2, "t", b"x")]) + b"\x00\x00\x00\x03\x01\x00")
        c.sock.shutdown(socket.SHUT_WR)
        assert c.read_to_eof() == create_ok(1, "t") + produce_ok(2, 0)
    mega_broker.wait_closed_connections()


def _half_frames() -> list[bytes]:
    full = pipelined([produce(1, "t", b"x" * 100)])
    return [
        full[:3],
        full[:5],
        full[:9],
        full[:12],
        full[:-1],
        raw_frame(2, 1, b"t", payload_length=5 * 1024 * 1024) + b"z" * 1000,  # mid-skip
        raw_frame(3, 2, b"t", offset=0)[:-2],
    ]


@pytest.mark.parametrize("rst", [False, True])
def test_clients_vanishing_mid_frame_leak_nothing(mega_broker_factory, profile, rst):
    broker = mega_broker_factory(profile=profile)
    broker.create_topic("t")
    socks = []
    for i in range(60):
        s = socket.create_connection(broker.address)
        s.sendall(_half_frames()[i % 7])
        socks.append(s)
    wait_until(lambda: len(broker.connections()) == 60)
    for s in socks:
        if rst:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    broker.wait_closed_connections(5)
    assert broker.connections() == []
    assert all(r.closed for r in broker.records())
    assert broker.topics() == {"t": 0}  # no half frame was acted on (CONN-12)
    assert broker.internal_errors == []


def test_stop_drops_open_connections():
    broker = ThreadedMockBroker(port=0).start()
    c = RawClient(broker.address)
    c.send(create(1, "t"))
    c.responses(1)
    broker.stop()
    assert c.read_to_eof() == b""
    c.close()


def test_two_brokers_do_not_share_state(mega_broker_factory):
    a, b = mega_broker_factory(), mega_broker_factory()
    assert a.port != b.port
    a.create_topic("only-a")
    assert b.topics() == {}


def test_closed_records_are_bounded(mega_broker_factory):
    broker = mega_broker_factory(max_closed_records=5)
    for _ in range(120):
        socket.create_connection(broker.address).close()
    broker.wait_closed_connections()
    wait_until(lambda: all(r.closed for r in broker.records()))
    recs = broker.records()
    assert 5 <= len(recs) <= 5 + 100 + 1
    assert recs[-1].id == 120


def test_a_connection_accepted_as_the_broker_stops_is_closed_not_left_to_the_garbage_collector(monkeypatch):
    # CPython gh-109564: asyncio builds an accepted connection's transport a loop step after the
    # accept. A stop whose first step comes between (a stop asked for by a callback that ran
    # before that accept, as ThreadedMockBroker.stop's is when another thread asks) closed the
    # server under it: the build failed, its socket was left to the garbage collector
    # ("unclosed" ResourceWarnings) and on 3.13.0 the transport raised an unraisable TypeError.
    unraisable: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: unraisable.append(f"{u.exc_type.__name__}: {u.exc_value}"))

    async def stop_as_a_connection_arrives() -> None:
        loop = asyncio.get_running_loop()
        broker = await MockBroker(port=0).start()
        with socket.create_connection(broker.address):  # queued: the loop accepts it in its next step
            stopping: list[asyncio.Task[None]] = []
            loop.call_soon(lambda: stopping.append(loop.create_task(broker.stop())))  # runs before that accept
            while not stopping:
                await asyncio.sleep(0)
            await stopping[0]

    gc.collect()  # what earlier tests left is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(5):
            asyncio.run(stop_as_a_connection_arrives())
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], leaks[:2]
    assert unraisable == []
