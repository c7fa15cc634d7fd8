"""Errors: broker error codes, broken responses, silence, and the client's own checks."""

from __future__ import annotations

from conformance._case import Level, case
from conformance._context import ClientContext
from conformance._driver import Reply
from conformance._wire import CREATE_TOPIC, PRODUCE, pack_i32
from conformance.cases._util import check_echo, wait_closed

T = "probe-a"
FAST = {"timeout_ms": 500}

# -- every error code surfaces as a broker error with that code ------------------------------


@case("errors.broker.topic-not-found-produce", clauses=("ERR-6", "CLIENT-15", "RESP-3"))
def not_found_produce(ctx: ClientContext) -> None:
    """PRODUCE to a topic that does not exist fails with broker error TOPIC_NOT_FOUND."""
    ctx.ok(ctx.connect(), "connect")
    ctx.expect_error(ctx.produce("missing", b"x"), "produce to a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("errors.broker.topic-not-found-consume", clauses=("ERR-6", "CLIENT-15", "RESP-3"))
def not_found_consume(ctx: ClientContext) -> None:
    """CONSUME from a topic that does not exist fails with broker error TOPIC_NOT_FOUND."""
    ctx.ok(ctx.connect(), "connect")
    ctx.expect_error(ctx.consume("missing", 0), "consume from a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("errors.broker.topic-already-exists", clauses=("ERR-7", "CLIENT-15", "RESP-3"))
def already_exists(ctx: ClientContext) -> None:
    """A second CREATE_TOPIC of the same name fails with broker error TOPIC_ALREADY_EXISTS."""
    ctx.setup(T)
    ctx.expect_error(ctx.create_topic(T), "second create_topic", ["broker"], "TOPIC_ALREADY_EXISTS")


@case("errors.broker.invalid-offset-at-end", clauses=("ERR-8", "CLIENT-15"))
def invalid_offset_end(ctx: ClientContext) -> None:
    """CONSUME of offset 2 from a topic holding 2 messages fails with broker error INVALID_OFFSET."""
    ctx.setup(T, b"a", b"b")
    ctx.expect_error(ctx.consume(T, 2), "consume past the end", ["broker"], "INVALID_OFFSET")


@case("errors.broker.invalid-offset-negative", clauses=("ERR-8", "CLIENT-15"))
def invalid_offset_negative(ctx: ClientContext) -> None:
    """CONSUME of offset -1 fails: INVALID_OFFSET from the broker, or a usage error if checked locally."""
    ctx.setup(T, b"a")
    ctx.expect_error(ctx.consume(T, -1), "consume offset -1", ["broker", "usage"], "INVALID_OFFSET")


@case("errors.broker.resource-exhausted", clauses=("ERR-11", "CLIENT-15"), options={"max_messages_per_topic": 2})
def resource_exhausted(ctx: ClientContext) -> None:
    """PRODUCE to a full topic (capacity 2 on this broker) fails with broker error RESOURCE_EXHAUSTED."""
    ctx.setup(T, b"a", b"b")
    ctx.expect_error(ctx.produce(T, b"c"), "produce to a full topic", ["broker"], "RESOURCE_EXHAUSTED")


def _injected(ctx: ClientContext, target: str, code: str) -> Reply:
    ctx.setup(T, b"a")
    ctx.fault(f"{target}:error={code}:once")
    if target == "produce":
        return ctx.produce(T, b"b")
    if target == "consume":
        return ctx.consume(T, 0)
    return ctx.create_topic("probe-b")


@case("errors.broker.message-too-large", clauses=("ERR-5", "CLIENT-15", "RESP-3"))
def message_too_large(ctx: ClientContext) -> None:
    """A MESSAGE_TOO_LARGE answer to PRODUCE surfaces as broker error MESSAGE_TOO_LARGE."""
    reply = _injected(ctx, "produce", "MESSAGE_TOO_LARGE")
    ctx.expect_error(reply, "produce", ["broker"], "MESSAGE_TOO_LARGE")


@case("errors.broker.invalid-request", clauses=("ERR-3", "CLIENT-15", "RESP-3"))
def invalid_request(ctx: ClientContext) -> None:
    """An INVALID_REQUEST answer to CREATE_TOPIC surfaces as broker error INVALID_REQUEST."""
    reply = _injected(ctx, "create_topic", "INVALID_REQUEST")
    ctx.expect_error(reply, "create_topic", ["broker"], "INVALID_REQUEST")


@case("errors.broker.invalid-message-type", clauses=("ERR-4", "CLIENT-15", "RESP-3"))
def invalid_message_type(ctx: ClientContext) -> None:
    """An INVALID_MESSAGE_TYPE answer to PRODUCE surfaces as broker error INVALID_MESSAGE_TYPE."""
    reply = _injected(ctx, "produce", "INVALID_MESSAGE_TYPE")
    ctx.expect_error(reply, "produce", ["broker"], "INVALID_MESSAGE_TYPE")


@case("errors.broker.internal-error", clauses=("ERR-9", "CLIENT-15", "RESP-3"))
def internal_error(ctx: ClientContext) -> None:
    """An INTERNAL_ERROR answer to CONSUME surfaces as broker error INTERNAL_ERROR."""
    reply = _injected(ctx, "consume", "INTERNAL_ERROR")
    ctx.expect_error(reply, "consume", ["broker"], "INTERNAL_ERROR")


@case("errors.broker.resource-exhausted-injected", clauses=("ERR-12", "CLIENT-15", "RESP-3"))
def resource_exhausted_create(ctx: ClientContext) -> None:
    """A RESOURCE_EXHAUSTED answer to CREATE_TOPIC (a broker out of topics) surfaces as that broker error."""
    reply = _injected(ctx, "create_topic", "RESOURCE_EXHAUSTED")
    ctx.expect_error(reply, "create_topic", ["broker"], "RESOURCE_EXHAUSTED")


@case("errors.broker.network-error-with-request-id", clauses=("CLIENT-15", "ERR-2", "RESP-7"))
def network_error_with_cid(ctx: ClientContext) -> None:
    """An error response carrying the request's own correlation id and code 8 is an error response (only id 0
    makes the unsolicited frame): it surfaces as broker error NETWORK_ERROR."""
    reply = _injected(ctx, "produce", "NETWORK_ERROR")
    ctx.expect_error(reply, "produce", ["broker"], "NETWORK_ERROR")


@case("errors.broker.unknown-code", clauses=("ERR-2", "CLIENT-15"))
def unknown_code(ctx: ClientContext) -> None:
    """An error response with a code the protocol does not define (42) is a broker error carrying 42, not a
    protocol error."""
    reply = _injected(ctx, "produce", "42")
    err = ctx.expect_error(reply, "produce", ["broker"])
    ctx.check(err.code in ("UNKNOWN_42", "42"), f"code {err.code!r}, expected UNKNOWN_42")


@case("errors.broker.unknown-code-above-127", clauses=("ERR-2", "CLIENT-15", "WIRE-1"))
def unknown_code_negative(ctx: ClientContext) -> None:
    """An error response whose code byte is 0xc8 (not a defined code) is a broker error carrying the signed
    i8 value, -56 (UNKNOWN_-56), not 200 and not a protocol error."""
    reply = _injected(ctx, "produce", "200")
    err = ctx.expect_error(reply, "produce", ["broker"])
    ctx.check(err.code in ("UNKNOWN_-56", "-56"), f"code {err.code!r}, expected UNKNOWN_-56 (the byte 0xc8 as an i8)")


# -- the connection goes on after a broker error ----------------------------------------------


@case("errors.recovery.after-broker-error", clauses=("ERR-15", "CLIENT-15"))
def after_broker_error(ctx: ClientContext) -> None:
    """After a TOPIC_NOT_FOUND, the next requests succeed with the right results."""
    ctx.setup(T, b"kept")
    ctx.expect_error(ctx.produce("missing", b"x"), "produce to a missing topic", ["broker"], "TOPIC_NOT_FOUND")
    got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), "consume after the error"), "consume")
    ctx.check(got == b"kept", f"consume after the error returned {got!r}")
    result = ctx.ok(ctx.produce(T, b"more"), "produce after the error")
    ctx.check(result.get("offset") == 1, f"produce after the error reported offset {result.get('offset')}")


