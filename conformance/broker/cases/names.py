"""Names: the topic name rules of SEM-2, and what a broker answers to names that break them."""

from __future__ import annotations

from conformance._wire import CONSUME, CREATE_TOPIC, PRODUCE, pack_i32
from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    INVALID_OFFSET,
    INVALID_REQUEST,
    Expected,
    consume,
    create_ok,
    create_topic,
    error,
    produce,
    produce_ok,
    raw_request,
)
from conformance.broker._registry import broker_case

_NAME_CLAUSES = ("ERR-3", "SEM-2", "BROKER-8", "ERR-9", "ERR-15")


def _refused_then_usable(ctx: BrokerContext, requests: list[tuple[bytes, str]], what: str) -> None:
    """Each request in one write must be answered INVALID_REQUEST; a CREATE_TOPIC after them must succeed."""
    c = ctx.connect()
    base = 200
    good = ctx.topic("after")
    data = b"".join(raw for raw, _ in requests) + create_topic(base + len(requests), good, 9)
    c.send(data, what)
    answers: list[Expected] = [error(base + i, INVALID_REQUEST) for i in range(len(requests))]
    answers.append(create_ok(base + len(requests), 9, good))
    labels = ", ".join(label for _, label in requests)
    c.expect(*answers, what=f"answers to {labels} and then a valid CREATE_TOPIC")


@broker_case("names.empty", clauses=_NAME_CLAUSES, reference_defect="12.1")
def empty_name(ctx: BrokerContext) -> None:
    """CREATE_TOPIC with an empty name (topic_length 0, a well-formed frame) is answered INVALID_REQUEST (1), not
    INTERNAL_ERROR, and the connection stays usable."""
    _refused_then_usable(ctx, [(create_topic(200, "", 1), "CREATE_TOPIC ''")], "CREATE_TOPIC '' + CREATE_TOPIC")


@broker_case("names.bad-characters", clauses=_NAME_CLAUSES, reference_defect="12.1")
def bad_characters(ctx: BrokerContext) -> None:
    """CREATE_TOPIC of names with a byte outside [A-Za-z0-9._-] ('a b', 'a/b', 'x:y', a tab, a NUL, 'semi;') is
    answered INVALID_REQUEST for each, and the connection stays usable."""
    prefix = ctx.topic()
    names = [f"{prefix}.a b", f"{prefix}/b", f"{prefix}:y", f"{prefix}\t", f"{prefix}\x00", f"{prefix};"]
    requests = [(create_topic(200 + i, n, 1), f"CREATE_TOPIC {n[len(prefix) :]!r}") for i, n in enumerate(names)]
    _refused_then_usable(ctx, requests, "CREATE_TOPICs with bad characters")


