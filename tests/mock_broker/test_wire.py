"""The wire, byte for byte: examples, every error code, both profiles, pipelining."""

from __future__ import annotations

import pytest

from mega_client.protocol import ConsumeResponse, ErrorCode, ProduceResponse

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
)

INVALID_REQUEST = 1
INVALID_MESSAGE_TYPE = 2
MESSAGE_TOO_LARGE = 3
TOPIC_NOT_FOUND = 4
TOPIC_ALREADY_EXISTS = 5
INVALID_OFFSET = 6
INTERNAL_ERROR = 7
NETWORK_ERROR = 8
RESOURCE_EXHAUSTED = 9
MIB = 1024 * 1024


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace("|", " "))


def test_notes_examples_byte_for_byte(mega_broker_factory, profile):
    """Every example of PROTOCOL-NOTES.md, under both profiles."""
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(7, "probe-a")]))
        c.expect_bytes(h("00 00 00 07 01 00 00 01 1f 71 fb 04 cb 00 07 70 72 6f 62 65 2d 61"))
        c.send_raw(pipelined([create(8, "probe-a")]))
        c.expect_bytes(h("00 00 00 08 00 05"))
        c.send_raw(pipelined([produce(9, "probe-a", b"")]))
        c.expect_bytes(h("00 00 00 09 01 00 00 01 1f 71 fb 04 cb 00 00 00 00"))
        # The notes' PRODUCE request example, sent as written.
        c.send_raw(
            h("00 00 00 0a | 01 | 00 00 00 07 | 70 72 6f 62 65 2d 61")
            + h("00 00 00 00 00 00 00 2a | 00 00 00 03 | 61 62 63")
        )
        c.expect_bytes(produce_ok(10, 1, ts=42))
        c.send_raw(pipelined([consume(11, "probe-a", 1)]))
        c.expect_bytes(h("00 00 00 0b 01 00 00 00 00 00 00 00 2a 00 00 00 02 00 00 00 03 61 62 63"))
        c.send_raw(pipelined([consume(12, "probe-a", 0, ts=999)]))
        c.expect_bytes(consume_ok(12, TS, 1, b""))
    assert broker.topics() == {"probe-a": 2}
    assert [(m.offset, m.timestamp, m.payload) for m in broker.messages("probe-a")] == [(0, TS, b""), (1, 42, b"abc")]


@pytest.mark.parametrize("cid", [0, 1, -1, 2**31 - 1, -(2**31), 0x01020304])
def test_correlation_ids_echoed_verbatim(mega_broker, cid):
    with RawClient(mega_broker.address) as c:
        c.send_raw(pipelined([create(cid, "t"), produce(cid, "t", b"x"), consume(cid, "t", 0), consume(cid, "t", 5)]))
        c.expect_bytes(create_ok(cid, "t") + produce_ok(cid, 0) + consume_ok(cid, TS, 1, b"x") + error(cid, 6))


def test_payloads_of_create_and_consume_are_read_and_ignored(mega_broker):
    with RawClient(mega_broker.address) as c:
        c.send_raw(
            pipelined([create(1, "t", payload=b"ignored"), produce(2, "t", b"m"), consume(3, "t", 0, payload=b"zz")])
        )
        c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0) + consume_ok(3, TS, 1, b"m"))


def test_offsets_dense_and_timestamps_stored(mega_broker):
    with RawClient(mega_broker.address) as c:
        c.send_raw(pipelined([create(1, "t")] + [produce(10 + i, "t", bytes([i]) * i, ts=i * 1000) for i in range(50)]))
        c.expect_bytes(create_ok(1, "t") + b"".join(produce_ok(10 + i, i, ts=i * 1000) for i in range(50)))
        c.send_raw(pipelined([consume(100 + i, "t", i, ts=-5) for i in reversed(range(50))]))
        c.expect_bytes(b"".join(consume_ok(100 + i, i * 1000, i + 1, bytes([i]) * i) for i in reversed(range(50))))


# -- error codes -----------------------------------------------------------------------


def test_topic_not_found_and_already_exists(mega_broker_factory, profile):
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([produce(1, "nope", b"x"), consume(2, "nope", 0), create(3, "t"), create(4, "t")]))
        c.expect_bytes(
            error(1, TOPIC_NOT_FOUND) + error(2, TOPIC_NOT_FOUND) + create_ok(3, "t") + error(4, TOPIC_ALREADY_EXISTS)
        )
        c.assert_open()


@pytest.mark.parametrize("offset", [-1, -(2**31), 1, 2, 2**31 - 1])
def test_invalid_offset(mega_broker_factory, profile, offset):
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "t"), produce(2, "t", b"a"), consume(3, "t", offset), consume(4, "t", 0)]))
        c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0) + error(3, INVALID_OFFSET) + consume_ok(4, TS, 1, b"a"))


