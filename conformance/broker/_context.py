"""What a broker case works with: the target's address and settings, raw connections, and the judge.

Every read has a deadline: a broker that stops answering fails the case after
``Target.timeout`` seconds of silence (never a hang). Each connection records
the bytes sent and received, which the reports show as the case's wire
transcript.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from conformance._case import Case, CaseFailed, CaseSkipped
from conformance._limits import WIRE_SEGMENTS
from conformance._wire import hexline

from ._frames import (
    UNSOLICITED,
    Expected,
    consume,
    consume_ok,
    create_ok,
    create_topic,
    describe_response,
    explain,
    produce,
    produce_ok,
)

#: Seconds of silence after which a read gives up (``--timeout``).
DEFAULT_TIMEOUT = 2.0

#: The per-topic capacity assumed when the operator does not give one (SEM-9).
DEFAULT_CAPACITY = 1_000_000

#: Bytes of each direction of a connection kept for the report.
RECORD_LIMIT = 256 * 1024

#: Bytes a silence check or a linger collects at most: a broker that floods cannot grow them without bound.
LINGER_LIMIT = 64 * 1024

#: Requests per pipelined write when filling a topic, at most and at first; the size adapts to the broker's pace.
FILL_BATCH = 2000
FILL_BATCH_FIRST = 250

#: The fraction of the target's idle timeout a connection of a case may go without sending: a pipelined batch
#: whose answers take longer than that is made smaller, so that no case has a connection closed for idleness
#: under it (CONN-7 counts only received bytes: a broker busy answering may close right after its answers).
IDLE_MARGIN = 0.25

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6; an empty host is 127.0.0.1) to ``(host, port)``."""
    m = _HOST_PORT.match(text.strip())
    if m is None:
        raise ValueError(f"broker address {text!r} is not HOST:PORT")
    port = int(m.group("port"))
    if not 0 < port < 65536:
        raise ValueError(f"broker address {text!r}: port {port} is not 1..65535")
    host = m.group("v6") or m.group("host") or "127.0.0.1"
    return host, port


def new_run_id() -> str:
    """A prefix for every topic of one run: unique, so nothing assumes an empty broker."""
    return f"mc-{secrets.token_hex(5)}"


