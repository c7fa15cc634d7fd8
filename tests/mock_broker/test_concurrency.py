"""Many connections at once: offsets unique and dense per topic, every message readable."""

from __future__ import annotations

import asyncio
import resource

from mega_client.protocol import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicRequest,
    ProduceRequest,
    ProduceResponse,
    ResponseDecoder,
    encode_request,
)

CONNECTIONS = 1000
PER_CONNECTION = 5
TOPICS = [f"shared-{i}" for i in range(8)]


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard) if hard != resource.RLIM_INFINITY else need, hard))


async def _client(address, n: int, start: asyncio.Event) -> list[tuple[str, int, bytes]]:
    reader, writer = await asyncio.open_connection(*address)
    await start.wait()
    dec = ResponseDecoder()
    reqs = []
    for k in range(PER_CONNECTION):
        topic = TOPICS[(n + k) % len(TOPICS)]
        reqs.append(ProduceRequest(k + 1, topic, n, b"%d/%d:" % (n, k) + bytes([n % 256]) * (n % 50)))
    for r in reqs:
        dec.expect(r.message_type, r.correlation_id)
    writer.write(b"".join(encode_request(r) for r in reqs))
    acks: list[tuple[str, int, bytes]] = []
    while len(acks) < len(reqs):
        data = await reader.read(65536)
        assert data, "broker closed the connection"
        dec.feed(data)
        while (ev := dec.next_response()) is not None:
            assert isinstance(ev, ProduceResponse), ev
            req = reqs[ev.correlation_id - 1]
            acks.append((req.topic, ev.offset, req.payload))
    writer.close()
    await writer.wait_closed()
    return acks


async def _consume_all(address, wanted: list[tuple[str, int]]) -> list[bytes]:
    reader, writer = await asyncio.open_connection(*address)
    dec = ResponseDecoder()
    reqs = [ConsumeRequest(i, t, 0, off) for i, (t, off) in enumerate(wanted)]
    for r in reqs:
        dec.expect(r.message_type, r.correlation_id)
    writer.write(b"".join(encode_request(r) for r in reqs))
    out: list[bytes] = []
    while len(out) < len(reqs):
        dec.feed(await reader.read(1 << 20))
        while (ev := dec.next_response()) is not None:
            assert isinstance(ev, ConsumeResponse), ev
            out.append(ev.payload)
    writer.close()
    return out


def test_thousand_concurrent_producers(mega_broker_factory):
    _raise_fd_limit(2 * CONNECTIONS + 256)
    broker = mega_broker_factory(record=False)

    async def main() -> None:
        # Topics first, over the wire.
        reader, writer = await asyncio.open_connection(*broker.address)
        writer.write(b"".join(encode_request(CreateTopicRequest(i, t, 0)) for i, t in enumerate(TOPICS)))
        await reader.readexactly(sum(15 + len(t) for t in TOPICS))
        writer.close()

        start = asyncio.Event()
        tasks = [asyncio.ensure_future(_client(broker.address, n, start)) for n in range(CONNECTIONS)]
        # All connections are open before anyone produces.
        while len(broker.connections()) < CONNECTIONS and not any(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        start.set()
        results = await asyncio.gather(*tasks)
        acks = [a for r in results for a in r]
        assert len(acks) == CONNECTIONS * PER_CONNECTION

        by_topic: dict[str, list[int]] = {}
        for topic, offset, _ in acks:
            by_topic.setdefault(topic, []).append(offset)
        counts = broker.topics()
        for topic, offsets in by_topic.items():
            assert sorted(offsets) == list(range(len(offsets))), f"{topic}: offsets not unique and dense"
            assert counts[topic] == len(offsets)

        payloads = await _consume_all(broker.address, [(t, off) for t, off, _ in acks])
        assert payloads == [p for _, _, p in acks]

    asyncio.run(main())
    broker.wait_closed_connections(10)
    assert broker.internal_errors == []
