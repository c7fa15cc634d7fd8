"""Raw-socket helpers for the mock broker tests: frames in, exact bytes out."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable

from mega_client.protocol import (
    ConsumeRequest,
    CreateTopicRequest,
    ProduceRequest,
    Request,
    ResponseDecoder,
    ResponseEvent,
    encode_request,
)

TS = 1234567890123  # the notes' example timestamp (0x0000011f71fb04cb)


def create(cid: int, topic: str, ts: int = TS, payload: bytes = b"") -> CreateTopicRequest:
    return CreateTopicRequest(cid, topic, ts, payload)


def produce(cid: int, topic: str, payload: bytes = b"", ts: int = TS) -> ProduceRequest:
    return ProduceRequest(cid, topic, ts, payload)


def consume(cid: int, topic: str, offset: int, ts: int = TS, payload: bytes = b"") -> ConsumeRequest:
    return ConsumeRequest(cid, topic, ts, offset, payload)


def raw_frame(  # noqa: PLR0913 - every field of a request, any of them forced to lie
    cid: int,
    mtype: int,
    topic: bytes,
    *,
    ts: int = TS,
    offset: int | None = None,
    payload: bytes = b"",
    topic_length: int | None = None,
    payload_length: int | None = None,
) -> bytes:
    """A request frame with any field forced (lengths may lie)."""
    head = struct.pack(">iBi", cid, mtype & 0xFF, len(topic) if topic_length is None else topic_length)
    tail = struct.pack(">q", ts)
    if offset is not None or mtype == 2:
        tail += struct.pack(">i", offset or 0)
    tail += struct.pack(">i", len(payload) if payload_length is None else payload_length)
    return head + topic + tail + payload


def error(cid: int, code: int) -> bytes:
    return struct.pack(">ibb", cid, 0, code)


def produce_ok(cid: int, offset: int, ts: int = TS) -> bytes:
    return struct.pack(">ibqi", cid, 1, ts, offset)


def create_ok(cid: int, topic: str, ts: int = TS) -> bytes:
    name = topic.encode()
    return struct.pack(">ibqH", cid, 1, ts, len(name)) + name


def consume_ok(cid: int, ts: int, next_offset: int, payload: bytes) -> bytes:
    return struct.pack(">ibqii", cid, 1, ts, next_offset, len(payload)) + payload


class RawClient:
    """A blocking TCP client that speaks raw bytes (and decodes with the codec when asked)."""

    def __init__(self, address: tuple[str, int], timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = ResponseDecoder()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, *requests: Request) -> None:
        """Send requests (pipelined, one write) and tell the decoder what to expect."""
        for r in requests:
            self.decoder.expect(r.message_type, r.correlation_id)
        self.sock.sendall(b"".join(encode_request(r) for r in requests))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        """Exactly ``n`` bytes (AssertionError on EOF first)."""
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            assert chunk, f"EOF after {len(buf)} of {n} bytes: {bytes(buf).hex(' ')}"
            buf += chunk
        return bytes(buf)

    def expect_bytes(self, expected: bytes) -> None:
        got = self.recv_exact(len(expected))
        assert got.hex(" ") == expected.hex(" ")

    def response(self) -> ResponseEvent:
        """The next decoded response."""
        while True:
            ev = self.decoder.next_response()
            if ev is not None:
                return ev
            chunk = self.sock.recv(65536)
            assert chunk, "EOF while waiting for a response"
            self.decoder.feed(chunk)

    def responses(self, n: int) -> list[ResponseEvent]:
        return [self.response() for _ in range(n)]

    def request(self, req: Request) -> ResponseEvent:
        self.send(req)
        return self.response()

    def read_to_eof(self, timeout: float = 5.0) -> bytes:
        """Everything until the broker closes (AssertionError if it does not within ``timeout``)."""
        self.sock.settimeout(timeout)
        buf = bytearray()
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return bytes(buf)
                buf += chunk
        except ConnectionResetError:
            return bytes(buf)
        except TimeoutError:
            raise AssertionError(f"no EOF within {timeout}s; got {bytes(buf).hex(' ')}") from None

    def assert_open(self, wait: float = 0.05) -> None:
        """Nothing more arrives and the connection is not closed (within ``wait`` s)."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1)
        except TimeoutError:
            return
        finally:
            self.sock.settimeout(5.0)
        raise AssertionError(f"expected silence, got {data!r}")


def wait_until(predicate: object, timeout: float = 5.0, interval: float = 0.005) -> None:
    """Poll ``predicate()`` until true (AssertionError after ``timeout``)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def pipelined(requests: Iterable[Request]) -> bytes:
    return b"".join(encode_request(r) for r in requests)
