"""Framing: the exact bytes a client sends, and reading what it receives however it arrives."""

from __future__ import annotations

from collections.abc import Callable

from conformance._case import Level, case
from conformance._context import ClientContext
from conformance._driver import Reply
from conformance._wire import CONSUME, CREATE_TOPIC, PRODUCE, hexline, pack_i32, read_i32, read_i64, split_requests
from conformance.cases._util import (
    BINARY,
    UTF8_TEXT,
    check_echo,
    expect_field,
    expect_length,
    expect_ms_timestamp,
    wait_closed,
    wrong_timestamp_unit,
)

T = "probe-a"


def _first_request(ctx: ClientContext) -> bytes:
    raw = ctx.received(0)
    ctx.check(raw, "the broker received no bytes")
    return raw


# -- request layouts ------------------------------------------------------------------------


@case("framing.create-topic.layout", clauses=("REQ-1", "REQ-4", "WIRE-1", "WIRE-2"))
def create_topic_layout(ctx: ClientContext) -> None:
    """CREATE_TOPIC "probe-a" is exactly correlation_id, 0x03, topic_length 7 (i32 big-endian), the 7 topic
    bytes, an 8-byte timestamp and payload_length 0: 28 bytes, nothing more."""
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.create_topic(T)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 4, bytes([0x03]), "message_type")
    expect_field(ctx, raw, 5, pack_i32(7), "topic_length")
    expect_field(ctx, raw, 9, b"probe-a", "topic")
    hint = "payload_length missing after the timestamp (REQ-4, REQ-7)" if len(raw) == 24 else ""
    expect_length(ctx, raw, 28, "the CREATE_TOPIC request", hint)
    ctx.ok(reply, "create_topic")


@case("framing.produce.layout", clauses=("REQ-1", "REQ-5", "WIRE-1", "WIRE-2"))
def produce_layout(ctx: ClientContext) -> None:
    """PRODUCE of "abc" to "probe-a" is exactly correlation_id, 0x01, topic_length 7, the topic, an 8-byte
    timestamp, payload_length 3 and the 3 payload bytes: 31 bytes."""
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.produce(T, b"abc")  # the topic does not exist: the request is the first on the wire
    raw = _first_request(ctx)
    expect_field(ctx, raw, 4, bytes([0x01]), "message_type")
    expect_field(ctx, raw, 5, pack_i32(7), "topic_length")
    expect_field(ctx, raw, 9, b"probe-a", "topic")
    expect_field(ctx, raw, 24, pack_i32(3), "payload_length")
    expect_field(ctx, raw, 28, b"abc", "payload")
    expect_length(ctx, raw, 31, "the PRODUCE request")
    ctx.expect_error(reply, "produce to a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("framing.consume.layout", clauses=("REQ-1", "REQ-6", "WIRE-1", "WIRE-2"))
def consume_layout(ctx: ClientContext) -> None:
    """CONSUME of offset 5 from "probe-a" is exactly correlation_id, 0x02, topic_length 7, the topic, an 8-byte
    timestamp, offset 5 (i32) and payload_length 0: 32 bytes."""
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.consume(T, 5)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 4, bytes([0x02]), "message_type")
    expect_field(ctx, raw, 5, pack_i32(7), "topic_length")
    expect_field(ctx, raw, 9, b"probe-a", "topic")
    expect_field(ctx, raw, 24, pack_i32(5), "offset")
    hint = "payload_length missing after the offset (REQ-6, REQ-7)" if len(raw) == 28 else ""
    expect_length(ctx, raw, 32, "the CONSUME request", hint)
    ctx.expect_error(reply, "consume from a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("framing.create-topic.payload-length-present", clauses=("CLIENT-1", "REQ-4", "REQ-7"))
def create_topic_payload_length(ctx: ClientContext) -> None:
    """A CREATE_TOPIC request carries a payload_length after its timestamp, and ends exactly after the
    payload it announces (the short protocol document's "header only" form is wrong)."""
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.create_topic(T)
    raw = _first_request(ctx)
    n = len(T)
    if len(raw) < 21 + n:
        ctx.fail(f"CREATE_TOPIC is {len(raw)} bytes: it ends before a payload_length at bytes {17 + n}..{20 + n}")
    plen = read_i32(raw, 17 + n)
    ctx.check(plen >= 0, f"payload_length is negative: {plen}")
    expect_length(ctx, raw, 21 + n + plen, "the CREATE_TOPIC request")
    ctx.ok(reply, "create_topic")


@case("framing.consume.payload-length-present", clauses=("CLIENT-1", "REQ-6", "REQ-7"))
def consume_payload_length(ctx: ClientContext) -> None:
    """A CONSUME request carries a payload_length after its offset, and ends exactly after the payload it
    announces (the short protocol document's "header + offset" form is wrong)."""
    ctx.setup(T, b"m0")
    reply = ctx.consume(T, 0)
    split = ctx.split()
    consumes = split.of_type(CONSUME)
    if not consumes:
        ctx.fail(f"no complete CONSUME request was received ({split.problem or 'none sent'})")
    ctx.check(not split.rest, f"{len(split.rest)} bytes after the CONSUME request: {hexline(split.rest)}")
    ctx.ok(reply, "consume")


@case("framing.create-topic.payload-length-zero", clauses=("REQ-9",), level=Level.SHOULD)
def create_topic_payload_zero(ctx: ClientContext) -> None:
    """CREATE_TOPIC is sent with payload_length 0 and no payload."""
    ctx.ok(ctx.connect(), "connect")
    ctx.create_topic(T)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 17 + len(T), pack_i32(0), "payload_length")
    expect_length(ctx, raw, 21 + len(T), "the CREATE_TOPIC request")