@case("errors.recovery.same-connection-after-broker-error", clauses=("CLIENT-25", "ERR-15"), level=Level.SHOULD)
def same_connection(ctx: ClientContext) -> None:
    """An error response does not end the connection: the requests after it go on the same connection."""
    ctx.setup(T)
    ctx.expect_error(ctx.consume(T, 0), "consume from an empty topic", ["broker"], "INVALID_OFFSET")
    ctx.ok(ctx.produce(T, b"x"), "produce after the error")
    n = ctx.connections_opened()
    ctx.check(n == 1, f"the client opened {n} connections; an error response should not end one")


@case("errors.recovery.error-on-consume-is-six-bytes", clauses=("RESP-3", "RESP-2", "CLIENT-16"))
def error_on_consume(ctx: ClientContext) -> None:
    """An error answering a CONSUME is read as 6 bytes, not as a CONSUME success layout: the next
    request's answer is read correctly."""
    ctx.setup(T, b"payload-0")
    ctx.expect_error(ctx.consume(T, 7), "consume offset 7", ["broker"], "INVALID_OFFSET")
    got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), "consume 0"), "consume")
    ctx.check(got == b"payload-0", f"consume after the error returned {got!r}")


@case("errors.recovery.error-on-create-topic-is-six-bytes", clauses=("RESP-3", "RESP-2", "CLIENT-16"))
def error_on_create(ctx: ClientContext) -> None:
    """An error answering a CREATE_TOPIC is read as 6 bytes: the next request's answer is read correctly."""
    ctx.setup(T)
    ctx.expect_error(ctx.create_topic(T), "second create_topic", ["broker"], "TOPIC_ALREADY_EXISTS")
    result = ctx.ok(ctx.produce(T, b"x"), "produce")
    ctx.check(result.get("offset") == 0, f"produce after the error reported offset {result.get('offset')}")


