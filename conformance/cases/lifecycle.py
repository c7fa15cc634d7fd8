"""Lifecycle: connecting, closing, dropped and refused connections, restarts, retries, the idle timeout."""

from __future__ import annotations

import time

from conformance._case import Level, case
from conformance._context import ClientContext
from conformance._driver import Reply
from conformance._wire import PRODUCE
from conformance.cases._util import wait_closed

T = "probe-a"
FAST = {"timeout_ms": 500}
IDLE = {"idle_timeout": 1.0}


def _produce_requests(ctx: ClientContext) -> int:
    """PRODUCE requests received, over every connection of every broker of the case."""
    return sum(1 for r in ctx.sent_requests() if r.message_type == PRODUCE)


def _no_new_connection(ctx: ClientContext, before: int, what: str) -> None:
    time.sleep(0.05)
    after = ctx.connections_opened()
    ctx.check(after == before, f"{what} opened {after - before} new connection(s)")


# -- connecting --------------------------------------------------------------------------------


@case("lifecycle.connect.request-before-connect-fails", clauses=("CLIENT-15", "CONN-1"))
def before_connect(ctx: ClientContext) -> None:
    """A request before any connect fails with a usage error and opens no connection."""
    reply = ctx.produce(T, b"x")
    ctx.expect_error(reply, "produce before connect", ["usage"])
    ctx.check(ctx.connections_opened() == 0, "a connection reached the broker before connect")


@case("lifecycle.connect.opens-one-connection", clauses=("CONN-1",))
def connect_opens(ctx: ClientContext) -> None:
    """connect opens exactly one TCP connection and sends nothing on it (there is no handshake)."""
    ctx.ok(ctx.connect(), "connect")
    ctx.check(ctx.wait_for(lambda: ctx.connections_opened() >= 1), "no connection reached the broker after connect")
    time.sleep(0.1)
    n = ctx.connections_opened()
    ctx.check(n == 1, f"connect opened {n} connections")
    raw = ctx.received(0)
    ctx.check(not raw, f"the client sent {len(raw)} bytes before any request")


@case("lifecycle.connect.one-connection-for-many-requests", clauses=("CONN-1", "CONN-3"))
def one_connection(ctx: ClientContext) -> None:
    """Eight requests after one connect all go over that one connection."""
    ctx.setup(T, b"a", b"b", b"c")
    for i in range(3):
        ctx.ok(ctx.consume(T, i), f"consume {i}")
    ctx.ok(ctx.produce(T, b"d"), "produce")
    n = ctx.connections_opened()
    ctx.check(n == 1, f"8 requests used {n} connections")


@case("lifecycle.connect.refused", clauses=("CLIENT-14", "CLIENT-15"), options=FAST)
def refused(ctx: ClientContext) -> None:
    """connect to a port with nothing listening fails quickly (under 2 s) with a connection error."""
    reply = ctx.connect(port=ctx.free_port())
    ctx.expect_error(reply, "connect to a closed port", ["connection"])
    ctx.check(reply.elapsed < 2.0, f"the refusal took {reply.elapsed:.2f} s to surface")


@case("lifecycle.connect.times-out", clauses=("CLIENT-11",), options=FAST)
def connect_times_out(ctx: ClientContext) -> None:
    """connect to a listener that never completes the handshake fails with a timeout (or connection) error
    within the deadline: connecting has a timeout too."""
    reply = ctx.connect(port=ctx.blackhole_port())
    ctx.expect_error(reply, "connect to a listener that never accepts", ["timeout", "connection"])


def _after_connect_fault(ctx: ClientContext, rule: str) -> None:
    ctx.fault(rule)
    reply = ctx.connect()
    if reply.ok:
        reply = ctx.create_topic(T)
    if not reply.ok:
        ctx.expect_error(reply, f"first step under {rule!r}", ["connection"])
        ctx.note(f"the first step failed with a connection error ({reply.op})")
        ctx.ok(ctx.connect(), "connect again")
        ctx.ok(ctx.create_topic(T), "create_topic after connecting again")
    else:
        ctx.note("retried transparently")
    ctx.check(ctx.broker.topics().get(T) is not None, f"topic {T!r} was not created")