@case("framing.consume.payload-length-zero", clauses=("REQ-9",), level=Level.SHOULD)
def consume_payload_zero(ctx: ClientContext) -> None:
    """CONSUME is sent with payload_length 0 and no payload."""
    ctx.ok(ctx.connect(), "connect")
    ctx.consume(T, 0)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 21 + len(T), pack_i32(0), "payload_length")
    expect_length(ctx, raw, 25 + len(T), "the CONSUME request")


@case("framing.produce.payload-length-matches", clauses=("REQ-5", "CLIENT-2", "WIRE-3"))
def produce_payload_length(ctx: ClientContext) -> None:
    """PRODUCE's payload_length is the number of payload bytes, and the payload bytes follow it verbatim."""
    payload = b"0123456789"
    ctx.setup(T)
    reply = ctx.produce(T, payload)
    req = ctx.the_request(PRODUCE)
    ctx.check(req.payload_length == 10, f"payload_length is {req.payload_length} for a 10-byte payload")
    ctx.check(req.payload == payload, f"payload sent is {hexline(req.payload)}, expected {hexline(payload)}")
    ctx.ok(reply, "produce")


@case("framing.lengths.payload-utf8-bytes", clauses=("WIRE-3", "CLIENT-2"))
def payload_utf8_bytes(ctx: ClientContext) -> None:
    """The payload_length of a UTF-8 text payload counts its bytes (20), not its characters (14)."""
    payload = UTF8_TEXT.encode("utf-8")
    ctx.setup(T)
    reply = ctx.produce(T, payload)
    raw = ctx.received()
    # the PRODUCE follows the CREATE_TOPIC; find it by hand from the end of the CREATE_TOPIC
    split = split_requests(raw)
    produces = split.of_type(PRODUCE)
    if not produces:
        ctx.fail(f"no PRODUCE request could be read from the stream: {split.problem}")
    req = produces[-1]
    ctx.check(
        req.payload_length == len(payload),
        f"payload_length is {req.payload_length} for a payload of {len(payload)} bytes ({len(UTF8_TEXT)} characters)",
    )
    ctx.check(req.payload == payload, f"payload bytes differ: {hexline(req.payload)}")
    ctx.check(not split.rest, f"{len(split.rest)} stray bytes after the PRODUCE: {hexline(split.rest)}")
    ctx.ok(reply, "produce")


