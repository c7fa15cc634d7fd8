"""The PRODUCE fast path answers exactly as the general path: a differential test on random streams.

Two cores get the same bytes in the same chunks: one with the fast path
(``Answerer.produce_run``), one whose fast path never takes a frame, so that
every request goes through the decoder and ``Answerer.answer``. Their output,
their stores, their records and their state must be identical.
"""

from __future__ import annotations

import random
import struct

import pytest

from mock_broker import BrokerConfig, FaultRegistry
from mock_broker._answers import Answerer
from mock_broker._connection import BrokerConnection
from mock_broker._record import ConnectionRecord
from mock_broker._steps import Close, Write
from mock_broker._storage import SHARED_TOPIC_BYTES, TopicStore

STREAMS = 3000
SHARED = "s" * SHARED_TOPIC_BYTES
OWN = "o" * (SHARED_TOPIC_BYTES + 1)


class GeneralOnly(Answerer):
    """An answerer whose fast paths take nothing: every frame goes the general way."""

    __slots__ = ()

    def produce_run(self, data: bytes, pos: int, out: list[bytes]) -> int:
        return pos

    def consume_run(self, data: bytes, pos: int, out: list[bytes], room: int) -> tuple[int, int]:
        return pos, 0


class Counting(Answerer):
    """The real fast paths, counting the frames they answer (so the test knows they were exercised)."""

    __slots__ = ()
    produced = 0
    consumed = 0

    def produce_run(self, data: bytes, pos: int, out: list[bytes]) -> int:
        before = len(out)
        end = super().produce_run(data, pos, out)
        Counting.produced += len(out) - before
        return end

    def consume_run(self, data: bytes, pos: int, out: list[bytes], room: int) -> tuple[int, int]:
        before = len(out)
        end, added = super().consume_run(data, pos, out, room)
        Counting.consumed += (len(out) - before) // 2
        return end, added


def broker(cls: type[Answerer], profile: str) -> tuple[BrokerConnection, TopicStore]:
    cfg = BrokerConfig(profile=profile, max_messages_per_topic=12, max_payload_bytes=64)  # type: ignore[arg-type]
    store = TopicStore()
    store.create("t")
    store.create("u")
    store.create(SHARED)  # the longest topic the fast path takes
    store.create(OWN)  # one byte more: stored by the general path
    for i in range(3):
        store.append("u", i, b"seed")
    conn = BrokerConnection(
        ConnectionRecord(1, None, 0.0, new_decoder=cfg.new_decoder),
        cls(cfg, store),
        FaultRegistry(),
        cfg.new_decoder(),
        recording=True,
        record_bytes_limit=1 << 20,
        now=lambda: 0.0,
    )
    return conn, store


def frame(rng: random.Random) -> bytes:
    """A request, usually a well-formed PRODUCE or CONSUME; sometimes anything the fast path must leave alone."""
    kind = rng.random()
    mtype = 1 if kind < 0.55 else 2 if kind < 0.8 else rng.choice([2, 3, 0, 4, 255])
    topic = rng.choice(
        [
            b"t",
            b"t",
            b"t",
            b"u",
            b"u",
            b"nope",
            b"",
            b"t" * 300,
            b"\xff\xfe",
            b"bad name",
            b"tt",
            SHARED.encode(),
            OWN.encode(),
        ]
    )
    tlen = len(topic) if rng.random() < 0.95 else rng.choice([-1, 256, 2**31 - 1])
    payload = rng.choice([b"", b"x", b"payload", bytes(range(64)), b"y" * 65])
    plen = len(payload) if rng.random() < 0.95 else rng.choice([-5, 65, 2**31 - 1])
    tail = struct.pack(">q", rng.randrange(-(2**63), 2**63))
    if mtype == 2:
        tail += struct.pack(">i", rng.choice([0, 0, 0, 1, 1, 2, 3, 4, -1, 2**31 - 1]))
    head = struct.pack(">iBi", rng.randrange(-(2**31), 2**31), mtype, tlen)
    return head + topic + tail + struct.pack(">i", plen) + payload


def chunks(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(0, 6)))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def run(conn: BrokerConnection, pieces: list[bytes], budget: int) -> list[object]:
    out: list[object] = []
    for piece in pieces:
        conn.receive_data(piece)
        while steps := conn.next_output(budget):
            out.extend(steps)
    return out


def joined(steps: list[object]) -> tuple[bytes, bool]:
    """The bytes written and whether the output ends with a close (batches may be cut differently)."""
    return b"".join(s.data for s in steps if isinstance(s, Write)), any(isinstance(s, Close) for s in steps)


@pytest.mark.parametrize("profile", ["spec", "reference"])
def test_fast_and_general_paths_answer_and_store_alike(profile):
    rng = random.Random(20261205)
    Counting.produced = Counting.consumed = 0
    for _ in range(STREAMS):
        stream = b"".join(frame(rng) for _ in range(rng.randrange(1, 12)))
        pieces = chunks(stream, rng)
        budget = rng.choice([1, 50, 1 << 20])
        fast, fast_store = broker(Counting, profile)
        general, general_store = broker(GeneralOnly, profile)
        fast_out = run(fast, pieces, budget)
        general_out = run(general, pieces, budget)
        assert joined(fast_out) == joined(general_out), stream.hex()
        assert fast_store.counts() == general_store.counts()
        for name in fast_store.logs:
            assert fast_store.messages(name) == general_store.messages(name)
        assert fast.record.request_count == general.record.request_count
        assert fast.state is general.state
        assert fast.buffered == general.buffered
    # the fast paths answered many frames (and left the rest)
    assert Counting.produced > STREAMS / 4
    assert Counting.consumed > STREAMS / 40