@case("errors.recovery.after-message-too-large", clauses=("ERR-15", "ERR-5"))
def after_too_large(ctx: ClientContext) -> None:
    """After a MESSAGE_TOO_LARGE answer, the next PRODUCE succeeds and is stored once."""
    reply = _injected(ctx, "produce", "MESSAGE_TOO_LARGE")
    ctx.expect_error(reply, "produce", ["broker"], "MESSAGE_TOO_LARGE")
    result = ctx.ok(ctx.produce(T, b"fits"), "produce after MESSAGE_TOO_LARGE")
    ctx.check(result.get("offset") == 1, f"offset {result.get('offset')}, expected 1")


# -- broken responses -----------------------------------------------------------------------


def _after_protocol_error_works(ctx: ClientContext) -> None:
    """Reconnect explicitly and check the client works again."""
    ctx.ok(ctx.connect(), "connect after the protocol error")
    ctx.ok(ctx.produce(T, b"after"), "produce after reconnecting")


@case("errors.protocol.wrong-correlation-id", clauses=("CLIENT-6", "CLIENT-15"))
def wrong_cid(ctx: ClientContext) -> None:
    """A PRODUCE response with a correlation id other than the request's is a protocol error, not a result."""
    ctx.setup(T)
    ctx.fault("produce:wrong-cid:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce answered with a wrong correlation id", ["protocol"])


@case("errors.protocol.wrong-correlation-id-closes", clauses=("CLIENT-10",))
def wrong_cid_closes(ctx: ClientContext) -> None:
    """After a wrong correlation id the client closes the connection (it does not try to resynchronise)."""
    ctx.setup(T)
    ctx.fault("produce:wrong-cid:once")
    ctx.produce(T, b"x")
    ctx.check(wait_closed(ctx, 0), "the connection is still open 1 s after the protocol error")


@case("errors.protocol.wrong-correlation-id-consume", clauses=("CLIENT-6", "CLIENT-15"))
def wrong_cid_consume(ctx: ClientContext) -> None:
    """A CONSUME response with a wrong correlation id is a protocol error, never a payload."""
    ctx.setup(T, b"secret")
    ctx.fault("consume:wrong-cid:once")
    ctx.expect_error(ctx.consume(T, 0), "consume answered with a wrong correlation id", ["protocol"])


