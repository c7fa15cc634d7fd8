"""Limits: the 1 MiB payload limit at and just over the edge, oversized lengths, and a topic at capacity."""

from __future__ import annotations

import time
from dataclasses import dataclass

from conformance._wire import CONSUME, CREATE_TOPIC, MAX_PAYLOAD, PRODUCE
from conformance.broker._context import BrokerContext, Connection
from conformance.broker._frames import (
    INVALID_OFFSET,
    MESSAGE_TOO_LARGE,
    RESOURCE_EXHAUSTED,
    consume,
    consume_ok,
    create_ok,
    create_topic,
    describe_response,
    error,
    header_until_payload_length,
    produce,
    produce_ok,
    raw_request,
)
from conformance.broker._registry import broker_case
from mega_client.protocol.limits import INT32_MAX


def _pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike (so a shifted or truncated copy shows)."""
    block = bytes(range(251))
    return (block * (size // 251 + 1))[:size]


@broker_case("limits.payload-at-max", clauses=("SEM-8", "BROKER-9", "RESP-6", "RESP-8"))
def payload_at_max(ctx: BrokerContext) -> None:
    """A payload of exactly 1,048,576 bytes is accepted (offset 0) and read back whole by CONSUME (payload_length
    00 10 00 00)."""
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    payload = _pattern(MAX_PAYLOAD)
    c.send(produce(1, name, payload, 11), "PRODUCE of 1,048,576 bytes")
    c.expect(produce_ok(1, 11, 0), what="answer to PRODUCE of exactly 1 MiB")
    c.send(consume(2, name, 0, 0), "CONSUME")
    c.expect(consume_ok(2, 11, 1, payload), what="answer to CONSUME of the 1 MiB message")


@broker_case("limits.payload-over-max", clauses=("ERR-5", "SEM-8", "BROKER-5", "ERR-15", "ERR-14"))
def payload_over_max(ctx: BrokerContext) -> None:
    """A PRODUCE with payload_length 1,048,577 (payload sent in full, then a second PRODUCE, in one write) is
    answered MESSAGE_TOO_LARGE; the payload is skipped and the second PRODUCE is answered at offset 0."""
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    big = produce(1, name, _pattern(MAX_PAYLOAD + 1), 12)
    c.send(big + produce(2, name, b"small", 13), "PRODUCE of 1,048,577 bytes + PRODUCE")
    c.expect(error(1, MESSAGE_TOO_LARGE), produce_ok(2, 13, 0), what="answers")
    ctx.expect_message(c, name, 0, 13, b"small", what="CONSUME offset 0")


@broker_case("limits.payload-over-max-any-type", clauses=("ERR-5", "SEM-8", "BROKER-5", "ERR-15"))
def payload_over_max_any_type(ctx: BrokerContext) -> None:
    """The limit applies to every message type: CONSUME and CREATE_TOPIC with payload_length 1,048,577 are answered
    MESSAGE_TOO_LARGE, and the connection goes on with the next request."""
    c = ctx.connect()
    name, stamps = ctx.new_topic(c, payloads=[b"m"])
    fresh = ctx.topic("fresh")
    big = b"\x07" * (MAX_PAYLOAD + 1)
    c.send(
        raw_request(1, CONSUME, name.encode(), 0, offset=0, payload=big)
        + raw_request(2, CREATE_TOPIC, fresh.encode(), 0, payload=big)
        + consume(3, name, 0, 0)
        + create_topic(4, fresh, 5),
        "oversized CONSUME + oversized CREATE_TOPIC + CONSUME + CREATE_TOPIC",
    )
    c.expect(
        error(1, MESSAGE_TOO_LARGE),
        error(2, MESSAGE_TOO_LARGE),
        consume_ok(3, stamps[0], 1, b"m"),
        create_ok(4, 5, fresh),
        what="answers",
    )


@broker_case(
    "limits.too-large-answered-early", clauses=("BROKER-6", "BROKER-5"), level="SHOULD", reference_defect="12.5"
)
def too_large_answered_early(ctx: BrokerContext) -> None:
    """MESSAGE_TOO_LARGE is sent as soon as payload_length 1,048,577 is read, before any payload byte arrives; the
    payload sent afterwards is still skipped and the next request answered."""
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    c.send(header_until_payload_length(1, PRODUCE, name.encode(), MAX_PAYLOAD + 1), "PRODUCE header only")
    c.expect(error(1, MESSAGE_TOO_LARGE), what="answer to payload_length 1,048,577 before its payload is sent")
    c.send(_pattern(MAX_PAYLOAD + 1) + produce(2, name, b"next", 3), "the payload + PRODUCE")
    c.expect(produce_ok(2, 3, 0), what="answer to the PRODUCE after the skipped payload")


#: Payload lengths far over the limit: 2^30, which a broker trusting the length allocates (the reference broker
#: does: 1 GiB), and 2^31-1, which a JVM cannot allocate (the reference broker closes at once, no answer).
HUGE_PAYLOAD_LENGTHS = (1 << 30, INT32_MAX)


@dataclass(frozen=True)
class _Probe:
    """What the broker did with a header announcing ``length`` payload bytes, none of them sent."""

    length: int
    #: None when MESSAGE_TOO_LARGE came within the read timeout, else what happened instead.
    problem: str | None
    #: Seconds until the answer (when there was one).
    answered_after: float = 0.0
    #: True when the broker neither answered nor closed: it waits for the announced bytes.
    waiting: bool = False
    #: What went wrong after the answer (bytes or a close while the payload was being discarded).
    after: str | None = None


def _announce_huge_payloads(ctx: BrokerContext) -> list[_Probe]:
    """Send one PRODUCE header per :data:`HUGE_PAYLOAD_LENGTHS`, each on its own connection, all at once, and
    see what the broker does within the read timeout; after a MESSAGE_TOO_LARGE, 64 KiB of the announced payload
    follow and must be discarded in silence, the connection open (BROKER-5)."""
    setup = ctx.connect()
    name = ctx.topic()
    ctx.create(setup, name)
    sent: list[tuple[Connection, int, int, float]] = []
    for i, length in enumerate(HUGE_PAYLOAD_LENGTHS):
        c = ctx.connect(f"connect for payload_length {length:,}")
        cid = 20 + i
        c.send(header_until_payload_length(cid, PRODUCE, name.encode(), length), f"PRODUCE header, {length:,} bytes")
        sent.append((c, cid, length, time.monotonic()))
    deadline = time.monotonic() + ctx.timeout
    probes = []
    answered: list[tuple[Connection, int, float]] = []
    for c, cid, length, at in sent:
        problem = c.answer_within(error(cid, MESSAGE_TOO_LARGE), max(0.01, deadline - time.monotonic()))
        if problem is None:
            answered.append((c, length, time.monotonic() - at))  # at most that: the answers are read one by one
            continue
        waiting = c.waited()
        if waiting:
            problem = (
                f"{problem}: it waits for the {length:,} announced bytes, as a broker that allocates a buffer "
                "from an unchecked length does (BROKER-7)"
            )
        probes.append(_Probe(length, problem, waiting=waiting))
    for c, length, after_s in answered:
        c.send(_pattern(65536), f"64 KiB of the announced {length:,} bytes", tolerate_close=True)
        c.linger(0.1)
        after = None
        if c.pending:
            after = f"then sent {describe_response(c.pending)} while the payload was being discarded"
        elif not c.open:
            after = "then closed the connection while the payload was being discarded"
        probes.append(_Probe(length, None, answered_after=after_s, after=after))
    return sorted(probes, key=lambda p: p.length)


@broker_case(
    "limits.huge-payload-length-not-fatal",
    clauses=("ERR-5", "BROKER-5", "ERR-15"),
    reference_defect="12.5",
)
def huge_payload_length_not_fatal(ctx: BrokerContext) -> None:
    """A PRODUCE header announcing payload_length 2^30 or 2^31-1 (each on its own connection, no payload byte sent)
    is not a fatal error: within the read timeout the broker sends nothing but MESSAGE_TOO_LARGE, and does not
    close the connection, not even while the first 64 KiB of the payload are discarded. (Answering before the
    payload arrives is the SHOULD of limits.huge-payload-length.)"""
    probes = _announce_huge_payloads(ctx)
    bad = [
        f"payload_length {p.length:,}: {p.problem or p.after}"
        for p in probes
        if (p.problem is not None and not p.waiting) or p.after is not None
    ]
    if bad:
        ctx.fail("; ".join(bad) + " (ERR-5, BROKER-5: MESSAGE_TOO_LARGE, and the connection stays open)")
    ctx.note(
        "; ".join(
            f"payload_length {p.length:,}: "
            + ("no answer yet, connection open (waiting for the payload)" if p.waiting else "MESSAGE_TOO_LARGE")
            for p in probes
        )
    )


@broker_case(
    "limits.huge-payload-length",
    clauses=("BROKER-6", "BROKER-7", "ERR-5", "BROKER-5"),
    level="SHOULD",
    reference_defect="12.5",
)
def huge_payload_length(ctx: BrokerContext) -> None:
    """A PRODUCE header announcing payload_length 2^30 or 2^31-1 (each on its own connection, no payload byte sent)
    is answered MESSAGE_TOO_LARGE at once, without the broker waiting for the announced bytes, and the connection
    stays open while they are discarded. The reason says what happened for each length: a broker that stays open
    and silent waits for the payload, which is how a broker that allocates from an unchecked length looks from
    outside (the reference broker allocates 1 GiB for 2^30 while such a connection is open, and closes with no
    answer at 2^31-1, over the JVM's array limit)."""
    probes = _announce_huge_payloads(ctx)
    bad = [f"payload_length {p.length:,}: {p.problem or p.after}" for p in probes if p.problem or p.after]
    if bad:
        ctx.fail("; ".join(bad) + " (BROKER-6: MESSAGE_TOO_LARGE as soon as the length is read)")
    ctx.note(
        "MESSAGE_TOO_LARGE at once for "
        + ", ".join(f"payload_length {p.length:,} (within {p.answered_after * 1000:.1f} ms)" for p in probes)
    )


@broker_case("limits.topic-capacity", clauses=("ERR-11", "SEM-9", "ERR-14", "SEM-4"), reference_defect="12.19")
def topic_capacity(ctx: BrokerContext) -> None:
    """A topic holding its capacity (given by --topic-capacity; skipped without it) answers the next PRODUCE
    RESOURCE_EXHAUSTED (9), twice, stores nothing more (its last offset still reads; the next is INVALID_OFFSET), and
    the connection stays usable. The fill keeps its connection busy (pipelined batches sized to be answered well
    within the idle timeout)."""
    capacity = ctx.target.topic_capacity
    if capacity is None:
        ctx.skip("needs --topic-capacity N: the per-topic capacity of the target (1,000,000 by default, SEM-9)")
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    started = time.monotonic()
    c, _ = ctx.produce_many(
        c, name, capacity, payload=b"c", timestamp=5, what=f"filling the topic to its capacity of {capacity}"
    )
    ctx.note(f"{capacity} messages stored in {time.monotonic() - started:.1f} s")
    c = ctx.keep_or_reconnect(c, "after filling the topic")
    c.send(produce(-1, name, b"over", 6) + produce(-2, name, b"over", 7), "two PRODUCEs to the full topic")
    c.expect(error(-1, RESOURCE_EXHAUSTED), error(-2, RESOURCE_EXHAUSTED), what="answers to PRODUCE on a full topic")
    c.send(consume(-3, name, capacity - 1, 0) + consume(-4, name, capacity, 0), "CONSUME the last offset and the next")
    c.expect(
        consume_ok(-3, 5, capacity, b"c"),
        error(-4, INVALID_OFFSET),
        what="answers to CONSUME of the last offset and one past it",
    )
