"""Pipelining: many requests in flight on one connection (the ``pipeline`` op, docs/CONFORMANCE.md).

Each case seeds its topics on the broker directly, so that the client's one
connection carries only what the case sends, then puts a list of requests in
flight at once and judges every reply, in request order, and the bytes the
broker received. A driver that cannot pipeline answers ``unsupported``: these
cases are then skipped and the client is judged as sequential only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from conformance._case import CaseSkipped, Level, case
from conformance._context import ClientContext
from conformance._driver import Reply
from conformance._wire import PRODUCE, WireRequest, hexline, split_requests
from conformance.cases._util import wait_closed

T = "pipe-a"
INT32_MAX = 2**31 - 1
#: Where the wrap cases ask the client to start its correlation ids: 10 before the wrap.
NEAR_WRAP = INT32_MAX - 9
FAST = {"timeout_ms": 500}
SLOW = {"timeout_ms": 5000}


# -- requests ---------------------------------------------------------------------------------


def produce(topic: str, payload: bytes) -> dict[str, Any]:
    return {"op": "produce", "topic": topic, "payload": base64.b64encode(payload).decode("ascii")}


def consume(topic: str, offset: int) -> dict[str, Any]:
    return {"op": "consume", "topic": topic, "offset": offset}


def create_topic(topic: str) -> dict[str, Any]:
    return {"op": "create_topic", "topic": topic}


def marked(i: int, size: int = 8) -> bytes:
    """A payload that names its request: ``#i`` padded to ``size`` bytes."""
    return f"#{i}".encode().ljust(size, b".")


# -- judging ----------------------------------------------------------------------------------


def describe(request: Mapping[str, Any], index: int) -> str:
    where = request.get("topic")
    what = f" offset {request['offset']}" if request.get("op") == "consume" else ""
    return f"request {index + 1} ({request.get('op')} {where!r}{what})"


def expect_offset(ctx: ClientContext, reply: Reply, offset: int, what: str) -> None:
    got = ctx.int_of(ctx.ok(reply, what), "offset", what)
    ctx.check(got == offset, f"{what}: offset {got}, expected {offset} (answers matched to the wrong requests?)")


def expect_payload(ctx: ClientContext, reply: Reply, payload: bytes, what: str) -> None:
    got = ctx.payload_of(ctx.ok(reply, what), what)
    if got != payload:
        ctx.fail(f"{what}: payload {hexline(got, 24)}, expected {hexline(payload, 24)} (the wrong answer?)")


def connect(ctx: ClientContext, **fields: Any) -> None:
    ctx.ok(ctx.connect(**fields), "connect")


def pipeline_requests(ctx: ClientContext, conn: int = 0) -> list[WireRequest]:
    """The requests connection ``conn`` of the current broker carried."""
    return list(ctx.split(conn).requests)


def pending_together(ctx: ClientContext, conn: int = 0) -> list[WireRequest]:
    """The requests the broker had received in full before it sent its first answer on ``conn``:
    the client had them all in flight at once."""
    record = ctx.records()[conn]
    received = b""
    for segment in record.segments:
        if segment.direction == "out":
            break
        received += segment.data
    return list(split_requests(received).requests)


def produce_frames(ctx: ClientContext) -> list[WireRequest]:
    """Every PRODUCE every connection of the case carried."""
    return [r for r in ctx.sent_requests() if r.message_type == PRODUCE]


def no_resend(ctx: ClientContext, payloads: Sequence[bytes]) -> None:
    """CLIENT-13: each PRODUCE went out once, whatever became of its connection."""
    sent = [r.payload for r in produce_frames(ctx)]
    again = sorted({p for p in sent if sent.count(p) > 1})
    if again:
        ctx.fail(
            f"{len(again)} PRODUCE(s) were sent more than once (first: {again[0]!r}): a silent resend of a "
            "request that may have been stored (CLIENT-13, CONN-14)"
        )
    stray = [p for p in sent if p not in set(payloads)]
    ctx.check(not stray, f"PRODUCEs the case never asked for went out: {stray[:3]}")