@case("errors.protocol.bad-success-flag-2", clauses=("CLIENT-7", "RESP-1"))
def bad_flag_2(ctx: ClientContext) -> None:
    """A PRODUCE response with success flag 2 is a protocol error, not a success."""
    ctx.setup(T)
    ctx.fault("produce:bad-flag=2:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce answered with success flag 2", ["protocol"])


@case("errors.protocol.bad-success-flag-ff", clauses=("CLIENT-7", "RESP-1"))
def bad_flag_ff(ctx: ClientContext) -> None:
    """A CONSUME response with success flag 0xff (-1) is a protocol error."""
    ctx.setup(T, b"x")
    ctx.fault("consume:bad-flag=255:once")
    ctx.expect_error(ctx.consume(T, 0), "consume answered with success flag 0xff", ["protocol"])


@case("errors.protocol.bad-success-flag-closes", clauses=("CLIENT-10", "CLIENT-7"))
def bad_flag_closes(ctx: ClientContext) -> None:
    """After a bad success flag the client closes the connection."""
    ctx.setup(T)
    ctx.fault("produce:bad-flag=2:once")
    ctx.produce(T, b"x")
    ctx.check(wait_closed(ctx, 0), "the connection is still open 1 s after the protocol error")


@case("errors.protocol.payload-length-over-limit", clauses=("CLIENT-8", "CLIENT-12"))
def overlong_payload(ctx: ClientContext) -> None:
    """A CONSUME response announcing 2,147,483,647 payload bytes is a protocol error at once: the client
    neither waits for nor allocates them."""
    ctx.setup(T, b"abc")
    ctx.fault("consume:bad-length=2147483647:once")
    reply = ctx.consume(T, 0)
    ctx.expect_error(reply, "consume with an over-long payload_length", ["protocol"])
    ctx.check(
        reply.elapsed < ctx.timeout_ms / 1000,
        f"the error took {reply.elapsed:.2f} s, as if the client waited for the announced bytes",
    )


@case("errors.protocol.payload-length-negative", clauses=("CLIENT-8",))
def negative_payload(ctx: ClientContext) -> None:
    """A CONSUME response announcing payload_length -1 is a protocol error."""
    ctx.setup(T, b"abc")
    ctx.fault("consume:bad-length=-1:once")
    ctx.expect_error(ctx.consume(T, 0), "consume with payload_length -1", ["protocol"])


@case("errors.protocol.echo-length-over-limit", clauses=("CLIENT-8", "RESP-8"))
def overlong_echo(ctx: ClientContext) -> None:
    """A CREATE_TOPIC response whose topic_len is 300 (over 255) is a protocol error."""
    ctx.ok(ctx.connect(), "connect")
    ctx.fault("create_topic:bad-length=300:once")
    ctx.expect_error(ctx.create_topic(T), "create_topic with echo length 300", ["protocol"])


@case("errors.protocol.recover-by-reconnecting", clauses=("CLIENT-10", "CONN-1"))
def protocol_recover(ctx: ClientContext) -> None:
    """After a protocol error the client can connect again and work normally."""
    ctx.setup(T)
    ctx.fault("produce:wrong-cid:once")
    ctx.produce(T, b"x")
    _after_protocol_error_works(ctx)


@case("errors.protocol.stray-frame-with-id-0", clauses=("CLIENT-6", "RESP-7", "CLIENT-10"))
def stray_id_0(ctx: ClientContext) -> None:
    """An error frame with correlation id 0 and code 4 arriving just before a PRODUCE answer is not the
    unsolicited frame (only 00 00 00 00 00 08 is) and answers no request: a protocol error, never taken as
    TOPIC_NOT_FOUND for the PRODUCE."""
    ctx.setup(T)
    ctx.fault("produce:unsolicited=TOPIC_NOT_FOUND:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce preceded by a stray id-0 frame", ["protocol"])