@case("framing.lengths.topic-utf8-bytes", clauses=("WIRE-3", "CLIENT-2", "REQ-3"))
def topic_utf8_bytes(ctx: ClientContext) -> None:
    """A topic with multibyte characters ("café-☕", 6 characters, 9 bytes) is either refused locally
    (SEM-2 forbids it) or, if sent, sent with topic_length 9, its UTF-8 byte length."""
    topic = "café-☕"
    encoded = topic.encode("utf-8")
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.create_topic(topic)
    raw = ctx.received(0) if ctx.records() else b""
    if not raw:
        ctx.expect_error(reply, "create_topic with a multibyte name that was not sent", ["usage"])
        ctx.note("refused locally, nothing sent")
        return
    ctx.note("sent, and refused by the broker")
    expect_field(ctx, raw, 5, pack_i32(len(encoded)), "topic_length")
    expect_field(ctx, raw, 9, encoded, "topic")
    ctx.expect_error(reply, "create_topic of an invalid name", ["broker", "usage"])


@case("framing.lengths.topic-length-big-endian", clauses=("WIRE-1", "REQ-1"))
def topic_length_big_endian(ctx: ClientContext) -> None:
    """topic_length is a big-endian i32: a 200-byte topic is sent as 00 00 00 c8."""
    topic = "t" * 200
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.create_topic(topic)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 5, bytes([0, 0, 0, 0xC8]), "topic_length")
    ctx.ok(reply, "create_topic")