def test_invalid_offset_on_empty_topic(mega_broker):
    with RawClient(mega_broker.address) as c:
        c.send_raw(pipelined([create(1, "t"), consume(2, "t", 0)]))
        c.expect_bytes(create_ok(1, "t") + error(2, INVALID_OFFSET))


@pytest.mark.parametrize("name", ["", "a b", "a/b", "é", "topic!", "tab\t", "ü" * 100])
def test_bad_topic_names(mega_broker_factory, profile, name):
    """spec: INVALID_REQUEST everywhere; reference: INTERNAL_ERROR on CREATE, TOPIC_NOT_FOUND otherwise."""
    broker = mega_broker_factory(profile=profile)
    create_code, other_code = (
        (INVALID_REQUEST, INVALID_REQUEST) if profile == "spec" else (INTERNAL_ERROR, TOPIC_NOT_FOUND)
    )
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, name), produce(2, name, b"x"), consume(3, name, 0), create(4, "ok")]))
        c.expect_bytes(error(1, create_code) + error(2, other_code) + error(3, other_code) + create_ok(4, "ok"))
        c.assert_open()
    assert broker.topics() == {"ok": 0}


@pytest.mark.parametrize("mtype", [1, 2, 3])
def test_topic_not_utf8(mega_broker_factory, profile, mtype):
    broker = mega_broker_factory(profile=profile)
    code = INVALID_REQUEST if profile == "spec" else INTERNAL_ERROR if mtype == 3 else TOPIC_NOT_FOUND
    with RawClient(broker.address) as c:
        c.send_raw(raw_frame(5, mtype, b"\xff\xfe", payload=b"p") + pipelined([create(6, "ok")]))
        c.expect_bytes(error(5, code) + create_ok(6, "ok"))


def test_longest_name_is_fine_and_256_bytes_is_not(mega_broker_factory, profile):
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "n" * 255)]))
        c.expect_bytes(create_ok(1, "n" * 255))
        c.send_raw(pipelined([create(2, "n" * 256)]))
        if profile == "spec":
            # topic_length over 255 is a frame error: answered, then the connection closes.
            assert c.read_to_eof() == error(2, INVALID_REQUEST)
        else:
            c.expect_bytes(error(2, INTERNAL_ERROR))
            c.send_raw(pipelined([produce(3, "n" * 300, b"x"), consume(4, "q" * 1000, 0)]))
            c.expect_bytes(error(3, TOPIC_NOT_FOUND) + error(4, TOPIC_NOT_FOUND))
            c.assert_open()


@pytest.mark.parametrize(("mtype", "code"), [(1, TOPIC_NOT_FOUND), (2, TOPIC_NOT_FOUND), (3, INTERNAL_ERROR)])
def test_reference_waits_for_a_long_topic_then_answers_it_as_a_bad_name(mega_broker_factory, mtype, code):
    """Measured on the reference broker: topic_length 65,536 with only the head sent stays open and
    silent; with the whole frame, it is answered like any bad name and the next request is served."""
    broker = mega_broker_factory(profile="reference", record=False)
    topic = b"t" * 70_000
    frame = raw_frame(1, mtype, topic, payload=b"p")
    with RawClient(broker.address) as c:
        c.send_raw(frame[: 9 + 30_000])
        c.assert_open(wait=0.2)  # waiting for the rest of the topic
        c.send_raw(frame[9 + 30_000 :] + pipelined([create(2, "t")]))
        c.expect_bytes(error(1, code) + create_ok(2, "t"))
    assert broker.topics() == {"t": 0}


@pytest.mark.parametrize("mtype", [0x00, 0x04, 0x7F, 0x80, 0xFF])
def test_unknown_message_type(mega_broker_factory, profile, mtype):
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "t")]) + raw_frame(-77, mtype, b"t"))
        expected = create_ok(1, "t") + (error(-77, INVALID_MESSAGE_TYPE) if profile == "spec" else b"")
        assert c.read_to_eof() == expected
    broker.wait_closed_connections()


@pytest.mark.parametrize(
    ("field", "value"),
    [("topic_length", -1), ("topic_length", -(2**31)), ("payload_length", -1), ("payload_length", -(2**31))],
)
@pytest.mark.parametrize("mtype", [1, 2, 3])
def test_negative_lengths(mega_broker_factory, profile, field, value, mtype):
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(raw_frame(42, mtype, b"t", **{field: value}))
        assert c.read_to_eof() == (error(42, INVALID_REQUEST) if profile == "spec" else b"")
    broker.wait_closed_connections()


@pytest.mark.parametrize("mtype", [1, 2, 3])
def test_message_too_large_keeps_the_connection(mega_broker_factory, profile, mtype):
    broker = mega_broker_factory(profile=profile)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "t")]))
        c.expect_bytes(create_ok(1, "t"))
        c.send_raw(raw_frame(2, mtype, b"t", payload=b"\x01" * (MIB + 1)) + pipelined([produce(3, "t", b"after")]))
        c.expect_bytes(error(2, MESSAGE_TOO_LARGE) + produce_ok(3, 0))
        # Exactly the limit is fine.
        c.send_raw(pipelined([produce(4, "t", b"\x02" * MIB)]))
        c.expect_bytes(produce_ok(4, 1))
    assert broker.topics() == {"t": 2}


