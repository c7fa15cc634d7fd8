"""Fault injection: the grammar, the registry, and every action on real sockets."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest

from mock_broker import FaultRule, MockBroker

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


def _drain(sock: socket.socket) -> None:
    while sock.recv(100):
        pass


def _connect_and_drain(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=2) as sock:
        _drain(sock)


def _connect_once_listening(address: tuple[str, int], timeout: float = 3.0) -> RawClient:
    """Connect as soon as the broker listens again (AssertionError if it does not within ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return RawClient(address)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, f"still refused after {timeout} s"
            time.sleep(0.01)


# -- grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("produce:error=RESOURCE_EXHAUSTED:every=10", "produce:error=RESOURCE_EXHAUSTED:every=10"),
        ("produce:error=4", "produce:error=TOPIC_NOT_FOUND"),
        ("produce:error=topic-not-found:once", "produce:error=TOPIC_NOT_FOUND:once"),
        ("consume:slice=1/5", "consume:slice=1/5"),
        ("consume:slice=3", "consume:slice=3/10"),
        ("any:silent", "any:silent"),
        ("connect:close:once", "connect:close:once"),
        ("consume@orders:bad-length=-1:nth=2:conn=3", "consume@orders:bad-length=-1:nth=2:conn=3"),
        ("create_topic:bad-flag", "create_topic:bad-flag=2"),
        ("any:unsolicited=NETWORK_ERROR:always", "any:unsolicited=NETWORK_ERROR"),
        ("connect:refuse=100", "connect:refuse=100"),
        ("produce:error=200", "produce:error=200"),
        ("PRODUCE:Delay=5", "produce:delay=5"),
        ("produce:close-after=0:conn=2:once", "produce:close-after=0:once:conn=2"),
        ("produce:trailing=0000000701:once", "produce:trailing=0000000701:once"),
        ("any:Trailing=FF", "any:trailing=ff"),
    ],
)
def test_rules_parse_to_canonical_text(text, canonical):
    rule = FaultRule.parse(text)
    assert str(rule) == canonical
    assert str(FaultRule.parse(str(rule))) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "produce",
        "fetch:close",
        "produce:explode",
        "produce:delay",
        "produce:delay=soon",
        "produce:delay=-1",
        "produce:close=3",
        "produce:error=NOPE",
        "produce:slice=0",
        "produce:close:twice",
        "produce:close:once:always",
        "produce:close:nth=0",
        "produce:close:every",
        "produce:close:conn=0",
        "connect@t:close",
        "connect:delay=5",
        "connect:refuse",
        "produce@:close",
        "produce::close",
        "produce:bad-length=99999999999",
        "produce:trailing",
        "produce:trailing=",
        "produce:trailing=0",
        "produce:trailing=zz",
        "connect:trailing=00",
    ],
)
def test_bad_rules_are_one_line_value_errors(text):
    with pytest.raises(ValueError, match="bad fault rule") as info:
        FaultRule.parse(text)
    assert "\n" not in str(info.value)


def test_registry_add_list_remove_clear_applied(mega_broker):
    faults = mega_broker.faults
    assert not faults.active
    a = faults.add("produce:error=RESOURCE_EXHAUSTED:every=10")
    b = faults.add(FaultRule.parse("consume:slice=1/5"))
    assert faults.list() == [a, b]
    assert faults.active
    faults.remove(a)
    assert faults.list() == [b]
    with pytest.raises(ValueError, match="not in this broker"):
        faults.remove(a)
    with faults.applied("any:silent", "connect:close:once") as added:
        assert [str(r) for r in added] == ["any:silent", "connect:close:once"]
        assert len(faults.list()) == 3
    assert faults.list() == [b]
    faults.clear()
    assert faults.list() == []
    assert not faults.active
    with pytest.raises(ValueError, match="bad fault rule"), faults.applied("any:silent", "nope"):
        pass
    assert faults.list() == []
    faults.add("any:silent")
    mega_broker.reset()
    assert faults.list() == []


# -- request actions -------------------------------------------------------------------


@pytest.fixture
def broker(mega_broker):
    mega_broker.create_topic("t")
    mega_broker.produce("t", b"abc", timestamp=42)
    return mega_broker


