"""Small raw-socket MEGA brokers for the broker conformance tests: a correct one, and variants with one defect each.

They share nothing with mock_broker or mega_client.protocol (frames are cut
and built with ``struct`` here), so the suite is also checked against a broker
it was not written next to. ``RawBroker()`` follows docs/PROTOCOL.md;
``RawBroker(defect)`` breaks it in exactly one way (:data:`DEFECTS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

MAX_PAYLOAD = 1_048_576
_VALID_NAME = re.compile(rb"[A-Za-z0-9._-]{1,255}")

DEFECTS = {
    "wrong-next-offset": "CONSUME answers next_offset = offset instead of offset + 1",
    "timestamps-not-echoed": "CREATE_TOPIC and PRODUCE carry (and store) the broker's clock, not the request's",
    "no-size-limit": "payloads over 1 MiB are stored like any other",
    "close-after-error": "the connection is closed after every error response, fatal or not",
    "max-10-connections": "at most 10 connections are served at once; the others wait",
    "echo-without-length": "the CREATE_TOPIC success echo leaves out its u16 length",
    "out-of-order": "the answers to the requests of one read are sent in reverse order",
    "linear-consume": "CONSUME walks the topic from offset 0: O(offset)",
    "offset-race": (
        "PRODUCE stores the message, then takes the topic's next offset: two steps, and every 200th PRODUCE of a "
        "topic yields to the event loop between them (as a thread switch does in the reference broker), so a "
        "PRODUCE of another connection run in between takes its offset"
    ),
    "batched-linear-consume": (
        "O(offset) CONSUME behind Nagle-like batching: the answers to a read holding two or more requests are sent "
        "44 ms late (a lone request is answered at once)"
    ),
    "unchecked-length": (
        "lengths are trusted: the broker waits for every announced topic and payload byte (as if it had allocated "
        "them) before judging the frame; a length over the JVM's array limit closes the connection with no answer"
    ),
    "close-at-once": "every connection is closed as soon as it is accepted",
    "flood": "from the moment a connection opens, the broker sends bytes nobody asked for, without end",
}

#: offset-race: the PRODUCEs of a topic between two yields (more than the 90 of semantics.offsets-across-connections).
RACE_EVERY = 200
#: batched-linear-consume: the delay of a batch's answers (Nagle's algorithm plus a delayed ACK, as measured).
BATCH_DELAY_S = 0.044
#: unchecked-length: the largest array a JVM allocates; a longer length fails the allocation (the connection closes).
JVM_ARRAY_LIMIT = 2**31 - 9


def _err(cid: int, code: int) -> bytes:
    return struct.pack(">ibb", cid, 0, code)


@dataclass
class _Conn:
    buf: bytearray = field(default_factory=bytearray)
    skip: int = 0
    #: unchecked-length: the answer sent once the skipped payload has all arrived.
    after_skip: bytes = b""


class RawBroker:
    """An asyncio broker on its own thread, listening on 127.0.0.1 (ephemeral port)."""

    def __init__(
        self,
        defect: str | None = None,
        *,
        idle_timeout: float | None = None,
        capacity: int = 1_000_000,
        produce_cost: float = 0.0,
    ) -> None:
        """``produce_cost``: seconds each PRODUCE keeps the broker busy (a slow store; still conformant)."""
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}")
        self.defect = defect
        self.idle_timeout = idle_timeout
        self.produce_cost = produce_cost
        self.capacity = capacity
        self.topics: dict[bytes, list[tuple[int, bytes]]] = {}
        self.next_offset: dict[bytes, int] = {}
        self.host = "127.0.0.1"
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pool: asyncio.Semaphore | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> RawBroker:
        self._thread = threading.Thread(target=self._run, name=f"raw-broker-{self.defect}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("broker did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> RawBroker:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._pool = asyncio.Semaphore(10)
        server = await asyncio.start_server(self._client, self.host, 0, backlog=256)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()

    # -- connections ---------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.defect == "close-at-once":
                return
            if self.defect == "flood":
                await self._flood(writer)
            elif self.defect == "max-10-connections":
                assert self._pool is not None
                async with self._pool:
                    await self._serve(reader, writer)
            else:
                await self._serve(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the broker stops (a cancelled task), or the peer went away
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn()
        last_rx = time.monotonic()
        while True:
            # The idle timer runs from the last bytes received, time spent answering included (CONN-7).
            wait = None if self.idle_timeout is None else max(0.001, self.idle_timeout - (time.monotonic() - last_rx))
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), wait)
            except asyncio.TimeoutError:
                writer.write(_err(0, 8))
                await self._close(reader, writer)
                return
            if not chunk:
                return  # EOF: complete requests were answered as they came; a partial one is dropped
            last_rx = time.monotonic()
            conn.buf += chunk
            answers, fatal = await self._frames(conn)
            if answers:
                if self.defect == "out-of-order":
                    answers.reverse()
                if self.defect == "batched-linear-consume" and len(answers) > 1:
                    await asyncio.sleep(BATCH_DELAY_S)
                writer.write(b"".join(answers))
                await writer.drain()
            if fatal:
                await self._close(reader, writer)
                return

    async def _flood(self, writer: asyncio.StreamWriter) -> None:
        chunk = bytes(range(256)) * 256
        while True:
            writer.write(chunk)
            await writer.drain()

    async def _close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send what is buffered, FIN, and read (discarding) until the peer's EOF or 1 s."""
        with contextlib.suppress(Exception):
            await writer.drain()
            writer.write_eof()
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                data = await asyncio.wait_for(reader.read(1 << 16), end - time.monotonic())
                if not data:
                    break

    # -- frames ---------------------------------------------------------------------------------

    async def _frames(self, conn: _Conn) -> tuple[list[bytes], bool]:
        """Answer every complete frame in ``conn.buf``; True when the connection must close."""
        out: list[bytes] = []
        buf = conn.buf
        unchecked = self.defect == "unchecked-length"
        while True:
            if conn.skip:
                n = min(conn.skip, len(buf))
                del buf[:n]
                conn.skip -= n
                if conn.skip:
                    return out, False
                if conn.after_skip:
                    out.append(conn.after_skip)
                    conn.after_skip = b""
            if len(buf) < 5:
                return out, False
            cid, mtype = struct.unpack_from(">iB", buf)
            if mtype not in (1, 2, 3):
                out.append(_err(cid, 2))
                return out, True
            if len(buf) < 9:
                return out, False
            (tlen,) = struct.unpack_from(">i", buf, 5)
            if unchecked and tlen > JVM_ARRAY_LIMIT:
                return out, True
            if not 0 <= tlen <= 255 and not (unchecked and tlen > 255):
                out.append(_err(cid, 1))
                return out, True
            head = 9 + tlen + (16 if mtype == 2 else 12)
            if len(buf) < head:
                return out, False
            (plen,) = struct.unpack_from(">i", buf, head - 4)
            if plen < 0:
                out.append(_err(cid, 1))
                return out, True
            if unchecked and plen > JVM_ARRAY_LIMIT:
                return out, True
            if plen > MAX_PAYLOAD and self.defect != "no-size-limit":
                if unchecked:
                    conn.after_skip = _err(cid, 3)
                else:
                    out.append(_err(cid, 3))
                dropped = min(plen, len(buf) - head)
                del buf[: head + dropped]
                conn.skip = plen - dropped
                if unchecked and not conn.skip:
                    out.append(conn.after_skip)
                    conn.after_skip = b""
                if self.defect == "close-after-error":
                    return out, True
                continue
            if len(buf) < head + plen:
                return out, False
            topic = bytes(buf[9 : 9 + tlen])
            (ts,) = struct.unpack_from(">q", buf, 9 + tlen)
            offset = struct.unpack_from(">i", buf, 17 + tlen)[0] if mtype == 2 else 0
            payload = bytes(buf[head : head + plen])
            del buf[: head + plen]
            answer = await self._answer(cid, mtype, topic, ts, offset=offset, payload=payload)
            out.append(answer)
            if self.defect == "close-after-error" and answer[4] == 0:
                return out, True

    async def _answer(self, cid: int, mtype: int, topic: bytes, ts: int, *, offset: int, payload: bytes) -> bytes:
        if _VALID_NAME.fullmatch(topic) is None:
            return _err(cid, 1)
        if self.defect == "timestamps-not-echoed":
            ts = int(time.time() * 1000)
        if mtype == 3:
            if topic in self.topics:
                return _err(cid, 5)
            self.topics[topic] = []
            if self.defect == "echo-without-length":
                return struct.pack(">ibq", cid, 1, ts) + topic
            return struct.pack(">ibqH", cid, 1, ts, len(topic)) + topic
        log = self.topics.get(topic)
        if log is None:
            return _err(cid, 4)
        if mtype == 1:
            if len(log) >= self.capacity:
                return _err(cid, 9)
            if self.produce_cost:
                time.sleep(self.produce_cost)  # the whole broker is busy, as with a slow store
            log.append((ts, payload))
            if self.defect != "offset-race":
                return struct.pack(">ibqi", cid, 1, ts, len(log) - 1)
            if len(log) % RACE_EVERY == 0:
                await asyncio.sleep(0)
            given = self.next_offset.get(topic, 0)
            self.next_offset[topic] = given + 1
            return struct.pack(">ibqi", cid, 1, ts, given)
        if not 0 <= offset < len(log):
            return _err(cid, 6)
        if self.defect in ("linear-consume", "batched-linear-consume"):
            for i, message in enumerate(log):  # noqa: B007
                if i == offset:
                    break
        else:
            message = log[offset]
        stored_ts, data = message
        next_offset = offset if self.defect == "wrong-next-offset" else offset + 1
        return struct.pack(">ibqii", cid, 1, stored_ts, next_offset, len(data)) + data