@case("lifecycle.connect.closed-at-once", clauses=("CLIENT-14",))
def closed_at_once(ctx: ClientContext) -> None:
    """A connection the broker closes as soon as it accepts it fails with a connection error (or is retried
    transparently), and the next connect works."""
    _after_connect_fault(ctx, "connect:close:once")


@case("lifecycle.connect.reset-at-once", clauses=("CLIENT-14",))
def reset_at_once(ctx: ClientContext) -> None:
    """A connection the broker resets as soon as it accepts it fails with a connection error (or is retried
    transparently), and the next connect works."""
    _after_connect_fault(ctx, "connect:reset:once")


@case("lifecycle.connect.retried-while-refused", clauses=("CLIENT-20",), level=Level.SHOULD)
def retried_while_refused(ctx: ClientContext) -> None:
    """A broker refusing connections for 100 ms is reached by retrying with backoff: connect succeeds."""
    ctx.fault("connect:refuse=100")
    ctx.ok(ctx.connect(), "connect while the broker refuses for 100 ms")
    ctx.ok(ctx.create_topic(T), "create_topic")


# -- closing -----------------------------------------------------------------------------------


@case("lifecycle.close.sends-fin", clauses=("CLIENT-21",), level=Level.SHOULD)
def close_fin(ctx: ClientContext) -> None:
    """close ends the connection with an orderly shutdown: the broker sees EOF (not a reset) within 1 s."""
    ctx.setup(T)
    ctx.ok(ctx.close(), "close")
    ctx.check(wait_closed(ctx, 0), "the broker still sees the connection open 1 s after close")
    reason = ctx.records()[0].close_reason or ""
    ctx.check("reset" not in reason.lower(), f"the connection ended with a reset ({reason}), not a FIN")


@case("lifecycle.close.ends-connection", clauses=("CLIENT-21", "CONN-14"))
def close_ends(ctx: ClientContext) -> None:
    """close releases the connection: the broker sees it end (FIN or reset) within 1 s."""
    ctx.setup(T)
    ctx.ok(ctx.close(), "close")
    ctx.check(wait_closed(ctx, 0), "the connection is still open 1 s after close: the socket was not closed")


@case("lifecycle.close.sends-nothing", clauses=("CLIENT-21", "CONN-1"), level=Level.SHOULD)
def close_sends_nothing(ctx: ClientContext) -> None:
    """close sends no bytes: the protocol has no close request."""
    ctx.setup(T)
    before = len(ctx.received(0))
    ctx.ok(ctx.close(), "close")
    wait_closed(ctx, 0)
    after = len(ctx.received(0))
    ctx.check(after == before, f"close sent {after - before} bytes")


@case("lifecycle.close.twice", clauses=("CLIENT-21",), level=Level.SHOULD)
def close_twice(ctx: ClientContext) -> None:
    """close is idempotent: a second close succeeds too."""
    ctx.setup(T)
    ctx.ok(ctx.close(), "first close")
    ctx.ok(ctx.close(), "second close")


@case("lifecycle.close.without-connection", clauses=("CLIENT-21",), level=Level.SHOULD)
def close_unconnected(ctx: ClientContext) -> None:
    """close with no open connection succeeds and opens none."""
    ctx.ok(ctx.close(), "close while not connected")
    ctx.check(ctx.connections_opened() == 0, "close opened a connection")


@case("lifecycle.close.after-broker-drop", clauses=("CLIENT-21", "CLIENT-14"), level=Level.SHOULD)
def close_after_drop(ctx: ClientContext) -> None:
    """close after the broker dropped the connection succeeds."""
    ctx.setup(T)
    ctx.fault("produce:close:once")
    ctx.produce(T, b"x")
    ctx.ok(ctx.close(), "close after the drop")


def _after_close(ctx: ClientContext, reply_of: str) -> None:
    ctx.setup(T, b"m")
    ctx.ok(ctx.close(), "close")
    wait_closed(ctx, 0)
    before_conns = ctx.connections_opened()
    before_bytes = len(ctx.received(0))
    reply: Reply
    if reply_of == "produce":
        reply = ctx.produce(T, b"late")
    elif reply_of == "consume":
        reply = ctx.consume(T, 0)
    else:
        reply = ctx.create_topic("probe-b")
    ctx.expect_error(reply, f"{reply_of} after close", ["usage", "connection"])
    _no_new_connection(ctx, before_conns, f"{reply_of} after close")
    ctx.check(len(ctx.received(0)) == before_bytes, f"{reply_of} after close sent bytes on the closed connection")