@case("errors.protocol.bytes-while-idle", clauses=("CLIENT-9", "CLIENT-10"))
def bytes_while_idle(ctx: ClientContext) -> None:
    """Five bytes arriving right after a PRODUCE answer, while no request is pending, are a protocol error:
    the next produce never succeeds on the connection the stray bytes came on (it fails, with a protocol or a
    connection error, or succeeds on a new connection). (They are the start of a success frame carrying the
    correlation id a counting client uses next, the CREATE_TOPIC's plus 2, so that even its correlation id
    check is no excuse for reading them as the next answer.)"""
    ctx.setup(T)
    create_cid = ctx.the_request(CREATE_TOPIC).correlation_id
    following = create_cid + 2 if create_cid + 2 <= 2**31 - 1 else create_cid + 2 - (2**31 - 1)
    ctx.fault(f"produce:trailing={(pack_i32(following) + bytes([1])).hex()}:once")
    first = ctx.ok(ctx.produce(T, b"first"), "produce answered and followed by 5 stray bytes")
    ctx.check(first.get("offset") == 0, f"reported offset {first.get('offset')}, expected 0")
    reply = ctx.produce(T, b"second")
    dirty = len(ctx.split(0).of_type(PRODUCE))
    if not reply.ok:
        # CLIENT-9 asks only that no later request succeeds there: how the failure is told is the client's.
        ctx.note(f"the next produce failed: {reply.error}")
        return
    ctx.check(
        dirty == 1,
        f"the next produce went out on the connection the stray bytes came on, and was reported as a success "
        f"{dict(reply.result)}: the stray bytes were not treated as a protocol error",
    )
    ctx.check(reply.result.get("offset") == 1, f"the next produce reported offset {reply.result.get('offset')}")
    ctx.note("the next produce succeeded on a new connection")


# -- connection ends -----------------------------------------------------------------------


@case("errors.connection.eof-before-answer", clauses=("CLIENT-14", "CONN-14"))
def eof_before_answer(ctx: ClientContext) -> None:
    """A broker that closes the connection instead of answering PRODUCE makes it fail with a connection
    error, before the timeout."""
    ctx.setup(T)
    ctx.fault("produce:close:once")
    reply = ctx.produce(T, b"x")
    ctx.expect_error(reply, "produce on a connection closed by the broker", ["connection"])
    ctx.check(reply.elapsed < ctx.timeout_ms / 1000, f"the EOF took {reply.elapsed:.2f} s to surface")


@case("errors.connection.eof-mid-response", clauses=("CLIENT-14",))
def eof_mid_response(ctx: ClientContext) -> None:
    """A broker that closes after 8 of the 17 bytes of a PRODUCE response makes it fail with a connection error."""
    ctx.setup(T)
    ctx.fault("produce:close-after=8:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce with a truncated response", ["connection"])


@case("errors.connection.eof-mid-consume-response", clauses=("CLIENT-14", "CLIENT-3"))
def eof_mid_consume(ctx: ClientContext) -> None:
    """A CONSUME response cut after 25 of its bytes is never reported as a (short) payload: connection error,
    or the right payload after a transparent retry."""
    payload = b"0123456789" * 10
    ctx.setup(T, payload)
    ctx.fault("consume:close-after=25:once")
    reply = ctx.consume(T, 0)
    if reply.ok:
        got = ctx.payload_of(reply.result, "consume")
        ctx.check(got == payload, f"a truncated response was reported as a {len(got)}-byte payload")
        ctx.note("retried transparently: the right payload")
        return
    ctx.expect_error(reply, "consume with a truncated response", ["connection"])
    ctx.note("connection error")


@case("errors.connection.reset-before-answer", clauses=("CLIENT-14",))
def reset_before_answer(ctx: ClientContext) -> None:
    """A connection reset (RST) instead of a PRODUCE answer is a connection error."""
    ctx.setup(T)
    ctx.fault("produce:reset:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce on a reset connection", ["connection"])


@case("errors.connection.unsolicited-while-pending", clauses=("CONN-9", "CLIENT-14", "RESP-7"))
def unsolicited_pending(ctx: ClientContext) -> None:
    """The unsolicited frame 00 00 00 00 00 08 arriving instead of a PRODUCE answer ends the connection: the
    PRODUCE fails with a connection error, not a broker error."""
    ctx.setup(T)
    ctx.fault("produce:unsolicited=NETWORK_ERROR:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce answered by the unsolicited frame", ["connection"])


# -- silence and timeouts ------------------------------------------------------------------


