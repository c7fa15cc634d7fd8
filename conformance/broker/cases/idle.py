"""Idle: the idle timeout, the unsolicited frame before an idle close, and what resets the timer.

These cases need the target's idle timeout (``--idle-timeout SECONDS``) and
wait about that long each; without it they are skipped.
"""

from __future__ import annotations

import time

from conformance._wire import hexline
from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    UNSOLICITED,
    consume,
    create_ok,
    create_topic,
    describe_response,
    produce,
    produce_ok,
)
from conformance.broker._registry import broker_case

#: An idle close earlier than this fraction of the idle timeout given is none (coarse broker clocks get a margin).
EARLIEST = 0.9


def _idle(ctx: BrokerContext) -> tuple[float, float]:
    """The target's idle timeout, and how long to wait for the close it announces."""
    t = ctx.target.idle_timeout
    if t is None:
        ctx.skip("needs --idle-timeout SECONDS: the target's idle timeout (30 s by default, CONN-7)")
    return t, 1.5 * t + 1.0


@broker_case("idle.closes-idle-connection", clauses=("CONN-7",), level="SHOULD")
def closes_idle(ctx: BrokerContext) -> None:
    """A connection that sends nothing is closed by the broker about its idle timeout later: not before 0.9 times
    it (a close at once is no idle close), and within 1.5 times it plus 1 s."""
    t, window = _idle(ctx)
    c = ctx.connect()
    started = time.monotonic()
    c.fill(1 << 16, window)
    elapsed = time.monotonic() - started
    ctx.check(
        c.state != "open",
        f"the connection was still open {elapsed:.1f} s after it was opened, with an idle timeout of {t:g} s",
    )
    ctx.check(
        elapsed >= EARLIEST * t,
        f"the broker closed the connection {elapsed:.2f} s after it was opened, before its idle timeout of {t:g} s: "
        "not an idle close (CONN-7)",
    )
    ctx.note(f"closed after {elapsed:.2f} s (idle timeout {t:g} s)")


@broker_case("idle.unsolicited-frame", clauses=("CONN-8", "RESP-7", "ERR-10", "CONN-11"))
def unsolicited_frame(ctx: BrokerContext) -> None:
    """Before closing an idle connection the broker sends exactly the unsolicited frame 00 00 00 00 00 08, then
    closes (skipped when it does not close it; see idle.closes-idle-connection)."""
    t, window = _idle(ctx)
    c = ctx.connect()
    started = time.monotonic()
    c.fill(6, window)
    elapsed = time.monotonic() - started
    if not c.pending and c.state == "open":
        ctx.skip(f"the broker did not close the idle connection within {window:g} s (idle timeout {t:g} s)")
    c.expect(UNSOLICITED, what=f"the last frame before an idle close ({elapsed:.2f} s after connecting)")
    ctx.check(
        elapsed >= EARLIEST * t,
        f"the broker sent the unsolicited frame {elapsed:.2f} s after the connection opened, before its idle timeout "
        f"of {t:g} s: NETWORK_ERROR outside an idle close (ERR-10, CONN-8)",
    )
    c.expect_closed("after the unsolicited frame")


@broker_case("idle.answers-before-unsolicited", clauses=("CONN-8", "CONN-4", "RESP-7"))
def answers_first(ctx: BrokerContext) -> None:
    """On a connection that goes idle with two complete requests and the start of a third, the broker sends the two
    answers, then the unsolicited frame (nothing for the incomplete frame), then closes."""
    t, window = _idle(ctx)
    c = ctx.connect()
    name = ctx.topic()
    c.send(create_topic(1, name, 61) + produce(2, name, b"z", 62) + consume(3, name, 0, 0)[:10], "requests")
    answers = (create_ok(1, 61, name), produce_ok(2, 62, 0), UNSOLICITED)
    total = sum(len(a) for a in answers)
    c.fill(total, window)
    elapsed = time.monotonic() - c.last_sent
    if c.state == "open" and len(c.pending) < total:
        ctx.skip(f"the broker did not close the idle connection within {window:g} s (idle timeout {t:g} s)")
    c.expect(*answers, what="answers, then the idle close")
    ctx.check(
        elapsed >= EARLIEST * t,
        f"the broker sent the unsolicited frame {elapsed:.2f} s after the last bytes it received, before its idle "
        f"timeout of {t:g} s: NETWORK_ERROR outside an idle close (ERR-10, CONN-8)",
    )
    c.expect_closed("after the unsolicited frame")


@broker_case("idle.bytes-reset-timer", clauses=("CONN-7",), level="SHOULD")
def bytes_reset_timer(ctx: BrokerContext) -> None:
    """Received bytes reset the idle timer: a frame trickling in one byte every quarter of the idle timeout, for
    twice the idle timeout, keeps the connection open, and is answered once complete."""
    t, _ = _idle(ctx)
    c = ctx.connect()
    name = ctx.topic()
    frame = create_topic(1, name, 71)
    gap = t / 4
    sent = 0
    started = time.monotonic()
    while time.monotonic() - started < 2 * t and sent < len(frame) - 1:
        c.send(frame[sent : sent + 1], "one byte of a CREATE_TOPIC")
        sent += 1
        c.linger(gap)
        if c.pending or c.state != "open":
            what = "closed the connection"
            if c.pending:
                what = (
                    f"sent {len(c.pending)} bytes nobody asked for ({describe_response(c.pending)}: "
                    f"{hexline(c.pending, 24)})"
                )
            ctx.fail(
                f"the broker {what} {time.monotonic() - started:.2f} s into a frame arriving one byte every "
                f"{gap:.3f} s (idle timeout {t:g} s): only received bytes should reset the idle timer"
            )
    c.send(frame[sent:], "the rest of the CREATE_TOPIC")
    c.expect(create_ok(1, 71, name), what="answer to the frame that trickled in")