def test_error_every_nth_request_and_nothing_stored(broker):
    broker.faults.add("produce:error=RESOURCE_EXHAUSTED:every=3")
    with RawClient(broker.address) as c:
        c.send(*[produce(i, "t", b"m%d" % i) for i in range(1, 7)])
        c.expect_bytes(
            produce_ok(1, 1) + produce_ok(2, 2) + error(3, 9) + produce_ok(4, 3) + produce_ok(5, 4) + error(6, 9)
        )
    assert broker.topics() == {"t": 5}
    rec = broker.records()[0]
    assert [(f.rule, f.request_index, f.correlation_id) for f in rec.faults] == [
        ("produce:error=RESOURCE_EXHAUSTED:every=3", 3, 3),
        ("produce:error=RESOURCE_EXHAUSTED:every=3", 6, 6),
    ]


def test_error_with_a_numeric_code_and_nth(broker):
    broker.faults.add("consume:error=200:nth=2")
    with RawClient(broker.address) as c:
        c.send(consume(1, "t", 0), consume(2, "t", 0), consume(3, "t", 0))
        ok = consume_ok(0, 42, 1, b"abc")[4:]
        c.expect_bytes(struct.pack(">i", 1) + ok + struct.pack(">ibB", 2, 0, 200) + struct.pack(">i", 3) + ok)


def test_delay_keeps_answers_in_order(broker):
    broker.faults.add("produce:delay=600:once")
    with RawClient(broker.address) as c:
        start = time.monotonic()
        c.send(produce(1, "t", b"x"), consume(2, "t", 0))
        c.expect_bytes(produce_ok(1, 1) + consume_ok(2, 42, 1, b"abc"))
        assert time.monotonic() - start >= 0.59
        c.send(produce(3, "t", b"y"))
        c.expect_bytes(produce_ok(3, 2))
    # once: applied to the first PRODUCE only
    assert [(f.rule, f.request_index) for f in broker.records()[0].faults] == [("produce:delay=600:once", 1)]


def test_delay_with_much_pipelined_output_stays_bounded_and_ordered(mega_broker_factory):
    broker = mega_broker_factory(write_buffer_high_water=64 * 1024, record=False)
    broker.create_topic("t")
    payload = b"p" * 100_000
    broker.produce("t", payload)
    broker.faults.add("consume:delay=200:once")
    with RawClient(broker.address, timeout=10) as c:
        c.send(*[consume(i, "t", 0) for i in range(40)])
        for i in range(40):
            c.expect_bytes(consume_ok(i, 0, 1, payload))


@pytest.mark.parametrize(("rule", "pause"), [("consume:slice=1/5", 0.005), ("consume:slice=4", 0.010)])
def test_slice_sends_the_answer_in_pieces(broker, rule, pause):
    broker.faults.add(rule)
    expected = consume_ok(7, 42, 1, b"abc")
    with RawClient(broker.address) as c:
        start = time.monotonic()
        c.send(consume(7, "t", 0))
        c.expect_bytes(expected)
        elapsed = time.monotonic() - start
    step = int(rule.split("=")[1].split("/")[0])
    pieces = -(-len(expected) // step)
    assert elapsed >= (pieces - 1) * pause * 0.9
    sent = broker.records()[0].sent
    assert sent == expected


def test_close_before_answering(broker):
    broker.faults.add("produce:close:once")
    with RawClient(broker.address) as c:
        c.send(consume(1, "t", 0), produce(2, "t", b"x"), consume(3, "t", 0))
        assert c.read_to_eof() == consume_ok(1, 42, 1, b"abc")
    broker.wait_closed_connections()
    assert broker.records()[0].close_reason == "fault produce:close:once"
    with RawClient(broker.address) as c:  # once: the next connection is served
        c.send(consume(4, "t", 0))
        c.expect_bytes(consume_ok(4, 42, 1, b"abc"))


def test_close_after_k_bytes(broker):
    broker.faults.add("produce:close-after=8")
    with RawClient(broker.address) as c:
        c.send(produce(5, "t", b"x"))
        assert c.read_to_eof() == produce_ok(5, 1)[:8]


def test_reset(broker):
    broker.faults.add("produce:reset")
    with RawClient(broker.address) as c:
        c.send(produce(5, "t", b"x"))
        with pytest.raises(ConnectionResetError):
            _drain(c.sock)
    broker.wait_closed_connections()


def test_silent_never_answers_but_keeps_the_connection(broker):
    broker.faults.add("produce:silent:once")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([produce(1, "t", b"x")]))
        c.assert_open(wait=0.2)
        c.send_raw(pipelined([consume(2, "t", 1)]))
        c.expect_bytes(consume_ok(2, TS, 2, b"x"))


