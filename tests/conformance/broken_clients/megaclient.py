"""A small standalone MEGA client with switchable planted defects.

This is deliberately "another implementation": raw sockets and its own
struct packing, written from docs/PROTOCOL.md without importing anything from
this kit. With ``defect=None`` it aims to follow every MUST of the spec; each
named defect changes exactly one behaviour, so a broken client differs from the
correct one by that one thing. The conformance tests use it to prove that the
suite catches each defect (tests/conformance/test_broken_clients.py).
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import time

DEFECTS = {
    "omit-payload-length-consume": "CONSUME sent as header + offset, without payload_length",
    "omit-payload-length-create": "CREATE_TOPIC sent as header only, without payload_length",
    "recv-once": "each response read with a single recv(4096)",
    "char-lengths": "lengths counted in characters of the decoded text, not bytes",
    "little-endian": "topic_length and payload_length packed little-endian",
    "no-cid-check": "the response's correlation id is not checked",
    "no-timeout": "no timeout on any socket operation",
    "never-close": "close() forgets the socket without closing it",
    "timestamp-seconds": "timestamps in seconds instead of milliseconds",
    "timestamp-microseconds": "timestamps in microseconds instead of milliseconds",
    "discard-extra-bytes": "whatever a read brings after the response it waited for is thrown away",
    "echo-misread": "CREATE_TOPIC echo decoded without its 2-byte length (the reference client's bug)",
    "constant-cid": "correlation id 1 for every request",
    "lax-success-flag": "any non-zero success flag taken as success",
    "resend-produce-on-timeout": "a PRODUCE that timed out is resent on a new connection",
    "no-idle-check": "bytes waiting while no request is pending are not looked at before the next request",
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
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,255}")
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


#: Sockets "closed" by the never-close defect stay referenced here, open, for the life of the process.
LEAKED: list[socket.socket] = []


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

    def __init__(self, code: int) -> None:
        self.code = code
        self.name = ERROR_NAMES.get(code, f"UNKNOWN_{code}")
        super().__init__(f"broker answered {self.name} ({code})")


class Client:
    def __init__(self, host: str, port: int, timeout: float, defect: str | None = None) -> None:
        if defect is not None and defect not in DEFECTS and defect not in ALTERNATIVES:
            raise ValueError(f"unknown defect {defect!r}")
        self.host, self.port, self.defect = host, port, defect
        self.timeout = None if defect == "no-timeout" else timeout
        self.sock: socket.socket | None = None
        self.state = "new"  # new -> open <-> broken; closed
        self.next_cid = 1

    # -- connection ------------------------------------------------------------------

    def connect(self) -> None:
        delays = [0.05, 0.1, 0.2, 0.4]
        while True:
            try:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
                break
            except TimeoutError as exc:
                raise TimeoutErr(f"connect timed out: {exc}") from exc
            except (ConnectionRefusedError, ConnectionResetError) as exc:
                if not delays:
                    raise ConnError(f"connect failed: {exc}") from exc
                time.sleep(delays.pop(0))
            except OSError as exc:
                raise ConnError(f"connect failed: {exc}") from exc
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.state = "open"

    def _drop(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        if self.state == "open":
            self.state = "broken"

    def close(self) -> None:
        if self.sock is not None:
            if self.defect == "never-close":
                LEAKED.append(self.sock)
            else:
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
                self.sock.close()
        self.sock = None
        self.state = "closed"

    def _ensure(self) -> socket.socket:
        if self.state in ("new", "closed"):
            raise UsageError(f"client is {self.state}: call connect first")
        if self.sock is not None and self.defect != "no-idle-check" and self._dead_or_dirty(self.sock):
            self._drop()
            if self.defect == "stray-bytes-fail-next-call":
                raise ConnError("bytes arrived while no request was pending: the connection was dropped")
        if self.sock is None:
            self.connect()  # the next call after a drop reconnects (CLIENT-19)
        assert self.sock is not None
        return self.sock

    @staticmethod
    def _dead_or_dirty(sock: socket.socket) -> bool:
        """Bytes (or EOF) waiting while nothing is pending: the unsolicited frame or a stray frame."""
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    # -- encoding ----------------------------------------------------------------------

    def _len(self, data: bytes) -> int:
        if self.defect == "char-lengths":
            try:
                return len(data.decode("utf-8"))
            except UnicodeDecodeError:
                return len(data)
        return len(data)

    def _i32_len(self, n: int) -> bytes:
        return struct.pack("<i" if self.defect == "little-endian" else ">i", n)

    def _timestamp(self) -> int:
        if self.defect == "timestamp-seconds":
            return int(time.time())
        if self.defect == "timestamp-microseconds":
            return time.time_ns() // 1000
        return time.time_ns() // 1_000_000

    def _cid(self) -> int:
        if self.defect == "constant-cid":
            return 1
        cid = self.next_cid
        self.next_cid = 1 if cid >= 2**31 - 1 else cid + 1
        return cid

    def _frame(self, cid: int, mtype: int, topic: str, payload: bytes, offset: int) -> bytes:
        name = topic.encode("utf-8")
        head = struct.pack(">iB", cid, mtype) + self._i32_len(self._len(name)) + name
        head += struct.pack(">q", self._timestamp())
        if mtype == CONSUME:
            head += struct.pack(">i", offset)
            if self.defect == "omit-payload-length-consume":
                return head
        if mtype == CREATE_TOPIC and self.defect == "omit-payload-length-create":
            return head
        return head + self._i32_len(self._len(payload)) + payload

    # -- reading -----------------------------------------------------------------------

    def _reader(self, sock: socket.socket):  # type: ignore[no-untyped-def]
        if self.defect == "recv-once":
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
                    raise ConnError("connection closed by the broker in the middle of a response")
                out += chunk
            return bytes(out)

        return exact

    def _exchange(self, mtype: int, topic: str, payload: bytes = b"", offset: int = 0) -> tuple:  # type: ignore[type-arg]
        result = self._exchange_once(mtype, topic, payload, offset)
        if self.defect == "discard-extra-bytes":
            self._discard_rest()
        return result

    def _exchange_once(self, mtype: int, topic: str, payload: bytes = b"", offset: int = 0) -> tuple:  # type: ignore[type-arg]
        sock = self._ensure()
        cid = self._cid()
        try:
            sock.sendall(self._frame(cid, mtype, topic, payload, offset))
            take = self._reader(sock)
            rcid, success = struct.unpack(">ib", take(5))
            if rcid == 0 and success == 0:
                code = take(1)[0]
                if code == 8:
                    raise ConnError("the broker closed the connection (unsolicited NETWORK_ERROR)")
                if self.defect != "no-cid-check" and cid != 0:
                    raise ProtoError(f"response correlation id 0, expected {cid}")
                raise BrokerError(code)
            if rcid != cid and self.defect != "no-cid-check":
                raise ProtoError(f"response correlation id {rcid}, expected {cid}")
            if success == 0:
                raise BrokerError(struct.unpack(">b", take(1))[0])  # error_code is an i8
            if success != 1 and self.defect != "lax-success-flag":
                raise ProtoError(f"success flag {success}")
            (ts,) = struct.unpack(">q", take(8))
            if mtype == PRODUCE:
                return (ts, struct.unpack(">i", take(4))[0])
            if mtype == CONSUME:
                nxt, plen = struct.unpack(">ii", take(8))
                if not 0 <= plen <= MAX_PAYLOAD:
                    raise ProtoError(f"payload_length {plen}")
                return (ts, nxt, take(plen))
            raw_len = take(2)
            (tlen,) = struct.unpack(">H", raw_len)
            if tlen > MAX_TOPIC:
                raise ProtoError(f"echo length {tlen}")
            name = take(tlen)
            if self.defect == "echo-misread":
                name = raw_len + name
            return (ts, name.decode("utf-8", "replace"))
        except BrokerError:
            raise
        except ProtoError:
            self._drop()
            raise
        except ConnError:
            self._drop()
            raise
        except TimeoutError as exc:
            self._drop()
            raise TimeoutErr(f"no answer within {self.timeout} s") from exc
        except OSError as exc:
            self._drop()
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
            if self.state != "broken":
                raise
            return self._exchange(mtype, topic, payload, offset)

    # -- operations --------------------------------------------------------------------

    @staticmethod
    def _check_topic(topic: str) -> None:
        if NAME_RE.fullmatch(topic) is None:
            raise UsageError(f"invalid topic name {topic!r}")

    def create_topic(self, topic: str) -> str:
        self._check_topic(topic)
        return str(self._retrying(CREATE_TOPIC, topic)[1])

    def produce(self, topic: str, payload: bytes) -> int:
        self._check_topic(topic)
        if len(payload) > MAX_PAYLOAD:
            raise UsageError(f"payload of {len(payload)} bytes is over the 1 MiB limit")
        try:
            return int(self._exchange(PRODUCE, topic, payload)[1])
        except TimeoutErr:
            if self.defect != "resend-produce-on-timeout":
                raise
            return int(self._exchange(PRODUCE, topic, payload)[1])

    def consume(self, topic: str, offset: int) -> tuple[bytes, int, int]:
        self._check_topic(topic)
        ts, nxt, payload = self._retrying(CONSUME, topic, b"", offset)
        return payload, nxt, ts