@case("lifecycle.after-close.produce-fails", clauses=("CLIENT-15", "CLIENT-21"))
def after_close_produce(ctx: ClientContext) -> None:
    """produce after close fails cleanly (usage or connection error) and sends nothing anywhere."""
    _after_close(ctx, "produce")


@case("lifecycle.after-close.consume-fails", clauses=("CLIENT-15", "CLIENT-21"))
def after_close_consume(ctx: ClientContext) -> None:
    """consume after close fails cleanly (usage or connection error) and sends nothing anywhere."""
    _after_close(ctx, "consume")


@case("lifecycle.after-close.create-topic-fails", clauses=("CLIENT-15", "CLIENT-21"))
def after_close_create(ctx: ClientContext) -> None:
    """create_topic after close fails cleanly (usage or connection error) and sends nothing anywhere."""
    _after_close(ctx, "create_topic")


@case("lifecycle.after-close.connect-again", clauses=("CONN-1", "SEM-5"))
def connect_after_close(ctx: ClientContext) -> None:
    """connect after close opens a new connection on which the earlier topic and message are there."""
    ctx.setup(T, b"before")
    ctx.ok(ctx.close(), "close")
    ctx.ok(ctx.connect(), "connect again")
    got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), "consume on the new connection"), "consume")
    ctx.check(got == b"before", f"consume returned {got!r}")
    result = ctx.ok(ctx.produce(T, b"after"), "produce on the new connection")
    ctx.check(result.get("offset") == 1, f"offset {result.get('offset')}, expected 1")
    ctx.check(ctx.connections_opened() == 2, f"{ctx.connections_opened()} connections, expected 2")


# -- dropped connections and reconnecting ------------------------------------------------------


@case("lifecycle.reconnect.explicit-after-drop", clauses=("CLIENT-14", "CONN-1"))
def reconnect_explicit(ctx: ClientContext) -> None:
    """After the broker drops the connection, connect works again and requests succeed."""
    ctx.setup(T)
    ctx.fault("produce:close:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce on a dropped connection", ["connection"])
    ctx.ok(ctx.connect(), "connect after the drop")
    ctx.ok(ctx.produce(T, b"y"), "produce after reconnecting")


@case("lifecycle.reconnect.next-call-after-drop", clauses=("CLIENT-19",), level=Level.SHOULD)
def reconnect_next_call(ctx: ClientContext) -> None:
    """After the broker drops the connection, the next call reconnects by itself and succeeds."""
    ctx.setup(T)
    ctx.fault("produce:close:once")
    ctx.produce(T, b"x")
    ctx.ok(ctx.create_topic("probe-b"), "the call after the drop (no connect in between)")
    ctx.check(ctx.connections_opened() == 2, f"{ctx.connections_opened()} connections, expected 2")


@case("lifecycle.reconnect.after-broker-restart", clauses=("CLIENT-14", "CONN-1", "SEM-11"))
def broker_restart(ctx: ClientContext) -> None:
    """After the broker is restarted on the same port, a request fails with a connection error or succeeds on
    the new broker, and after connect the client works against the new broker."""
    ctx.setup(T)
    ctx.restart_broker()
    reply = ctx.create_topic(T)
    if not reply.ok:
        ctx.expect_error(reply, "create_topic after the broker restarted", ["connection"])
    ctx.note("the first request " + ("succeeded on the new broker" if reply.ok else "failed with a connection error"))
    ctx.ok(ctx.connect(), "connect to the restarted broker")
    if not reply.ok:
        ctx.ok(ctx.create_topic(T), "create_topic on the restarted broker")
    ctx.ok(ctx.produce(T, b"x"), "produce on the restarted broker")
    ctx.check(ctx.broker.topics().get(T) == 1, f"the new broker holds {ctx.broker.topics()}")


