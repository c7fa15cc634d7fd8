"""Semantics: correlation ids, timestamps, offsets across connections, topic creation."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from conformance._wire import MAX_PAYLOAD, hexline, pack_i32, pack_i64, read_i32, read_i64
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
from mega_client.protocol.limits import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

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
    name = ctx.topic()
    ctx.create(c, name)
    # The offsets of these PRODUCEs are what the case checks: their failure is no "setup" failure.
    stamps = ctx.fill_topic(c, name, payloads, what="40 pipelined PRODUCEs")
    c.send(b"".join(consume(500 + i, name, i, 0) for i in range(40)), "40 CONSUMEs")
    c.expect(*(consume_ok(500 + i, stamps[i], i + 1, payloads[i]) for i in range(40)), what="answers")


def _offset_of(ctx: BrokerContext, conn: Connection, cid: int, ts: int, what: str) -> int:
    """Read one PRODUCE success (17 bytes) and return its offset, checking every other field."""
    raw = conn.read_exact(17, what)
    ctx.check(
        read_i32(raw, 0) == cid and raw[4] == 1 and read_i64(raw, 5) == ts,
        f"{what}: expected a PRODUCE success for correlation id {cid} with timestamp {ts}, got {hexline(raw)}",
    )
    return read_i32(raw, 13)


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


#: The offsets stress: connections producing to one topic at once, PRODUCEs per connection (at most: fewer when
#: the topic capacity is smaller), PRODUCEs per connection and round (one pipelined write; halved when a round takes
#: longer than the idle margin), connections reading back, and the time after which no new round starts.
STRESS_PRODUCERS = 8
STRESS_PER_PRODUCER = 5_000
STRESS_WINDOW = 500
STRESS_READERS = 2
STRESS_BUDGET_S = 10.0
#: Mismatches quoted in the reason (all are counted).
STRESS_QUOTED = 3

_PRODUCE_OK_LEN = 17
_CONSUME_HEAD_LEN = 21


@dataclass(frozen=True)
class _Sent:
    """One PRODUCE of the stress: its producer (1-based), its number there, and what it carried."""

    producer: int
    number: int
    cid: int
    timestamp: int
    payload: bytes

    def __str__(self) -> str:
        return f"PRODUCE #{self.number} of connection {self.producer} ({self.payload!r}, timestamp {self.timestamp})"


_STRESS_PAYLOAD = re.compile(rb"^stress c(\d+) #(\d+)$")


def _stress_payload(producer: int, number: int) -> bytes:
    """A payload that names its PRODUCE, so a message read back under the wrong offset says whose it is."""
    return b"stress c%d #%d" % (producer, number)


def _whose(payload: bytes) -> str:
    m = _STRESS_PAYLOAD.match(payload)
    if m is None:
        return f"a payload no PRODUCE of this case sent ({hexline(payload, 24)})"
    return f"PRODUCE #{int(m.group(2))} of connection {int(m.group(1))}"


def _produce_answers(ctx: BrokerContext, conn: Connection, batch: list[_Sent], what: str) -> list[int]:
    """The offsets answered to ``batch`` (PRODUCE successes with its correlation ids and timestamps, in order)."""
    conn.fill(_PRODUCE_OK_LEN * len(batch))
    offsets = []
    for index, sent in enumerate(batch):
        answer = conn.peek(_PRODUCE_OK_LEN)
        if len(answer) < _PRODUCE_OK_LEN:
            ctx.fail(f"{what}: answer {index + 1} of {len(batch)}: {conn.why_short(len(answer), _PRODUCE_OK_LEN)}")
        if answer[:13] != pack_i32(sent.cid) + b"\x01" + pack_i64(sent.timestamp):
            conn.linger(0.05)
            ctx.fail(
                f"{what}: answer {index + 1} of {len(batch)} should be a PRODUCE success for correlation id "
                f"{sent.cid} echoing timestamp {sent.timestamp}; got {describe_response(conn.peek(24))}"
            )
        offsets.append(read_i32(conn.take(_PRODUCE_OK_LEN), 13))
    return offsets


def _read_back(
    ctx: BrokerContext, conn: Connection, offsets: list[int], given: dict[int, _Sent], what: str
) -> list[str]:
    """CONSUME each of ``offsets`` (pipelined, sent first by :func:`_send_reads`); returns the mismatches found.

    A well-framed CONSUME success carrying another message than the one given the offset is a mismatch, counted;
    anything else (an error response, a wrong correlation id or next_offset) fails the case at once.
    """
    mismatches = []
    for index, offset in enumerate(offsets):
        sent = given[offset]
        cid = 1_000_000_000 + offset
        step = f"{what}: CONSUME of offset {offset:,} (given to {sent})"
        conn.fill(_CONSUME_HEAD_LEN)
        head = conn.peek(_CONSUME_HEAD_LEN)
        start = pack_i32(cid) + b"\x01"
        if len(head) < _CONSUME_HEAD_LEN and head[:5] == start[: len(head)]:
            ctx.fail(f"{step}: {conn.why_short(len(head), _CONSUME_HEAD_LEN)}")
        if head[:5] != start or read_i32(head, 13) != offset + 1:
            conn.linger(0.05)
            ctx.fail(
                f"{step}, answer {index + 1} of {len(offsets)}: expected a CONSUME success for correlation id {cid} "
                f"with next_offset {offset + 1:,}; got {describe_response(conn.peek(32))}"
            )
        size = read_i32(head, 17)
        if not 0 <= size <= MAX_PAYLOAD:
            ctx.fail(f"{step}: the answer gives payload_length {size}")
        conn.fill(_CONSUME_HEAD_LEN + size)
        answer = conn.take(_CONSUME_HEAD_LEN + size)
        if len(answer) < _CONSUME_HEAD_LEN + size:
            ctx.fail(f"{step}: {conn.why_short(len(answer), _CONSUME_HEAD_LEN + size)}")
        payload, stamp = answer[_CONSUME_HEAD_LEN:], read_i64(answer, 5)
        if payload != sent.payload or stamp != sent.timestamp:
            mismatches.append(f"offset {offset:,} was given to {sent} but reads {_whose(payload)} (timestamp {stamp})")
    return mismatches


def _send_reads(ctx: BrokerContext, readers: list[Connection], name: str, offsets: list[int]) -> list[list[int]]:
    """Send CONSUMEs of ``offsets``, split among ``readers`` (one pipelined write each); returns each one's share."""
    shares = [offsets[k :: len(readers)] for k in range(len(readers))]
    for conn, share in zip(readers, shares, strict=True):
        if share:
            conn.send(
                b"".join(consume(1_000_000_000 + off, name, off, ctx.ts()) for off in share),
                f"{len(share)} CONSUMEs reading back offsets",
            )
    return shares