@case("framing.lengths.payload-length-big-endian", clauses=("WIRE-1", "REQ-5"))
def payload_length_big_endian(ctx: ClientContext) -> None:
    """payload_length is a big-endian i32: a 66,051-byte payload is announced as 00 01 02 03."""
    payload = bytes(66051)
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.produce(T, payload)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 24, bytes([0, 1, 2, 3]), "payload_length")
    ctx.expect_error(reply, "produce to a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("framing.consume.offset-big-endian", clauses=("WIRE-1", "REQ-6"))
def offset_big_endian(ctx: ClientContext) -> None:
    """CONSUME's offset is a big-endian i32: offset 16,909,060 is sent as 01 02 03 04."""
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.consume(T, 0x01020304)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 24, bytes([1, 2, 3, 4]), "offset")
    ctx.expect_error(reply, "consume from a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("framing.topic.bytes-verbatim", clauses=("REQ-3", "WIRE-4", "SEM-2"))
def topic_verbatim(ctx: ClientContext) -> None:
    """A name using every allowed character class ("Az09._-") is sent byte for byte, case kept."""
    topic = "Az09._-"
    ctx.ok(ctx.connect(), "connect")
    reply = ctx.create_topic(topic)
    raw = _first_request(ctx)
    expect_field(ctx, raw, 5, pack_i32(7), "topic_length")
    expect_field(ctx, raw, 9, b"Az09._-", "topic")
    ctx.ok(reply, "create_topic")


@case("framing.stream.back-to-back", clauses=("WIRE-2", "REQ-7"))
def back_to_back(ctx: ClientContext) -> None:
    """Five requests on one connection follow each other with no padding, separator or stray byte: the
    stream cuts into exactly CREATE_TOPIC, PRODUCE, CONSUME, PRODUCE, CONSUME. (The stream is judged before
    the answers: a stray byte puts the broker out of step, so the answers after it go wrong too.)"""
    ctx.ok(ctx.connect(), "connect")
    steps: list[tuple[str, Callable[[], Reply]]] = [
        ("create_topic", lambda: ctx.create_topic(T)),
        ("produce", lambda: ctx.produce(T, b"one")),
        ("consume 0", lambda: ctx.consume(T, 0)),
        ("produce", lambda: ctx.produce(T, b"two")),
        ("consume 1", lambda: ctx.consume(T, 1)),
    ]
    replies: list[tuple[str, Reply]] = []
    for what, step in steps:
        replies.append((what, step()))
        if not replies[-1][1].ok:
            break
    split = ctx.split()
    types = [r.type_name for r in split.requests]
    ctx.check(not split.rest, f"after {types} the stream has {len(split.rest)} bytes left: {split.problem}")
    for what, reply in replies:
        ctx.ok(reply, what)
    want = ["CREATE_TOPIC", "PRODUCE", "CONSUME", "PRODUCE", "CONSUME"]
    ctx.check(types == want, f"requests on the wire: {types}, expected {want}")


# -- timestamps -----------------------------------------------------------------------------


def _timestamp_case(ctx: ClientContext, message_type: int) -> None:
    ctx.ok(ctx.connect(), "connect")
    before = ctx.now_ms()
    if message_type == CREATE_TOPIC:
        ctx.create_topic(T)
    elif message_type == PRODUCE:
        ctx.produce(T, b"x")
    else:
        ctx.consume(T, 0)
    after = ctx.now_ms()
    raw = _first_request(ctx)
    n = len(T)
    if len(raw) < 17 + n:
        ctx.fail(f"the request ends after {len(raw)} bytes, before its timestamp")
    expect_ms_timestamp(ctx, read_i64(raw, 9 + n), before, after, "the request's")


@case("framing.timestamp.create-topic-ms", clauses=("CLIENT-18", "WIRE-1"), level=Level.SHOULD)
def timestamp_create(ctx: ClientContext) -> None:
    """CREATE_TOPIC's timestamp is the wall clock in milliseconds since the epoch, big-endian (within 5 s)."""
    _timestamp_case(ctx, CREATE_TOPIC)


@case("framing.timestamp.produce-ms", clauses=("CLIENT-18", "WIRE-1"), level=Level.SHOULD)
def timestamp_produce(ctx: ClientContext) -> None:
    """PRODUCE's timestamp is the wall clock in milliseconds since the epoch, big-endian (within 5 s)."""
    _timestamp_case(ctx, PRODUCE)


@case("framing.timestamp.consume-ms", clauses=("CLIENT-18", "WIRE-1"), level=Level.SHOULD)
def timestamp_consume(ctx: ClientContext) -> None:
    """CONSUME's timestamp is the wall clock in milliseconds since the epoch, big-endian (within 5 s)."""
    _timestamp_case(ctx, CONSUME)


@case("framing.timestamp.unit-is-milliseconds", clauses=("SEM-7", "WIRE-1"))
def timestamp_unit(ctx: ClientContext) -> None:
    """Every request's timestamp, if it is a clock time, is in milliseconds: a value within a day of the wall
    clock in seconds, microseconds or nanoseconds is a wrong value (how near the clock it is, is CLIENT-18's)."""
    ctx.ok(ctx.connect(), "connect")
    ctx.create_topic(T)
    ctx.produce(T, b"x")
    ctx.consume(T, 0)
    now = ctx.now_ms()
    requests = ctx.split(0).requests
    ctx.check(len(requests) == 3, f"the broker received {len(requests)} whole requests, expected 3")
    for r in requests:
        unit = wrong_timestamp_unit(r.timestamp, now)
        if unit is not None:
            ctx.fail(f"the {r.type_name} timestamp is {r.timestamp}: the time in {unit}, not milliseconds (SEM-7)")


# -- correlation ids ------------------------------------------------------------------------


@case("framing.correlation-id.fresh-per-request", clauses=("CLIENT-24",), level=Level.SHOULD)
def cid_fresh(ctx: ClientContext) -> None:
    """Twelve requests on one connection carry twelve different correlation ids, so that a late or stray
    response cannot be taken for the answer to a later request."""
    ctx.setup(T, *[b"m%d" % i for i in range(5)])
    for i in range(5):
        ctx.ok(ctx.consume(T, i), f"consume {i}")
    ctx.ok(ctx.produce(T, b"last"), "produce")
    reqs = ctx.split().requests
    cids = [r.correlation_id for r in reqs]
    ctx.check(len(reqs) >= 12, f"only {len(reqs)} requests could be read from the stream")
    dupes = sorted({c for c in cids if cids.count(c) > 1})
    ctx.check(not dupes, f"correlation ids repeat on one connection: {cids} (repeated: {dupes})")


@case("framing.correlation-id.not-zero", clauses=("CLIENT-5",), level=Level.SHOULD)
def cid_not_zero(ctx: ClientContext) -> None:
    """No request uses correlation id 0, the id of the broker's unsolicited frame."""
    ctx.setup(T, b"a", b"b")
    ctx.ok(ctx.consume(T, 0), "consume")
    reqs = ctx.split().requests
    ctx.check(reqs, "no request could be read from the stream")
    zero = [r.type_name for r in reqs if r.correlation_id == 0]
    ctx.check(not zero, f"correlation id 0 used by {zero}")


# -- reading responses ----------------------------------------------------------------------


@case("framing.response.create-topic-byte-by-byte", clauses=("WIRE-5", "CLIENT-3", "RESP-4"))
def create_topic_bytewise(ctx: ClientContext) -> None:
    """The CREATE_TOPIC success response, sent one byte at a time, is read whole and reports the topic."""
    ctx.ok(ctx.connect(), "connect")
    ctx.fault("create_topic:slice=1")
    check_echo(ctx, ctx.ok(ctx.create_topic(T), "create_topic"), T, "create_topic answered byte by byte")


@case("framing.response.produce-byte-by-byte", clauses=("WIRE-5", "CLIENT-3", "RESP-5"))
def produce_bytewise(ctx: ClientContext) -> None:
    """The PRODUCE success response, sent one byte at a time, is read whole and reports the offset."""
    ctx.setup(T, b"first")
    ctx.fault("produce:slice=1")
    result = ctx.ok(ctx.produce(T, b"second"), "produce")
    ctx.check(ctx.int_of(result, "offset", "produce") == 1, f"reported offset {result.get('offset')}, expected 1")


@case("framing.response.consume-byte-by-byte", clauses=("WIRE-5", "CLIENT-3", "RESP-6"))
def consume_bytewise(ctx: ClientContext) -> None:
    """The CONSUME success response, sent one byte at a time, is read whole: payload, next_offset, timestamp."""
    ctx.setup(T, b"hello, mega")
    ts = ctx.the_request(PRODUCE).timestamp
    ctx.fault("consume:slice=1")
    result = ctx.ok(ctx.consume(T, 0), "consume")
    payload = ctx.payload_of(result, "consume")
    ctx.check(payload == b"hello, mega", f"payload {payload!r}, expected b'hello, mega'")
    ctx.check(result.get("next_offset") == 1, f"next_offset {result.get('next_offset')}, expected 1")
    ctx.check(result.get("timestamp") == ts, f"timestamp {result.get('timestamp')}, expected {ts}")


@case("framing.response.error-byte-by-byte", clauses=("WIRE-5", "CLIENT-3", "RESP-3"))
def error_bytewise(ctx: ClientContext) -> None:
    """An error response sent one byte at a time is read whole and reported with its code."""
    ctx.ok(ctx.connect(), "connect")
    ctx.fault("any:slice=1")
    ctx.expect_error(ctx.produce(T, b"x"), "produce to a missing topic", ["broker"], "TOPIC_NOT_FOUND")


@case("framing.response.small-slices-with-pauses", clauses=("WIRE-5", "CLIENT-3"))
def small_slices(ctx: ClientContext) -> None:
    """A 3,000-byte CONSUME response sent in 7-byte slices with pauses is read whole."""
    payload = bytes(i % 251 for i in range(3000))
    ctx.setup(T, payload)
    ctx.fault("consume:slice=7/1")
    result = ctx.ok(ctx.consume(T, 0), "consume")
    got = ctx.payload_of(result, "consume")
    ctx.check(got == payload, f"payload of {len(got)} bytes differs from the {len(payload)} stored")


@case("framing.response.slow-slices", clauses=("WIRE-5", "CLIENT-3", "RESP-5"))
def slow_slices(ctx: ClientContext) -> None:
    """A PRODUCE response sent in 4-byte slices 60 ms apart (well inside the timeout) is read whole."""
    ctx.setup(T)
    ctx.fault("produce:slice=4/60")
    result = ctx.ok(ctx.produce(T, b"x"), "produce")
    ctx.check(result.get("offset") == 0, f"reported offset {result.get('offset')}, expected 0")


@case("framing.response.larger-than-4k", clauses=("CLIENT-3", "RESP-6"))
def larger_than_4k(ctx: ClientContext) -> None:
    """A CONSUME response of 64 KiB (larger than any single small read) is read whole."""
    payload = bytes((i * 7) % 256 for i in range(65536))
    ctx.setup(T, payload)
    result = ctx.ok(ctx.consume(T, 0), "consume")
    got = ctx.payload_of(result, "consume")
    ctx.check(got == payload, f"payload of {len(got)} bytes differs from the {len(payload)} stored")


@case("framing.response.long-text-in-segments", clauses=("CLIENT-3", "RESP-6", "WIRE-3"))
def long_text_in_segments(ctx: ClientContext) -> None:
    """A CONSUME response carrying 12 KiB of UTF-8 text (larger than a 4 KiB read) arrives in segments of
    1,400 bytes, 5 ms apart: it is read whole, and the text comes back byte for byte."""
    text = ("Grüße aus Köln, ☕ und 🐍; " * 500).encode()[: 12 * 1024]
    ctx.setup(T, text)
    ctx.fault("consume:slice=1400/5")
    got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), "consume of 12 KiB of text in segments"), "consume")
    if got != text:
        ctx.fail(f"the {len(text)}-byte text came back as {len(got)} bytes: the answer was not read whole (CLIENT-3)")


