"""The floor: the fastest MEGA "broker" a plain asyncio server can be.

A bare :class:`asyncio.Protocol` that finds where each request frame ends by
walking its fields (reading the two length fields with ``int.from_bytes``, at
the offsets of the codec's ``protocol.layouts``), stores nothing, and answers
every PRODUCE and CONSUME with a canned response of the right size, built once
at start-up by the codec's encoders: 17 bytes for PRODUCE, 21 + payload bytes
for CONSUME. Only the correlation id is copied from the request, so clients
that check it (the project's own) can talk to it too. CREATE_TOPIC (set-up
only, never measured) gets the usual echo, encoded per request.

It does everything a Python asyncio broker cannot avoid (one ``data_received``
per read, a walk over every frame, one ``write`` per read) and nothing else, so
its throughput is the practical limit for such a broker; the benchmark reports
the mock broker's throughput as a ratio to it.

Run it as a separate process: ``python -m bench.floor --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from mega_client.protocol import (
    LocalProtocolError,
    MessageType,
    encode_consume_ok,
    encode_create_topic_ok,
    encode_produce_ok,
    layouts,
)
from mega_client.protocol.limits import MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES

# Plain ints, not the enum's members: they are compared once or twice per request.
PRODUCE = int(MessageType.PRODUCE)
CONSUME = int(MessageType.CONSUME)
CREATE_TOPIC = int(MessageType.CREATE_TOPIC)

# Where the walk reads. Every field is read with int.from_bytes on a slice, never with a
# struct: an unpack makes a tuple per field group, and at a few hundred thousand requests a
# second those tuples set off enough garbage collections to double the floor's CPU per request.
#: Bytes of the correlation id, the only field copied into a canned answer.
_CID_BYTES = layouts.CORRELATION_ID.size
#: Where the message_type byte and the topic_length field are; a request's head ends there.
_TYPE_AT = layouts.MESSAGE_TYPE_AT
_TOPIC_LENGTH_AT = _TYPE_AT + 1
_HEAD_BYTES = layouts.REQUEST_HEAD.size
#: Bytes of a length field: topic_length ends the head, payload_length (the same i32) ends the tail.
_LENGTH_BYTES = _HEAD_BYTES - _TOPIC_LENGTH_AT
#: A request's bytes without its topic and payload, by type.
_FIXED = layouts.REQUEST_FIXED_BYTES
_FIXED_CONSUME = layouts.CONSUME_REQUEST_FIXED_BYTES
#: A fixed timestamp for the canned responses (2023-11-14T22:13:20Z).
_CANNED_TIMESTAMP = 1_700_000_000_000


def canned_produce_tail() -> bytes:
    """What follows the correlation id in the floor's PRODUCE answer: success, timestamp, offset 0."""
    return encode_produce_ok(0, _CANNED_TIMESTAMP, 0)[_CID_BYTES:]


def canned_consume_tail(payload_bytes: int) -> bytes:
    """What follows the correlation id in the floor's CONSUME answer: success, timestamp,
    next_offset 1, payload_length and ``payload_bytes`` bytes of payload."""
    return encode_consume_ok(0, _CANNED_TIMESTAMP, 1, b"f" * payload_bytes)[_CID_BYTES:]


class FloorProtocol(asyncio.Protocol):
    """One connection: walk the frames of each read, answer them all with one write."""

    __slots__ = ("_consume", "_pending", "_produce", "_transport")

    def __init__(self, produce_tail: bytes, consume_tail: bytes) -> None:
        self._produce = produce_tail
        self._consume = consume_tail
        self._pending = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        if self._pending:
            data = self._pending + data
        end = len(data)
        pos = 0
        out: list[bytes] = []
        produce = self._produce
        consume = self._consume
        # locals: a global lookup per field would cost more than the reads themselves
        head_bytes, type_at, tlen_at, length_bytes = _HEAD_BYTES, _TYPE_AT, _TOPIC_LENGTH_AT, _LENGTH_BYTES
        fixed_other, fixed_consume, cid_bytes = _FIXED, _FIXED_CONSUME, _CID_BYTES
        max_topic, max_payload = MAX_TOPIC_BYTES, MAX_PAYLOAD_BYTES
        while end - pos >= head_bytes:
            mtype = data[pos + type_at]
            tlen = int.from_bytes(data[pos + tlen_at : pos + head_bytes], "big", signed=True)
            if mtype not in (PRODUCE, CONSUME, CREATE_TOPIC) or not 0 <= tlen <= max_topic:
                self._abort()
                return
            fixed = tlen + (fixed_consume if mtype == CONSUME else fixed_other)
            if end - pos < fixed:
                break
            plen = int.from_bytes(data[pos + fixed - length_bytes : pos + fixed], "big", signed=True)
            if not 0 <= plen <= max_payload:
                self._abort()
                return
            if end - pos < fixed + plen:
                break
            if mtype == PRODUCE:
                out.append(data[pos : pos + cid_bytes] + produce)
            elif mtype == CONSUME:
                out.append(data[pos : pos + cid_bytes] + consume)
            else:  # CREATE_TOPIC (set-up only): always succeeds, echoing the timestamp and the name
                answer = self._create_topic_answer(data, pos, tlen)
                if answer is None:
                    self._abort()
                    return
                out.append(answer)
            pos += fixed + plen
        self._pending = data[pos:] if pos < end else b""
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    @staticmethod
    def _create_topic_answer(data: bytes, pos: int, tlen: int) -> bytes | None:
        """The success answer to the CREATE_TOPIC at ``pos``; None if its name is not UTF-8."""
        cid = int.from_bytes(data[pos : pos + _CID_BYTES], "big", signed=True)
        timestamp, _plen = layouts.REQUEST_TAIL.unpack_from(data, pos + _HEAD_BYTES + tlen)
        try:
            return encode_create_topic_ok(cid, timestamp, data[pos + _HEAD_BYTES : pos + _HEAD_BYTES + tlen].decode())
        except (UnicodeDecodeError, LocalProtocolError):
            return None

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


async def serve(host: str, port: int, consume_payload: int, *, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled (or SIGINT/SIGTERM when run as a program)."""
    loop = asyncio.get_running_loop()
    produce_tail = canned_produce_tail()
    consume_tail = canned_consume_tail(consume_payload)
    server = await loop.create_server(
        lambda: FloorProtocol(produce_tail, consume_tail), host, port, backlog=1024, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    sockname = server.sockets[0].getsockname()
    print(f"floor listening on {sockname[0]}:{sockname[1]}", flush=True)
    if ready is not None:
        ready.set()
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor",
        description="The floor: a bare asyncio server answering MEGA requests with canned responses.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument(
        "--consume-payload", type=int, default=100, help="payload bytes in the canned CONSUME answer (default 100)"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.consume_payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