def expect_failed(
    ctx: ClientContext,
    replies: Sequence[Reply],
    first: int,
    types: Sequence[str],
    why: str,
    *,
    requests: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Replies ``first`` onwards (0-based) failed with one of ``types``, each of them.

    With ``requests``: a request that never went out on the connection that ended (still queued in the
    client) may instead succeed on a later connection: it was certainly not sent, so sending it now is
    no resend (CLIENT-13). One that did go out there must fail (CONN-14: its outcome is unknown).
    """
    on_first = [r.raw for r in pipeline_requests(ctx)] if requests else []
    later = [r.raw for r in ctx.sent_requests()[len(on_first) :]] if requests else []
    moved = 0
    for i in range(first, len(replies)):
        what = f"request {i + 1} of {len(replies)} ({why})"
        if requests and replies[i].ok:
            frame = _frame_of(requests[i])
            if any(frame in raw for raw in on_first):
                ctx.fail(f"{what}: it had gone out on the connection that ended, yet succeeded: a resend (CLIENT-13)")
            ctx.check(any(frame in raw for raw in later), f"{what}: succeeded, but never reached the broker")
            moved += 1
            continue
        ctx.expect_error(replies[i], what, types)
    if moved:
        ctx.note(f"{moved} request(s) never written on the connection that ended went out on a new one")


def _frame_of(request: Mapping[str, Any]) -> bytes:
    """What identifies a request's bytes on the wire: its payload (the cases mark each PRODUCE's)."""
    return base64.b64decode(str(request.get("payload", "")))


def closed_by_client(ctx: ClientContext, why: str, conn: int = 0) -> None:
    ctx.check(
        wait_closed(ctx, conn, timeout=2.0),
        f"the connection is still open 2 s after {why}: the client MUST close it (its stream is out of step)",
    )


# -- order and matching ------------------------------------------------------------------------


Expected = tuple[str, Any]  # ("offset", n) | ("payload", bytes) | ("topic", name) | ("error", code name)


def expect(ctx: ClientContext, reply: Reply, expected: Expected, what: str) -> None:
    """``reply`` is the result ``expected`` says."""
    kind, value = expected
    if kind == "offset":
        expect_offset(ctx, reply, value, what)
    elif kind == "payload":
        expect_payload(ctx, reply, value, what)
    elif kind == "topic":
        echo = ctx.ok(reply, what).get("topic")
        ctx.check(echo == value, f"{what}: topic echo {echo!r}, expected {value!r} (the wrong answer?)")
    else:
        ctx.expect_error(reply, what, ["broker"], value)


@case("pipelining.order.mixed-100", clauses=("CONN-5", "CLIENT-6", "CLIENT-15", "CLIENT-16"))
def mixed_100(ctx: ClientContext) -> None:
    """100 requests in flight at once (PRODUCE, CONSUME, CREATE_TOPIC, and requests answered with errors) are
    each answered with their own result, in order, on one connection."""
    ctx.seed(T, *(marked(i) for i in range(10)))
    connect(ctx)
    requests: list[dict[str, Any]] = []
    expected: list[Expected] = []
    for i in range(100):
        kind = i % 5
        if kind == 0:
            requests.append(produce(T, marked(100 + i)))
            expected.append(("offset", 10 + i // 5))
        elif kind == 1:
            requests.append(consume(T, i % 10))
            expected.append(("payload", marked(i % 10)))
        elif kind == 2:
            requests.append(create_topic(f"pipe-new-{i}"))
            expected.append(("topic", f"pipe-new-{i}"))
        elif kind == 3:
            requests.append(consume(T, 10_000))
            expected.append(("error", "INVALID_OFFSET"))
        else:
            requests.append(produce("pipe-missing", b"x"))
            expected.append(("error", "TOPIC_NOT_FOUND"))
    replies = ctx.pipeline(requests)
    for i, (reply, want) in enumerate(zip(replies, expected, strict=True)):
        expect(ctx, reply, want, describe(requests[i], i))
    sent = pipeline_requests(ctx)
    ctx.check(len(sent) == 100, f"the connection carried {len(sent)} requests, expected the 100 in flight")
    ctx.check(ctx.connections_opened() == 1, f"{ctx.connections_opened()} connections for one pipeline")


@case("pipelining.order.coalesced-answers", clauses=("CLIENT-3", "CONN-5"))
def coalesced(ctx: ClientContext) -> None:
    """The answers to 50 requests in flight arrive in one segment (the broker holds 49 and sends them with the
    50th): each is cut out at its exact length and goes to its own request."""
    ctx.seed(T, *(marked(i, 24) for i in range(49)))
    connect(ctx)
    ctx.fault("consume:hold")
    replies = ctx.pipeline([*(consume(T, i) for i in range(49)), produce(T, b"last")])
    out = [s for s in ctx.records()[0].segments if s.direction == "out"]
    ctx.check(len(out) == 1, f"harness: the 50 answers went out in {len(out)} segments, not one")
    for i in range(49):
        expect_payload(ctx, replies[i], marked(i, 24), f"request {i + 1} (consume offset {i})")
    expect_offset(ctx, replies[49], 49, "request 50 (produce)")


@case("pipelining.order.answers-split-at-every-byte", clauses=("CLIENT-3", "WIRE-5", "CONN-5"))
def split_every_byte(ctx: ClientContext) -> None:
    """The answers to 6 requests in flight (PRODUCE, a 300-byte CONSUME, the CREATE_TOPIC echo, an error,
    UTF-8 text) arrive one byte per segment, 1 ms apart (so that the client reads them in pieces): every reply
    is exact."""
    binary = bytes(range(256)) + bytes(44)
    text = "ünïcödé ✓ text".encode()
    ctx.seed(T, binary, text)
    connect(ctx)
    ctx.fault("any:slice=1/1")
    replies = ctx.pipeline(
        [produce(T, b"p"), consume(T, 0), create_topic("pipe-echo"), consume(T, 99), consume(T, 1), produce(T, b"q")]
    )
    expect_offset(ctx, replies[0], 2, "request 1 (produce)")
    expect_payload(ctx, replies[1], binary, "request 2 (consume of 300 bytes)")
    echo = ctx.ok(replies[2], "request 3 (create_topic)").get("topic")
    ctx.check(echo == "pipe-echo", f"request 3 (create_topic): echo {echo!r}, expected 'pipe-echo' (RESP-4)")
    ctx.expect_error(replies[3], "request 4 (consume of a missing offset)", ["broker"], "INVALID_OFFSET")
    expect_payload(ctx, replies[4], text, "request 5 (consume of UTF-8 text)")
    expect_offset(ctx, replies[5], 3, "request 6 (produce)")


@case("pipelining.order.answers-arrive-slowly", clauses=("CLIENT-3", "CONN-5", "CLIENT-11"))
def slowly(ctx: ClientContext) -> None:
    """20 requests in flight whose answers come one at a time, 40 ms apart (0.8 s in all, within the 2 s
    timeout of each): all succeed, in order, none timed out."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault("any:delay=40")
    replies = ctx.pipeline([produce(T, marked(i)) for i in range(20)])
    for i, reply in enumerate(replies):
        expect_offset(ctx, reply, i, f"request {i + 1} of 20")


