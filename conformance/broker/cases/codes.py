"""Codes: each error code where the spec says to send it, the order of checks, and what an error leaves behind.

Where each code is covered: INVALID_REQUEST in names.* and malformed.*,
INVALID_MESSAGE_TYPE in malformed.unknown-type, MESSAGE_TOO_LARGE in limits.*,
TOPIC_NOT_FOUND / TOPIC_ALREADY_EXISTS / INVALID_OFFSET here, INTERNAL_ERROR
(never for a condition with its own code, ERR-9) in names.*, NETWORK_ERROR only
in the unsolicited frame (idle.*), RESOURCE_EXHAUSTED in limits.topic-capacity.
"""

from __future__ import annotations

from conformance._wire import CREATE_TOPIC, MAX_PAYLOAD, PRODUCE
from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    INVALID_OFFSET,
    MESSAGE_TOO_LARGE,
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
from mega_client.protocol.limits import INT32_MAX, INT32_MIN


@broker_case("codes.topic-not-found", clauses=("ERR-6", "RESP-3", "SEM-1"))
def topic_not_found(ctx: BrokerContext) -> None:
    """PRODUCE and CONSUME naming a valid topic that does not exist are answered TOPIC_NOT_FOUND (4)."""
    c = ctx.connect()
    missing = ctx.topic("missing")
    c.send(produce(41, missing, b"x", 1), "PRODUCE to a missing topic")
    c.expect(error(41, TOPIC_NOT_FOUND), what="answer to PRODUCE on a missing topic")
    c.send(consume(42, missing, 0, 2), "CONSUME from a missing topic")
    c.expect(error(42, TOPIC_NOT_FOUND), what="answer to CONSUME on a missing topic")


@broker_case("codes.topic-already-exists", clauses=("ERR-7", "RESP-3", "ERR-14"))
def topic_already_exists(ctx: BrokerContext) -> None:
    """CREATE_TOPIC of an existing name is answered TOPIC_ALREADY_EXISTS (5), on the creating connection and on
    another one, and leaves the topic's messages alone."""
    a, b = ctx.connect(), ctx.connect()
    name, stamps = ctx.new_topic(a, payloads=[b"kept"])
    a.send(create_topic(51, name, 1), "second CREATE_TOPIC")
    a.expect(error(51, TOPIC_ALREADY_EXISTS), what="answer to a second CREATE_TOPIC")
    b.send(create_topic(52, name, 2), "CREATE_TOPIC from another connection")
    b.expect(error(52, TOPIC_ALREADY_EXISTS), what="answer to CREATE_TOPIC of an existing name on another connection")
    ctx.expect_message(b, name, 0, stamps[0], b"kept", what="CONSUME offset 0 after the refused CREATE_TOPICs")


@broker_case("codes.invalid-offset", clauses=("ERR-8", "RESP-3", "SEM-6"))
def invalid_offset(ctx: BrokerContext) -> None:
    """CONSUME with an offset < 0 or >= the number of messages (2, 3, -1, INT32_MAX, INT32_MIN on a 2-message topic;
    0 on an empty one) is answered INVALID_OFFSET (6); once a message is stored, offset 0 of the empty topic reads."""
    c = ctx.connect()
    name, stamps = ctx.new_topic(c, "two", [b"m0", b"m1"])
    offsets = (2, 3, -1, INT32_MAX, INT32_MIN)
    c.send(b"".join(consume(60 + i, name, off, 0) for i, off in enumerate(offsets)), "CONSUMEs out of range")
    c.expect(*(error(60 + i, INVALID_OFFSET) for i in range(len(offsets))), what=f"answers to CONSUME {offsets}")
    ctx.expect_message(c, name, 1, stamps[1], b"m1", what="CONSUME of the last offset")
    empty, _ = ctx.new_topic(c, "empty")
    c.send(consume(70, empty, 0, 0), "CONSUME offset 0 of an empty topic")
    c.expect(error(70, INVALID_OFFSET), what="answer to CONSUME offset 0 of an empty topic")
    later = ctx.fill_topic(c, empty, [b"now"])
    ctx.expect_message(c, empty, 0, later[0], b"now", what="CONSUME offset 0 once a message is stored")