@case("framing.response.coalesced-with-next-frame", clauses=("WIRE-5", "CLIENT-3", "CONN-9"))
def coalesced(ctx: ClientContext) -> None:
    """A PRODUCE answer that arrives in one segment together with the next frame (here the unsolicited
    00 00 00 00 00 08, the broker keeping the connection open) is read exactly: the produce succeeds with its
    offset, and the frame after it is read too, so the client takes the connection as ended (CONN-9): the
    next request does not go out on it (it fails, or succeeds on a new connection)."""
    ctx.setup(T)
    ctx.fault("produce:trailing=000000000008:once")
    result = ctx.ok(ctx.produce(T, b"first"), "produce answered together with the unsolicited frame")
    ctx.check(result.get("offset") == 0, f"reported offset {result.get('offset')}, expected 0")
    sent = bytes(ctx.records()[0].sent)
    ctx.check(sent.endswith(bytes([0, 0, 0, 0, 0, 8])), "harness: the broker did not send the unsolicited frame")
    reply = ctx.produce(T, b"second")
    wait_closed(ctx, 0)  # a client that sent on it and then closed it: the broker has read what it sent
    on_old = len(ctx.split(0).of_type(PRODUCE))
    ctx.check(
        on_old == 1,
        "the next PRODUCE went out on the connection whose unsolicited frame arrived with the last answer: the "
        "bytes after that answer in its segment were not read (CLIENT-3, CONN-9: nothing more is sent on it)",
    )
    if reply.ok:
        ctx.check(reply.result.get("offset") == 1, f"next produce reported offset {reply.result.get('offset')}")
        ctx.note("the next produce succeeded on a new connection")
    else:
        ctx.expect_error(reply, "the request after the coalesced frames", ["connection"])
        ctx.note(f"the next produce failed with a connection error: {reply.error}")