@pytest.mark.parametrize(("cid", "wrong"), [(5, 6), (2**31 - 1, -(2**31)), (-1, 0)])
def test_wrong_cid(broker, cid, wrong):
    broker.faults.add("produce:wrong-cid")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([produce(cid, "t", b"x")]))
        c.expect_bytes(produce_ok(wrong, 1))


@pytest.mark.parametrize(("rule", "flag"), [("any:bad-flag", 2), ("any:bad-flag=255", 255), ("any:bad-flag=-1", 255)])
def test_bad_flag(broker, rule, flag):
    broker.faults.add(rule)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([consume(3, "t", 0), consume(4, "t", 9)]))
        ok = bytearray(consume_ok(3, 42, 1, b"abc"))
        ok[4] = flag
        err = bytearray(error(4, 6))
        err[4] = flag
        c.expect_bytes(bytes(ok) + bytes(err))


def test_bad_length(broker):
    broker.faults.add("consume:bad-length=-1:once")
    broker.faults.add("create_topic:bad-length=300")
    broker.faults.add("produce:bad-length=2000000000")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([consume(1, "t", 0), create(2, "u"), produce(3, "t", b"x"), consume(4, "t", 0)]))
        bad_consume = consume_ok(1, 42, 1, b"")[:17] + b"\xff\xff\xff\xff" + b"abc"
        bad_create = create_ok(2, "u")[:13] + struct.pack(">H", 300) + b"u"
        c.expect_bytes(bad_consume + bad_create + produce_ok(3, 1) + consume_ok(4, 42, 1, b"abc"))
    broker.faults.clear()
    broker.faults.add("consume:bad-length=2000000000")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([consume(5, "t", 0)]))
        c.expect_bytes(consume_ok(5, 42, 1, b"")[:17] + struct.pack(">i", 2_000_000_000) + b"abc")


def test_unsolicited_frame_before_the_answer(broker):
    broker.faults.add("produce:unsolicited=NETWORK_ERROR:once")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([produce(9, "t", b"x"), produce(10, "t", b"y")]))
        c.expect_bytes(bytes.fromhex("00 00 00 00 00 08") + produce_ok(9, 1) + produce_ok(10, 2))


def test_trailing_bytes_follow_the_answer(broker):
    broker.faults.add("produce:trailing=0000000701:once")
    stray = bytes.fromhex("00 00 00 07 01")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([produce(9, "t", b"x")]))
        c.expect_bytes(produce_ok(9, 1) + stray)
        c.assert_open()
        c.send_raw(pipelined([produce(10, "t", b"y")]))  # once: the next answer comes alone
        c.expect_bytes(produce_ok(10, 2))
        c.assert_open()
    rec = broker.records()[0]
    assert rec.sent == produce_ok(9, 1) + stray + produce_ok(10, 2)
    assert [(f.rule, f.request_index, f.correlation_id) for f in rec.faults] == [
        ("produce:trailing=0000000701:once", 1, 9)
    ]


def test_trailing_bytes_go_where_the_answer_goes(broker):
    broker.faults.add("consume:silent:once")
    broker.faults.add("consume:trailing=ee:nth=1")
    broker.faults.add("produce:slice=5/1")
    broker.faults.add("produce:trailing=abcdef")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([consume(1, "t", 0), produce(2, "t", b"x")]))
        # silent: the trailing bytes alone; sliced: the answer and its trailing bytes, in pieces
        c.expect_bytes(b"\xee" + produce_ok(2, 1) + bytes.fromhex("abcdef"))


def test_hold_coalesces_with_the_next_answer(broker):
    broker.faults.add("consume:hold:once")
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([consume(1, "t", 0)]))
        c.assert_open(wait=0.15)  # held back
        c.send_raw(pipelined([produce(2, "t", b"x")]))
        both = consume_ok(1, 42, 1, b"abc") + produce_ok(2, 1)
        time.sleep(0.05)
        assert c.sock.recv(1000) == both  # one write, one segment
    assert broker.records()[0].sent == both


def test_slow_read_throttles_reading(broker):
    broker.faults.add("any:slow-read=20000:once")
    frame = pipelined([produce(i, "t", b"z" * 400) for i in range(10)])  # ~4.3 KB
    with RawClient(broker.address) as c:
        c.send_raw(frame)
        c.recv_exact(17 * 10)
        start = time.monotonic()
        c.send_raw(frame)
        c.recv_exact(17 * 10)
        assert time.monotonic() - start >= 0.15  # 4.3 KB at 20 KB/s