@case("errors.timeout.silent-produce", clauses=("CLIENT-11", "CLIENT-15"), options=FAST)
def silent_produce(ctx: ClientContext) -> None:
    """A broker that never answers a PRODUCE makes it fail with a timeout error after about the client's
    timeout (500 ms): not a hang, not early."""
    ctx.setup(T)
    ctx.fault("produce:silent")
    reply = ctx.produce(T, b"x")
    ctx.expect_error(reply, "produce to a silent broker", ["timeout"])
    ctx.check(reply.elapsed >= 0.4, f"timed out after {reply.elapsed:.2f} s, before the 0.5 s timeout")


@case("errors.timeout.silent-consume", clauses=("CLIENT-11",), options=FAST)
def silent_consume(ctx: ClientContext) -> None:
    """A broker that never answers a CONSUME makes it fail with a timeout error, not a hang."""
    ctx.setup(T, b"x")
    ctx.fault("consume:silent")
    ctx.expect_error(ctx.consume(T, 0), "consume from a silent broker", ["timeout"])


@case("errors.timeout.silent-create-topic", clauses=("CLIENT-11",), options=FAST)
def silent_create(ctx: ClientContext) -> None:
    """A broker that never answers a CREATE_TOPIC makes it fail with a timeout error, not a hang."""
    ctx.ok(ctx.connect(), "connect")
    ctx.fault("create_topic:silent")
    ctx.expect_error(ctx.create_topic(T), "create_topic on a silent broker", ["timeout"])


@case("errors.timeout.silent-after-accept", clauses=("CLIENT-11",), options=FAST)
def silent_after_accept(ctx: ClientContext) -> None:
    """A broker that accepts the connection and then never reads nor answers makes the first request fail
    with a timeout (or connection) error, not a hang."""
    ctx.fault("connect:silent")
    reply = ctx.connect()
    if not reply.ok:
        ctx.expect_error(reply, "connect", ["timeout", "connection"])
        ctx.note(f"connect failed: {reply.error}")
        return
    err = ctx.expect_error(ctx.create_topic(T), "create_topic on a silent connection", ["timeout", "connection"])
    ctx.note(f"connect succeeded, the first request failed: {err}")


@case("errors.timeout.closes-connection", clauses=("CLIENT-11",), options=FAST)
def timeout_closes(ctx: ClientContext) -> None:
    """After a request times out the client closes that connection: its stream position is unknown."""
    ctx.setup(T)
    ctx.fault("produce:silent")
    ctx.produce(T, b"x")
    ctx.check(wait_closed(ctx, 0), "the connection is still open 1 s after the timeout")


@case("errors.timeout.late-answer-not-taken", clauses=("CLIENT-11", "CLIENT-6", "CONN-5"), options=FAST)
def late_answer(ctx: ClientContext) -> None:
    """A PRODUCE answered 1.2 s late (timeout 500 ms) times out, and its late answer is never taken for the
    answer to the next request: the next CONSUME reports the right message (or fails cleanly and works after
    a reconnect)."""
    ctx.setup(T, b"zero")
    ctx.fault("produce:delay=1200:once")
    ctx.expect_error(ctx.produce(T, b"one"), "produce answered late", ["timeout"])
    reply = ctx.consume(T, 0)
    if not reply.ok:
        ctx.expect_error(reply, "consume after the timeout", ["connection", "usage", "timeout"])
        ctx.note(f"the next consume failed cleanly ({reply.error}) and worked after a reconnect")
        ctx.ok(ctx.connect(), "connect again")
        reply = ctx.consume(T, 0)
    else:
        ctx.note("the next consume succeeded")
    got = ctx.payload_of(ctx.ok(reply, "consume after the timeout"), "consume")
    ctx.check(got == b"zero", f"consume of offset 0 returned {got!r}")


@case("errors.timeout.recover-by-reconnecting", clauses=("CLIENT-11", "CONN-1"), options=FAST)
def timeout_recover(ctx: ClientContext) -> None:
    """After a timeout the client can connect again and work normally."""
    ctx.setup(T)
    ctx.fault("produce:silent:once")
    ctx.expect_error(ctx.produce(T, b"x"), "produce to a silent broker", ["timeout"])
    ctx.ok(ctx.connect(), "connect after the timeout")
    ctx.ok(ctx.consume(T, 0) if ctx.stored(T) else ctx.produce(T, b"y"), "request after reconnecting")


# -- the client's own checks -------------------------------------------------------------------