@case("pipelining.order.thousand-produces", clauses=("SEM-4", "CONN-3", "CONN-5"))
def thousand(ctx: ClientContext) -> None:
    """1,000 PRODUCEs in flight at once: request i is answered with offset i, its payload is the message stored
    at offset i (the requests went out in the order they were issued), and each went out once."""
    ctx.seed(T)
    connect(ctx)
    payloads = [marked(i) for i in range(1000)]
    replies = ctx.pipeline([produce(T, p) for p in payloads])
    for i, reply in enumerate(replies):
        expect_offset(ctx, reply, i, f"request {i + 1} of 1,000")
    stored = ctx.stored(T)
    wrong = [i for i, p in enumerate(payloads) if i >= len(stored) or stored[i] != p]
    ctx.check(
        not wrong,
        f"{len(wrong)} messages stored out of the order issued (first: offset {wrong[0] if wrong else 0}): "
        "the requests were not sent in the order of the calls",
    )
    no_resend(ctx, payloads)


@case("pipelining.order.large-answers-among-small", clauses=("CLIENT-3", "CLIENT-12", "CONN-5"))
def large_among_small(ctx: ClientContext) -> None:
    """CONSUMEs of a 200 KiB binary payload, a 100 KiB UTF-8 text and a 1-byte payload, interleaved and all in
    flight: each reply carries exactly its own payload."""
    big = bytes(range(256)) * 800
    text = ("µ-ünïcödé " * 9000).encode()[: 100 * 1024]
    ctx.seed(T, big, b"s", text)
    connect(ctx)
    offsets = [0, 1, 2, 1, 0, 2, 1]
    replies = ctx.pipeline([consume(T, o) for o in offsets])
    for i, (offset, reply) in enumerate(zip(offsets, replies, strict=True)):
        expect_payload(ctx, reply, [big, b"s", text][offset], f"request {i + 1} (consume offset {offset})")