def test_topic_and_connection_restrictions(broker):
    broker.create_topic("u")
    broker.faults.add("produce@u:error=INTERNAL_ERROR")
    broker.faults.add("consume:error=INVALID_REQUEST:conn=2")
    with RawClient(broker.address) as c1:
        c1.send(produce(1, "t", b"x"), produce(2, "u", b"x"), consume(3, "t", 0))
        c1.expect_bytes(produce_ok(1, 1) + error(2, 7) + consume_ok(3, 42, 1, b"abc"))
        with RawClient(broker.address) as c2:
            c2.send(consume(4, "t", 0))
            c2.expect_bytes(error(4, 1))


def test_faults_apply_to_decode_error_answers(broker):
    broker.faults.add("any:wrong-cid")
    with RawClient(broker.address) as c:
        c.send_raw(raw_frame(20, 1, b"t", payload=b"x" * (1024 * 1024 + 1)))
        c.expect_bytes(error(21, 3))


# -- connect actions -------------------------------------------------------------------


def test_connect_close_once(broker):
    broker.faults.add("connect:close:once")
    with RawClient(broker.address) as c:
        assert c.read_to_eof() == b""
    with RawClient(broker.address) as c:
        c.send(consume(1, "t", 0))
        c.expect_bytes(consume_ok(1, 42, 1, b"abc"))
    recs = broker.records()
    assert [f.rule for f in recs[0].faults] == ["connect:close:once"]
    assert recs[0].faults[0].request_index is None


def test_connect_reset(broker):
    broker.faults.add("connect:reset:once")
    with pytest.raises(ConnectionResetError):  # from connect() itself or from the first recv()
        _connect_and_drain(broker.address)


def test_connect_refuse(broker):
    broker.faults.add("connect:refuse=300")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(broker.address, timeout=2)
    with _connect_once_listening(broker.address) as c:
        c.send(consume(1, "t", 0))  # the accepted connection is served
        c.expect_bytes(consume_ok(1, 42, 1, b"abc"))
        # ... and with "always" the listener is down again after it.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(broker.address, timeout=2)


def test_connect_refuse_once_then_listens(broker):
    broker.faults.add("connect:refuse=150:once")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(broker.address, timeout=2)
    with _connect_once_listening(broker.address) as c:
        c.send(consume(1, "t", 0))
        c.expect_bytes(consume_ok(1, 42, 1, b"abc"))
    with RawClient(broker.address) as c:  # once: still listening after that connection
        c.send(consume(2, "t", 0))
        c.expect_bytes(consume_ok(2, 42, 1, b"abc"))


def test_connect_silent_never_reads_nor_answers(mega_broker_factory):
    broker = mega_broker_factory(idle_timeout=0.1)
    broker.faults.add("connect:silent:once")
    c = RawClient(broker.address)
    c.send(create(1, "t"))
    c.assert_open(wait=0.4)  # no answer, and no idle NETWORK_ERROR either
    assert broker.topics() == {}
    assert broker.records()[0].bytes_received == 0  # never read
    c.close()
    broker.wait_closed_connections(3)  # a peer close is still noticed


def test_faults_given_in_the_config_and_refuse_at_start():
    async def main() -> None:
        async with MockBroker(faults=("produce:error=TOPIC_NOT_FOUND",)) as broker:
            assert [str(r) for r in broker.faults.list()] == ["produce:error=TOPIC_NOT_FOUND"]

    asyncio.run(main())


def test_no_rules_no_faults_recorded(broker):
    with RawClient(broker.address) as c:
        c.send(consume(1, "t", 0))
        c.responses(1)
    broker.wait_closed_connections()
    assert broker.records()[0].faults == []
    assert not broker.faults.active


def test_live_connections_return_to_zero_after_faults(broker):
    broker.faults.add("produce:delay=50")
    broker.faults.add("consume:slice=2/1")
    socks = [RawClient(broker.address) for _ in range(10)]
    for i, c in enumerate(socks):
        c.send(produce(i, "t", b"x"), consume(i, "t", 0))
    for c in socks:
        c.close()
    wait_until(lambda: broker.connections() == [], timeout=5)
    assert broker.internal_errors == []


def test_every_action_is_documented_in_the_readme_and_the_help():
    from pathlib import Path

    from mock_broker._cli import EPILOG
    from mock_broker._faults import ACTIONS

    readme = (Path(__file__).resolve().parents[2] / "mock_broker" / "README.md").read_text()
    for name, action in ACTIONS.items():
        assert f"`{action.syntax}`" in readme or f"`{name}`" in readme, name
        assert action.syntax in EPILOG, name