def test_reference_answers_message_too_large_once_the_payload_arrived(mega_broker_factory):
    """Measured: the reference broker reads the whole oversized payload, then answers."""
    broker = mega_broker_factory(profile="reference", record=False)
    frame = raw_frame(2, 1, b"t", payload=b"\x01" * (MIB + 1))
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "t")]) + frame[:-1])
        c.expect_bytes(create_ok(1, "t"))
        c.assert_open(wait=0.2)  # one byte of the payload is still to come
        c.send_raw(frame[-1:] + pipelined([produce(3, "t", b"after")]))
        c.expect_bytes(error(2, MESSAGE_TOO_LARGE) + produce_ok(3, 0))


def test_configured_payload_limit(mega_broker_factory):
    broker = mega_broker_factory(max_payload_bytes=10)
    with RawClient(broker.address) as c:
        c.send_raw(
            pipelined([create(1, "t"), produce(2, "t", b"x" * 10), produce(3, "t", b"x" * 11), produce(4, "t", b"y")])
        )
        c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0) + error(3, MESSAGE_TOO_LARGE) + produce_ok(4, 1))


def test_resource_exhausted_full_topic(mega_broker_factory, profile):
    """A full topic: RESOURCE_EXHAUSTED; the reference broker answers INTERNAL_ERROR (measured)."""
    full = RESOURCE_EXHAUSTED if profile == "spec" else INTERNAL_ERROR
    broker = mega_broker_factory(profile=profile, max_messages_per_topic=3)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "t"), create(2, "u")] + [produce(10 + i, "t", b"m") for i in range(5)]))
        c.expect_bytes(
            create_ok(1, "t")
            + create_ok(2, "u")
            + b"".join(produce_ok(10 + i, i) for i in range(3))
            + error(13, full)
            + error(14, full)
        )
        c.send_raw(pipelined([produce(20, "u", b"m"), consume(21, "t", 2)]))
        c.expect_bytes(produce_ok(20, 0) + consume_ok(21, TS, 3, b"m"))


def test_resource_exhausted_max_topics(mega_broker_factory, profile):
    broker = mega_broker_factory(profile=profile, max_topics=2)
    with RawClient(broker.address) as c:
        c.send_raw(pipelined([create(1, "a"), create(2, "b"), create(3, "c"), create(4, "a")]))
        c.expect_bytes(
            create_ok(1, "a") + create_ok(2, "b") + error(3, RESOURCE_EXHAUSTED) + error(4, TOPIC_ALREADY_EXISTS)
        )


def test_every_error_code_is_exercised():
    """A guard: the cases above (and test_limits' idle timeout for 8) cover every code."""
    covered = {
        INVALID_REQUEST,
        INVALID_MESSAGE_TYPE,
        MESSAGE_TOO_LARGE,
        TOPIC_NOT_FOUND,
        TOPIC_ALREADY_EXISTS,
        INVALID_OFFSET,
        INTERNAL_ERROR,
        NETWORK_ERROR,
        RESOURCE_EXHAUSTED,
    }
    assert covered == {int(c) for c in ErrorCode}


# -- pipelining and framing -------------------------------------------------------------


def test_pipelined_mixed_requests_answered_in_order(mega_broker):
    reqs = [create(1, "t")]
    for i in range(300):
        reqs.append(produce(1000 + i, "t", b"p%d" % i))
        reqs.append(consume(5000 + i, "t", i))
        if i % 50 == 0:
            reqs.append(consume(9000 + i, "missing", 0))
    with RawClient(mega_broker.address) as c:
        c.send(*reqs)
        got = c.responses(len(reqs))
    assert [r.correlation_id for r in got] == [r.correlation_id for r in reqs]
    produced = [r for r in got if isinstance(r, ProduceResponse)]
    assert [r.offset for r in produced] == list(range(300))
    consumed = [r for r in got if isinstance(r, ConsumeResponse)]
    assert [r.payload for r in consumed] == [b"p%d" % i for i in range(300)]


def test_requests_split_at_every_byte(mega_broker):
    data = pipelined([create(1, "t"), produce(2, "t", b"hello"), consume(3, "t", 0)])
    with RawClient(mega_broker.address) as c:
        for i in range(len(data)):
            c.send_raw(data[i : i + 1])
        c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0) + consume_ok(3, TS, 1, b"hello"))


def test_large_consume_answer(mega_broker):
    payload = bytes(range(256)) * 4096  # 1 MiB
    with RawClient(mega_broker.address) as c:
        c.send_raw(pipelined([create(1, "t"), produce(2, "t", payload)] + [consume(3 + i, "t", 0) for i in range(5)]))
        c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0))
        for i in range(5):
            c.expect_bytes(consume_ok(3 + i, TS, 1, payload))