@dataclass
class _Stress:
    """The offsets stress between its rounds: its connections, the offset each PRODUCE was given, what is unread."""

    ctx: BrokerContext
    name: str
    #: PRODUCEs per producing connection, in all.
    per: int
    producers: list[Connection]
    #: PRODUCEs per producing connection and round (the case halves it when a round takes too long).
    window: int = STRESS_WINDOW
    readers: list[Connection] = field(default_factory=list)
    given: dict[int, _Sent] = field(default_factory=dict)
    #: Per producing connection: the last offset it was given, and how many of its PRODUCEs were answered.
    last: list[int] = field(default_factory=lambda: [-1] * STRESS_PRODUCERS)
    done: list[int] = field(default_factory=lambda: [0] * STRESS_PRODUCERS)
    #: The offsets given in the last round, read back during the next one.
    unread: list[int] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    def run_round(self, what: str, *, producing: bool) -> None:
        """One round: a window of PRODUCEs per connection (when ``producing``) while the last round's offsets are
        read back on other connections, then their answers checked."""
        self.producers = [self.ctx.keep_or_reconnect(c, what) for c in self.producers]
        self.readers = [self.ctx.keep_or_reconnect(c, what) for c in self.readers]
        batches = self._send_produces(what, producing=producing)
        if self.unread and not self.readers:
            self.readers = [self.ctx.connect(f"connect reader {k + 1}") for k in range(STRESS_READERS)]
        shares = _send_reads(self.ctx, self.readers, self.name, self.unread)
        for k, (conn, batch) in enumerate(zip(self.producers, batches, strict=True)):
            if batch:
                self._take_offsets(k, conn, batch, f"{what}, connection {k + 1}")
        for r, (conn, share) in enumerate(zip(self.readers, shares, strict=True)):
            self.mismatches += _read_back(self.ctx, conn, share, self.given, f"{what}, reader {r + 1}")
        self._check_dense()
        # The offsets are dense, so this round's are the last ones; they are read back during the next round.
        total = len(self.given)
        self.unread = list(range(total - sum(len(b) for b in batches), total))

    def _send_produces(self, what: str, *, producing: bool) -> list[list[_Sent]]:
        """Each producing connection's next PRODUCEs, pipelined in one write; returns them per connection."""
        batches: list[list[_Sent]] = []
        for k, conn in enumerate(self.producers):
            count = min(self.window, self.per - self.done[k]) if producing else 0
            batch = [
                _Sent(k + 1, i, self.ctx.cid(), self.ctx.ts(), _stress_payload(k + 1, i))
                for i in range(self.done[k] + 1, self.done[k] + count + 1)
            ]
            batches.append(batch)
            if batch:
                conn.send(
                    b"".join(produce(s.cid, self.name, s.payload, s.timestamp) for s in batch),
                    f"{what}: {len(batch)} pipelined PRODUCEs on connection {k + 1}",
                )
        return batches

    def _take_offsets(self, k: int, conn: Connection, batch: list[_Sent], what: str) -> None:
        """The offsets answered to producing connection ``k``: each one new, each above the one before (SEM-4)."""
        offsets = _produce_answers(self.ctx, conn, batch, what)
        for sent, offset in zip(batch, offsets, strict=True):
            if offset in self.given:
                self.ctx.fail(f"offset {offset:,} was given twice: to {self.given[offset]} and to {sent} (SEM-4)")
            if offset <= self.last[k]:
                self.ctx.fail(
                    f"{sent} got offset {offset:,}, after offset {self.last[k]:,} for an earlier PRODUCE of its "
                    "connection: not in the order of the requests (SEM-4, CONN-3)"
                )
            self.given[offset] = sent
            self.last[k] = offset
        self.done[k] += len(batch)

    def _check_dense(self) -> None:
        """The offsets given so far are 0 to their number - 1 (SEM-4: dense, no gaps)."""
        total = len(self.given)
        if total and max(self.given) != total - 1:
            missing = sorted(set(range(total)) - set(self.given))
            self.ctx.fail(
                f"after {total:,} PRODUCEs the offsets answered are not 0..{total - 1:,}: {len(missing):,} missing "
                f"(first {missing[:5]}), the highest is {max(self.given):,} (SEM-4: dense, no gaps)"
            )