@case("pipelining.order.issued-order-on-the-wire", clauses=("CONN-3", "CONN-5"))
def issued_order(ctx: ClientContext) -> None:
    """A CREATE_TOPIC, PRODUCEs and CONSUMEs of what those PRODUCEs store, all in flight together, go out in the
    order issued, so each CONSUME finds the message the PRODUCE before it stored."""
    connect(ctx)
    topic = "pipe-order"
    replies = ctx.pipeline(
        [create_topic(topic), produce(topic, b"one"), consume(topic, 0), produce(topic, b"two"), consume(topic, 1)]
    )
    ctx.check(ctx.ok(replies[0], "request 1 (create_topic)").get("topic") == topic, "request 1: wrong echo")
    expect_offset(ctx, replies[1], 0, "request 2 (produce 'one')")
    expect_payload(ctx, replies[2], b"one", "request 3 (consume offset 0)")
    expect_offset(ctx, replies[3], 1, "request 4 (produce 'two')")
    expect_payload(ctx, replies[4], b"two", "request 5 (consume offset 1)")


@case("pipelining.in-flight-together", clauses=("CONN-2",), level=Level.SHOULD)
def in_flight_together(ctx: ClientContext) -> None:
    """A driver that takes the pipeline op puts its requests in flight together: all 20 reach the broker before
    it sends the first answer (held back 300 ms). Otherwise the client is sequential, and its driver should
    answer the op 'unsupported'."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault("any:delay=300:nth=1")
    ctx.pipeline([produce(T, marked(i)) for i in range(20)])
    together = len(pending_together(ctx))
    ctx.note(f"{together} of 20 requests were in flight before the first answer")
    ctx.check(
        together == 20,
        f"only {together} of the 20 requests reached the broker before the first answer: the client waited for "
        "answers before sending (CONN-2); a sequential client's driver should answer the pipeline op "
        "'unsupported'",
    )


# -- correlation ids ----------------------------------------------------------------------------


@case("pipelining.cid.unique-among-pending", clauses=("CLIENT-4", "CONN-5"))
def unique_pending(ctx: ClientContext) -> None:
    """The correlation ids of 200 requests in flight together (the first answer held back 300 ms) are all
    different: a pending request's id is never reused."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault("any:delay=300:nth=1")
    replies = ctx.pipeline([produce(T, marked(i)) for i in range(200)])
    pending = pending_together(ctx)
    ctx.check(len(pending) > 1, "the client had one request in flight at a time: no ids were pending together")
    ids = [r.correlation_id for r in pending]
    dup = sorted({cid for cid in ids if ids.count(cid) > 1})
    if dup:
        ctx.fail(f"{len(ids) - len(set(ids))} of {len(ids)} pending requests reuse an id pending already ({dup[:5]})")
    ctx.note(f"{len(pending)} requests pending together, ids {ids[0]}..{ids[-1]}")
    for i, reply in enumerate(replies):
        expect_offset(ctx, reply, i, f"request {i + 1} of 200")


