"""Connections: many at once, none waiting for another to close, a stalled one delaying nobody."""

from __future__ import annotations

import time

from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    TOPIC_NOT_FOUND,
    consume,
    consume_ok,
    create_ok,
    create_topic,
    error,
    produce,
    produce_ok,
)
from conformance.broker._registry import broker_case

#: CONN-6: at least this many simultaneous connections.
CONNECTIONS = 50


@broker_case("connections.fifty-at-once", clauses=("CONN-6",), reference_defect="12.6")
def fifty_at_once(ctx: BrokerContext) -> None:
    """50 connections are open at once and each is served while all the others stay open: a CONSUME sent on each
    is answered on every one of them (within twice the read timeout, and within the idle timeout
    when it is given, so that no answer waits for another connection's idle close)."""
    setup = ctx.connect()
    name, stamps = ctx.new_topic(setup, payloads=[b"shared"])
    conns = [ctx.connect(f"connect #{i + 1} of {CONNECTIONS}") for i in range(CONNECTIONS)]
    for i in range(CONNECTIONS):
        conns[i].send(consume(1000 + i, name, 0, 0), f"CONSUME on connection #{i + 1}")
    # Within the target's idle timeout, so that no connection gets its turn because another was closed for idleness.
    wait = 2 * ctx.timeout
    if ctx.target.idle_timeout is not None:
        wait = min(wait, max(0.8 * ctx.target.idle_timeout, 0.05))
    deadline = time.monotonic() + wait
    silent = []
    for i, c in enumerate(conns):
        want = consume_ok(1000 + i, stamps[0], 1, b"shared")
        c.fill(len(want), max(0.01, deadline - time.monotonic()))
        if len(c.pending) < len(want):
            silent.append(i + 1)
            continue
        c.expect(want, what=f"answer on connection #{i + 1} of {CONNECTIONS}")
    if silent:
        ranges = _ranges(silent)
        ctx.fail(
            f"{len(silent)} of {CONNECTIONS} open connections got no answer within {wait:g} s "
            f"(connections {ranges}; the others were served): the broker does not serve {CONNECTIONS} at once"
        )


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(f"{start}" if start == prev else f"{start}..{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


@broker_case("connections.stalled-peer", clauses=("CONN-6",))
def stalled_peer(ctx: BrokerContext) -> None:
    """A connection stalled in the middle of a frame, and one that never sent anything, do not delay another
    connection's requests; the stalled frame is answered once it is completed."""
    idle = ctx.connect()
    stalled = ctx.connect()
    name = ctx.topic()
    frame = create_topic(1, name, 51)
    stalled.send(frame[:11], "the first 11 bytes of a CREATE_TOPIC")
    other = ctx.connect()
    other.send(produce(2, name, b"x", 52), "PRODUCE on another connection (the topic does not exist yet)")
    started = time.monotonic()
    other.fill(6)
    waited = time.monotonic() - started
    ctx.check(
        len(other.pending) >= 6,
        f"a connection was not answered within {ctx.timeout:g} s while another was stalled mid-frame",
    )
    other.expect(error(2, TOPIC_NOT_FOUND), what="answer on the connection next to a stalled one")
    # On a loaded machine the stall may outlast a short idle timeout: the broker then rightly closes the stalled
    # connection with the unsolicited frame (CONN-8), and the frame is completed on a new one.
    kept = ctx.keep_or_reconnect(stalled, "the stalled connection")
    kept.send(frame[11:] if kept is stalled else frame, "the rest of the CREATE_TOPIC (all of it on a new one)")
    kept.expect(create_ok(1, 51, name), what="answer to the stalled frame once completed")
    other.send(produce(3, name, b"y", 53), "PRODUCE")
    other.expect(produce_ok(3, 53, 0), what="answer to PRODUCE on the topic the stalled connection created")
    if not ctx.closed_for_idleness(idle, "the connection that sent nothing"):
        idle.expect_silence(0.02, "on the connection that sent nothing", allow_close=True)
    ctx.note(f"answered in {waited * 1000:.1f} ms next to a stalled connection")
