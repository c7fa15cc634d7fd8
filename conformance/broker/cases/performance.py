"""Performance (informative): whether the cost of a CONSUME grows with the offset read (BROKER-10, a SHOULD)."""

from __future__ import annotations

import time

from conformance.broker._context import BrokerContext, Connection
from conformance.broker._frames import consume, consume_ok, produce, produce_ok
from conformance.broker._registry import broker_case

#: How deep the topic is filled, at most, and how long filling it may take.
DEPTH = 50_000
FILL_BUDGET_S = 4.0
MIN_DEPTH = 5_000
#: Messages per pipelined write while filling; CONSUMEs per timed batch (at most, and about how long one may
#: take: a broker whose deep CONSUME is slow gets smaller batches); timed batches per offset.
FILL_BATCH = 2_500
BATCH = 200
BATCH_BUDGET_S = 0.25
ROUNDS = 3
#: A deep CONSUME costing more than RATIO times a shallow one, and MIN_EXCESS_S more per request, fails.
RATIO = 3.0
MIN_EXCESS_S = 20e-6

_TS = 5
_PAYLOAD = b"m"


def _timed_batch(ctx: BrokerContext, c: Connection, name: str, offset: int, size: int) -> float:
    """Seconds per CONSUME of ``offset``, over one pipelined batch of ``size`` (answers checked).

    A broker may answer a whole batch at once, after working on all of it: the read waits for
    silence up to five times the usual timeout.
    """
    cids = [ctx.cid() for _ in range(size)]
    data = b"".join(consume(cid, name, offset, 0) for cid in cids)
    answers = [consume_ok(cid, _TS, offset + 1, _PAYLOAD) for cid in cids]
    started = time.perf_counter()
    c.send(data, f"{size} CONSUMEs of offset {offset}")
    c.expect(*answers, what=f"answers to {size} CONSUMEs of offset {offset}", timeout=5 * ctx.timeout)
    return (time.perf_counter() - started) / size


@broker_case("performance.consume-cost", clauses=("BROKER-10",), level="SHOULD", reference_defect="12.7")
def consume_cost(ctx: BrokerContext) -> None:
    """Informative: CONSUME of a deep offset (up to 50,000 messages, as many as the broker stores in 4 s and its topic
    capacity allows) costs about what CONSUME of offset 0 does; it fails when a deep one takes over 3 times as long
    and over 20 us more."""
    depth = min(DEPTH, ctx.capacity)
    ctx.need_capacity(MIN_DEPTH)
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    started = time.monotonic()
    stored = 0
    while stored < depth and time.monotonic() - started < FILL_BUDGET_S:
        n = min(FILL_BATCH, depth - stored)
        cids = [ctx.cid() for _ in range(n)]
        c.send(b"".join(produce(cid, name, _PAYLOAD, _TS) for cid in cids), "PRODUCEs")
        c.expect(*(produce_ok(cid, _TS, stored + i) for i, cid in enumerate(cids)), what="setup: filling the topic")
        stored += n
    fill_s = time.monotonic() - started
    if stored < MIN_DEPTH:
        ctx.skip(f"the broker stored only {stored} messages in {fill_s:.1f} s; {MIN_DEPTH} are needed to measure")
    deep = stored - 1
    _timed_batch(ctx, c, name, 0, 10)  # warm up
    probe = max(_timed_batch(ctx, c, name, deep, 10), 1e-6)
    size = max(10, min(BATCH, int(BATCH_BUDGET_S / probe)))
    shallow_s: list[float] = []
    deep_s: list[float] = []
    for _ in range(ROUNDS):
        shallow_s.append(_timed_batch(ctx, c, name, 0, size))
        deep_s.append(_timed_batch(ctx, c, name, deep, size))
    low, high = min(shallow_s), min(deep_s)
    ratio = high / low if low > 0 else float("inf")
    summary = (
        f"CONSUME offset 0: {low * 1e3:.3f} ms, offset {deep:,}: {high * 1e3:.3f} ms per request "
        f"({ratio:.1f}x; {stored:,} messages stored in {fill_s:.1f} s)"
    )
    if ratio > RATIO and high - low > MIN_EXCESS_S:
        ctx.fail(f"the cost of CONSUME grows with the offset: {summary}")
    ctx.note(summary)