def _near_wrap(ctx: ClientContext) -> list[WireRequest]:
    """Ask the client to start its ids 10 before 2**31 - 1, put 20 requests in flight; the ids they carried.
    Skips the case when the client cannot be told where to start (the contract's optional field)."""
    ctx.seed(T)
    connect(ctx, first_correlation_id=NEAR_WRAP)
    ctx.fault("any:delay=200:nth=1")
    replies = ctx.pipeline([produce(T, marked(i)) for i in range(20)])
    sent = pipeline_requests(ctx)
    if not sent or sent[0].correlation_id != NEAR_WRAP:
        first = sent[0].correlation_id if sent else None
        raise CaseSkipped(
            f"the client's first id was {first}, not {NEAR_WRAP}: it does not take connect's "
            "first_correlation_id, so the wrap of its counter cannot be reached from outside"
        )
    for i, reply in enumerate(replies):
        expect_offset(ctx, reply, i, f"request {i + 1} of 20")
    return sent


@case("pipelining.cid.unique-across-the-wrap", clauses=("CLIENT-4",))
def unique_across_wrap(ctx: ClientContext) -> None:
    """Ids started 10 before 2**31 - 1 wrap around with 20 requests in flight: still all different, all
    int32 (skipped when the client cannot be told where its ids start)."""
    sent = _near_wrap(ctx)
    ids = [r.correlation_id for r in sent]
    ctx.note("ids " + ", ".join(str(i) for i in ids[8:13]) + " around the wrap")
    ctx.check(len(set(ids)) == len(ids), f"ids repeat across the wrap: {ids}")


@case("pipelining.cid.wrap-skips-zero", clauses=("CLIENT-5",), level=Level.SHOULD)
def wrap_skips_zero(ctx: ClientContext) -> None:
    """Across the wrap of its counter the client never uses correlation id 0, the unsolicited frame's."""
    ids = [r.correlation_id for r in _near_wrap(ctx)]
    ctx.check(0 not in ids, f"id 0 was used at the wrap: {ids}")


# -- errors in the middle -------------------------------------------------------------------------

MIDDLE = [
    produce(T, b"a"),
    consume(T, 0),
    produce(T, b"b"),
    consume(T, 1),
    consume(T, 99),  # the 5th: INVALID_OFFSET
    consume(T, 0),
    produce(T, b"c"),
    consume(T, 2),
    create_topic("pipe-after"),
    consume(T, 3),
]


def _middle(ctx: ClientContext) -> list[Reply]:
    ctx.seed(T)
    connect(ctx)
    replies = ctx.pipeline(MIDDLE)
    expect_offset(ctx, replies[0], 0, "request 1 (produce)")
    expect_payload(ctx, replies[1], b"a", "request 2 (consume 0)")
    expect_offset(ctx, replies[2], 1, "request 3 (produce)")
    expect_payload(ctx, replies[3], b"b", "request 4 (consume 1)")
    ctx.expect_error(replies[4], "request 5 (consume of offset 99)", ["broker"], "INVALID_OFFSET")
    expect_payload(ctx, replies[5], b"a", "request 6 (consume 0, after the error)")
    expect_offset(ctx, replies[6], 2, "request 7 (produce, after the error)")
    expect_payload(ctx, replies[7], b"c", "request 8 (consume 2, after the error)")
    ctx.ok(replies[8], "request 9 (create_topic, after the error)")
    ctx.expect_error(replies[9], "request 10 (consume of offset 3)", ["broker"], "INVALID_OFFSET")
    return replies


@case("pipelining.errors.error-in-the-middle", clauses=("ERR-15", "CLIENT-15", "CONN-5"))
def error_in_middle(ctx: ClientContext) -> None:
    """An error response to the 5th of 10 requests in flight fails that one only: the four before and the
    five after it get their own results."""
    _middle(ctx)


@case("pipelining.errors.connection-kept-after-an-error", clauses=("CLIENT-25", "ERR-15"), level=Level.SHOULD)
def kept_after_error(ctx: ClientContext) -> None:
    """Error responses in a pipeline do not end the connection: all 10 requests and the next one go on it."""
    _middle(ctx)
    ctx.ok(ctx.produce(T, b"next"), "the request after the pipeline")
    ctx.check(ctx.connections_opened() == 1, f"{ctx.connections_opened()} connections: an error response ended one")