@case("lifecycle.reconnect.next-call-after-broker-restart", clauses=("CLIENT-19", "CLIENT-20"), level=Level.SHOULD)
def broker_restart_next_call(ctx: ClientContext) -> None:
    """After the broker is restarted on the same port, the client reaches the new broker by itself within two
    calls, without a connect."""
    ctx.setup(T)
    ctx.restart_broker()
    first = ctx.create_topic(T)
    if not first.ok:
        ctx.expect_error(first, "first call after the restart", ["connection"])
        ctx.ok(ctx.create_topic(T), "second call after the restart (no connect in between)")
    ctx.note("reached the new broker " + ("on the first call" if first.ok else "on the second call"))
    ctx.check(T in ctx.broker.topics(), "the restarted broker never got the topic")


@case("lifecycle.retry.consume-after-drop", clauses=("CLIENT-20",), level=Level.SHOULD)
def retry_consume(ctx: ClientContext) -> None:
    """A CONSUME whose connection is dropped before the answer is retried (it is safe to repeat) and returns
    the message."""
    ctx.setup(T, b"retry-me")
    ctx.fault("consume:close:once")
    got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), "consume on a dropped connection"), "consume")
    ctx.check(got == b"retry-me", f"consume returned {got!r}")


@case("lifecycle.retry.create-topic-after-drop", clauses=("CLIENT-20", "CONN-14"), level=Level.SHOULD)
def retry_create(ctx: ClientContext) -> None:
    """A CREATE_TOPIC whose connection is dropped before the answer is retried: it succeeds, or reports
    TOPIC_ALREADY_EXISTS when its own first attempt had created the topic; either way the topic exists."""
    ctx.ok(ctx.connect(), "connect")
    ctx.fault("create_topic:close:once")
    reply = ctx.create_topic(T)
    if not reply.ok:
        ctx.expect_error(reply, "create_topic on a dropped connection", ["broker"], "TOPIC_ALREADY_EXISTS")
    ctx.note("the retry " + ("created the topic" if reply.ok else "found it created: TOPIC_ALREADY_EXISTS"))
    n = ctx.connections_opened()
    ctx.check(n == 2, f"{n} connection(s) opened, expected 2: the dropped one and the one of the retry")
    retried = [r.type_name for r in ctx.split(1).requests]
    ctx.check(retried == ["CREATE_TOPIC"], f"the second connection carried {retried}, expected the one CREATE_TOPIC")


# -- no silent duplicate PRODUCE ----------------------------------------------------------------


def _no_duplicate(ctx: ClientContext, rule: str) -> Reply:
    """A resend goes out before the call returns, so the broker has it by the time the driver replies."""
    ctx.setup(T)
    ctx.fault(rule)
    reply = ctx.produce(T, b"once")
    n = _produce_requests(ctx)
    how = "reported once: a silent resend" if reply.ok else f"failed with {reply.error}"
    ctx.check(n == 1, f"the PRODUCE was sent {n} times and {how}")
    stored = len(ctx.stored(T))
    ctx.check(stored <= 1, f"the broker holds {stored} copies of one produced message")
    ctx.note("the produce succeeded" if reply.ok else f"the produce failed: {reply.error}")
    return reply


@case("lifecycle.no-duplicate.produce-after-eof", clauses=("CLIENT-13", "CONN-14"))
def dup_eof(ctx: ClientContext) -> None:
    """A PRODUCE whose connection closes before the answer is not sent a second time."""
    _no_duplicate(ctx, "produce:close:once")


@case("lifecycle.no-duplicate.produce-after-reset", clauses=("CLIENT-13", "CONN-14"))
def dup_reset(ctx: ClientContext) -> None:
    """A PRODUCE whose connection is reset before the answer is not sent a second time."""
    _no_duplicate(ctx, "produce:reset:once")


@case("lifecycle.no-duplicate.produce-after-truncated-answer", clauses=("CLIENT-13", "CONN-14"))
def dup_truncated(ctx: ClientContext) -> None:
    """A PRODUCE whose answer is cut after 5 bytes is not sent a second time."""
    _no_duplicate(ctx, "produce:close-after=5:once")


@case("lifecycle.no-duplicate.produce-after-timeout", clauses=("CLIENT-13", "CLIENT-11"), options=FAST)
def dup_timeout(ctx: ClientContext) -> None:
    """A PRODUCE answered too late (1 s, timeout 500 ms) fails with a timeout, and is not sent a second time."""
    reply = _no_duplicate(ctx, "produce:delay=1000:once")
    ctx.expect_error(reply, "produce answered 1 s late with a 500 ms timeout", ["timeout"])


