"""Semantics: correlation ids, timestamps, offsets across connections, topic creation."""

from __future__ import annotations

from conformance._wire import hexline
from conformance._wire import i32 as get_i32
from conformance._wire import i64 as get_i64
from conformance.broker._context import BrokerContext, Connection
from conformance.broker._frames import (
    INVALID_OFFSET,
    TOPIC_ALREADY_EXISTS,
    TOPIC_NOT_FOUND,
    consume,
    consume_ok,
    create_ok,
    create_topic,
    describe_response,
    error,
    produce,
    produce_ok,
)
from conformance.broker._registry import broker_case
from mega_client.protocol import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

TIMESTAMPS = (0, -1, INT64_MIN, INT64_MAX)


@broker_case("semantics.correlation-id-extremes", clauses=("SEM-12", "BROKER-2", "RESP-1"))
def correlation_ids(ctx: BrokerContext) -> None:
    """Correlation ids 0, -1, INT32_MIN and INT32_MAX are echoed verbatim, on success and error responses of every
    type."""
    c = ctx.connect()
    name = ctx.topic()
    missing = ctx.topic("missing")
    c.send(
        create_topic(INT32_MIN, name, 1)
        + produce(0, name, b"a", 2)
        + produce(-1, name, b"b", 3)
        + consume(INT32_MAX, name, 1, 4)
        + consume(0, missing, 0, 5)
        + produce(-1, missing, b"c", 6)
        + create_topic(INT32_MAX, name, 7)
        + consume(INT32_MIN, name, 9, 8),
        "eight pipelined requests with extreme correlation ids",
    )
    c.expect(
        create_ok(INT32_MIN, 1, name),
        produce_ok(0, 2, 0),
        produce_ok(-1, 3, 1),
        consume_ok(INT32_MAX, 3, 2, b"b"),
        error(0, TOPIC_NOT_FOUND),
        error(-1, TOPIC_NOT_FOUND),
        error(INT32_MAX, TOPIC_ALREADY_EXISTS),
        error(INT32_MIN, INVALID_OFFSET),
        what="answers",
    )


@broker_case("semantics.duplicate-correlation-ids", clauses=("SEM-12", "CONN-4"))
def duplicate_ids(ctx: BrokerContext) -> None:
    """The broker does not check correlation ids for uniqueness or order: five pipelined PRODUCEs all with id 77,
    then ids 3, 2, 1, are each answered, in order."""
    c = ctx.connect()
    name, _ = ctx.new_topic(c)
    cids = [77] * 5 + [3, 2, 1]
    c.send(b"".join(produce(cid, name, bytes([i]), 100 + i) for i, cid in enumerate(cids)), "pipelined PRODUCEs")
    c.expect(*(produce_ok(cid, 100 + i, i) for i, cid in enumerate(cids)), what="answers")


@broker_case("semantics.timestamp-extremes", clauses=("SEM-7", "BROKER-9", "RESP-4", "RESP-5", "RESP-6", "WIRE-1"))
def timestamps(ctx: BrokerContext) -> None:
    """Timestamps are not validated: CREATE_TOPIC and PRODUCE echo 0, -1, INT64_MIN and INT64_MAX, and CONSUME
    returns the timestamp each message was produced with."""
    c = ctx.connect()
    name = ctx.topic()
    c.send(create_topic(1, name, INT64_MIN), "CREATE_TOPIC with timestamp INT64_MIN")
    c.expect(create_ok(1, INT64_MIN, name), what="answer to CREATE_TOPIC with timestamp INT64_MIN")
    c.send(b"".join(produce(10 + i, name, b"t%d" % i, ts) for i, ts in enumerate(TIMESTAMPS)), "PRODUCEs")
    c.expect(*(produce_ok(10 + i, ts, i) for i, ts in enumerate(TIMESTAMPS)), what=f"answers to PRODUCE {TIMESTAMPS}")
    c.send(b"".join(consume(20 + i, name, i, 1) for i in range(len(TIMESTAMPS))), "CONSUMEs")
    c.expect(
        *(consume_ok(20 + i, ts, i + 1, b"t%d" % i) for i, ts in enumerate(TIMESTAMPS)),
        what="answers to CONSUME (the stored timestamps)",
    )