@case("pipelining.errors.a-code-per-request", clauses=("CLIENT-15", "ERR-2", "RESP-3"))
def code_per_request(ctx: ClientContext) -> None:
    """Nine PRODUCEs in flight answered with the nine error codes, one each (NETWORK_ERROR with the request's
    own id is an error response): each reply carries its own code."""
    names = [
        "INVALID_REQUEST",
        "INVALID_MESSAGE_TYPE",
        "MESSAGE_TOO_LARGE",
        "TOPIC_NOT_FOUND",
        "TOPIC_ALREADY_EXISTS",
        "INVALID_OFFSET",
        "INTERNAL_ERROR",
        "NETWORK_ERROR",
        "RESOURCE_EXHAUSTED",
    ]
    ctx.seed(T)
    connect(ctx)
    for n, name in enumerate(names, 1):
        ctx.fault(f"produce:error={name}:nth={n}")
    replies = ctx.pipeline([produce(T, marked(i)) for i in range(9)])
    for i, (reply, name) in enumerate(zip(replies, names, strict=True)):
        ctx.expect_error(reply, f"request {i + 1} of 9", ["broker"], name)


# -- protocol errors in the middle ----------------------------------------------------------------


def _broken_fifth(ctx: ClientContext, rule: str, op: str, clause: str) -> None:
    """The 5th of 10 answers breaks the protocol: the first four succeed, the 5th fails with a protocol error,
    every later one fails too (protocol or connection error), and the client closes the connection."""
    ctx.seed(T, *(marked(i) for i in range(10)))
    connect(ctx)
    ctx.fault(rule)
    if op == "produce":
        payloads = [marked(100 + i) for i in range(10)]
        requests = [produce(T, p) for p in payloads]
    else:
        payloads = []
        requests = [consume(T, i) for i in range(10)]
    replies = ctx.pipeline(requests)
    for i in range(4):
        if op == "produce":
            expect_offset(ctx, replies[i], 10 + i, f"request {i + 1} (before the broken answer)")
        else:
            expect_payload(ctx, replies[i], marked(i), f"request {i + 1} (before the broken answer)")
    ctx.expect_error(replies[4], f"request 5 (its answer breaks {clause})", ["protocol"])
    expect_failed(ctx, replies, 5, ["protocol", "connection"], "pending behind a protocol error: CLIENT-10")
    kinds = sorted({r.error.type for r in replies[5:] if r.error is not None})
    ctx.note(f"requests 6-10 failed with {' and '.join(kinds)} errors")
    closed_by_client(ctx, "the protocol error")
    if payloads:
        no_resend(ctx, payloads)


@case("pipelining.protocol.wrong-correlation-id-fifth", clauses=("CLIENT-6", "CLIENT-10", "CLIENT-13"))
def wrong_cid_fifth(ctx: ClientContext) -> None:
    """The 5th of 10 answers carries the wrong correlation id: 1-4 succeed, 5-10 fail, the connection is
    closed, and no PRODUCE is resent."""
    _broken_fifth(ctx, "produce:wrong-cid:nth=5", "produce", "CLIENT-6")


@case("pipelining.protocol.bad-success-flag-fifth", clauses=("CLIENT-7", "CLIENT-10", "CLIENT-13"))
def bad_flag_fifth(ctx: ClientContext) -> None:
    """The 5th of 10 answers has success flag 2: 1-4 succeed, 5-10 fail, the connection is closed, and no
    PRODUCE is resent."""
    _broken_fifth(ctx, "produce:bad-flag:nth=5", "produce", "CLIENT-7")


@case("pipelining.protocol.bad-length-fifth", clauses=("CLIENT-8", "CLIENT-10"))
def bad_length_fifth(ctx: ClientContext) -> None:
    """The 5th of 10 CONSUME answers announces payload_length -1: 1-4 succeed, 5-10 fail, the connection is
    closed."""
    _broken_fifth(ctx, "consume:bad-length=-1:nth=5", "consume", "CLIENT-8")


