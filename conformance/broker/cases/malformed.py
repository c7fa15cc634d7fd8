"""Malformed frames: unknown types and bad lengths (answered, then the connection closed), truncated frames.

Each fatal case sends the frame only up to its bad field: the spec has the
broker answer as soon as that field is read (section 5.2 steps 1a-1c,
BROKER-3, BROKER-7), and nothing unread is left behind to make the broker's
close a reset that could destroy its answer.
"""

from __future__ import annotations

import time

from conformance._wire import CONSUME, CREATE_TOPIC, PRODUCE, hexline, pack_i32
from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    INVALID_MESSAGE_TYPE,
    INVALID_REQUEST,
    create_ok,
    create_topic,
    describe_response,
    error,
    produce,
    produce_ok,
    raw_request,
)
from conformance.broker._registry import broker_case
from mega_client.protocol.limits import INT32_MAX, INT32_MIN

_FATAL = ("BROKER-2", "CONN-10")


@broker_case(
    "malformed.unknown-type",
    clauses=("REQ-2", "ERR-4", "BROKER-3", *_FATAL),
    reference_defect="12.2",
)
def unknown_type(ctx: BrokerContext) -> None:
    """A request whose message_type is 0x00, 0x04, 0x7f or 0xff (sent as its first 5 bytes only) is answered
    INVALID_MESSAGE_TYPE (2) with its correlation id (INT32_MIN, 5, -1, INT32_MAX) at once, then the connection is
    closed."""
    for mtype, cid in ((0x00, INT32_MIN), (0x04, 5), (0x7F, -1), (0xFF, INT32_MAX)):
        c = ctx.connect()
        c.send(pack_i32(cid) + bytes([mtype]), f"correlation id {cid}, message_type 0x{mtype:02x}")
        c.expect(error(cid, INVALID_MESSAGE_TYPE), what=f"answer to message_type 0x{mtype:02x}")
        c.expect_closed(f"after INVALID_MESSAGE_TYPE for message_type 0x{mtype:02x}")


@broker_case("malformed.unknown-type-first", clauses=("ERR-13", "ERR-4", "BROKER-3"), reference_defect="12.2")
def unknown_type_first(ctx: BrokerContext) -> None:
    """Step 1a comes first: a whole frame with message_type 0x04 whose topic_length and payload_length are both
    negative is answered INVALID_MESSAGE_TYPE, not INVALID_REQUEST, and the connection is closed."""
    c = ctx.connect()
    frame = raw_request(44, 0x04, b"", 0, topic_length=-1, payload_length=-1)
    c.send(frame, "message_type 0x04 with negative lengths")
    c.expect(error(44, INVALID_MESSAGE_TYPE), what="answer")
    c.expect_closed("after INVALID_MESSAGE_TYPE")


@broker_case("malformed.nothing-processed-after-fatal", clauses=("CONN-10", "ERR-14", "BROKER-1"))
def nothing_after_fatal(ctx: BrokerContext) -> None:
    """After a fatal frame (an unknown message_type; then a negative topic_length) the broker processes no further
    byte: a CREATE_TOPIC sent behind it in the same write is not answered and creates nothing (a new connection
    can still create that name), and the connection is closed. Whether the fatal frame itself was answered is
    judged by other cases."""
    for label, cid, bad in (
        ("message_type 0x04", 1, raw_request(1, 0x04, b"x", 0)),
        ("topic_length -1", 2, pack_i32(2) + bytes([PRODUCE]) + pack_i32(-1)),
    ):
        name = ctx.topic("after-" + label.split()[0].replace("_", "-"))
        c = ctx.connect()
        c.send(bad + create_topic(3, name, 4), f"{label} + CREATE_TOPIC", tolerate_close=True)
        c.fill(1 << 20)  # until the broker closes, or is silent for the timeout
        got = c.take(len(c.pending))
        if len(got) >= 6 and got[:4] == pack_i32(cid) and got[4] == 0:
            got = got[6:]  # the fatal frame's own error response
        ctx.check(
            not got,
            f"after {label}: the broker sent {hexline(got)}, an answer to the CREATE_TOPIC behind the fatal frame",
        )
        ctx.check(c.state != "open", f"after {label}: the connection is still open after {ctx.timeout:g} s")
        d = ctx.connect()
        d.send(create_topic(5, name, 6), "CREATE_TOPIC on a new connection")
        d.expect(create_ok(5, 6, name), what=f"CREATE_TOPIC of the name sent behind {label} (it must not exist)")


@broker_case(
    "malformed.negative-topic-length", clauses=("REQ-3", "ERR-3", "BROKER-4", *_FATAL), reference_defect="12.3"
)
def negative_topic_length(ctx: BrokerContext) -> None:
    """A request whose topic_length is negative (-1 on PRODUCE, INT32_MIN on CONSUME; sent up to that field) is
    answered INVALID_REQUEST (1) with its correlation id at once, then the connection is closed."""
    for mtype, tlen, cid in ((PRODUCE, -1, 6), (CONSUME, INT32_MIN, -6)):
        c = ctx.connect()
        c.send(pack_i32(cid) + bytes([mtype]) + pack_i32(tlen), f"topic_length {tlen}")
        c.expect(error(cid, INVALID_REQUEST), what=f"answer to topic_length {tlen}")
        c.expect_closed(f"after INVALID_REQUEST for topic_length {tlen}")