def _refused_locally(ctx: ClientContext, reply: Reply, what: str) -> None:
    ctx.expect_error(reply, what, ["usage"])
    sent = sum(len(r.received) for r in ctx.records())
    ctx.check(sent == 0, f"{what}: the client sent {sent} bytes for a request it should refuse locally")


@case("errors.client-check.empty-topic", clauses=("CLIENT-17", "SEM-2"), level=Level.SHOULD)
def empty_topic(ctx: ClientContext) -> None:
    """create_topic("") is refused with a usage error, without sending anything."""
    ctx.ok(ctx.connect(), "connect")
    _refused_locally(ctx, ctx.create_topic(""), "create_topic('')")


@case("errors.client-check.topic-too-long", clauses=("CLIENT-17", "SEM-2"), level=Level.SHOULD)
def long_topic(ctx: ClientContext) -> None:
    """A 256-byte name is refused with a usage error, without sending anything."""
    ctx.ok(ctx.connect(), "connect")
    _refused_locally(ctx, ctx.create_topic("x" * 256), "create_topic of 256 bytes")


@case("errors.client-check.topic-bad-character", clauses=("CLIENT-17", "SEM-2"), level=Level.SHOULD)
def bad_char_topic(ctx: ClientContext) -> None:
    """A name with a space ("a b") is refused with a usage error, without sending anything."""
    ctx.ok(ctx.connect(), "connect")
    _refused_locally(ctx, ctx.create_topic("a b"), "create_topic('a b')")


@case("errors.client-check.produce-bad-topic", clauses=("CLIENT-17", "SEM-2"), level=Level.SHOULD)
def bad_produce_topic(ctx: ClientContext) -> None:
    """PRODUCE to an invalid name ("no/slash") is refused with a usage error, without sending anything."""
    ctx.ok(ctx.connect(), "connect")
    _refused_locally(ctx, ctx.produce("no/slash", b"x"), "produce to 'no/slash'")


@case("errors.client-check.payload-over-limit", clauses=("CLIENT-17", "SEM-8"), level=Level.SHOULD)
def payload_over_limit_local(ctx: ClientContext) -> None:
    """A payload of 1,048,577 bytes is refused with a usage error, without sending anything."""
    ctx.ok(ctx.connect(), "connect")
    _refused_locally(ctx, ctx.produce(T, bytes(1_048_577)), "produce of 1 MiB + 1")


@case("errors.client-check.invalid-name-never-succeeds", clauses=("CLIENT-15", "ERR-3", "SEM-2"))
def invalid_name_never_ok(ctx: ClientContext) -> None:
    """create_topic("a b") never succeeds: a usage error, or broker error INVALID_REQUEST if sent."""
    ctx.ok(ctx.connect(), "connect")
    ctx.expect_error(ctx.create_topic("a b"), "create_topic('a b')", ["usage", "broker"], "INVALID_REQUEST")


@case("errors.client-check.oversized-never-succeeds", clauses=("CLIENT-15", "ERR-5", "SEM-8"))
def oversized_never_ok(ctx: ClientContext) -> None:
    """A 1,048,577-byte PRODUCE never succeeds (usage error, or MESSAGE_TOO_LARGE if sent), and the client
    keeps working after it."""
    ctx.setup(T)
    ctx.expect_error(ctx.produce(T, bytes(1_048_577)), "produce of 1 MiB + 1", ["usage", "broker"], "MESSAGE_TOO_LARGE")
    result = ctx.ok(ctx.produce(T, b"small"), "produce after the oversized one")
    ctx.check(result.get("offset") == 0, f"offset {result.get('offset')}, expected 0")
    ctx.check(len(ctx.stored(T)) == 1, f"the broker holds {len(ctx.stored(T))} messages, expected 1")


@case("errors.client-check.valid-edge-names-accepted", clauses=("SEM-2",))
def edge_names(ctx: ClientContext) -> None:
    """The shortest valid names ("a", "-", "_", ".") are accepted: local checks do not reject valid names."""
    ctx.ok(ctx.connect(), "connect")
    for name in ("a", "-", "_", "."):
        check_echo(ctx, ctx.ok(ctx.create_topic(name), f"create_topic({name!r})"), name, f"create_topic({name!r})")
