"""The floor: the fastest MEGA "broker" a plain asyncio server can be.

A bare :class:`asyncio.Protocol` that finds where each request frame ends by
walking its fields (reading the two length fields with ``int.from_bytes``),
stores nothing, and answers every request with a canned response of the right
size: 17 bytes for PRODUCE, 21 + payload bytes for CONSUME, the usual echo for
CREATE_TOPIC. Only the correlation id is copied from the request, so clients
that check it (the project's own) can talk to it too.

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

PRODUCE = 1
CONSUME = 2
CREATE_TOPIC = 3

#: Bytes after the topic: timestamp (8) + payload_length (4), and + offset (4) for CONSUME.
_TAIL = 12
_TAIL_CONSUME = 16
_MAX_TOPIC = 65535
_MAX_PAYLOAD = 1024 * 1024
#: A fixed timestamp for the canned responses (2023-11-14T22:13:20Z).
_CANNED_TIMESTAMP = 1_700_000_000_000


def canned_produce_tail() -> bytes:
    """What follows the correlation id in the floor's PRODUCE answer: success, timestamp, offset 0."""
    return b"\x01" + _CANNED_TIMESTAMP.to_bytes(8, "big") + (0).to_bytes(4, "big")


def canned_consume_tail(payload_bytes: int) -> bytes:
    """What follows the correlation id in the floor's CONSUME answer: success, timestamp,
    next_offset 1, payload_length and ``payload_bytes`` bytes of payload."""
    return (
        b"\x01"
        + _CANNED_TIMESTAMP.to_bytes(8, "big")
        + (1).to_bytes(4, "big")
        + payload_bytes.to_bytes(4, "big")
        + b"f" * payload_bytes
    )


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
        while end - pos >= 9:
            mtype = data[pos + 4]
            tlen = int.from_bytes(data[pos + 5 : pos + 9], "big", signed=True)
            if mtype not in (PRODUCE, CONSUME, CREATE_TOPIC) or not 0 <= tlen <= _MAX_TOPIC:
                self._abort()
                return
            fixed = 9 + tlen + (_TAIL_CONSUME if mtype == CONSUME else _TAIL)
            if end - pos < fixed:
                break
            plen = int.from_bytes(data[pos + fixed - 4 : pos + fixed], "big", signed=True)
            if not 0 <= plen <= _MAX_PAYLOAD:
                self._abort()
                return
            if end - pos < fixed + plen:
                break
            if mtype == PRODUCE:
                out.append(data[pos : pos + 4] + produce)
            elif mtype == CONSUME:
                out.append(data[pos : pos + 4] + consume)
            else:  # CREATE_TOPIC: always succeeds, echoing the timestamp and the name
                out.append(
                    data[pos : pos + 4]
                    + b"\x01"
                    + data[pos + 9 + tlen : pos + 17 + tlen]
                    + tlen.to_bytes(2, "big")
                    + data[pos + 9 : pos + 9 + tlen]
                )
            pos += fixed + plen
        self._pending = data[pos:] if pos < end else b""
        if out and self._transport is not None:
            self._transport.write(b"".join(out))

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
