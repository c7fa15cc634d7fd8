"""The floor: the fastest honest MEGA server a Python asyncio program can be.

The benchmark divides the floor's CPU time per request by the mock broker's:
the floor does what no asyncio broker can skip and nothing else, so the ratio
says how much of the broker's cost is its own work (validation, storage,
bookkeeping) rather than Python's and the kernel's.

What it does, per read: find where every request frame ends (the message type
and both length fields, ``topic_length`` and ``payload_length``, read with
precompiled :class:`struct.Struct` ``unpack_from`` at the codec's offsets, with
their bounds checked), and answer every frame with a success of the right shape
and size carrying the request's correlation id: 17 bytes for PRODUCE, 21 +
payload bytes for CONSUME (a canned payload), the usual echo for CREATE_TOPIC
(set-up only, never measured). All answers to one read go out in one
``write``. It stores nothing and decodes no topic or payload. An unknown
message type or an out-of-range length aborts the connection.

Why this shape, measured (valgrind instructions and ``/proc`` CPU time per
request, pipelined 100-byte PRODUCE, 64 in flight):

- ``struct.Struct.unpack_from`` beats ``int.from_bytes`` on slices, and packing
  each answer with the codec's ``PRODUCE_OK`` struct beats slicing the id and
  concatenating a canned tail. An earlier floor did both the slow way, claiming
  that the tuples ``unpack`` makes cost garbage collections (they do not: each
  is freed at once): about 9,960 instructions per request against 5,840 for the
  same plain protocol with ``struct``, and 1.5 times the CPU time of this floor.
- A :class:`asyncio.BufferedProtocol` reading into one preallocated buffer,
  parsed in place, beats a plain :class:`asyncio.Protocol`: for a plain
  protocol the transport allocates 256 KiB per read and shrinks it, which glibc
  serves with mmap/mremap/munmap and page faults (about 1.5 times the CPU per
  request). The mock broker reads the same way.
- ``pack_into`` a shared output buffer gains nothing over a list and one join.

Same socket options as the broker (``TCP_NODELAY``, which asyncio also sets),
same event loop (the stdlib's unless ``--loop uvloop``).

Run it as a separate process: ``python -m bench.floor --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import struct
import sys
from typing import cast

from mega_client.protocol import LocalProtocolError, MessageType, encode_create_topic_ok, layouts
from mega_client.protocol.limits import MAX_PAYLOAD_BYTES, MAX_TOPIC_BYTES
from mock_broker._cli import LOOPS, loop_problem, run_on_loop

PRODUCE = int(MessageType.PRODUCE)
CONSUME = int(MessageType.CONSUME)
CREATE_TOPIC = int(MessageType.CREATE_TOPIC)

_HEAD = layouts.REQUEST_HEAD  # correlation_id, message_type, topic_length
_HEAD_BYTES = _HEAD.size
#: payload_length: the last field of every request's fixed part (both tails end with it).
_PAYLOAD_LENGTH = struct.Struct(">i")
assert layouts.REQUEST_TAIL.format.endswith("i")
assert layouts.CONSUME_REQUEST_TAIL.format.endswith("i")
#: Bytes of a request without its topic and payload, by message type (0: not a request type).
_FIXED_BY_TYPE = tuple(
    layouts.CONSUME_REQUEST_FIXED_BYTES
    if t == CONSUME
    else layouts.REQUEST_FIXED_BYTES
    if t in (PRODUCE, CREATE_TOPIC)
    else 0
    for t in range(256)
)
#: A fixed timestamp for the answers (2023-11-14T22:13:20Z).
CANNED_TIMESTAMP = 1_700_000_000_000
#: Bytes read at most per read (as much as asyncio's own transports ask for).
READ_BYTES = 256 * 1024


def consume_answer_tail(payload_bytes: int) -> bytes:
    """What follows the correlation id in the floor's CONSUME answer: success, timestamp,
    next_offset 1, payload_length and ``payload_bytes`` bytes of payload."""
    head = layouts.CONSUME_OK_HEAD.pack(0, 1, CANNED_TIMESTAMP, 1, payload_bytes)
    return head[layouts.CORRELATION_ID.size :] + b"f" * payload_bytes


class FloorProtocol(asyncio.BufferedProtocol):
    """One connection: the transport reads into the floor's one buffer; each read is answered at once.

    The buffer is shared by every connection (one loop, one read handled at a
    time); the bytes of a frame cut by the end of a read are copied out and
    put in front of the next read.
    """

    __slots__ = ("_buffer", "_consume_tail", "_pending", "_transport", "_view")

    def __init__(self, buffer: bytearray, consume_tail: bytes) -> None:
        self._buffer = buffer
        self._view = memoryview(buffer)
        self._consume_tail = consume_tail
        self._pending = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a cast, not an isinstance check: uvloop's transports are not asyncio.Transport subclasses
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        data: bytes | bytearray
        if self._pending:
            data = self._pending + self._view[:nbytes]
            end = len(data)
        else:
            data, end = self._buffer, nbytes
        pos = 0
        out: list[bytes] = []
        add = out.append
        # locals: a global lookup per frame would cost as much as a field read
        head, length, produce_ok = _HEAD.unpack_from, _PAYLOAD_LENGTH.unpack_from, layouts.PRODUCE_OK.pack
        cid_pack, consume_tail, produce, consume = layouts.CORRELATION_ID.pack, self._consume_tail, PRODUCE, CONSUME
        fixed_by_type, head_bytes, ts = _FIXED_BY_TYPE, _HEAD_BYTES, CANNED_TIMESTAMP
        max_topic, max_payload = MAX_TOPIC_BYTES, MAX_PAYLOAD_BYTES
        while end - pos >= head_bytes:
            cid, mtype, tlen = head(data, pos)
            fixed = fixed_by_type[mtype]
            if not fixed or not 0 <= tlen <= max_topic:
                self._abort()
                return
            fixed += tlen
            if end - pos < fixed:
                break
            (plen,) = length(data, pos + fixed - 4)
            if not 0 <= plen <= max_payload:
                self._abort()
                return
            if end - pos < fixed + plen:
                break
            if mtype == produce:
                add(produce_ok(cid, 1, ts, 0))
            elif mtype == consume:
                add(cid_pack(cid) + consume_tail)
            else:  # CREATE_TOPIC (set-up only): always succeeds, echoing the timestamp and the name
                answer = _create_topic_answer(data, pos, cid, tlen)
                if answer is None:
                    self._abort()
                    return
                add(answer)
            pos += fixed + plen
        self._pending = bytes(data[pos:end]) if pos < end else b""
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


def _create_topic_answer(data: bytes | bytearray, pos: int, cid: int, tlen: int) -> bytes | None:
    """The success answer to the CREATE_TOPIC at ``pos``; None if its name is not UTF-8."""
    timestamp, _plen = layouts.REQUEST_TAIL.unpack_from(data, pos + _HEAD_BYTES + tlen)
    name = bytes(data[pos + _HEAD_BYTES : pos + _HEAD_BYTES + tlen])
    try:
        return encode_create_topic_ok(cid, timestamp, name.decode())
    except (UnicodeDecodeError, LocalProtocolError):
        return None


async def serve(host: str, port: int, consume_payload: int, *, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled (or SIGINT/SIGTERM when run as a program)."""
    loop = asyncio.get_running_loop()
    buffer = bytearray(READ_BYTES)
    consume_tail = consume_answer_tail(consume_payload)
    server = await loop.create_server(
        lambda: FloorProtocol(buffer, consume_tail), host, port, backlog=1024, reuse_address=True
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
        description="The floor: the fastest honest asyncio MEGA server (frames walked, answers of the right shape, "
        "nothing stored).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port, printed (default: %(default)s)")
    parser.add_argument(
        "--consume-payload", type=int, default=100, help="payload bytes of the CONSUME answer (default: %(default)s)"
    )
    parser.add_argument("--loop", choices=LOOPS, default="asyncio", help="event loop (default: %(default)s)")
    args = parser.parse_args(argv)
    problem = loop_problem(args.loop)
    if problem is not None:
        parser.exit(2, f"{parser.prog}: error: {problem}\n")
    run_on_loop(serve(args.host, args.port, args.consume_payload), args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
