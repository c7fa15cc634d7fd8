"""Limits on real sockets: oversized payloads, huge length prefixes, backpressure, idle timeout."""

from __future__ import annotations

import logging
import socket
import struct
import time
import tracemalloc

import pytest

from ._raw import (
    TS,
    RawClient,
    consume,
    consume_ok,
    create,
    create_ok,
    error,
    pipelined,
    produce,
    produce_ok,
    raw_frame,
    wait_until,
)

MIB = 1024 * 1024
IDLE_FRAME = bytes.fromhex("00 00 00 00 00 08")


def _stream_junk(c: RawClient, total: int, chunk: int = MIB) -> None:
    block = b"\xaa" * chunk
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        c.send_raw(block[:n])
        sent += n


def test_oversized_payload_is_skipped_as_it_streams_and_memory_stays_flat(mega_broker_factory):
    mega_broker = mega_broker_factory(record=False)
    with RawClient(mega_broker.address) as c:
        c.send(create(1, "t"))
        c.expect_bytes(create_ok(1, "t"))
        size = 24 * MIB
        # The answer comes as soon as the header is in (BROKER-6), before any payload byte.
        c.send_raw(raw_frame(2, 1, b"t", payload_length=size))
        c.expect_bytes(error(2, 3))
        conn = mega_broker.connections()[0].id
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            _stream_junk(c, size)
            c.send(produce(3, "t", b"after"))
            c.expect_bytes(produce_ok(3, 0))
            grown = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert grown < 4 * MIB, f"{grown} bytes allocated while skipping {size}"
        assert mega_broker.connection_stats(conn)["read_buffer"] == 0
    assert mega_broker.messages("t")[0].payload == b"after"


@pytest.mark.parametrize("field", ["payload_length", "topic_length"])
def test_2gib_length_prefix_costs_no_memory(mega_broker_factory, profile, field):
    broker = mega_broker_factory(profile=profile, record=False)
    with RawClient(broker.address) as c:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            c.send_raw(raw_frame(9, 1, b"t", **{field: 2**31 - 1}))
            if field == "payload_length" and profile == "spec":
                c.expect_bytes(error(9, 3))  # MESSAGE_TOO_LARGE, connection kept
                _stream_junk(c, 8 * MIB)
                c.assert_open()
                conn = broker.connections()[0].id
                assert broker.connection_stats(conn)["read_buffer"] == 0
            else:
                # spec: topic_length over any limit is a frame error, then close. reference: a length
                # the JVM cannot allocate closes with no answer (measured).
                assert c.read_to_eof() == (error(9, 1) if profile == "spec" else b"")
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert peak < 4 * MIB
    broker.wait_closed_connections()


@pytest.mark.parametrize("field", ["payload_length", "topic_length"])
def test_reference_waits_for_a_1gib_length_without_allocating_it(mega_broker_factory, field):
    """Measured: 2**30 is allocated by the reference broker, which then waits for the bytes. The
    profile waits the same way (silent, connection open), skipping the bytes as they arrive."""
    broker = mega_broker_factory(profile="reference", record=False)
    with RawClient(broker.address) as c:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            c.send_raw(raw_frame(9, 1, b"t", **{field: 2**30}))
            _stream_junk(c, 8 * MIB)
            c.assert_open(wait=0.2)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
    assert peak < 4 * MIB


def test_unknown_type_is_answered_from_the_type_byte_alone(mega_broker_factory, profile):
    """BROKER-3: `00 00 00 05 | 04` is answered without waiting for more bytes."""
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(bytes.fromhex("00 00 00 05 04"))
        assert c.read_to_eof(timeout=2.0) == (bytes.fromhex("00 00 00 05 00 02") if profile == "spec" else b"")


def test_backpressure_bounds_what_a_non_reading_client_costs(mega_broker_factory):
    high = 256 * 1024
    broker = mega_broker_factory(write_buffer_high_water=high, record=False)
    payload = bytes(range(256)) * 4096  # 1 MiB
    n = 200  # 200 MiB of answers if nothing pushed back
    with RawClient(broker.address, timeout=10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(create(1, "t"), produce(2, "t", payload))
        c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0))
        conn = broker.connections()[0].id
        c.send_raw(pipelined(consume(10 + i, "t", 0) for i in range(n)))
        # Let the broker fill what it may, then check it stopped.
        samples = []
        for _ in range(20):
            time.sleep(0.02)
            samples.append(broker.connection_stats(conn))
        worst = max(s["write_buffer"] for s in samples)
        assert worst <= 2 * high + len(payload) + 64, worst
        assert max(s["read_buffer"] for s in samples) < 512 * 1024
        # Everything still arrives, in order, once the client reads.
        expected = consume_ok(0, TS, 1, payload)[4:]
        for i in range(n):
            got = c.recv_exact(len(expected) + 4)
            assert got[:4] == struct.pack(">i", 10 + i)
            assert got[4:] == expected
        c.send(produce(99, "t", b"x"))
        c.expect_bytes(produce_ok(99, 1))


