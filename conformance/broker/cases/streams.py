"""Streams: pipelining and ordering, any TCP segmentation, EOF, and no bytes nobody asked for."""

from __future__ import annotations

from conformance.broker._context import BrokerContext
from conformance.broker._frames import (
    INVALID_OFFSET,
    TOPIC_ALREADY_EXISTS,
    TOPIC_NOT_FOUND,
    Expected,
    consume,
    consume_ok,
    create_ok,
    create_topic,
    error,
    produce,
    produce_ok,
)
from conformance.broker._registry import broker_case


def _mixed(ctx: BrokerContext, name: str, count: int, cid0: int) -> tuple[bytes, list[Expected]]:
    """``count`` requests on the fresh topic ``name`` (created first), mixing every answer layout, and their answers."""
    missing = ctx.topic("missing")
    data = [create_topic(cid0, name, 1)]
    answers = [create_ok(cid0, 1, name)]
    stored: list[tuple[int, bytes]] = []
    for i in range(1, count):
        cid = cid0 + i
        kind = i % 6
        if kind in (1, 2, 3):
            payload, ts = b"p%d" % i * (i % 5), 1000 + i
            data.append(produce(cid, name, payload, ts))
            answers.append(produce_ok(cid, ts, len(stored)))
            stored.append((ts, payload))
        elif kind == 4:
            off = (i * 7) % len(stored)
            data.append(consume(cid, name, off, 0))
            answers.append(consume_ok(cid, stored[off][0], off + 1, stored[off][1]))
        elif i % 18 == 5:
            data.append(create_topic(cid, name, 2))
            answers.append(error(cid, TOPIC_ALREADY_EXISTS))
        elif i % 18 == 11:
            data.append(consume(cid, name, len(stored) + 3, 0))
            answers.append(error(cid, INVALID_OFFSET))
        else:
            data.append(produce(cid, missing, b"x", 3))
            answers.append(error(cid, TOPIC_NOT_FOUND))
    return b"".join(data), answers


@broker_case("streams.pipelined-batch", clauses=("CONN-2", "CONN-3", "CONN-4", "WIRE-2", "BROKER-14"))
def pipelined_batch(ctx: BrokerContext) -> None:
    """120 requests of every type and outcome sent in one write are answered one each, in request order, frames back
    to back and never interleaved, and nothing else is sent."""
    ctx.need_capacity(60)
    c = ctx.connect()
    data, answers = _mixed(ctx, ctx.topic(), 120, 1)
    c.send(data, "120 pipelined requests")
    c.expect(*answers, what="answers to 120 pipelined requests")
    c.expect_silence(0.1, "after the last answer")


@broker_case("streams.pipelined-effects", clauses=("CONN-3", "SEM-5"))
def pipelined_effects(ctx: BrokerContext) -> None:
    """Requests of one write see each other's effects in order: CREATE_TOPIC, PRODUCE, CONSUME 0, PRODUCE, CONSUME 1
    of a new topic sent together all succeed."""
    c = ctx.connect()
    name = ctx.topic()
    c.send(
        create_topic(1, name, 10)
        + produce(2, name, b"one", 11)
        + consume(3, name, 0, 0)
        + produce(4, name, b"two", 12)
        + consume(5, name, 1, 0),
        "five dependent requests in one write",
    )
    c.expect(
        create_ok(1, 10, name),
        produce_ok(2, 11, 0),
        consume_ok(3, 11, 1, b"one"),
        produce_ok(4, 12, 1),
        consume_ok(5, 12, 2, b"two"),
        what="answers",
    )


@broker_case("streams.one-byte-at-a-time", clauses=("WIRE-5",))
def one_byte_at_a_time(ctx: BrokerContext) -> None:
    """Requests arriving one byte per TCP segment (CREATE_TOPIC, PRODUCE, CONSUME, each answered before the next is
    sent) are decoded like any others."""
    c = ctx.connect()
    name = ctx.topic()
    steps = [
        (create_topic(1, name, 21), create_ok(1, 21, name), "CREATE_TOPIC"),
        (produce(2, name, b"byte by byte", 22), produce_ok(2, 22, 0), "PRODUCE"),
        (consume(3, name, 0, 23), consume_ok(3, 22, 1, b"byte by byte"), "CONSUME"),
    ]
    for data, answer, label in steps:
        c.send_pieces(data, 1, 0.001, f"{label}, one byte at a time")
        c.expect(answer, what=f"answer to {label} sent one byte at a time")


@broker_case("streams.split-anywhere", clauses=("WIRE-5", "CONN-4"))
def split_anywhere(ctx: BrokerContext) -> None:
    """Twelve pipelined requests sent in 7-byte pieces (so one segment holds the end of one frame and the start of
    the next) are answered exactly as if sent whole."""
    c = ctx.connect()
    data, answers = _mixed(ctx, ctx.topic(), 12, 40)
    c.send_pieces(data, 7, 0.001, "12 requests in 7-byte pieces")
    c.expect(*answers, what="answers to requests sent in 7-byte pieces")


@broker_case("streams.answered-before-eof-close", clauses=("CONN-13",), level="SHOULD")
def answered_before_eof_close(ctx: BrokerContext) -> None:
    """Requests followed at once by the client's EOF (shutdown of its write side) are still answered before the
    broker closes."""
    c = ctx.connect()
    name = ctx.topic()
    c.send(create_topic(1, name, 31) + produce(2, name, b"last words", 32), "CREATE_TOPIC + PRODUCE")
    c.shutdown_write()
    c.expect(create_ok(1, 31, name), produce_ok(2, 32, 0), what="answers to requests sent just before EOF")
    c.expect_closed("after the answers to a client that sent EOF")


@broker_case("streams.no-unrequested-bytes", clauses=("BROKER-14", "CONN-4", "CONN-1"))
def no_unrequested_bytes(ctx: BrokerContext) -> None:
    """The broker sends nothing but answers: nothing on connect (no greeting, no handshake), exactly one answer to a
    request, and nothing after it."""
    quiet = 0.2
    if ctx.target.idle_timeout is not None:
        quiet = min(quiet, ctx.target.idle_timeout / 3)
    c = ctx.connect()
    c.expect_silence(quiet, "right after connecting")
    name = ctx.topic()
    c.send(create_topic(1, name, 41), "CREATE_TOPIC")
    c.expect(create_ok(1, 41, name), what="answer to CREATE_TOPIC")
    c.expect_silence(quiet, "after the answer")