@broker_case("semantics.consume-timestamp-ignored", clauses=("SEM-7", "BROKER-9", "RESP-6"))
def consume_timestamp(ctx: BrokerContext) -> None:
    """The timestamp of a CONSUME request is ignored: whatever it is (0, INT64_MAX, the wall clock), the answer
    carries the timestamp the message was produced with (42)."""
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    c.send(produce(1, name, b"abc", 42), "PRODUCE with timestamp 42")
    c.expect(produce_ok(1, 42, 0), what="answer to PRODUCE")
    for i, ts in enumerate((0, INT64_MAX, ctx.ts())):
        c.send(consume(10 + i, name, 0, ts), f"CONSUME with timestamp {ts}")
        c.expect(consume_ok(10 + i, 42, 1, b"abc"), what=f"answer to CONSUME with request timestamp {ts}")


@broker_case("semantics.dense-offsets", clauses=("SEM-4", "SEM-5", "SEM-6"))
def dense_offsets(ctx: BrokerContext) -> None:
    """Offsets start at 0 and grow by exactly 1 per PRODUCE (40 pipelined PRODUCEs get 0..39), and each offset reads
    back its own message."""
    ctx.need_capacity(40)
    c = ctx.connect()
    payloads = [b"message %d" % i for i in range(40)]
    name, stamps = ctx.new_topic(c, payloads=payloads)
    c.send(b"".join(consume(500 + i, name, i, 0) for i in range(40)), "40 CONSUMEs")
    c.expect(*(consume_ok(500 + i, stamps[i], i + 1, payloads[i]) for i in range(40)), what="answers")


def _offset_of(ctx: BrokerContext, conn: Connection, cid: int, ts: int, what: str) -> int:
    """Read one PRODUCE success (17 bytes) and return its offset, checking every other field."""
    raw = conn.read_exact(17, what)
    ctx.check(
        get_i32(raw, 0) == cid and raw[4] == 1 and get_i64(raw, 5) == ts,
        f"{what}: expected a PRODUCE success for correlation id {cid} with timestamp {ts}, got {hexline(raw)}",
    )
    return get_i32(raw, 13)


@broker_case("semantics.offsets-across-connections", clauses=("SEM-4", "SEM-5", "CONN-3"))
def offsets_across_connections(ctx: BrokerContext) -> None:
    """One topic's offsets are shared by every connection: PRODUCEs taking turns on three connections get 0..29 in
    turn; 20 PRODUCEs pipelined on each at once get 30..89 with no gap or repeat (increasing per connection); a
    fourth connection reads every message at the offset its producer was given."""
    ctx.need_capacity(90)
    conns = [ctx.connect() for _ in range(3)]
    name, _ = ctx.new_topic(conns[0])
    owner: dict[int, bytes] = {}
    stamp: dict[int, int] = {}
    for turn in range(30):
        c = conns[turn % 3]
        cid, ts, payload = ctx.cid(), ctx.ts(), b"turn %d from %d" % (turn, turn % 3)
        c.send(produce(cid, name, payload, ts), "PRODUCE")
        c.expect(produce_ok(cid, ts, turn), what=f"PRODUCE #{turn} (on connection {turn % 3 + 1} of 3)")
        owner[turn], stamp[turn] = payload, ts
    batches = []
    for k, c in enumerate(conns):
        batch = [(ctx.cid(), ctx.ts(), b"burst %d from %d" % (i, k)) for i in range(20)]
        batches.append(batch)
        c.send(b"".join(produce(cid, name, p, ts) for cid, ts, p in batch), "20 pipelined PRODUCEs")
    for k, (c, batch) in enumerate(zip(conns, batches, strict=True)):
        offsets = [
            _offset_of(ctx, c, cid, ts, f"answer to a pipelined PRODUCE on connection {k + 1}") for cid, ts, _ in batch
        ]
        ctx.check(
            offsets == sorted(offsets),
            f"connection {k + 1}'s pipelined PRODUCEs got offsets out of order: {offsets} (SEM-4: acceptance order)",
        )
        for off, (_, ts, payload) in zip(offsets, batch, strict=True):
            ctx.check(off not in owner, f"offset {off} was given twice (to {owner.get(off)!r} and to {payload!r})")
            owner[off], stamp[off] = payload, ts
    ctx.check(
        sorted(owner) == list(range(90)),
        f"90 PRODUCEs got offsets {sorted(set(range(90)) - set(owner))[:10]} missing / "
        f"{sorted(set(owner) - set(range(90)))[:10]} beyond 0..89 (SEM-4: dense, no gaps)",
    )
    reader = ctx.connect()
    reader.send(b"".join(consume(9000 + off, name, off, 0) for off in range(90)), "90 CONSUMEs")
    reader.expect(
        *(consume_ok(9000 + off, stamp[off], off + 1, owner[off]) for off in range(90)),
        what="CONSUME of every offset on a fourth connection",
    )