def test_idle_timeout_sends_network_error_then_closes(mega_broker_factory, profile):
    broker = mega_broker_factory(profile=profile, idle_timeout=0.2)
    with RawClient(broker.address) as c:
        start = time.monotonic()
        c.send(create(1, "t"))
        c.expect_bytes(create_ok(1, "t"))
        assert c.read_to_eof(timeout=3.0) == IDLE_FRAME
        elapsed = time.monotonic() - start
    assert 0.18 <= elapsed < 5.0
    broker.wait_closed_connections()
    assert broker.records()[0].close_reason == "idle timeout"


def test_received_bytes_reset_the_idle_timer(mega_broker_factory):
    broker = mega_broker_factory(idle_timeout=0.3)
    with RawClient(broker.address) as c:
        frame = pipelined([create(1, "t")])
        start = time.monotonic()
        # One byte every 0.05 s keeps the connection alive well past the timeout.
        for i in range(len(frame)):
            c.send_raw(frame[i : i + 1])
            time.sleep(0.05 if i < 12 else 0)
        c.expect_bytes(create_ok(1, "t"))
        assert time.monotonic() - start > 0.55
        assert c.read_to_eof(timeout=3.0) == IDLE_FRAME


def test_idle_timeout_zero_means_never(mega_broker_factory):
    broker = mega_broker_factory(idle_timeout=0)
    with RawClient(broker.address) as c:
        c.assert_open(wait=0.3)


def test_max_connections(mega_broker_factory):
    broker = mega_broker_factory(max_connections=3)
    clients = [RawClient(broker.address) for _ in range(3)]
    try:
        for i, c in enumerate(clients):
            c.send(create(i, f"t{i}"))
            c.expect_bytes(create_ok(i, f"t{i}"))
        with RawClient(broker.address) as extra:
            assert extra.read_to_eof() == b""
        clients.pop().close()
        wait_until(lambda: len(broker.connections()) == 2)
        with RawClient(broker.address) as again:
            again.send(produce(5, "t0", b"x"))
            again.expect_bytes(produce_ok(5, 0))
    finally:
        for c in clients:
            c.close()


def test_a_connection_paused_by_backpressure_is_not_idle(mega_broker_factory):
    # CONN-7/CONN-8: the idle timer measures the client, not the broker. A client that has sent
    # its requests and is slow to read them is owed every answer before any NETWORK_ERROR.
    broker = mega_broker_factory(idle_timeout=0.3, write_buffer_high_water=4096, record=False)
    payload = b"m" * (1 << 20)
    with RawClient(broker.address, timeout=10.0) as c:
        c.send(create(1, "big"), produce(2, "big", payload))
        c.responses(2)
        c.send(*[consume(10 + i, "big", 0) for i in range(24)])
        time.sleep(1.0)  # the broker is paused on its full write buffer for longer than its idle timeout
        answers = c.responses(24)
        assert [a.correlation_id for a in answers] == [10 + i for i in range(24)]  # type: ignore[union-attr]
        assert all(getattr(a, "payload", None) == payload for a in answers)
        assert c.read_to_eof(timeout=3.0) == IDLE_FRAME  # then, idle for real, it is closed


def test_connection_pool_serves_n_at_once_and_the_next_one_late(mega_broker_factory):
    """--connection-pool N: like the reference broker's 10 threads, the N+1-th connection is accepted
    and silent (not even its idle timeout runs) until one of the N closes; then it is served."""
    broker = mega_broker_factory(connection_pool=2, idle_timeout=0.5)
    first, second, third = (RawClient(broker.address) for _ in range(3))
    try:
        first.send_raw(pipelined([create(1, "t")]))
        first.expect_bytes(create_ok(1, "t"))
        third.send_raw(pipelined([produce(9, "t", b"late")]))
        for i in range(10):  # 1 s, twice the idle timeout; the served ones keep busy
            for c in (first, second):
                assert type(c.request(produce(i, "t", b"busy"))).__name__ == "ProduceResponse"
            time.sleep(0.1)
        third.assert_open(wait=0.05)  # still waiting: neither served nor closed
        assert len(broker.messages("t")) == 20
        first.close()
        third.expect_bytes(produce_ok(9, 20))
        assert broker.messages("t")[20].payload == b"late"
    finally:
        for c in (first, second, third):
            c.close()


def test_brokers_on_several_threads_time_out_their_idle_connections_together(mega_broker_factory, caplog):
    # Each ThreadedMockBroker runs its own loop on its own thread; their idle timers fire at the
    # same moments and must not share anything that one thread can hold while another wants it
    # (a callback that fails that way is logged by asyncio and its connection never closes).
    caplog.set_level(logging.ERROR)
    brokers = [mega_broker_factory(idle_timeout=0.2) for _ in range(4)]
    # Interleaved, so that every broker's timers come due together.
    socks = [socket.create_connection(b.address) for _ in range(300) for b in brokers]
    try:
        for b in brokers:
            b.wait_closed_connections(10)
            reasons = {r.close_reason for r in b.records()}
            assert reasons == {"idle timeout"}, reasons
            assert b.internal_errors == []
    finally:
        for s in socks:
            s.close()
    assert [r.getMessage() for r in caplog.records] == []