@case("pipelining.protocol.stray-bytes-after-the-last-answer", clauses=("CLIENT-9", "CLIENT-10"))
def stray_after_last(ctx: ClientContext) -> None:
    """Six stray bytes follow the last of 10 answers, when nothing is pending: the 10 succeed, and the next
    request never succeeds on that connection (it fails, or succeeds on a new one)."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault("produce:trailing=0000002a0004:nth=10")
    replies = ctx.pipeline([produce(T, marked(i)) for i in range(10)])
    for i, reply in enumerate(replies):
        expect_offset(ctx, reply, i, f"request {i + 1} of 10")
    ctx.wait_for(lambda: bytes(ctx.records()[0].sent).endswith(bytes.fromhex("0000002a0004")), timeout=1.0)
    reply = ctx.consume(T, 0)
    on_first = [r for r in pipeline_requests(ctx) if r.message_type != PRODUCE]
    if reply.ok and on_first:
        ctx.fail("the next request succeeded on the connection that had carried stray bytes (CLIENT-9)")
    ctx.note("the next request " + ("succeeded on a new connection" if reply.ok else f"failed: {reply.error}"))


# -- the connection ends with requests in flight ----------------------------------------------------


def _ends_after_five(ctx: ClientContext, rule: str, why: str) -> None:
    """10 PRODUCEs in flight; the connection ends before the 6th answer: 1-5 succeed with their offsets, 6-10
    fail with a connection error, and none is resent (their outcome is unknown)."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault(rule)
    payloads = [marked(i) for i in range(10)]
    requests = [produce(T, p) for p in payloads]
    replies = ctx.pipeline(requests)
    for i in range(5):
        expect_offset(ctx, replies[i], i, f"request {i + 1} (answered before {why})")
    expect_failed(ctx, replies, 5, ["connection"], f"pending at {why}: CLIENT-14", requests=requests)
    no_resend(ctx, payloads)


@case("pipelining.end.eof-after-five-answers", clauses=("CLIENT-14", "CONN-14", "CLIENT-13"))
def eof_after_five(ctx: ClientContext) -> None:
    """The broker closes (FIN) after answering 5 of 10 PRODUCEs in flight: 1-5 succeed, 6-10 fail with a
    connection error, none is resent."""
    _ends_after_five(ctx, "produce:close:nth=6", "the EOF")


@case("pipelining.end.reset-after-five-answers", clauses=("CLIENT-14", "CONN-14", "CLIENT-13"))
def reset_after_five(ctx: ClientContext) -> None:
    """The broker resets (RST) after answering 5 of 10 PRODUCEs in flight: 1-5 succeed, 6-10 fail with a
    connection error, none is resent."""
    _ends_after_five(ctx, "produce:reset:nth=6", "the reset")


@case("pipelining.end.unsolicited-after-five-answers", clauses=("CONN-9", "CLIENT-14", "CLIENT-13"))
def unsolicited_after_five(ctx: ClientContext) -> None:
    """The unsolicited frame 00 00 00 00 00 08 arrives after 5 of 10 answers (the other 5 follow it): 1-5
    succeed, 6-10 fail with a connection error (the connection ended at the frame), none is resent."""
    _ends_after_five(ctx, "produce:unsolicited=NETWORK_ERROR:nth=6", "the unsolicited frame")


@case("pipelining.end.truncated-sixth-answer", clauses=("CLIENT-14", "CONN-14", "CLIENT-13"))
def truncated_sixth(ctx: ClientContext) -> None:
    """The connection ends 5 bytes into the 6th of 10 answers: 1-5 succeed, 6-10 fail with a connection error
    (an EOF mid-response is one), none is resent."""
    _ends_after_five(ctx, "produce:close-after=5:nth=6", "the EOF in the middle of an answer")


@case("pipelining.end.answers-then-write-failure", clauses=("CLIENT-14", "CONN-14", "CLIENT-13"))
def answers_then_write_failure(ctx: ClientContext) -> None:
    """The broker answers 200 of 600 PRODUCEs of 8 KiB at once, then resets while the client is still writing
    the others: its write fails with those 200 answers already received, and exactly those 200 succeed."""
    ctx.seed(T)
    # A small receive window and a throttle keep the client writing; the first answer is held so that
    # the 200 go out together, right before the reset.
    ctx.fault("connect:slow-read=4000000", "produce:delay=300:nth=1", "produce:reset:nth=201")
    connect(ctx)
    payloads = [marked(i, 8192) for i in range(600)]
    requests = [produce(T, p) for p in payloads]
    replies = ctx.pipeline(requests)
    for i in range(200):
        expect_offset(ctx, replies[i], i, f"request {i + 1} (answered before the reset)")
    expect_failed(ctx, replies, 200, ["connection"], "pending at the reset: CLIENT-14", requests=requests)
    no_resend(ctx, payloads)