@broker_case("semantics.consume-does-not-remove", clauses=("SEM-6", "SEM-5"))
def consume_does_not_remove(ctx: BrokerContext) -> None:
    """CONSUME does not remove or mark a message: offset 0 reads the same, with next_offset 1, three times on one
    connection and twice on another."""
    a, b = ctx.connect(), ctx.connect()
    name, stamps = ctx.new_topic(a, payloads=[b"again"])
    for conn, times in ((a, 3), (b, 2)):
        cids = [ctx.cid() for _ in range(times)]
        conn.send(b"".join(consume(cid, name, 0, 0) for cid in cids), "repeated CONSUME offset 0")
        conn.expect(*(consume_ok(cid, stamps[0], 1, b"again") for cid in cids), what="answers")


@broker_case("semantics.no-auto-create", clauses=("SEM-1", "ERR-6", "ERR-14"))
def no_auto_create(ctx: BrokerContext) -> None:
    """PRODUCE and CONSUME never create a topic: after both were answered TOPIC_NOT_FOUND, CREATE_TOPIC of that
    name succeeds and the new topic is empty."""
    c = ctx.connect()
    name = ctx.topic()
    c.send(produce(1, name, b"lost", 1) + consume(2, name, 0, 2), "PRODUCE + CONSUME on a missing topic")
    c.expect(error(1, TOPIC_NOT_FOUND), error(2, TOPIC_NOT_FOUND), what="answers")
    c.send(create_topic(3, name, 3) + consume(4, name, 0, 4), "CREATE_TOPIC + CONSUME offset 0")
    c.expect(create_ok(3, 3, name), error(4, INVALID_OFFSET), what="answers (a new, empty topic)")


@broker_case("semantics.create-race", clauses=("SEM-3", "ERR-7"))
def create_race(ctx: BrokerContext) -> None:
    """CREATE_TOPIC of one name sent at once on 8 connections: exactly one succeeds, the others are answered
    TOPIC_ALREADY_EXISTS."""
    conns = [ctx.connect() for _ in range(8)]
    name = ctx.topic()
    for i, c in enumerate(conns):
        c.send(create_topic(300 + i, name, 1000 + i), "CREATE_TOPIC")
    winners = []
    for i, c in enumerate(conns):
        head = c.read_exact(6, f"answer to CREATE_TOPIC on connection {i + 1}")
        if head[4:5] == b"\x00":
            ctx.check(
                head == error(300 + i, TOPIC_ALREADY_EXISTS).data,
                f"connection {i + 1}: expected TOPIC_ALREADY_EXISTS or the CREATE_TOPIC success, "
                f"got {describe_response(head)}",
            )
            continue
        rest = create_ok(300 + i, 1000 + i, name).data[6:]
        got = head + c.read_exact(len(rest), f"answer to CREATE_TOPIC on connection {i + 1}")
        ctx.check(
            got == create_ok(300 + i, 1000 + i, name).data,
            f"connection {i + 1}: expected TOPIC_ALREADY_EXISTS or the CREATE_TOPIC success, got {hexline(got)}",
        )
        winners.append(i + 1)
    ctx.check(len(winners) == 1, f"{len(winners)} of 8 racing CREATE_TOPICs succeeded (connections {winners})")