@case("framing.response.late-within-timeout", clauses=("CLIENT-3", "CLIENT-11"))
def late_within_timeout(ctx: ClientContext) -> None:
    """A PRODUCE response delayed 400 ms, well inside a 2 s timeout, is waited for and read."""
    ctx.setup(T)
    ctx.fault("produce:delay=400")
    result = ctx.ok(ctx.produce(T, b"x"), "produce")
    ctx.check(result.get("offset") == 0, f"reported offset {result.get('offset')}, expected 0")


# -- payloads and results -------------------------------------------------------------------


def _roundtrip(ctx: ClientContext, payload: bytes, what: str) -> None:
    ctx.setup(T)
    ctx.ok(ctx.produce(T, payload), f"produce {what}")
    stored = ctx.stored(T)
    ctx.check(stored == [payload], f"the broker stored {[len(s) for s in stored]} bytes, not the {len(payload)} sent")
    got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), f"consume {what}"), "consume")
    ctx.check(got == payload, f"consumed {len(got)} bytes ({hexline(got, 16)}), not the {len(payload)} produced")


@case("framing.payload.one-mib-roundtrip", clauses=("SEM-8", "WIRE-6", "CLIENT-3"))
def one_mib(ctx: ClientContext) -> None:
    """A payload of exactly 1,048,576 bytes (the limit, inclusive) is sent, stored and read back byte for byte."""
    _roundtrip(ctx, bytes((i * 31 + 7) % 256 for i in range(1_048_576)), "1 MiB")


@case("framing.payload.binary-roundtrip", clauses=("WIRE-6",))
def binary(ctx: ClientContext) -> None:
    """A binary payload with every byte value (NUL, invalid UTF-8) is neither transcoded nor trimmed."""
    _roundtrip(ctx, BINARY, "binary")