# -- backpressure and timeouts ---------------------------------------------------------------------


@case("pipelining.backpressure.broker-reads-slowly", clauses=("CLIENT-3", "CONN-3", "CLIENT-13"), options=SLOW)
def reads_slowly(ctx: ClientContext) -> None:
    """The broker reads at 4 MB/s through a small receive window while the client puts 2,000 PRODUCEs of
    2 KiB in flight, more than the kernel's buffers hold (its writes block): nothing is lost or duplicated,
    every answer goes to its request."""
    ctx.seed(T)
    ctx.fault("connect:slow-read=4000000")
    connect(ctx)
    payloads = [marked(i, 2048) for i in range(2000)]
    replies = ctx.pipeline([produce(T, p) for p in payloads])
    for i, reply in enumerate(replies):
        expect_offset(ctx, reply, i, f"request {i + 1} of 2,000")
    ctx.check(ctx.stored(T) == payloads, "the broker does not hold the 2,000 messages once each, in order")
    no_resend(ctx, payloads)


@case("pipelining.timeout.all-pending-fail", clauses=("CLIENT-11", "CLIENT-13"), options=FAST)
def all_pending_fail(ctx: ClientContext) -> None:
    """A broker that never answers 10 requests in flight (timeout 500 ms): all 10 fail (timeout or connection
    error), the client closes the connection, and no PRODUCE is resent."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault("any:silent")
    payloads = [marked(i) for i in range(10)]
    replies = ctx.pipeline([produce(T, p) for p in payloads])
    ctx.expect_error(replies[0], "request 1 (never answered)", ["timeout"])
    expect_failed(ctx, replies, 1, ["timeout", "connection"], "pending when the timeout expired: CLIENT-11")
    closed_by_client(ctx, "the timeout")
    no_resend(ctx, payloads)


@case("pipelining.timeout.late-answer-not-taken", clauses=("CLIENT-11", "CLIENT-13"), options=FAST)
def late_answer(ctx: ClientContext) -> None:
    """The 3rd of 6 answers comes 1.5 s late (timeout 500 ms): 1-2 succeed, 3 times out, 4-6 fail, the
    connection is closed, the late answers are never taken, and no PRODUCE is resent."""
    ctx.seed(T)
    connect(ctx)
    ctx.fault("produce:delay=1500:nth=3")
    payloads = [marked(i) for i in range(6)]
    replies = ctx.pipeline([produce(T, p) for p in payloads])
    expect_offset(ctx, replies[0], 0, "request 1")
    expect_offset(ctx, replies[1], 1, "request 2")
    ctx.expect_error(replies[2], "request 3 (answered 1.5 s late)", ["timeout"])
    expect_failed(ctx, replies, 3, ["timeout", "connection"], "pending when the timeout expired: CLIENT-11")
    closed_by_client(ctx, "the timeout")
    no_resend(ctx, payloads)


@case("pipelining.retry.consumes-after-a-drop", clauses=("CLIENT-20",), level=Level.SHOULD)
def consumes_retried(ctx: ClientContext) -> None:
    """The broker closes after answering 2 of 5 CONSUMEs in flight: the 3 others, safe to repeat, are retried
    and return their messages."""
    ctx.seed(T, *(marked(i) for i in range(5)))
    connect(ctx)
    ctx.fault("consume:close:nth=3")
    replies = ctx.pipeline([consume(T, i) for i in range(5)])
    for i, reply in enumerate(replies):
        expect_payload(ctx, reply, marked(i), f"request {i + 1} (consume {i})")
    ctx.note(f"{ctx.connections_opened()} connections")
