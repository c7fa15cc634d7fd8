"""A small standalone MEGA client with switchable planted defects.

This is deliberately "another implementation": raw sockets and its own
struct packing, written from docs/PROTOCOL.md without importing anything from
this kit. With no defect it aims to follow every MUST and SHOULD of the spec;
each named defect changes exactly one behaviour, so a broken client differs
from the correct one by that one thing. A few defects only show together with
another one (a name counted in characters is only sent by a client that does
not check names first): the driver takes several, joined by ``+``.

The conformance tests use it to prove that every case catches the defect it
is about (tests/conformance/proofs.py).

One :class:`Client` serves the whole life of its driver, as in an application:
``connect`` (re)opens its connection, ``close`` closes it, and a closed client
can be connected again.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import time
from collections.abc import Callable, Collection

DEFECTS = {
    # -- the bytes of a request
    "omit-payload-length-consume": "CONSUME sent as header + offset, without payload_length",
    "omit-payload-length-create": "CREATE_TOPIC sent as header only, without payload_length",
    "payload-on-create-and-consume": "CREATE_TOPIC and CONSUME carry a 1-byte payload instead of none",
    "payload-length-includes-itself": "PRODUCE's payload_length counts its own 4 bytes too",
    "char-lengths": "lengths counted in characters of the decoded text, not bytes",
    "topic-length-little-endian": "topic_length packed little-endian",
    "payload-length-little-endian": "payload_length packed little-endian",
    "offset-little-endian": "CONSUME's offset packed little-endian",
    "lowercase-topics": "topic names sent lowercased",
    "newline-after-request": "every request followed by a newline byte, as in a text protocol",
    "timestamp-seconds": "timestamps in seconds instead of milliseconds",
    "timestamp-microseconds": "timestamps in microseconds instead of milliseconds",
    "timestamp-zero": "timestamp 0 in every request instead of the wall clock",
    "constant-cid": "correlation id 1 for every request",
    "cid-from-zero": "correlation ids count from 0",
    # -- the client's own checks and what it sends for the caller's values
    "no-name-check": "topic names are not checked before sending",
    "no-size-check": "payload sizes are not checked before sending",
    "strict-name-check": "a topic name must start with a letter or a digit",
    "sanitize-names": "characters a topic name may not hold are replaced by '_', and the name sent",
    "truncate-oversized": "a payload over 1 MiB is cut to 1 MiB and sent",
    "limits-exclusive": "the 1 MiB and 255-byte limits are taken as exclusive: exactly the limit is refused",
    "clamp-negative-offset": "a negative offset is sent as 0",
    "empty-payload-refused": "an empty payload is refused as a usage error",
    "payload-as-text": "payloads decoded as UTF-8 (invalid bytes replaced) and encoded again",
    "truncate-at-nul": "payloads cut at their first NUL byte, as C strings",
    "strip-payload": "whitespace stripped from both ends of a payload",
    "consume-advances-cursor": "consume reads from where the last consume of the topic left off, when that is further",
    # -- reading responses
    "recv-once": "each response read with a single recv(4096)",
    "no-cid-check": "the response's correlation id is not checked",
    "lax-success-flag": "any non-zero success flag taken as success",
    "echo-misread": "CREATE_TOPIC echo decoded without its 2-byte length (the reference client's bug)",
    "no-length-checks": "payload_length and topic_len of a response are trusted as announced",
    "error-codes-off-by-one": "error codes named from a table indexed from 0 (code 4 reported as code 5's name)",
    "unknown-code-protocol-error": "an error code the protocol does not define is reported as a protocol error",
    "error-code-unsigned": "the error code byte read unsigned (0xc8 is 200, not -56)",
    "code-8-ends-connection": "every NETWORK_ERROR (8), whatever its correlation id, taken as the unsolicited frame",
    "error-read-as-success-layout": "the fixed part of the request type's success layout read before the success flag",
    "offsets-from-one": "PRODUCE's offset reported one higher (offsets counted from 1)",
    "local-offsets": "PRODUCE's offset counted by the client, from 0 on each connection, not read from the answer",
    "next-offset-echoes-request": "CONSUME's next_offset reported as the offset asked for",
    "timestamp-reported-in-seconds": "CONSUME's timestamp reported in seconds",
    "discard-extra-bytes": "whatever a read brings after the response it waited for is thrown away",
    "no-idle-check": "bytes waiting while no request is pending are not looked at before the next request",
    "unsolicited-as-broker-error": "the unsolicited frame reported as broker error NETWORK_ERROR",
    "eof-truncates-payload": "an EOF in the middle of a CONSUME payload returns the bytes that came",
    "connection-errors-as-protocol": "an EOF or a reset reported as a protocol error",
    # -- timeouts
    "no-timeout": "no timeout on any socket operation",
    "short-timeout": "the timeout is a tenth of the one asked for",
    "timeout-as-protocol-error": "a timeout (connecting or waiting for an answer) reported as a protocol error",
    "refused-as-timeout": "a refused connection reported as a timeout",
    # -- the connection's life
    "broker-error-fatal": "an error response drops the connection, and the next call fails (not connected)",
    "reconnect-after-error": "an error response drops the connection; the next call reconnects",
    "keep-failed-connection": "after a protocol error or a timeout the connection stays open and in use",
    "sticky-failure": "once its connection failed, the client fails every call until close(): connect does nothing",
    "no-auto-reconnect": "after a dropped connection every call fails until connect is called",
    "no-retry": "CONSUME and CREATE_TOPIC are not retried after a dropped connection",
    "no-connect-retry": "connect gives up at the first refusal",
    "resend-produce": "a PRODUCE whose connection ended or broke before its answer is sent again on a new connection",
    "resend-produce-on-timeout": "a PRODUCE that timed out is resent on a new connection",
    "replay-last-produce": (
        "after reconnecting on its own, the client sends the last PRODUCE of the dropped connection again, in case "
        "the drop lost it"
    ),
    "connect-on-first-request": "a request before connect connects first (to the default address)",
    "handshake-on-connect": "connect sends 4 greeting bytes ('MEGA')",
    "probe-connection": "connect opens and closes a probe connection before the real one",
    "connection-per-request": "every request opens a new connection and closes it after the answer",
    "connect-keeps-socket": "connect does nothing while the client holds a socket",
    "never-close": "close() forgets the socket without closing it",
    "close-with-reset": "close() resets the connection (SO_LINGER 0) instead of a FIN",
    "close-sends-goodbye": "close() sends 6 zero bytes before closing",
    "close-requires-open-connection": "close() without an open connection is a usage error",
    "reconnect-after-close": "a call after close() reconnects",
    "closed-is-final": "a closed client cannot connect again",
}

#: Behaviours that differ from the default and still conform: each must pass the cases named for it.
ALTERNATIVES = {
    "stray-bytes-fail-next-call": (
        "bytes found waiting while nothing is pending drop the connection, and the next call fails with a "
        "connection error instead of reconnecting (CLIENT-9 allows it; CLIENT-19, a SHOULD, would reconnect)"
    ),
}

PRODUCE, CONSUME, CREATE_TOPIC = 1, 2, 3
MAX_PAYLOAD = 1_048_576
MAX_TOPIC = 255
DEFAULT_ADDRESS = ("127.0.0.1", 8080)
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,255}")
STRICT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
ERROR_NAMES = {
    1: "INVALID_REQUEST",
    2: "INVALID_MESSAGE_TYPE",
    3: "MESSAGE_TOO_LARGE",
    4: "TOPIC_NOT_FOUND",
    5: "TOPIC_ALREADY_EXISTS",
    6: "INVALID_OFFSET",
    7: "INTERNAL_ERROR",
    8: "NETWORK_ERROR",
    9: "RESOURCE_EXHAUSTED",
}
#: The fixed part of each success layout after correlation id and flag (RESP-4..6).
SUCCESS_FIXED = {PRODUCE: 12, CONSUME: 16, CREATE_TOPIC: 10}


#: Sockets "closed" by the never-close defect stay referenced here, open, for the life of the process.
LEAKED: list[socket.socket] = []


def parse_defects(text: str | None) -> frozenset[str]:
    """``"a+b"`` -> {"a", "b"}; raises ValueError for a name that is no defect or alternative."""
    names = frozenset(n for n in (text or "").split("+") if n)
    unknown = sorted(names - set(DEFECTS) - set(ALTERNATIVES))
    if unknown:
        raise ValueError(f"unknown defect(s) {unknown}")
    return names


class ClientError(Exception):
    kind = "client"


class UsageError(ClientError):
    kind = "usage"


class ConnError(ClientError):
    kind = "connection"


class TimeoutErr(ClientError):
    kind = "timeout"


class ProtoError(ClientError):
    kind = "protocol"


class BrokerError(ClientError):
    kind = "broker"

    def __init__(self, name: str, code: int) -> None:
        self.code = code
        self.name = name
        super().__init__(f"broker answered {name} ({code})")


class Client:
    def __init__(self, defects: Collection[str] = ()) -> None:
        self.defects = frozenset(defects)
        self.host, self.port = DEFAULT_ADDRESS
        self.timeout: float | None = 5.0
        self.sock: socket.socket | None = None
        self.state = "new"  # new -> open <-> broken; closed
        self.next_cid = 0 if "cid-from-zero" in self.defects else 1
        self.failed = False  # sticky-failure, broker-error-fatal, no-auto-reconnect: calls fail until connect
        self.cursors: dict[str, int] = {}  # consume-advances-cursor
        self.produced = 0  # local-offsets
        self.last_produce: tuple[str, bytes] | None = None  # replay-last-produce

    def has(self, defect: str) -> bool:
        return defect in self.defects

    # -- connection ------------------------------------------------------------------

    def connect(self, host: str | None = None, port: int | None = None, timeout: float | None = None) -> None:
        if self.state == "closed" and self.has("closed-is-final"):
            raise UsageError("the client was closed")
        if host is not None and port is not None:
            self.host, self.port = host, port
        if timeout is not None:
            self.timeout = None if self.has("no-timeout") else timeout / 10 if self.has("short-timeout") else timeout
        if self.failed and self.has("sticky-failure"):
            self.state = "open"
            return
        if self.sock is not None and self.has("connect-keeps-socket"):
            self.state = "open"
            return
        self._close_socket()
        if self.has("probe-connection"):
            self._open_socket().close()
        self.sock = self._open_socket()
        self.failed = False
        self.produced = 0
        self.state = "open"
        if self.has("handshake-on-connect"):
            self.sock.sendall(b"MEGA")

    def _open_socket(self) -> socket.socket:
        delays = [] if self.has("no-connect-retry") else [0.05, 0.1, 0.2, 0.4]
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                break
            except TimeoutError as exc:
                if self.has("timeout-as-protocol-error"):
                    raise ProtoError(f"connect: no answer ({exc})") from exc
                raise TimeoutErr(f"connect timed out: {exc}") from exc
            except (ConnectionRefusedError, ConnectionResetError) as exc:
                if self.has("sticky-failure"):
                    self.failed = True
                    raise ConnError(f"connect failed: {exc}") from exc
                if not delays:
                    if self.has("refused-as-timeout"):
                        raise TimeoutErr(f"connect failed: {exc}") from exc
                    raise ConnError(f"connect failed: {exc}") from exc
                time.sleep(delays.pop(0))
            except OSError as exc:
                raise ConnError(f"connect failed: {exc}") from exc
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _drop(self) -> None:
        self._close_socket()
        if self.state == "open":
            self.state = "broken"
        if self.has("sticky-failure") or self.has("no-auto-reconnect"):
            self.failed = True

    def _close_socket(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None

    def close(self) -> None:
        if self.sock is None and self.has("close-requires-open-connection"):
            self.state = "closed"
            raise UsageError("not connected")
        if self.sock is not None:
            if self.has("never-close"):
                LEAKED.append(self.sock)
            elif self.has("close-with-reset"):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.sock.close()
            else:
                with contextlib.suppress(OSError):
                    if self.has("close-sends-goodbye"):
                        self.sock.sendall(bytes(6))
                    self.sock.shutdown(socket.SHUT_RDWR)
                self.sock.close()
        self.sock = None
        self.failed = False
        self.state = "closed"

    def _ensure(self) -> socket.socket:
        if self.state == "closed" and self.has("reconnect-after-close"):
            self.connect()
        if self.state in ("new", "closed"):
            if self.has("connect-on-first-request") and self.state == "new":
                self.connect()
            else:
                raise UsageError(f"client is {self.state}: call connect first")
        if self.failed:
            raise ConnError("the connection failed earlier: not connected")
        if self.has("connection-per-request"):
            self._close_socket()
        if self.sock is not None and not self.has("no-idle-check") and self._dead_or_dirty(self.sock):
            self._drop()
            if self.has("stray-bytes-fail-next-call"):
                raise ConnError("bytes arrived while no request was pending: the connection was dropped")
            if self.failed:
                raise ConnError("the connection was dropped")
        if self.sock is None:
            self.sock = self._open_socket()  # the next call after a drop reconnects (CLIENT-19)
            self.produced = 0
            self.state = "open"
            if self.has("replay-last-produce") and self.last_produce is not None:
                topic, payload = self.last_produce
                self.last_produce = None
                with contextlib.suppress(ClientError):
                    self._exchange_once(PRODUCE, topic, payload)
        assert self.sock is not None
        return self.sock

    @staticmethod
    def _dead_or_dirty(sock: socket.socket) -> bool:
        """Bytes (or EOF) waiting while nothing is pending: the unsolicited frame or a stray frame."""
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    # -- encoding ----------------------------------------------------------------------

    def _len(self, data: bytes) -> int:
        if self.has("char-lengths"):
            try:
                return len(data.decode("utf-8"))
            except UnicodeDecodeError:
                return len(data)
        return len(data)

    def _timestamp(self) -> int:
        if self.has("timestamp-seconds"):
            return int(time.time())
        if self.has("timestamp-microseconds"):
            return time.time_ns() // 1000
        if self.has("timestamp-zero"):
            return 0
        return time.time_ns() // 1_000_000

    def _cid(self) -> int:
        if self.has("constant-cid"):
            return 1
        cid = self.next_cid
        self.next_cid = 1 if cid >= 2**31 - 1 else cid + 1
        return cid

    def _frame(self, cid: int, mtype: int, topic: str, payload: bytes, offset: int) -> bytes:
        name = topic.encode("utf-8")
        if self.has("lowercase-topics"):
            name = name.lower()
        topic_len = "<i" if self.has("topic-length-little-endian") else ">i"
        head = struct.pack(">iB", cid, mtype) + struct.pack(topic_len, self._len(name)) + name
        head += struct.pack(">q", self._timestamp())
        if mtype == CONSUME:
            head += struct.pack("<i" if self.has("offset-little-endian") else ">i", offset)
            if self.has("omit-payload-length-consume"):
                return head
        if mtype == CREATE_TOPIC and self.has("omit-payload-length-create"):
            return head
        if mtype != PRODUCE and self.has("payload-on-create-and-consume"):
            payload = b"\x00"
        length = self._len(payload) + (4 if mtype == PRODUCE and self.has("payload-length-includes-itself") else 0)
        frame = head + struct.pack("<i" if self.has("payload-length-little-endian") else ">i", length) + payload
        return frame + b"\n" if self.has("newline-after-request") else frame

    # -- reading -----------------------------------------------------------------------

    def _reader(self, sock: socket.socket) -> Callable[[int], bytes]:
        if self.has("recv-once"):
            data = sock.recv(4096)
            if not data:
                raise ConnError("connection closed by the broker")
            buf = memoryview(data)
            pos = 0

            def take(n: int) -> bytes:
                nonlocal pos
                if pos + n > len(buf):
                    raise ProtoError(f"response shorter than expected ({len(buf)} bytes)")
                out = bytes(buf[pos : pos + n])
                pos += n
                return out

            return take

        def exact(n: int) -> bytes:
            out = bytearray()
            while len(out) < n:
                chunk = sock.recv(min(n - len(out), 65536))
                if not chunk:
                    if self.has("eof-truncates-payload") and out:
                        return bytes(out)
                    raise ConnError("connection closed by the broker in the middle of a response")
                out += chunk
            return bytes(out)

        return exact

    def _error(self, code: int) -> BrokerError:
        if self.has("error-codes-off-by-one"):
            code += 1
        name = ERROR_NAMES.get(code)
        if name is None and self.has("unknown-code-protocol-error"):
            raise ProtoError(f"unknown error code {code}")
        return BrokerError(name or f"UNKNOWN_{code}", code)

    def _exchange(self, mtype: int, topic: str, payload: bytes = b"", offset: int = 0) -> tuple:  # type: ignore[type-arg]
        try:
            result = self._exchange_once(mtype, topic, payload, offset)
        except BrokerError:
            if self.has("broker-error-fatal") or self.has("reconnect-after-error"):
                self._drop()
                self.failed = self.has("broker-error-fatal")
            raise
        if self.has("discard-extra-bytes"):
            self._discard_rest()
        if self.has("connection-per-request"):
            self._close_socket()
        return result

    def _exchange_once(self, mtype: int, topic: str, payload: bytes = b"", offset: int = 0) -> tuple:  # type: ignore[type-arg]
        sock = self._ensure()
        cid = self._cid()
        try:
            sock.sendall(self._frame(cid, mtype, topic, payload, offset))
            if mtype == PRODUCE:
                self.last_produce = (topic, payload)
            take = self._reader(sock)
            if self.has("error-read-as-success-layout"):
                head = take(5 + SUCCESS_FIXED[mtype])
                rcid, success = struct.unpack(">ib", head[:5])
                if success == 0:
                    raise self._error(head[5])
                take = _prefixed(head[5:], take)
            else:
                rcid, success = struct.unpack(">ib", take(5))
            if rcid == 0 and success == 0:
                code = take(1)[0]
                if code == 8 and not self.has("unsolicited-as-broker-error"):
                    raise ConnError("the broker closed the connection (unsolicited NETWORK_ERROR)")
                if not self.has("no-cid-check") and cid != 0 and code != 8:
                    raise ProtoError(f"response correlation id 0, expected {cid}")
                raise self._error(code)
            if rcid != cid and not self.has("no-cid-check"):
                raise ProtoError(f"response correlation id {rcid}, expected {cid}")
            if success == 0:
                raw = take(1)
                code = raw[0] if self.has("error-code-unsigned") else struct.unpack(">b", raw)[0]  # an i8
                if code == 8 and self.has("code-8-ends-connection"):
                    raise ConnError("the broker closed the connection (NETWORK_ERROR)")
                raise self._error(code)
            if success != 1 and not self.has("lax-success-flag"):
                raise ProtoError(f"success flag {success}")
            (ts,) = struct.unpack(">q", take(8))
            if mtype == PRODUCE:
                (offset,) = struct.unpack(">i", take(4))
                if self.has("offsets-from-one"):
                    offset += 1
                if self.has("local-offsets"):
                    offset, self.produced = self.produced, self.produced + 1
                return (ts, offset)
            if mtype == CONSUME:
                nxt, plen = struct.unpack(">ii", take(8))
                if not 0 <= plen <= MAX_PAYLOAD - self.has("limits-exclusive") and not self.has("no-length-checks"):
                    raise ProtoError(f"payload_length {plen}")
                if self.has("next-offset-echoes-request"):
                    nxt = offset
                if self.has("timestamp-reported-in-seconds"):
                    ts //= 1000
                return (ts, nxt, take(plen))
            raw_len = take(2)
            (tlen,) = struct.unpack(">H", raw_len)
            if tlen > MAX_TOPIC - self.has("limits-exclusive") and not self.has("no-length-checks"):
                raise ProtoError(f"echo length {tlen}")
            name = take(tlen)
            if self.has("echo-misread"):
                name = raw_len + name
            return (ts, name.decode("utf-8", "replace"))
        except BrokerError:
            raise
        except ProtoError:
            if not self.has("keep-failed-connection"):
                self._drop()
            raise
        except ConnError as exc:
            self._drop()
            if self.has("connection-errors-as-protocol"):
                raise ProtoError(f"the stream ended: {exc}") from exc
            raise
        except TimeoutError as exc:
            if not self.has("keep-failed-connection"):
                self._drop()
            if self.has("timeout-as-protocol-error"):
                raise ProtoError(f"no answer within {self.timeout} s: the stream is broken") from exc
            raise TimeoutErr(f"no answer within {self.timeout} s") from exc
        except OSError as exc:
            self._drop()
            if self.has("connection-errors-as-protocol"):
                raise ProtoError(f"the stream broke: {exc}") from exc
            raise ConnError(f"connection failed: {exc}") from exc

    def _discard_rest(self) -> None:
        """discard-extra-bytes: read whatever is there right now and throw it away."""
        sock = self.sock
        if sock is None:
            return
        with contextlib.suppress(OSError):
            while select.select([sock], [], [], 0)[0] and sock.recv(65536, socket.MSG_DONTWAIT):
                pass

    def _retrying(self, mtype: int, topic: str, payload: bytes = b"", offset: int = 0) -> tuple:  # type: ignore[type-arg]
        """CONSUME and CREATE_TOPIC are safe to repeat after a dropped connection (CLIENT-20)."""
        try:
            return self._exchange(mtype, topic, payload, offset)
        except ConnError:
            if self.state != "broken" or self.has("no-retry"):
                raise
            return self._exchange(mtype, topic, payload, offset)

    # -- operations --------------------------------------------------------------------

    def _check_topic(self, topic: str) -> str:
        if self.has("sanitize-names"):
            topic = re.sub(r"[^A-Za-z0-9._-]", "_", topic)
        if self.has("no-name-check"):
            return topic
        longest = MAX_TOPIC - self.has("limits-exclusive")
        pattern = STRICT_NAME_RE if self.has("strict-name-check") else NAME_RE
        if pattern.fullmatch(topic) is None or len(topic) > longest:
            raise UsageError(f"invalid topic name {topic!r}")
        return topic

    def create_topic(self, topic: str) -> str:
        return str(self._retrying(CREATE_TOPIC, self._check_topic(topic))[1])

    def produce(self, topic: str, payload: bytes) -> int:
        topic = self._check_topic(topic)
        if len(payload) > MAX_PAYLOAD and self.has("truncate-oversized"):
            payload = payload[:MAX_PAYLOAD]
        if len(payload) > MAX_PAYLOAD - self.has("limits-exclusive") and not self.has("no-size-check"):
            raise UsageError(f"payload of {len(payload)} bytes is over the 1 MiB limit")
        if not payload and self.has("empty-payload-refused"):
            raise UsageError("empty payload")
        if self.has("payload-as-text"):
            payload = payload.decode("utf-8", "replace").encode("utf-8")
        if self.has("truncate-at-nul"):
            payload = payload.split(b"\x00", 1)[0]
        if self.has("strip-payload"):
            payload = payload.strip()
        try:
            return int(self._exchange(PRODUCE, topic, payload)[1])
        except TimeoutErr:
            if not self.has("resend-produce-on-timeout"):
                raise
        except (ConnError, ProtoError):
            if not self.has("resend-produce") or self.failed:
                raise
        self._close_socket()
        return int(self._exchange(PRODUCE, topic, payload)[1])

    def consume(self, topic: str, offset: int) -> tuple[bytes, int, int]:
        topic = self._check_topic(topic)
        if offset < 0 and self.has("clamp-negative-offset"):
            offset = 0
        if self.has("consume-advances-cursor"):
            offset = max(offset, self.cursors.get(topic, 0))
        ts, nxt, payload = self._retrying(CONSUME, topic, b"", offset)
        self.cursors[topic] = offset + 1
        return payload, nxt, ts


def _prefixed(first: bytes, rest: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """A reader that hands out ``first`` before reading on with ``rest``."""
    held = bytearray(first)

    def take(n: int) -> bytes:
        out = bytes(held[:n])
        del held[:n]
        return out + rest(n - len(out)) if len(out) < n else out

    return take
