"""Layout: every request layout (section 3.1) answered with every response layout (section 4.1), byte for byte."""

from __future__ import annotations

from conformance._wire import CONSUME, CREATE_TOPIC
from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    TOPIC_ALREADY_EXISTS,
    TOPIC_NOT_FOUND,
    consume,
    consume_ok,
    create_ok,
    create_topic,
    error,
    produce,
    produce_ok,
    raw_request,
)
from conformance.broker._registry import broker_case

#: The timestamp of the spec's examples, 0x0000011f71fb04cb.
EXAMPLE_TS = 1234567890123


@broker_case("layout.create-topic", clauses=("REQ-1", "REQ-4", "RESP-1", "RESP-4", "WIRE-1", "WIRE-4"))
def create_topic_layout(ctx: BrokerContext) -> None:
    """CREATE_TOPIC (21 + n bytes) is answered with the 15 + n byte success layout: correlation id, success 1, the
    request's timestamp, a u16 topic length and the name exactly as sent."""
    c = ctx.connect()
    name = ctx.topic()
    c.send(create_topic(7, name, EXAMPLE_TS), "CREATE_TOPIC")
    c.expect(create_ok(7, EXAMPLE_TS, name), what="answer to CREATE_TOPIC")


@broker_case("layout.produce", clauses=("REQ-1", "REQ-5", "RESP-1", "RESP-5", "SEM-4"))
def produce_layout(ctx: BrokerContext) -> None:
    """PRODUCE is answered with the 17-byte success layout: correlation id, success 1, the request's timestamp and the
    offset given to the message (0, then 1 on a new topic)."""
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    c.send(produce(9, name, b"", EXAMPLE_TS), "PRODUCE with an empty payload")
    c.expect(produce_ok(9, EXAMPLE_TS, 0), what="answer to the first PRODUCE")
    c.send(produce(10, name, b"abc", 42), "PRODUCE 'abc'")
    c.expect(produce_ok(10, 42, 1), what="answer to the second PRODUCE")


@broker_case("layout.consume", clauses=("REQ-1", "REQ-6", "RESP-1", "RESP-6", "SEM-6", "BROKER-9"))
def consume_layout(ctx: BrokerContext) -> None:
    """CONSUME (25 + n bytes, with its offset field) is answered with the 21 + p byte success layout: correlation id,
    success 1, the message's stored timestamp, next_offset = offset + 1, payload_length and the payload."""
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    c.send(produce(1, name, b"abc", 42) + produce(2, name, b"hello, world", 43), "two PRODUCEs")
    c.expect(produce_ok(1, 42, 0), produce_ok(2, 43, 1), what="setup: answers to two PRODUCEs")
    c.send(consume(11, name, 1, EXAMPLE_TS), "CONSUME offset 1")
    c.expect(consume_ok(11, 43, 2, b"hello, world"), what="answer to CONSUME offset 1")
    c.send(consume(12, name, 0, EXAMPLE_TS), "CONSUME offset 0")
    c.expect(consume_ok(12, 42, 1, b"abc"), what="answer to CONSUME offset 0")


@broker_case("layout.error", clauses=("RESP-1", "RESP-3", "ERR-6", "WIRE-2"))
def error_layout(ctx: BrokerContext) -> None:
    """An error response is exactly 6 bytes (correlation id, success 0, error code): a PRODUCE to a missing topic
    pipelined with a CREATE_TOPIC gets the 6-byte TOPIC_NOT_FOUND immediately followed by the CREATE_TOPIC answer."""
    c = ctx.connect()
    missing, name = ctx.topic("missing"), ctx.topic("made")
    c.send(produce(12, missing, b"x", 1) + create_topic(13, name, 2), "PRODUCE to a missing topic + CREATE_TOPIC")
    c.expect(error(12, TOPIC_NOT_FOUND), create_ok(13, 2, name), what="answers")