@broker_case("semantics.offsets-under-concurrency", clauses=("SEM-4", "SEM-5", "CONN-3"), reference_defect="12.20")
def offsets_under_concurrency(ctx: BrokerContext) -> None:
    """Stress: 8 connections each pipeline 5,000 PRODUCEs to one topic at the same time (40,000 in all, fewer when
    the topic capacity is smaller), in rounds of 500 per connection (no round starts after 10 s); each payload names
    its connection and number. Every offset answered is unique, the offsets are dense and increase on each
    connection, and every offset, read back on two other connections during the next round, returns the very
    message (payload and timestamp) whose PRODUCE was answered with it."""
    per = min(STRESS_PER_PRODUCER, ctx.capacity // STRESS_PRODUCERS)
    ctx.need_capacity(STRESS_PRODUCERS * STRESS_WINDOW)
    producers = [ctx.connect(f"connect producer {k + 1}") for k in range(STRESS_PRODUCERS)]
    name, _ = ctx.new_topic(producers[0])
    stress = _Stress(ctx, name, per, producers)
    margin = ctx.idle_margin
    started = time.monotonic()
    rounds = 0
    while True:
        producing = min(stress.done) < per and (rounds == 0 or time.monotonic() - started < STRESS_BUDGET_S)
        if not producing and not stress.unread:
            break
        round_started = time.monotonic()
        stress.run_round(f"round {rounds + 1}", producing=producing)
        rounds += 1
        if margin is not None and time.monotonic() - round_started > margin:
            stress.window = max(1, stress.window // 2)
    elapsed = time.monotonic() - started
    given, mismatches = stress.given, stress.mismatches
    summary = f"{len(given):,} PRODUCEs on {STRESS_PRODUCERS} connections at once, {rounds} rounds, {elapsed:.1f} s"
    if mismatches:
        ctx.fail(
            f"{len(mismatches):,} of {len(given):,} offsets read back a different message than the one whose PRODUCE "
            f"was answered with that offset (SEM-5): " + "; ".join(mismatches[:STRESS_QUOTED]) + f" ({summary})"
        )
    ctx.note(f"every offset read back its own message: {summary}")


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