@broker_case("names.not-utf8", clauses=("WIRE-4", *_NAME_CLAUSES), reference_defect="12.1")
def not_utf8(ctx: BrokerContext) -> None:
    """CREATE_TOPIC whose topic bytes are not UTF-8 (ff fe, a truncated sequence, an overlong '/', a surrogate) is
    answered INVALID_REQUEST, not INTERNAL_ERROR, and the connection stays usable."""
    raws = [b"\xff\xfe", b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80"]
    requests = [(raw_request(200 + i, CREATE_TOPIC, r, 1), f"CREATE_TOPIC {r.hex(' ')}") for i, r in enumerate(raws)]
    _refused_then_usable(ctx, requests, "CREATE_TOPICs with non-UTF-8 topics")


@broker_case("names.multibyte-utf8", clauses=("WIRE-3", *_NAME_CLAUSES), reference_defect="12.1")
def multibyte(ctx: BrokerContext) -> None:
    """CREATE_TOPIC 'café' (valid UTF-8, 5 bytes, but é is not an allowed byte) is answered INVALID_REQUEST."""
    name = ctx.topic("caf\u00e9")
    _refused_then_usable(ctx, [(create_topic(200, name, 1), f"CREATE_TOPIC {name!r}")], "CREATE_TOPIC café")


@broker_case(
    "names.too-long",
    clauses=("REQ-3", "ERR-3", "SEM-2", "BROKER-4", "CONN-10"),
    reference_defect=("12.1", "12.4"),
)
def too_long(ctx: BrokerContext) -> None:
    """CREATE_TOPIC with a 256-byte name (topic_length 256 > 255, sent up to that field) is a frame-level error:
    answered INVALID_REQUEST with its correlation id, without waiting for the name, then the broker closes the
    connection."""
    c = ctx.connect()
    c.send(pack_i32(-7) + bytes([CREATE_TOPIC]) + pack_i32(256), "CREATE_TOPIC up to its topic_length 256")
    c.expect(error(-7, INVALID_REQUEST), what="answer to topic_length 256")
    c.expect_closed("after INVALID_REQUEST for topic_length 256 (CONN-10)")


@broker_case("names.max-length", clauses=("SEM-2", "REQ-3", "RESP-4", "RESP-8", "WIRE-3"))
def max_length(ctx: BrokerContext) -> None:
    """A 255-byte name is valid: CREATE_TOPIC is answered with topic_len 00 ff and all 255 bytes, and PRODUCE and
    CONSUME on it work."""
    name = (ctx.topic() + "." + "Z" * 255)[:255]
    c = ctx.connect()
    c.send(create_topic(1, name, 2), "CREATE_TOPIC with a 255-byte name")
    c.expect(create_ok(1, 2, name), what="answer to CREATE_TOPIC with a 255-byte name")
    c.send(produce(3, name, b"long", 4), "PRODUCE")
    c.expect(produce_ok(3, 4, 0), what="answer to PRODUCE on the 255-byte topic")
    ctx.expect_message(c, name, 0, 4, b"long", what="CONSUME from the 255-byte topic")


@broker_case("names.allowed-characters", clauses=("SEM-2",))
def allowed_characters(ctx: BrokerContext) -> None:
    """A name using every allowed byte (A-Z, a-z, 0-9, '.', '_', '-'), and names starting with '.', '-' or '_',
    are valid."""
    c = ctx.connect()
    every = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
    for name in (ctx.topic(every), "." + ctx.topic("dot"), "-" + ctx.topic("dash"), "_" + ctx.topic("under")):
        ctx.create(c, name, what="CREATE_TOPIC")


@broker_case("names.case-sensitive", clauses=("SEM-2",))
def case_sensitive(ctx: BrokerContext) -> None:
    """Names are compared byte for byte: 'X...' and 'x...' are two topics; a message produced to one is not in the
    other."""
    c = ctx.connect()
    upper, lower = ctx.topic("Case"), ctx.topic("case")
    ctx.create(c, upper, what="CREATE_TOPIC of the capitalised name")
    ctx.create(c, lower, what="CREATE_TOPIC of the lowercase name")
    ctx.fill_topic(c, upper, [b"upper"], what="PRODUCE to the capitalised topic")
    c.send(consume(5, lower, 0, 0), "CONSUME offset 0 of the lowercase topic")
    c.expect(error(5, INVALID_OFFSET), what="answer to CONSUME offset 0 of the (empty) lowercase topic")


@broker_case(
    "names.invalid-on-produce-consume",
    clauses=("ERR-3", "ERR-13", "BROKER-8", "SEM-2"),
    reference_defect="12.18",
)
def invalid_on_produce_consume(ctx: BrokerContext) -> None:
    """PRODUCE and CONSUME naming an invalid topic ('a b', '', non-UTF-8) are answered INVALID_REQUEST (step 3
    comes before the TOPIC_NOT_FOUND of step 4), and the connection stays usable."""
    requests = [
        (produce(200, "a b", b"x", 1), "PRODUCE 'a b'"),
        (raw_request(201, CONSUME, b"", 1, offset=0), "CONSUME ''"),
        (raw_request(202, PRODUCE, b"\xff\xfe", 1, payload=b"x"), "PRODUCE to ff fe"),
        (raw_request(203, CONSUME, b"\xc3", 1, offset=0), "CONSUME from c3"),
    ]
    _refused_then_usable(ctx, requests, "PRODUCE/CONSUME naming invalid topics")
