"""Performance (informative): whether the cost of a CONSUME grows with the offset read (BROKER-10, a SHOULD).

The cost is measured one request at a time: each CONSUME is sent once the previous one was answered. Timing
pipelined batches instead lets a broker without TCP_NODELAY (the reference one) hide an O(offset) CONSUME: its
answers to a batch wait about 44 ms for Nagle's algorithm and the peer's delayed ACK, which swamps the cost per
request, while a lone request is answered at once.
"""

from __future__ import annotations

import statistics
import time

from conformance.broker._context import BrokerContext, Connection
from conformance.broker._frames import consume, consume_ok
from conformance.broker._registry import broker_case

#: How deep the topic is filled, at most, how long filling it may take, and the least depth worth measuring.
DEPTH = 50_000
FILL_BUDGET_S = 4.0
MIN_DEPTH = 5_000
#: Round trips timed per offset (at most; at least MIN_SAMPLES, more while MEASURE_BUDGET_S lasts), after WARM_UP.
SAMPLES = 41
MIN_SAMPLES = 11
MEASURE_BUDGET_S = 3.0
WARM_UP = 3
#: A deep CONSUME whose median round trip is over RATIO times a shallow one's, and MIN_EXCESS_S more, fails.
RATIO = 3.0
MIN_EXCESS_S = 20e-6

_TS = 5
_PAYLOAD = b"m"


def _round_trip(ctx: BrokerContext, c: Connection, name: str, offset: int) -> float:
    """Seconds from sending one CONSUME of ``offset`` to having its whole answer (checked)."""
    cid = ctx.cid()
    want = consume_ok(cid, _TS, offset + 1, _PAYLOAD)
    request = consume(cid, name, offset, 0)
    started = time.perf_counter()
    c.send(request, f"CONSUME of offset {offset}")
    c.expect(want, what=f"answer to CONSUME of offset {offset}", timeout=5 * ctx.timeout)
    return time.perf_counter() - started


@broker_case("performance.consume-cost", clauses=("BROKER-10",), level="SHOULD", reference_defect="12.7")
def consume_cost(ctx: BrokerContext) -> None:
    """Informative: CONSUME of a deep offset (up to 50,000 messages, as many as the broker stores in 4 s and its topic
    capacity allows) costs about what CONSUME of offset 0 does. Measured one request at a time (each CONSUME sent
    once the previous one is answered, so that neither batching nor Nagle's algorithm enters the figures), taking
    the median of up to 41 round trips at each offset, alternating; fails when the deep median is over 3 times the
    shallow one and over 20 us more."""
    depth = min(DEPTH, ctx.capacity)
    ctx.need_capacity(MIN_DEPTH)
    c = ctx.connect()
    name = ctx.topic()
    ctx.create(c, name)
    started = time.monotonic()
    c, stored = ctx.produce_many(c, name, depth, payload=_PAYLOAD, timestamp=_TS, budget=FILL_BUDGET_S)
    fill_s = time.monotonic() - started
    if stored < MIN_DEPTH:
        ctx.skip(f"the broker stored only {stored} messages in {fill_s:.1f} s; {MIN_DEPTH} are needed to measure")
    deep = stored - 1
    shallow_s: list[float] = []
    deep_s: list[float] = []
    measuring = time.monotonic()
    for turn in range(WARM_UP + SAMPLES):
        if turn >= WARM_UP + MIN_SAMPLES and time.monotonic() - measuring > MEASURE_BUDGET_S:
            break
        c = ctx.keep_or_reconnect(c, "between two CONSUMEs")
        low, high = _round_trip(ctx, c, name, 0), _round_trip(ctx, c, name, deep)
        if turn >= WARM_UP:
            shallow_s.append(low)
            deep_s.append(high)
    low, high = statistics.median(shallow_s), statistics.median(deep_s)
    ratio = high / low if low > 0 else float("inf")
    summary = (
        f"one CONSUME at a time, median round trip of {len(deep_s)} each: offset 0: {low * 1e3:.3f} ms, "
        f"offset {deep:,}: {high * 1e3:.3f} ms ({ratio:.1f}x; {stored:,} messages stored in {fill_s:.1f} s)"
    )
    if ratio > RATIO and high - low > MIN_EXCESS_S:
        ctx.fail(f"the cost of CONSUME grows with the offset: {summary}")
    ctx.note(summary)