@case("framing.payload.empty-roundtrip", clauses=("WIRE-6", "REQ-5"))
def empty(ctx: ClientContext) -> None:
    """An empty payload is sent with payload_length 0 and read back as empty."""
    _roundtrip(ctx, b"", "empty")
    req = ctx.the_request(PRODUCE)
    ctx.check(req.payload_length == 0, f"payload_length {req.payload_length} for an empty payload")


@case("framing.payload.utf8-roundtrip", clauses=("WIRE-6", "WIRE-3"))
def utf8(ctx: ClientContext) -> None:
    """A UTF-8 text payload comes back as the same bytes."""
    _roundtrip(ctx, UTF8_TEXT.encode("utf-8"), "UTF-8 text")


@case("framing.payload.trailing-whitespace-kept", clauses=("WIRE-6",))
def whitespace(ctx: ClientContext) -> None:
    """Leading and trailing whitespace, NUL and newline bytes in a payload are kept."""
    _roundtrip(ctx, b"  \x00line\r\n\t \x00", "whitespace")


@case("framing.create-topic.echo-decoded", clauses=("RESP-4", "CLIENT-16", "WIRE-4"))
def echo_decoded(ctx: ClientContext) -> None:
    """The topic reported by create_topic is decoded from the echo with its u16 length: exactly the name,
    no stray bytes."""
    ctx.ok(ctx.connect(), "connect")
    check_echo(ctx, ctx.ok(ctx.create_topic(T), "create_topic"), T, "create_topic")


@case("framing.create-topic.echo-255-bytes", clauses=("RESP-4", "CLIENT-16", "SEM-2"))
def echo_255(ctx: ClientContext) -> None:
    """A 255-byte name (the longest valid) is created and reported back exactly."""
    name = ("abcdefghij" * 26)[:255]
    ctx.ok(ctx.connect(), "connect")
    check_echo(ctx, ctx.ok(ctx.create_topic(name), "create_topic"), name, "create_topic of a 255-byte name")


@case("framing.produce.offsets-reported", clauses=("RESP-5", "SEM-4"))
def offsets(ctx: ClientContext) -> None:
    """Three PRODUCEs to a new topic report offsets 0, 1 and 2, as the broker assigned them."""
    ctx.setup(T)
    got = [ctx.int_of(ctx.ok(ctx.produce(T, b"m%d" % i), f"produce {i}"), "offset", "produce") for i in range(3)]
    ctx.check(got == [0, 1, 2], f"reported offsets {got}, expected [0, 1, 2]")


@case("framing.consume.next-offset-reported", clauses=("RESP-6", "SEM-6"))
def next_offset(ctx: ClientContext) -> None:
    """CONSUME of offset 1 reports next_offset 2 and the message stored at offset 1."""
    ctx.setup(T, b"zero", b"one", b"two")
    result = ctx.ok(ctx.consume(T, 1), "consume 1")
    ctx.check(ctx.int_of(result, "next_offset", "consume") == 2, f"next_offset {result.get('next_offset')}")
    got = ctx.payload_of(result, "consume")
    ctx.check(got == b"one", f"payload {got!r}, expected b'one'")


@case("framing.consume.timestamp-reported", clauses=("RESP-6", "SEM-7"))
def consume_timestamp(ctx: ClientContext) -> None:
    """CONSUME reports the timestamp the message's PRODUCE request carried on the wire."""
    ctx.setup(T, b"stamped")
    sent = ctx.the_request(PRODUCE).timestamp
    result = ctx.ok(ctx.consume(T, 0), "consume")
    got = ctx.int_of(result, "timestamp", "consume")
    ctx.check(got == sent, f"reported timestamp {got}, but the PRODUCE carried {sent}")


@case("framing.consume.same-offset-twice", clauses=("SEM-6", "RESP-6"))
def same_offset_twice(ctx: ClientContext) -> None:
    """Reading the same offset twice returns the same message twice (CONSUME does not remove it)."""
    ctx.setup(T, b"again")
    for i in range(2):
        got = ctx.payload_of(ctx.ok(ctx.consume(T, 0), f"consume #{i + 1}"), "consume")
        ctx.check(got == b"again", f"consume #{i + 1} returned {got!r}")
