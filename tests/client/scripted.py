"""A scripted broker: a real TCP peer that sends exactly the bytes a test tells it to.

The mock broker answers correctly; the client must also cope with brokers
that do not (a wrong correlation id, one byte at a time, vanishing mid-answer,
never answering). :class:`ScriptedBroker` listens on 127.0.0.1 and runs
``script(peer)`` in a thread for each connection it accepts; the script reads
requests with :meth:`Peer.request` and writes whatever it likes.
:func:`answer` gives the correct answer to a request, for scripts that
misbehave only some of the time.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

from mega_client.protocol import (
    ConsumeRequest,
    CreateTopicRequest,
    ErrorCode,
    ProduceRequest,
    Request,
    RequestDecoder,
    encode_consume_ok,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
)

Script = Callable[["Peer"], None]

#: The broker's unsolicited frame: correlation id 0, NETWORK_ERROR.
UNSOLICITED = bytes.fromhex("000000000008")


class Topics:
    """A broker's state, for :func:`answer`: topic -> [(timestamp, payload)]."""

    def __init__(self) -> None:
        self.logs: dict[str, list[tuple[int, bytes]]] = {}
        self.lock = threading.Lock()


def answer(request: Request, topics: Topics) -> bytes:
    """What a correct broker answers to ``request``."""
    cid = request.correlation_id
    with topics.lock:
        log = topics.logs.get(request.topic)
        if isinstance(request, CreateTopicRequest):
            if log is not None:
                return encode_error(cid, ErrorCode.TOPIC_ALREADY_EXISTS)
            topics.logs[request.topic] = []
            return encode_create_topic_ok(cid, request.timestamp, request.topic)
        if log is None:
            return encode_error(cid, ErrorCode.TOPIC_NOT_FOUND)
        if isinstance(request, ProduceRequest):
            log.append((request.timestamp, request.payload))
            return encode_produce_ok(cid, request.timestamp, len(log) - 1)
        assert isinstance(request, ConsumeRequest)
        if not 0 <= request.offset < len(log):
            return encode_error(cid, ErrorCode.INVALID_OFFSET)
        ts, payload = log[request.offset]
        return encode_consume_ok(cid, ts, request.offset + 1, payload)


class Peer:
    """The broker's end of one accepted connection."""

    def __init__(self, sock: socket.socket, index: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each send its own segment
        self.sock = sock
        self.index = index
        self.received = bytearray()
        self.requests: list[Request] = []
        self.eof = False
        self._decoder = RequestDecoder()

    def request(self, timeout: float = 5.0) -> Request | None:
        """The next request, or ``None`` when the client closed (or ``timeout`` passed)."""
        deadline = time.monotonic() + timeout
        while True:
            req = self._decoder.next_request()
            if req is not None:
                self.requests.append(req)
                return req
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.eof:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except (TimeoutError, OSError):
                return None
            if not data:
                self.eof = True
                return None
            self.received += data
            self._decoder.feed(data)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_in_pieces(self, data: bytes, size: int = 1, pause: float = 0.0) -> None:
        """Send ``data`` in pieces of ``size`` bytes, each its own TCP segment."""
        for i in range(0, len(data), size):
            self.sock.sendall(data[i : i + size])
            if pause:
                time.sleep(pause)

    def serve(self, topics: Topics, count: int | None = None, timeout: float = 5.0) -> None:
        """Answer requests correctly: ``count`` of them, or until the client closes."""
        served = 0
        while count is None or served < count:
            req = self.request(timeout)
            if req is None:
                return
            self.send(answer(req, topics))
            served += 1

    def wait_eof(self, timeout: float = 5.0) -> bool:
        """Read (and keep) everything until the client closes; True if it did in time."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                return False
            except OSError:
                return True
            if not data:
                self.eof = True
            self.received += data
            self._decoder.feed(data)
            while (req := self._decoder.next_request()) is not None:
                self.requests.append(req)
        return True

    def close(self) -> None:
        """Close gracefully: FIN."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        self.sock.close()

    def reset(self) -> None:
        """Close abortively: RST."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class ScriptedBroker:
    """Listens on 127.0.0.1:<ephemeral>; runs ``script(peer)`` per connection, in a thread."""

    def __init__(self, script: Script | list[Script]) -> None:
        self._scripts = script if isinstance(script, list) else None
        self._script = script if not isinstance(script, list) else None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> ScriptedBroker:
        self._accepter.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        for peer in self.peers:
            peer.sock.close()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for every script started so far to finish."""
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    @property
    def connections(self) -> int:
        return len(self.peers)

    @property
    def received(self) -> bytes:
        """Every byte received, all connections."""
        return b"".join(bytes(p.received) for p in self.peers)

    def requests(self) -> list[Request]:
        return [r for p in self.peers for r in p.requests]

    def _accept_loop(self) -> None:
        while not self._closing:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            peer = Peer(sock, len(self.peers))
            self.peers.append(peer)
            if self._scripts is not None:
                script = self._scripts[min(peer.index, len(self._scripts) - 1)]
            else:
                assert self._script is not None
                script = self._script
            thread = threading.Thread(target=self._run, args=(script, peer), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, script: Script, peer: Peer) -> None:
        try:
            script(peer)
        except OSError:
            pass  # the client went away: part of many scripts
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            if not self._closing:
                # Leave the socket for the script's own close/reset; just make sure it ends.
                with contextlib.suppress(OSError):
                    peer.sock.shutdown(socket.SHUT_WR)
