"""Small raw-socket MEGA brokers for the broker conformance tests: a correct one, and variants with one defect each.

They share nothing with mock_broker or mega_client.protocol (frames are cut
and built with ``struct`` here), so the suite is also checked against a broker
it was not written next to. ``RawBroker()`` follows docs/PROTOCOL.md;
``RawBroker(defect)`` breaks it in exactly one way (:data:`DEFECTS`). Which
cases catch which defect, and by what symptom, is tests/conformance/broker/proofs.py.
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

from mock_broker._server import close_server

MAX_PAYLOAD = 1_048_576
_VALID_NAME = re.compile(rb"[A-Za-z0-9._-]{1,255}")

# Error codes (docs/PROTOCOL.md section 5.1), spelled out here on purpose: this broker shares no code with the kit.
INVALID_REQUEST = 1
INVALID_MESSAGE_TYPE = 2
MESSAGE_TOO_LARGE = 3
TOPIC_NOT_FOUND = 4
TOPIC_ALREADY_EXISTS = 5
INVALID_OFFSET = 6
INTERNAL_ERROR = 7
NETWORK_ERROR = 8
RESOURCE_EXHAUSTED = 9

PRODUCE, CONSUME, CREATE_TOPIC = 1, 2, 3

DEFECTS = {
    # -- response layouts
    "echo-without-length": "the CREATE_TOPIC success echo leaves out its u16 length",
    "long-error": "an error response carries its code in 2 bytes: 7-byte error frames",
    "wrong-next-offset": "CONSUME answers next_offset = offset instead of offset + 1",
    "empty-payload-as-null": "CONSUME of an empty message answers payload_length -1 (a null payload)",
    "payload-misread": (
        "the payload of a CREATE_TOPIC or CONSUME is not skipped: its bytes are read as the start of the next frame"
    ),
    "payload-as-text": "payloads are stored as text: decoded as UTF-8 (invalid bytes replaced) and encoded back",
    # -- error codes and the order of checks
    "auto-create": "PRODUCE and CONSUME create a topic that does not exist (like Kafka's auto.create.topics.enable)",
    "recreate-truncates": "CREATE_TOPIC of an existing name succeeds and starts the topic afresh, empty",
    "negative-offset-wraps": "a negative CONSUME offset counts from the end, like a Python index: -1 is the last",
    "negative-offset-first": "a negative CONSUME offset is answered INVALID_OFFSET before the topic is looked up",
    "size-checked-last": (
        "an oversized payload is refused only after the topic checks: an invalid name is INVALID_REQUEST and a "
        "missing topic TOPIC_NOT_FOUND instead of MESSAGE_TOO_LARGE"
    ),
    "close-after-error": "the connection is closed after every error response, fatal or not",
    "too-large-still-stored": (
        "a request answered MESSAGE_TOO_LARGE still takes effect: PRODUCE stores an empty message, CREATE_TOPIC "
        "creates the topic"
    ),
    # -- topic names
    "bad-name-internal-error": (
        "CREATE_TOPIC with an invalid name is answered INTERNAL_ERROR (the reference broker, section 12 #1)"
    ),
    "invalid-name-not-found": (
        "PRODUCE and CONSUME naming an invalid topic are answered TOPIC_NOT_FOUND (the reference broker, "
        "section 12 #18)"
    ),
    "no-leading-punctuation": "names starting with '.', '_' or '-' are refused INVALID_REQUEST",
    "case-insensitive-names": "topic names are compared case-insensitively",
    "max-name-254": "a topic_length of 255 is refused like 256, a fatal INVALID_REQUEST (the limit one too low)",
    # -- semantics
    "negative-cid-zeroed": "a well-formed request with a negative correlation id is answered with correlation id 0",
    "dedupe-cids": (
        "a correlation id already answered on the connection is taken for a retry: answered with the first answer "
        "again, not performed"
    ),
    "timestamps-not-echoed": "CREATE_TOPIC and PRODUCE carry (and store) the broker's clock, not the request's",
    "negative-timestamps-zeroed": "negative timestamps are echoed and stored as 0",
    "consume-echoes-timestamp": "CONSUME answers with the request's timestamp, not the one the message was stored with",
    "offsets-from-one": "the first message of a topic gets offset 1",
    "offsets-per-connection": (
        "each connection counts its own offsets per topic, while the messages go to the one shared log"
    ),
    "offset-race": (
        "PRODUCE stores the message, then takes the topic's next offset: two steps, and every 200th PRODUCE of a "
        "topic yields to the event loop between them (as a thread switch does in the reference broker), so a "
        "PRODUCE of another connection run in between takes its offset"
    ),
    "consume-once": "a message is read once, like a queue: CONSUME of an offset already read is INVALID_OFFSET",
    "create-race": (
        "CREATE_TOPIC checks that the name is free, waits 0.1 s (as a slow store would), then creates it: "
        "check-then-act"
    ),
    # -- limits
    "limit-off-by-one": "a payload of exactly 1,048,576 bytes is refused MESSAGE_TOO_LARGE",
    "no-size-limit": "payloads over 1 MiB are stored like any other",
    "limit-on-produce-only": "the 1 MiB limit applies to PRODUCE only: an oversized CONSUME or CREATE_TOPIC is served",
    "unchecked-length": (
        "lengths are trusted: the broker waits for every announced topic and payload byte (as if it had allocated "
        "them) before judging the frame; a length over the JVM's array limit closes the connection with no answer"
    ),
    "full-topic-internal-error": (
        "PRODUCE to a full topic is answered INTERNAL_ERROR, not RESOURCE_EXHAUSTED (the reference broker, "
        "section 12 #19)"
    ),
    # -- malformed frames
    "unknown-type-silent-close": (
        "an unknown message_type closes the connection with no answer (the reference broker, section 12 #2)"
    ),
    "lengths-before-type": (
        "the message_type is judged after the topic_length: a frame of an unknown type waits for its topic_length, "
        "and a negative one is answered INVALID_REQUEST"
    ),
    "negative-length-silent-close": (
        "a negative topic_length or payload_length closes the connection with no answer (the reference broker, "
        "section 12 #3)"
    ),
    "no-close-after-fatal": "after the answer to a fatal frame the connection stays open (the bytes buffered dropped)",
    "keeps-reading-after-fatal": (
        "after the answer to a fatal frame the broker skips that frame and serves the bytes behind it, and closes "
        "only then"
    ),
    "answers-truncated-frame": "a frame cut short by the client's EOF is answered INVALID_REQUEST before the close",
    "fatal-closes-all": "a fatal frame closes every connection of the broker, not only its own",
    # -- streams
    "out-of-order": "the answers to the requests of one read are sent in reverse order",
    "one-frame-per-read": "one frame is served per read: the frames behind it wait for the next bytes to arrive",
    "effects-after-read": (
        "requests of one read do not see each other's effects: PRODUCE and CONSUME see the topics and messages as "
        "they were when the read began"
    ),
    "no-buffering": "each read is parsed on its own: the start of a frame at its end is dropped",
    "eof-drops-answers": (
        "answers are flushed 0.3 s after their request arrived; the client's EOF before then closes the "
        "connection and drops them"
    ),
    "flood": "from the moment a connection opens, the broker sends bytes nobody asked for, without end",
    # -- connections
    "max-10-connections": "at most 10 connections are served at once; the others wait",
    "stall-blocks-all": "a connection holding an incomplete frame holds the whole broker until the frame is complete",
    "close-at-once": "every connection is closed as soon as it is accepted",
    # -- idle connections
    "no-idle-close": "an idle connection is never closed",
    "idle-close-silent": "the idle close sends no unsolicited frame",
    "answers-held-mid-frame": (
        "the answers to a read that ends inside a frame are held until that frame is complete; an idle close drops them"
    ),
    "idle-timer-per-frame": "only complete frames reset the idle timer, not every byte received",
    # -- performance
    "linear-consume": (
        "CONSUME walks the topic from offset 0, reading each message on its way (2.5 us each, as from a log file): "
        "O(offset)"
    ),
    "batched-linear-consume": (
        "O(offset) CONSUME (as linear-consume) behind Nagle-like batching: the answers to a read holding two or more "
        "requests are sent 44 ms late (a lone request is answered at once)"
    ),
}

#: offset-race: the PRODUCEs of a topic between two yields (more than the 90 of semantics.offsets-across-connections).
RACE_EVERY = 200
#: create-race: the time between checking that a name is free and creating the topic.
CREATE_RACE_S = 0.1
#: linear-consume, batched-linear-consume: the time to read one message on the way to the offset asked for. Waited,
#: not spent: 50 ms at offset 20,000 stands out of the scheduling noise of a loaded machine, and costs no CPU.
WALK_STEP_S = 2.5e-6
#: batched-linear-consume: the delay of a batch's answers (Nagle's algorithm plus a delayed ACK, as measured).
BATCH_DELAY_S = 0.044
#: eof-drops-answers: how long answers wait before they are sent.
FLUSH_DELAY_S = 0.3
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
    #: offsets-per-connection: the messages this connection produced, per topic.
    produced: dict[bytes, int] = field(default_factory=dict)
    #: dedupe-cids: the answer given to each correlation id.
    answered: dict[int, bytes] = field(default_factory=dict)
    #: effects-after-read: the length of each topic when the read being served began.
    view: dict[bytes, int] | None = None
    #: stall-blocks-all: this connection holds the broker.
    holds: bool = False


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
        self.consumed: set[tuple[bytes, int]] = set()
        self.host = "127.0.0.1"
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._pool: asyncio.Semaphore | None = None
        self._held: asyncio.Lock | None = None
        self._writers: set[asyncio.StreamWriter] = set()

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
        self._held = asyncio.Lock()
        server = await asyncio.start_server(self._client, self.host, 0, backlog=256)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            await close_server(server)  # not server.close(): a connection accepted as it stops would be left to the GC

    # -- connections ---------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
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
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn()
        try:
            await self._serve_conn(conn, reader, writer)
        finally:
            if conn.holds and self._held is not None:
                self._held.release()

    def _wait(self, last_rx: float, flush_at: float | None) -> float | None:
        """Seconds to wait for bytes: until the idle timeout (CONN-7) or the next flush, None for ever."""
        waits = []
        if self.idle_timeout is not None and self.defect != "no-idle-close":
            waits.append(self.idle_timeout - (time.monotonic() - last_rx))
        if flush_at is not None:
            waits.append(flush_at - time.monotonic())
        return max(0.001, min(waits)) if waits else None

    async def _serve_conn(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        last_rx = time.monotonic()
        #: Answers not sent yet (answers-held-mid-frame, eof-drops-answers), and when to send them (eof-drops-answers).
        unsent = b""
        flush_at: float | None = None
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), self._wait(last_rx, flush_at))
            except asyncio.TimeoutError:
                if flush_at is not None and time.monotonic() >= flush_at:
                    writer.write(unsent)
                    await writer.drain()
                    unsent, flush_at = b"", None
                    continue
                if self.idle_timeout is None or time.monotonic() - last_rx < self.idle_timeout:
                    continue
                # The idle close (CONN-8). Answers still held back are dropped (answers-held-mid-frame).
                if self.defect != "idle-close-silent":
                    writer.write(_err(0, NETWORK_ERROR))
                await self._close(reader, writer)
                return
            if not chunk:
                # EOF: complete requests were answered as they came; a partial one is dropped.
                if self.defect == "answers-truncated-frame" and len(conn.buf) >= 4:
                    writer.write(_err(struct.unpack_from(">i", conn.buf)[0], INVALID_REQUEST))
                    await writer.drain()
                return  # (eof-drops-answers: what was not flushed yet is lost)
            # The idle timer runs from the last bytes received, time spent answering included (CONN-7).
            if self.defect != "idle-timer-per-frame":
                last_rx = time.monotonic()
            if self.defect == "stall-blocks-all" and not conn.holds:
                assert self._held is not None
                await self._held.acquire()
                conn.holds = True
            conn.buf += chunk
            if self.defect == "effects-after-read":
                conn.view = {topic: len(log) for topic, log in self.topics.items()}
            answers, fatal = await self._frames(conn)
            if self.defect == "idle-timer-per-frame" and answers:
                last_rx = time.monotonic()
            if self.defect == "no-buffering" and not fatal:
                conn.buf.clear()
            if conn.holds and not conn.buf:
                assert self._held is not None
                self._held.release()
                conn.holds = False
            if self.defect == "out-of-order":
                answers.reverse()
            if self.defect == "batched-linear-consume" and len(answers) > 1:
                await asyncio.sleep(BATCH_DELAY_S)
            data = unsent + b"".join(answers)
            if self.defect == "answers-held-mid-frame" and conn.buf and not fatal:
                unsent = data
            elif self.defect == "eof-drops-answers" and not fatal:
                unsent = data
                if unsent and flush_at is None:
                    flush_at = time.monotonic() + FLUSH_DELAY_S
            elif data:
                unsent = b""
                writer.write(data)
                await writer.drain()
            if fatal:
                if self.defect == "fatal-closes-all":
                    for other in list(self._writers):
                        if other is not writer:
                            other.close()
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

    def _fatal(self, conn: _Conn, out: list[bytes], answer: bytes | None, skip: int) -> bool:
        """A fatal frame (section 5.2, steps 1a-1c): its ``answer``, then the close; True when the serving stops.

        ``skip`` is how many bytes of the buffer the bad frame takes, as far as it can be told
        (keeps-reading-after-fatal).
        """
        if answer is not None:
            out.append(answer)
        if self.defect == "no-close-after-fatal":
            conn.buf.clear()
            return False
        if self.defect == "keeps-reading-after-fatal":
            del conn.buf[: max(skip, 1)]
            return False
        return True

    async def _frames(self, conn: _Conn) -> tuple[list[bytes], bool]:
        """Answer every complete frame in ``conn.buf``; True when the connection must close."""
        out: list[bytes] = []
        buf = conn.buf
        defect = self.defect
        unchecked = defect == "unchecked-length"
        fatal_seen = False
        while True:
            if conn.skip:
                n = min(conn.skip, len(buf))
                del buf[:n]
                conn.skip -= n
                if conn.skip:
                    return out, fatal_seen
                if conn.after_skip:
                    out.append(conn.after_skip)
                    conn.after_skip = b""
            if defect == "one-frame-per-read" and out:
                return out, False
            if len(buf) < 5:
                return out, fatal_seen
            cid, mtype = struct.unpack_from(">iB", buf)
            if mtype not in (PRODUCE, CONSUME, CREATE_TOPIC):
                if defect == "unknown-type-silent-close":
                    return out, True
                if defect == "lengths-before-type":
                    if len(buf) < 9:
                        return out, fatal_seen
                    if struct.unpack_from(">i", buf, 5)[0] < 0:
                        return out, self._fatal(conn, out, self._error(cid, INVALID_REQUEST), 9)
                # keeps-reading-after-fatal: an unknown type is skipped as if it had PRODUCE's layout.
                skip = len(buf)
                if len(buf) >= 9:
                    (tlen,) = struct.unpack_from(">i", buf, 5)
                    if tlen >= 0 and len(buf) >= 9 + tlen + 12:
                        skip = 9 + tlen + 12 + max(0, struct.unpack_from(">i", buf, 9 + tlen + 8)[0])
                if self._fatal(conn, out, self._error(cid, INVALID_MESSAGE_TYPE), skip):
                    return out, True
                fatal_seen = defect == "keeps-reading-after-fatal"
                continue
            if len(buf) < 9:
                return out, fatal_seen
            (tlen,) = struct.unpack_from(">i", buf, 5)
            if unchecked and tlen > JVM_ARRAY_LIMIT:
                return out, True
            limit = 254 if defect == "max-name-254" else 255
            if not 0 <= tlen <= limit and not (unchecked and tlen > limit):
                if tlen < 0 and defect == "negative-length-silent-close":
                    return out, True
                if self._fatal(conn, out, self._error(cid, INVALID_REQUEST), 9):
                    return out, True
                fatal_seen = defect == "keeps-reading-after-fatal"
                continue
            head = 9 + tlen + (16 if mtype == CONSUME else 12)
            if len(buf) < head:
                return out, fatal_seen
            (plen,) = struct.unpack_from(">i", buf, head - 4)
            if plen < 0:
                if defect == "negative-length-silent-close":
                    return out, True
                if self._fatal(conn, out, self._error(cid, INVALID_REQUEST), head):
                    return out, True
                fatal_seen = defect == "keeps-reading-after-fatal"
                continue
            if unchecked and plen > JVM_ARRAY_LIMIT:
                return out, True
            too_large = plen >= MAX_PAYLOAD if defect == "limit-off-by-one" else plen > MAX_PAYLOAD
            if defect == "no-size-limit" or (defect == "limit-on-produce-only" and mtype != PRODUCE):
                too_large = False
            if too_large:
                answer = self._too_large(
                    cid, mtype, bytes(buf[9 : 9 + tlen]), struct.unpack_from(">q", buf, 9 + tlen)[0]
                )
                if unchecked:
                    conn.after_skip = answer
                else:
                    out.append(answer)
                dropped = min(plen, len(buf) - head)
                del buf[: head + dropped]
                conn.skip = plen - dropped
                if unchecked and not conn.skip:
                    out.append(conn.after_skip)
                    conn.after_skip = b""
                if defect == "close-after-error":
                    return out, True
                continue
            if defect == "payload-misread" and mtype != PRODUCE:
                plen = 0  # the payload's bytes stay in the buffer, to be read as the next frame
            elif len(buf) < head + plen:
                return out, fatal_seen
            topic = bytes(buf[9 : 9 + tlen])
            (ts,) = struct.unpack_from(">q", buf, 9 + tlen)
            offset = struct.unpack_from(">i", buf, 17 + tlen)[0] if mtype == CONSUME else 0
            payload = bytes(buf[head : head + plen])
            del buf[: head + plen]
            answer = await self._answer(conn, cid, mtype, topic, ts, offset=offset, payload=payload)
            out.append(answer)
            if defect == "close-after-error" and answer[4] == 0:
                return out, True

    def _too_large(self, cid: int, mtype: int, topic: bytes, ts: int) -> bytes:
        """The answer to a request whose payload is over the limit (section 5.2 step 2 comes before steps 3 and 4)."""
        key = self._key(topic)
        if self.defect == "size-checked-last":
            if _VALID_NAME.fullmatch(topic) is None:
                return self._error(cid, INVALID_REQUEST)
            if mtype != CREATE_TOPIC and key not in self.topics:
                return self._error(cid, TOPIC_NOT_FOUND)
        if self.defect == "too-large-still-stored" and _VALID_NAME.fullmatch(topic) is not None:
            if mtype == CREATE_TOPIC:
                self.topics.setdefault(key, [])
            elif mtype == PRODUCE and key in self.topics:
                self.topics[key].append((ts, b""))
        return self._error(cid, MESSAGE_TOO_LARGE)

    def _key(self, topic: bytes) -> bytes:
        return topic.lower() if self.defect == "case-insensitive-names" else topic

    def _error(self, cid: int, code: int) -> bytes:
        if self.defect == "long-error":
            return struct.pack(">ibh", cid, 0, code)
        return _err(cid, code)

    async def _answer(
        self, conn: _Conn, cid: int, mtype: int, topic: bytes, ts: int, *, offset: int, payload: bytes
    ) -> bytes:
        if self.defect == "dedupe-cids" and cid in conn.answered:
            return conn.answered[cid]
        answer = await self._perform(conn, cid, mtype, topic, ts, offset=offset, payload=payload)
        if self.defect == "negative-cid-zeroed" and cid < 0:
            answer = b"\x00\x00\x00\x00" + answer[4:]
        if self.defect == "dedupe-cids":
            conn.answered[cid] = answer
        return answer

    async def _perform(
        self, conn: _Conn, cid: int, mtype: int, topic: bytes, ts: int, *, offset: int, payload: bytes
    ) -> bytes:
        defect = self.defect
        if _VALID_NAME.fullmatch(topic) is None or (
            defect == "no-leading-punctuation" and topic[:1] in (b".", b"_", b"-")
        ):
            if defect == "bad-name-internal-error" and mtype == CREATE_TOPIC:
                return self._error(cid, INTERNAL_ERROR)
            if defect == "invalid-name-not-found" and mtype != CREATE_TOPIC:
                return self._error(cid, TOPIC_NOT_FOUND)
            return self._error(cid, INVALID_REQUEST)
        key = self._key(topic)
        if defect == "timestamps-not-echoed":
            ts = int(time.time() * 1000)
        if defect == "negative-timestamps-zeroed":
            ts = max(ts, 0)
        if mtype == CREATE_TOPIC:
            if key in self.topics and defect != "recreate-truncates":
                return self._error(cid, TOPIC_ALREADY_EXISTS)
            if defect == "create-race":
                await asyncio.sleep(CREATE_RACE_S)
            self.topics[key] = []
            if defect == "echo-without-length":
                return struct.pack(">ibq", cid, 1, ts) + topic
            return struct.pack(">ibqH", cid, 1, ts, len(topic)) + topic
        if mtype == CONSUME and defect == "negative-offset-first" and offset < 0:
            return self._error(cid, INVALID_OFFSET)
        if defect == "auto-create":
            self.topics.setdefault(key, [])
        log = self.topics.get(key)
        if log is None or (conn.view is not None and key not in conn.view):
            return self._error(cid, TOPIC_NOT_FOUND)
        if mtype == PRODUCE:
            return await self._produce(conn, cid, key, log, ts=ts, payload=payload)
        size = len(log) if conn.view is None else conn.view[key]
        lowest = -size if defect == "negative-offset-wraps" else 0
        if not lowest <= offset < size or (key, offset) in self.consumed:
            return self._error(cid, INVALID_OFFSET)
        if defect == "consume-once":
            self.consumed.add((key, offset))
        if defect in ("linear-consume", "batched-linear-consume"):
            for i, message in enumerate(log):  # noqa: B007
                if i == offset:
                    break
            await asyncio.sleep(offset * WALK_STEP_S)
        else:
            message = log[offset]
        stored_ts, data = message
        if defect == "consume-echoes-timestamp":
            stored_ts = ts
        next_offset = offset if defect == "wrong-next-offset" else offset + 1
        length = -1 if defect == "empty-payload-as-null" and not data else len(data)
        return struct.pack(">ibqii", cid, 1, stored_ts, next_offset, length) + data

    async def _produce(
        self, conn: _Conn, cid: int, key: bytes, log: list[tuple[int, bytes]], *, ts: int, payload: bytes
    ) -> bytes:
        defect = self.defect
        if len(log) >= self.capacity:
            return self._error(cid, INTERNAL_ERROR if defect == "full-topic-internal-error" else RESOURCE_EXHAUSTED)
        if self.produce_cost:
            time.sleep(self.produce_cost)  # the whole broker is busy, as with a slow store
        if defect == "payload-as-text":
            payload = payload.decode("utf-8", "replace").encode("utf-8")
        log.append((ts, payload))
        given = len(log) - 1
        if defect == "offset-race":
            if len(log) % RACE_EVERY == 0:
                await asyncio.sleep(0)
            given = self.next_offset.get(key, 0)
            self.next_offset[key] = given + 1
        elif defect == "offsets-from-one":
            given += 1
        elif defect == "offsets-per-connection":
            given = conn.produced.get(key, 0)
            conn.produced[key] = given + 1
        return struct.pack(">ibqi", cid, 1, ts, given)