@broker_case("codes.order-too-large-first", clauses=("ERR-13", "ERR-5", "SEM-8"))
def order_too_large_first(ctx: BrokerContext) -> None:
    """Step 2 comes before steps 3 and 4 (section 5.2): an oversized payload is answered MESSAGE_TOO_LARGE even when
    the topic is also invalid ('a b') or missing."""
    c = ctx.connect()
    big = b"\x00" * (MAX_PAYLOAD + 1)
    bad_name = raw_request(81, CREATE_TOPIC, b"a b", 0, payload=big)
    missing = raw_request(82, PRODUCE, ctx.topic("missing").encode(), 0, payload=big)
    c.send(bad_name + missing, "oversized CREATE_TOPIC 'a b' + oversized PRODUCE to a missing topic")
    c.expect(error(81, MESSAGE_TOO_LARGE), error(82, MESSAGE_TOO_LARGE), what="answers")


@broker_case("codes.order-topic-before-offset", clauses=("ERR-13", "ERR-6", "ERR-8"))
def order_topic_before_offset(ctx: BrokerContext) -> None:
    """Step 4 comes before step 5: CONSUME of offset -1 from a missing topic is answered TOPIC_NOT_FOUND, not
    INVALID_OFFSET."""
    c = ctx.connect()
    c.send(consume(91, ctx.topic("missing"), -1, 0), "CONSUME offset -1 from a missing topic")
    c.expect(error(91, TOPIC_NOT_FOUND), what="answer")


@broker_case("codes.connection-usable-after-errors", clauses=("ERR-15", "ERR-13", "BROKER-1", "CONN-4"))
def usable_after_errors(ctx: BrokerContext) -> None:
    """After each non-fatal error (TOPIC_NOT_FOUND, TOPIC_ALREADY_EXISTS, INVALID_OFFSET, MESSAGE_TOO_LARGE, sent
    pipelined in one write) the broker continues with the next frame: every request gets its answer, in order."""
    c = ctx.connect()
    name, _ = ctx.new_topic(c, payloads=[b"first"])
    big = raw_request(104, PRODUCE, name.encode(), 0, payload=b"\x01" * (MAX_PAYLOAD + 1))
    c.send(
        produce(101, ctx.topic("missing"), b"x", 0)
        + create_topic(102, name, 0)
        + consume(103, name, 5, 0)
        + big
        + produce(105, name, b"second", 77)
        + consume(106, name, 1, 0),
        "six pipelined requests, four of them refused",
    )
    c.expect(
        error(101, TOPIC_NOT_FOUND),
        error(102, TOPIC_ALREADY_EXISTS),
        error(103, INVALID_OFFSET),
        error(104, MESSAGE_TOO_LARGE),
        produce_ok(105, 77, 1),
        consume_ok(106, 77, 2, b"second"),
        what="answers",
    )
    c.expect_silence(0.05, "after the answers")


@broker_case("codes.error-has-no-effect", clauses=("ERR-14", "SEM-1", "SEM-4"))
def error_has_no_effect(ctx: BrokerContext) -> None:
    """A refused request changes nothing: a PRODUCE answered MESSAGE_TOO_LARGE stores no message (the next one still
    gets offset 0), and a CREATE_TOPIC answered MESSAGE_TOO_LARGE creates no topic."""
    c = ctx.connect()
    name = ctx.topic("log")
    ctx.create(c, name)
    c.send(raw_request(111, PRODUCE, name.encode(), 0, payload=b"\x02" * (MAX_PAYLOAD + 1)), "oversized PRODUCE")
    c.expect(error(111, MESSAGE_TOO_LARGE), what="answer to the oversized PRODUCE")
    c.send(produce(112, name, b"one", 5), "PRODUCE")
    c.expect(produce_ok(112, 5, 0), what="answer to the next PRODUCE (nothing was stored before it)")
    other = ctx.topic("never")
    c.send(raw_request(113, CREATE_TOPIC, other.encode(), 0, payload=b"\x03" * (MAX_PAYLOAD + 1)), "oversized CREATE")
    c.expect(error(113, MESSAGE_TOO_LARGE), what="answer to the oversized CREATE_TOPIC")
    c.send(create_topic(114, other, 6), "CREATE_TOPIC of the same name")
    c.expect(create_ok(114, 6, other), what="answer to CREATE_TOPIC (the refused one created nothing)")