@broker_case(
    "malformed.huge-topic-length",
    clauses=("REQ-3", "ERR-3", "BROKER-4", "BROKER-7", *_FATAL),
    reference_defect="12.4",
)
def huge_topic_length(ctx: BrokerContext) -> None:
    """A topic_length of 65,536 or 2,147,483,647 (each on its own connection, sent up to that field, at once) is
    answered INVALID_REQUEST at once, without waiting for (or allocating) the announced bytes, then the connection is
    closed. The reason says what happened for each length (a broker that stays open and silent waits for the
    announced bytes)."""
    sent = []
    for tlen, cid in ((65_536, 8), (INT32_MAX, 9)):
        c = ctx.connect(f"connect for topic_length {tlen:,}")
        c.send(pack_i32(cid) + bytes([CREATE_TOPIC]) + pack_i32(tlen), f"topic_length {tlen}")
        sent.append((c, tlen, cid))
    deadline = time.monotonic() + ctx.timeout
    bad = []
    for c, tlen, cid in sent:
        problem = c.answer_within(error(cid, INVALID_REQUEST), max(0.01, deadline - time.monotonic()))
        if problem is None:
            c.fill(1)  # until the close, or the read timeout
            if c.pending:
                problem = f"answered INVALID_REQUEST, then sent {describe_response(c.pending)}"
            elif c.open:
                problem = "answered INVALID_REQUEST but left the connection open (CONN-10)"
        elif c.waited():
            problem += f": it waits for the {tlen:,} announced topic bytes (BROKER-7)"
        if problem is not None:
            bad.append(f"topic_length {tlen:,}: {problem}")
    if bad:
        ctx.fail("; ".join(bad) + " (BROKER-4: INVALID_REQUEST with the correlation id, then close)")


@broker_case(
    "malformed.negative-payload-length",
    clauses=("REQ-7", "ERR-3", "BROKER-4", *_FATAL),
    reference_defect="12.3",
)
def negative_payload_length(ctx: BrokerContext) -> None:
    """A complete header whose payload_length is negative (-1 on PRODUCE, INT32_MIN on CONSUME, -1 on CREATE_TOPIC)
    is answered INVALID_REQUEST with its correlation id, then the connection is closed."""
    topic = ctx.topic().encode()
    for mtype, plen, cid in ((PRODUCE, -1, 10), (CONSUME, INT32_MIN, 11), (CREATE_TOPIC, -1, 12)):
        c = ctx.connect()
        c.send(raw_request(cid, mtype, topic, 0, payload_length=plen), f"payload_length {plen}")
        c.expect(error(cid, INVALID_REQUEST), what=f"answer to payload_length {plen} (message_type {mtype})")
        c.expect_closed(f"after INVALID_REQUEST for payload_length {plen}")


@broker_case("malformed.truncated-at-eof", clauses=("CONN-12", "ERR-14"))
def truncated_at_eof(ctx: BrokerContext) -> None:
    """A frame cut short by the client's EOF (the first 20 bytes of a CREATE_TOPIC, then FIN) is not answered and
    has no effect: the broker closes without sending anything, and the topic can still be created."""
    name = ctx.topic()
    c = ctx.connect()
    c.send(create_topic(13, name, 1)[:20], "the first 20 bytes of a CREATE_TOPIC")
    c.shutdown_write()
    c.expect_closed("after a truncated frame and EOF (CONN-12: no answer)")
    d = ctx.connect()
    d.send(create_topic(14, name, 2), "CREATE_TOPIC on a new connection")
    d.expect(create_ok(14, 2, name), what="CREATE_TOPIC of the name of the truncated frame (it must not exist)")


@broker_case("malformed.fatal-is-per-connection", clauses=("CONN-6", "CONN-10"))
def fatal_is_per_connection(ctx: BrokerContext) -> None:
    """A fatal error ends only its own connection: another connection opened before it is still served after."""
    bystander = ctx.connect()
    name, _ = ctx.new_topic(bystander)
    c = ctx.connect()
    c.send(raw_request(15, 0x09, b"", 0), "a frame with message_type 0x09", tolerate_close=True)
    c.fill(1)
    c.linger(0.05)
    # Closed or reset, and whether the send or the read finds out, is up to TCP's timing: the reason says the same.
    bystander.send(produce(16, name, b"still here", 17), "PRODUCE on the other connection", tolerate_close=True)
    problem = bystander.answer_within(produce_ok(16, 17, 0), ctx.timeout)
    if problem is not None:
        ctx.fail(
            f"PRODUCE on a connection opened before another one sent a fatal frame: the broker {problem} "
            "(CONN-10: a fatal error ends only its own connection)"
        )