@case("lifecycle.no-duplicate.produce-after-unsolicited", clauses=("CLIENT-13", "CONN-9"))
def dup_unsolicited(ctx: ClientContext) -> None:
    """A PRODUCE pending when the unsolicited NETWORK_ERROR frame arrives is not sent a second time."""
    _no_duplicate(ctx, "produce:unsolicited=NETWORK_ERROR:once")


@case("lifecycle.no-duplicate.produce-after-protocol-error", clauses=("CLIENT-13", "CLIENT-10"))
def dup_protocol(ctx: ClientContext) -> None:
    """A PRODUCE answered with a wrong correlation id is not sent a second time."""
    _no_duplicate(ctx, "produce:wrong-cid:once")


# -- the idle timeout ------------------------------------------------------------------------


UNSOLICITED = bytes([0, 0, 0, 0, 0, 8])


def _go_idle(ctx: ClientContext, *payloads: bytes) -> None:
    """Set up (producing ``payloads``), then stay idle until the broker has sent the unsolicited frame and
    shut its side down.

    The broker records its close reason as it writes the frame and its FIN, in one step; the record only
    counts as closed later, once the client closes too (or the broker stops lingering).
    """
    ctx.setup(T, *payloads)

    def idle_closed() -> bool:
        rec = ctx.records()[0]
        return bytes(rec.sent).endswith(UNSOLICITED) and rec.close_reason is not None

    ctx.check(
        ctx.wait_for(idle_closed, timeout=3.0),
        "harness: the broker did not send the unsolicited frame and close the idle connection",
    )


@case("lifecycle.idle.request-after-idle-close", clauses=("CONN-9", "CLIENT-14", "RESP-7"), options=IDLE)
def idle_request(ctx: ClientContext) -> None:
    """After the broker sent the unsolicited frame and closed an idle connection, the next request either
    succeeds on a new connection or fails with a connection error: never a broker or protocol error."""
    _go_idle(ctx)
    reply = ctx.produce(T, b"after-idle")
    if not reply.ok:
        ctx.expect_error(reply, "produce after the idle close", ["connection"])
    ctx.note("the request " + ("succeeded on a new connection" if reply.ok else "failed with a connection error"))


@case("lifecycle.idle.connect-after-idle-close", clauses=("CONN-9", "CONN-1"), options=IDLE)
def idle_connect(ctx: ClientContext) -> None:
    """After an idle close, connect works again and requests succeed."""
    _go_idle(ctx)
    ctx.ok(ctx.connect(), "connect after the idle close")
    ctx.ok(ctx.produce(T, b"x"), "produce after reconnecting")


@case("lifecycle.idle.next-call-reconnects", clauses=("CLIENT-19", "CONN-9"), level=Level.SHOULD, options=IDLE)
def idle_next_call(ctx: ClientContext) -> None:
    """After an idle close, the next call reconnects by itself and succeeds."""
    _go_idle(ctx)
    ctx.ok(ctx.create_topic("probe-b"), "create_topic after the idle close (no connect in between)")


@case("lifecycle.idle.no-duplicate-after-idle-close", clauses=("CLIENT-13", "CONN-9"), options=IDLE)
def idle_no_dup(ctx: ClientContext) -> None:
    """A PRODUCE after an idle close is stored at most once, and so is the PRODUCE answered before the close:
    the client does not send it again on its new connection (in case the close had lost it)."""
    _go_idle(ctx, b"before-idle")
    ctx.produce(T, b"after-idle")
    stored = ctx.stored(T)
    for payload in (b"before-idle", b"after-idle"):
        copies = stored.count(payload)
        ctx.check(copies <= 1, f"the broker holds {copies} copies of the message {payload!r}, produced once")


# -- state across connections ------------------------------------------------------------------


@case("lifecycle.state.offsets-continue-across-connections", clauses=("SEM-4", "SEM-5"))
def offsets_across(ctx: ClientContext) -> None:
    """Messages produced before a reconnect keep their offsets: the next PRODUCE gets offset 2."""
    ctx.setup(T, b"a", b"b")
    ctx.ok(ctx.close(), "close")
    ctx.ok(ctx.connect(), "connect again")
    result = ctx.ok(ctx.produce(T, b"c"), "produce on the new connection")
    ctx.check(result.get("offset") == 2, f"offset {result.get('offset')}, expected 2")
