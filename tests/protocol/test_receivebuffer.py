"""The receive buffer: bytes kept until a frame completes, copied as little as possible."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mega_client.protocol._receivebuffer import ReceiveBuffer


@given(st.lists(st.binary(max_size=20), max_size=8), st.integers(0, 200), st.integers(0, 10))
def test_peek_sees_the_next_bytes_however_they_arrived(chunks, n, consumed):
    buf = ReceiveBuffer()
    for chunk in chunks:
        buf.extend(chunk)
    whole = b"".join(chunks)
    consumed = min(consumed, len(whole))
    buf.consume(consumed)
    assert buf.peek(n) == whole[consumed : consumed + n]
    assert len(buf) == len(whole) - consumed  # peeking consumes nothing


def test_peek_does_not_join_the_waiting_chunks():
    buf = ReceiveBuffer()
    buf.extend(b"ab")
    buf.extend(b"cd")
    buf.extend(b"ef")
    assert buf.peek(3) == b"abc"
    assert buf.data == b"ab"  # still the first chunk, the others still waiting
    assert buf.ensure(6)
    assert buf.data == b"abcdef"
