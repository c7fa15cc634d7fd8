"""Generated and mutated frames never crash or hang the broker; other connections keep working."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mega_client.protocol import (
    ConsumeRequest,
    CreateTopicRequest,
    ProduceRequest,
    encode_request,
)

from ._raw import RawClient, consume, consume_ok, produce, produce_ok

topics = st.one_of(
    st.sampled_from(["t", "fuzz", "", "a b", "x" * 255]),
    st.text(max_size=12),
)
timestamps = st.integers(-(2**63), 2**63 - 1)
cids = st.integers(-(2**31), 2**31 - 1)
payloads = st.binary(max_size=64)

requests = st.one_of(
    st.builds(CreateTopicRequest, cids, topics, timestamps, payloads),
    st.builds(ProduceRequest, cids, topics, timestamps, payloads),
    st.builds(ConsumeRequest, cids, topics, timestamps, st.integers(-3, 5), payloads),
)


@st.composite
def streams(draw: st.DrawFn) -> bytes:
    """A few encoded requests, then mutated: flipped bytes, cut, spliced, forced lengths."""
    data = bytearray(b"".join(encode_request(r) for r in draw(st.lists(requests, min_size=1, max_size=4))))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "int32", "type"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 16))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "int32":
            value = draw(st.sampled_from([-1, 0, 255, 256, 1 << 20, (1 << 20) + 1, 2**31 - 1, -(2**31)]))
            data[at : at + 4] = struct.pack(">i", value)
        else:
            data[at] = draw(st.sampled_from([0, 1, 2, 3, 4, 0x80, 0xFF]))
    if draw(st.booleans()):
        data += draw(st.binary(max_size=32))
    return bytes(data)


@pytest.mark.parametrize("profile_name", ["spec", "reference"])
def test_garbage_never_crashes_or_hangs_the_broker(mega_broker_factory, profile_name):
    broker = mega_broker_factory(profile=profile_name, record=False)
    broker.create_topic("good")
    good = RawClient(broker.address, timeout=5)
    counter = iter(range(1, 10**9))

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(streams())
    def throw(data: bytes) -> None:
        s = socket.create_connection(broker.address, timeout=5)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            # The broker answers what it can and then closes: EOF must come (no hang).
            while s.recv(65536):
                pass
        except ConnectionResetError:
            pass
        finally:
            s.close()
        # A well-behaved client on its own connection is still served.
        n = next(counter)
        good.send(produce(n, "good", b"%d" % n))
        resp = good.recv_exact(17)
        offset = struct.unpack(">i", resp[13:17])[0]
        assert resp == produce_ok(n, offset)
        good.send(consume(-n, "good", offset))
        good.expect_bytes(consume_ok(-n, 1234567890123, offset + 1, b"%d" % n))

    try:
        throw()
    finally:
        good.close()
    broker.wait_closed_connections(5)
    assert broker.internal_errors == []