@broker_case("layout.section-4-example", clauses=("RESP-2", "RESP-4", "RESP-5", "RESP-6", "CONN-4", "WIRE-2"))
def section_4_example(ctx: BrokerContext) -> None:
    """The pipelined example of section 4.1 (CREATE_TOPIC 7, CREATE_TOPIC 8, PRODUCE 9, PRODUCE 10, CONSUME 11, on a
    fresh topic) is answered with the five responses back to back, each in the layout of its request."""
    c = ctx.connect()
    name = ctx.topic("probe-a")
    c.send(
        create_topic(7, name, EXAMPLE_TS)
        + create_topic(8, name, EXAMPLE_TS)
        + produce(9, name, b"", EXAMPLE_TS)
        + produce(10, name, b"abc", 42)
        + consume(11, name, 1, EXAMPLE_TS),
        "five pipelined requests",
    )
    c.expect(
        create_ok(7, EXAMPLE_TS, name),
        error(8, TOPIC_ALREADY_EXISTS),
        produce_ok(9, EXAMPLE_TS, 0),
        produce_ok(10, 42, 1),
        consume_ok(11, 42, 2, b"abc"),
        what="answers to the section 4.1 example",
    )


@broker_case("layout.create-topic-payload-ignored", clauses=("REQ-4", "REQ-7", "REQ-8"))
def create_topic_payload(ctx: BrokerContext) -> None:
    """A CREATE_TOPIC carrying a 9-byte payload is answered normally, and the payload is read and ignored: the
    PRODUCE that follows it in the same write is answered as the next request (offset 0), not misread."""
    c = ctx.connect()
    name = ctx.topic()
    req = raw_request(21, CREATE_TOPIC, name.encode(), 5, payload=b"\x00\x00\x00\x2aignored")
    c.send(req + produce(22, name, b"m", 6), "CREATE_TOPIC with a payload + PRODUCE")
    c.expect(create_ok(21, 5, name), produce_ok(22, 6, 0), what="answers")


@broker_case("layout.consume-payload-ignored", clauses=("REQ-6", "REQ-7", "REQ-8"))
def consume_payload(ctx: BrokerContext) -> None:
    """A CONSUME carrying a payload is answered normally (the stored message, not the request's payload), and the
    request that follows it in the same write is answered next."""
    c = ctx.connect()
    name, stamps = ctx.new_topic(c, payloads=[b"stored"])
    req = raw_request(31, CONSUME, name.encode(), 7, offset=0, payload=b"\x00\x00\x00\x01\x02request-payload")
    c.send(req + consume(32, name, 0, 8), "CONSUME with a payload + CONSUME")
    c.expect(
        consume_ok(31, stamps[0], 1, b"stored"), consume_ok(32, stamps[0], 1, b"stored"), what="answers to CONSUMEs"
    )


@broker_case("layout.empty-payload", clauses=("WIRE-6", "REQ-5", "RESP-6", "BROKER-9"))
def empty_payload(ctx: BrokerContext) -> None:
    """An empty payload (payload_length 0) is a valid message: stored, and returned by CONSUME with payload_length 0."""
    c = ctx.connect()
    name, stamps = ctx.new_topic(c, payloads=[b"", b"x", b""])
    ctx.expect_message(c, name, 0, stamps[0], b"", what="CONSUME of the empty message at offset 0")
    ctx.expect_message(c, name, 2, stamps[2], b"", what="CONSUME of the empty message at offset 2")


@broker_case("layout.binary-payload", clauses=("WIRE-6", "BROKER-9"))
def binary_payload(ctx: BrokerContext) -> None:
    """Payloads are opaque: every byte value, NUL, CR LF, invalid UTF-8 and a payload that looks like a frame come
    back byte for byte."""
    c = ctx.connect()
    payloads = [
        bytes(range(256)) * 16,
        b"\x00",
        b"\r\n\r\n",
        b"\xff\xfe\xc3\x28 not utf-8 \xed\xa0\x80",
        bytes.fromhex("000000000008"),
        b" padded ",
    ]
    name, stamps = ctx.new_topic(c, payloads=payloads)
    for offset, payload in enumerate(payloads):
        ctx.expect_message(c, name, offset, stamps[offset], payload, what=f"CONSUME offset {offset}")