@dataclass(frozen=True)
class Target:
    """The broker under test and what its operator told us about it."""

    host: str
    port: int
    timeout: float = DEFAULT_TIMEOUT
    idle_timeout: float | None = None
    topic_capacity: int | None = None
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0, not {self.timeout}")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ValueError(f"idle timeout must be > 0, not {self.idle_timeout}")
        if self.topic_capacity is not None and not 1 <= self.topic_capacity <= 2**31 - 1:
            raise ValueError(f"topic capacity must be 1..2147483647, not {self.topic_capacity}")

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Connection:
    """One raw TCP connection to the target, with recorded bytes and deadline-bound reads."""

    def __init__(self, ctx: BrokerContext, index: int, sock: socket.socket) -> None:
        self.ctx = ctx
        self.index = index
        self.sock = sock
        self.state = "open"  # open, eof (the broker closed), reset, closed (we closed)
        self.error: str | None = None
        self._pending = bytearray()
        self.sent = bytearray()
        self.received = bytearray()
        self.sent_total = 0
        self.received_total = 0
        #: When this side last sent a byte (the broker's idle timer, CONN-7, restarts about then).
        self.last_sent = time.monotonic()
        self.opened_at = time.time()
        #: Each send and each read: (direction, time.time(), position in that direction, length).
        self.segments: list[tuple[str, float, int, int]] = []
        try:
            self.local = "{}:{}".format(*sock.getsockname()[:2])
        except OSError:
            self.local = "?"

    @property
    def name(self) -> str:
        return f"connection {self.index + 1}"

    @property
    def open(self) -> bool:
        return self.state == "open"

    # -- sending -------------------------------------------------------------------------

    def send(self, data: bytes, what: str = "request", *, tolerate_close: bool = False) -> bool:
        """Send all of ``data``; a broker that has closed fails the case unless ``tolerate_close``."""
        try:
            self.sock.settimeout(self.ctx.timeout + len(data) / 1_000_000)
            self.sock.sendall(data)
        except TimeoutError:
            self.ctx.fail(f"{what}: the broker did not take {len(data)} bytes within {self.ctx.timeout:g} s")
        except OSError as exc:
            if tolerate_close:
                return False
            self.ctx.fail(f"{what}: could not send on {self.name}, the broker had closed or reset it ({exc})")
        self.last_sent = time.monotonic()
        self._record("sent", data)
        return True

    def send_pieces(self, data: bytes, size: int = 1, pause: float = 0.001, what: str = "request") -> None:
        """Send ``data`` ``size`` bytes per write (one TCP segment each: TCP_NODELAY), ``pause`` s apart."""
        for start in range(0, len(data), size):
            self.send(data[start : start + size], what)
            if pause:
                time.sleep(pause)

    def shutdown_write(self) -> None:
        """Half-close: the broker sees EOF, we can still read."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if self.state == "open":
            self.state = "closed"
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- receiving -----------------------------------------------------------------------

    def _record(self, direction: str, data: bytes) -> None:
        buf = self.sent if direction == "sent" else self.received
        start = self.sent_total if direction == "sent" else self.received_total
        if len(self.segments) < WIRE_SEGMENTS:
            self.segments.append((direction, time.time(), start, len(data)))
        if direction == "sent":
            self.sent_total += len(data)
        else:
            self.received_total += len(data)
        room = RECORD_LIMIT - len(buf)
        if room > 0:
            buf += data[:room]

    def _pull(self, wait: float) -> bool:
        """One read of at most ``wait`` seconds; True if bytes arrived."""
        if self.state != "open":
            return False
        try:
            self.sock.settimeout(max(wait, 0.0001))
            chunk = self.sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return False
        except OSError as exc:
            self.state = "reset"
            self.error = str(exc)
            return False
        if not chunk:
            self.state = "eof"
            return False
        self._pending += chunk
        self._record("received", chunk)
        return True

    def fill(self, n: int, timeout: float | None = None) -> float:
        """Read until ``n`` bytes are pending, the connection ends, or nothing arrives for ``timeout`` s.

        Returns the seconds waited. The total wait is capped at 20 times the timeout.
        """
        silence = self.ctx.timeout if timeout is None else timeout
        started = last = time.monotonic()
        cap = started + 20 * silence
        while len(self._pending) < n and self.state == "open":
            now = time.monotonic()
            wait = min(last + silence, cap) - now
            if wait <= 0:
                break
            if self._pull(wait):
                last = time.monotonic()
        return time.monotonic() - started

    def linger(self, seconds: float) -> None:
        """Collect whatever arrives during ``seconds`` (for failure messages and silence checks).

        Stops early once :data:`LINGER_LIMIT` bytes are pending: what a flooding broker sends is not kept.
        """
        end = time.monotonic() + seconds
        while self.state == "open" and len(self._pending) < LINGER_LIMIT:
            wait = end - time.monotonic()
            if wait <= 0:
                break
            self._pull(wait)

    def poll(self) -> None:
        """Take in what has already arrived (waiting at most 0.1 ms; at most :data:`LINGER_LIMIT` bytes pending)."""
        while self.state == "open" and len(self._pending) < LINGER_LIMIT and self._pull(0):
            pass

    def closed_for_idleness(self, wait: float = 0.05) -> bool:
        """True when all the broker sent since the last answer taken is the unsolicited frame, then (within ``wait``
        s) its close: an idle close (CONN-8), which a target with an idle timeout may do to a connection that sent
        nothing for that long, answers owed included."""
        if self._pending[: len(UNSOLICITED)] != UNSOLICITED.data:
            return False
        self.fill(len(UNSOLICITED) + 1, wait)
        return bytes(self._pending) == UNSOLICITED.data and self.state != "open"

    @property
    def pending(self) -> bytes:
        """Bytes received and not yet taken by an expectation."""
        return bytes(self._pending)

    def peek(self, n: int) -> bytes:
        """The first ``n`` pending bytes (fewer when fewer arrived), left pending."""
        return bytes(self._pending[:n])

    def take(self, n: int) -> bytes:
        data = bytes(self._pending[:n])
        del self._pending[:n]
        return data

    def why_short(self, have: int, want: int, silence: float | None = None) -> str:
        """Why fewer than ``want`` bytes arrived (``have`` did)."""
        wait = self.ctx.timeout if silence is None else silence
        got = f"after {have} of {want} bytes" if have else "before any byte of it"
        if self.state == "eof":
            return f"the broker closed the connection {got}"
        if self.state == "reset":
            return (
                f"the connection was reset {got} ({self.error}; a broker that closes with unread input makes "
                "TCP send a reset, which can destroy its last answer: CONN-11)"
            )
        return f"the broker sent nothing more for {wait:g} s {got}" if have else f"no answer within {wait:g} s"

    def read_exact(self, n: int, what: str, timeout: float | None = None) -> bytes:
        """Exactly ``n`` bytes, or fail the case."""
        self.fill(n, timeout)
        if len(self._pending) < n:
            self.ctx.fail(f"{what}: {self.why_short(len(self._pending), n, timeout)}")
        return self.take(n)

    def expect(self, *frames: Expected, what: str, timeout: float | None = None) -> None:
        """The next bytes must be exactly ``frames``, in order."""
        total = sum(len(f) for f in frames)
        self.fill(total, timeout)
        got = bytes(self._pending[:total])
        if got == b"".join(f.data for f in frames):
            del self._pending[:total]
            return
        pos = 0
        for index, frame in enumerate(frames):
            part = got[pos : pos + len(frame)]
            why = explain(part, frame)
            if why is None:
                pos += len(frame)
                continue
            which = f" (response {index + 1} of {len(frames)})" if len(frames) > 1 else ""
            if len(part) < len(frame) and frame.data.startswith(part):
                reason = f"expected {frame.label}{which}: {self.why_short(len(part), len(frame), timeout)}"
                if not part and pos == 0 and index == 0:
                    reason = f"expected {frame.label}: {self.why_short(0, len(frame), timeout)}"
            else:
                self.linger(0.05)
                actual = bytes(self._pending[pos : pos + max(len(frame), 24)])
                reason = (
                    f"expected {frame.label}{which} = {hexline(frame.data, 32)}; "
                    f"got {describe_response(actual)} ({why})"
                )
            self.ctx.fail(f"{what}: {reason}")
        self.ctx.fail(f"{what}: unexpected bytes {hexline(got)}")  # pragma: no cover - the loop fails first

    def answer_within(self, frame: Expected, seconds: float) -> str | None:
        """Wait up to ``seconds`` for ``frame``: None when exactly it arrived (and is taken), else what the broker did
        instead, in words ("still open and silent 2 s later", "closed the connection with no answer", ...).

        After a no, :meth:`waited` tells whether the broker was waiting for more bytes: silent and open, or closed
        for idleness with nothing before the unsolicited frame."""
        self.fill(len(frame), seconds)
        got = self.pending[: len(frame)]
        if got == frame.data:
            self.take(len(frame))
            return None
        if not got:
            if self.state == "eof":
                return "closed the connection with no answer"
            if self.state == "reset":
                return f"reset the connection with no answer ({self.error})"
            return f"still open and silent {seconds:.1f} s later"
        if self.closed_for_idleness():
            quiet = time.monotonic() - self.last_sent
            return f"silent until its idle close (the unsolicited frame) {quiet:.1f} s later"
        self.linger(0.05)
        then = {"eof": ", then closed the connection", "reset": ", then reset the connection"}.get(self.state, "")
        return f"answered {describe_response(self.pending)} instead{then}"

    def waited(self) -> bool:
        """True when nothing but (perhaps) an idle close came: the broker waits for bytes it was not sent."""
        return (self.open and not self._pending) or self.closed_for_idleness()

    def expect_closed(self, what: str, timeout: float | None = None) -> None:
        """Nothing more arrives and the broker ends the connection (EOF or reset) within ``timeout``."""
        silence = self.ctx.timeout if timeout is None else timeout
        if not self._pending:
            self.fill(1, silence)
        if self._pending:
            self.linger(0.05)
            self.ctx.fail(
                f"{what}: expected the broker to close the connection, but it sent "
                f"{describe_response(self.pending)} ({len(self._pending)} bytes: {hexline(self.pending, 24)})"
            )
        if self.state == "open":
            self.ctx.fail(f"{what}: expected the broker to close the connection; it is still open after {silence:g} s")

    def expect_silence(self, seconds: float, what: str, *, allow_close: bool = False) -> None:
        """No byte arrives for ``seconds`` (and the connection stays open unless ``allow_close``)."""
        if not self._pending:
            self.linger(seconds)
        if self._pending:
            self.ctx.fail(
                f"{what}: the broker sent {len(self._pending)} bytes nobody asked for: "
                f"{describe_response(self.pending)} ({hexline(self.pending, 24)})"
            )
        if not allow_close and self.state in ("eof", "reset"):
            how = "closed" if self.state == "eof" else f"reset ({self.error})"
            self.ctx.fail(f"{what}: the broker {how} the connection")


class BrokerContext:
    """Everything a broker case needs; see docs/CONFORMANCE.md, "Checking a broker"."""

    def __init__(self, case: Case, target: Target) -> None:
        self.case = case
        self.target = target
        self.connections: list[Connection] = []
        self.notes: list[str] = []
        self._cid = 0
        self._ts = 0

    @property
    def timeout(self) -> float:
        return self.target.timeout

    @property
    def capacity(self) -> int:
        """Messages one topic of the target holds (``--topic-capacity``, else the default of SEM-9)."""
        return self.target.topic_capacity or DEFAULT_CAPACITY

    @property
    def idle_margin(self) -> float | None:
        """Seconds a connection of this case may go without sending (:data:`IDLE_MARGIN` of the target's idle
        timeout); None when the target has no idle timeout given."""
        t = self.target.idle_timeout
        return None if t is None else IDLE_MARGIN * t

    def need_capacity(self, messages: int) -> None:
        """Skip the case when one topic of the target cannot hold ``messages``."""
        if self.capacity < messages:
            self.skip(f"needs a topic holding {messages} messages; the target's topic capacity is {self.capacity}")

    # -- names, ids, times ---------------------------------------------------------------

    def topic(self, label: str = "") -> str:
        """A topic name unique to this run and case (valid by SEM-2): ``<run id>.<case id>[.<label>]``."""
        name = f"{self.target.run_id}.{self.case.id}" + (f".{label}" if label else "")
        return name[:255]

    def cid(self) -> int:
        """A fresh correlation id (1, 2, ...)."""
        self._cid += 1
        return self._cid

    def ts(self) -> int:
        """A fresh timestamp: the wall clock in ms, made distinct per request."""
        self._ts += 1
        return int(time.time() * 1000) + self._ts

    # -- connections ---------------------------------------------------------------------

    def connect(self, what: str = "connect") -> Connection:
        try:
            sock = socket.create_connection((self.target.host, self.target.port), timeout=self.timeout)
        except OSError as exc:
            self.fail(f"{what}: cannot connect to {self.target.address}: {exc}")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(self, len(self.connections), sock)
        self.connections.append(conn)
        return conn

    def close_all(self) -> None:
        for conn in self.connections:
            conn.close()

    # -- setup steps (each checked; a failure says "setup") --------------------------------

    def create(self, conn: Connection, topic: str, what: str = "setup: CREATE_TOPIC") -> None:
        cid, ts = self.cid(), self.ts()
        conn.send(create_topic(cid, topic, ts), what)
        conn.expect(create_ok(cid, ts, topic), what=f"{what} {topic!r}")

    def fill_topic(
        self, conn: Connection, topic: str, payloads: Sequence[bytes], *, first_offset: int = 0, what: str = "setup"
    ) -> list[int]:
        """PRODUCE ``payloads`` (pipelined, one write) and check each answer; returns their timestamps."""
        cids = [self.cid() for _ in payloads]
        stamps = [self.ts() for _ in payloads]
        if not payloads:
            return []
        conn.send(
            b"".join(produce(c, topic, p, t) for c, p, t in zip(cids, payloads, stamps, strict=True)),
            f"{what}: PRODUCE",
        )
        conn.expect(
            *(produce_ok(c, t, first_offset + i) for i, (c, t) in enumerate(zip(cids, stamps, strict=True))),
            what=f"{what}: PRODUCE {len(payloads)} message(s) to {topic!r}",
        )
        return stamps

    def produce_many(  # noqa: PLR0913 - what to fill, then named options of the fill
        self,
        conn: Connection,
        topic: str,
        count: int,
        *,
        payload: bytes,
        timestamp: int,
        first_offset: int = 0,
        budget: float | None = None,
        what: str = "setup: filling the topic",
    ) -> tuple[Connection, int]:
        """PRODUCE up to ``count`` copies of ``payload`` in pipelined batches, each answer checked (offsets from
        ``first_offset``); stops early once ``budget`` seconds have passed. Returns the connection in use at the
        end and how many messages were stored.

        A batch starts at :data:`FILL_BATCH_FIRST` requests and grows to :data:`FILL_BATCH`; when the target has an
        idle timeout, a batch whose answers take longer than :attr:`idle_margin` halves the next one, so the
        connection never waits long for its answers. Should the broker close it for idleness all the same
        between two batches, the fill goes on on a new connection (:meth:`keep_or_reconnect`).
        """
        stored = 0
        size = FILL_BATCH_FIRST
        margin = self.idle_margin
        started = time.monotonic()
        while stored < count and (budget is None or time.monotonic() - started < budget):
            conn = self.keep_or_reconnect(conn, what)
            n = min(size, count - stored)
            cids = [self.cid() for _ in range(n)]
            sent = time.monotonic()
            conn.send(b"".join(produce(cid, topic, payload, timestamp) for cid in cids), f"{what}: PRODUCE")
            conn.expect(
                *(produce_ok(cid, timestamp, first_offset + stored + i) for i, cid in enumerate(cids)),
                what=f"{what}: PRODUCEs {first_offset + stored}..{first_offset + stored + n - 1} to {topic!r}",
            )
            took = time.monotonic() - sent
            stored += n
            if margin is not None and took > margin:
                size = max(1, size // 2)
            elif margin is None or took < margin / 4:
                size = min(FILL_BATCH, size * 2)
        return conn, stored

    def keep_or_reconnect(self, conn: Connection, what: str) -> Connection:
        """``conn``, or a new connection when the broker closed ``conn`` for idleness after its last answers.

        Between two steps of a long case, a broker with an idle timeout may close a connection of the case that
        waited for slow answers (CONN-7 counts received bytes only, and CONN-8 has the answers sent first). That
        is no fault of the broker, as long as the connection really sent nothing for the idle timeout given: the
        case goes on on a new connection and says so in a note. Any other byte, or any other close, fails the case.
        """
        conn.poll()
        if not conn.pending and conn.open:
            return conn
        if not self.closed_for_idleness(conn, what):
            quiet = time.monotonic() - conn.last_sent
            if conn.pending:
                conn.linger(0.05)
                self.fail(
                    f"{what}: the broker sent {len(conn.pending)} bytes nobody asked for on {conn.name}: "
                    f"{describe_response(conn.pending)} ({hexline(conn.pending, 24)})"
                )
            how = "closed" if conn.state == "eof" else f"reset ({conn.error})"
            self.fail(f"{what}: the broker {how} {conn.name} after its answers, {quiet:.2f} s after its last request")
        self.note(f"{what}: {conn.name} was closed for idleness; went on on a new connection")
        return self.connect(what)

    def closed_for_idleness(self, conn: Connection, what: str) -> bool:
        """True when the broker closed ``conn`` for idleness (:meth:`Connection.closed_for_idleness`), which it may do
        to a connection of the case that sent nothing for its idle timeout; fails the case when that happened
        sooner than the idle timeout given (CONN-7)."""
        conn.poll()
        quiet = time.monotonic() - conn.last_sent
        if not conn.closed_for_idleness():
            return False
        t = self.target.idle_timeout
        if t is not None and quiet < t:
            self.fail(
                f"{what}: the broker closed {conn.name} for idleness {quiet:.2f} s after it last received a byte, "
                f"before its idle timeout of {t:g} s (CONN-7)"
            )
        return True

    def new_topic(self, conn: Connection, label: str = "", payloads: Iterable[bytes] = ()) -> tuple[str, list[int]]:
        """Create a fresh topic on ``conn`` and fill it; returns its name and the messages' timestamps."""
        name = self.topic(label)
        self.create(conn, name)
        return name, self.fill_topic(conn, name, list(payloads))

    def expect_message(
        self, conn: Connection, topic: str, offset: int, timestamp: int, payload: bytes, *, what: str
    ) -> None:
        """CONSUME ``offset`` of ``topic`` on ``conn``: it must return ``payload`` stored with ``timestamp``."""
        cid = self.cid()
        conn.send(consume(cid, topic, offset, self.ts()), what)
        conn.expect(consume_ok(cid, timestamp, offset + 1, payload), what=what)

    # -- judging -------------------------------------------------------------------------

    def fail(self, reason: str) -> NoReturn:
        raise CaseFailed(reason)

    def check(self, condition: object, reason: str) -> None:
        if not condition:
            self.fail(reason)

    def skip(self, reason: str) -> NoReturn:
        raise CaseSkipped(reason)

    def note(self, text: str) -> None:
        """Information shown with the verdict, even a pass (measurements, what was observed)."""
        self.notes.append(text)
