"""BrokerProtocol: one asyncio.Protocol per connection, the broker's hot path.

``data_received`` feeds the codec's :class:`RequestDecoder`, answers every
complete request in order, and writes all the answers of one read with one
``transport.write``. When the transport's buffer goes over the high-water mark
(a client that does not read its answers), reading is paused and the requests
already buffered wait; ``resume_writing`` picks them up again. So a connection
holds at most one read's worth of requests plus about one batch of answers.

The order of checks per request (docs/PROTOCOL.md; see the package docstring):
frame errors from the decoder (fatal: answer, then close), MESSAGE_TOO_LARGE
(the payload is skipped as it streams in), topic name / UTF-8, missing or
existing topic, offset / capacity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
import traceback
from typing import TYPE_CHECKING, cast

from mega_client.protocol import (
    ConsumeRequest,
    ErrorCode,
    MessageType,
    ProduceRequest,
    RemoteProtocolError,
    Request,
    RequestDecoder,
    encode_create_topic_ok,
    topic_name_problem,
)

if TYPE_CHECKING:
    from ._record import ConnectionRecord
    from ._state import BrokerState

log = logging.getLogger("mock_broker")

_ERROR = struct.Struct(">ibb")
_PRODUCE_OK = struct.Struct(">ibqi")
_CONSUME_OK_HEAD = struct.Struct(">ibqii")

_INVALID_REQUEST = int(ErrorCode.INVALID_REQUEST)
_TOPIC_NOT_FOUND = int(ErrorCode.TOPIC_NOT_FOUND)
_TOPIC_ALREADY_EXISTS = int(ErrorCode.TOPIC_ALREADY_EXISTS)
_INVALID_OFFSET = int(ErrorCode.INVALID_OFFSET)
_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_RESOURCE_EXHAUSTED = int(ErrorCode.RESOURCE_EXHAUSTED)

#: The unsolicited frame sent to an idle connection before it is closed.
IDLE_FRAME = _ERROR.pack(0, 0, int(ErrorCode.NETWORK_ERROR))

#: A closing connection whose peer does not take its last bytes is aborted after this long.
CLOSE_GRACE_SECONDS = 5.0

#: How long a connection closed by the broker keeps reading (and discarding) after its FIN.
LINGER_SECONDS = 2.0


class BrokerProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: BrokerState) -> None:
        cfg = state.config
        self._state = state
        self._logs = state.store.logs
        self._max_messages = cfg.max_messages_per_topic
        self._max_topics = cfg.max_topics
        self._reference = cfg.reference
        self._high_water = cfg.write_buffer_high_water
        self._idle_timeout = cfg.effective_idle_timeout
        self._decoder = RequestDecoder(max_payload_bytes=cfg.max_payload_bytes, max_topic_bytes=cfg.max_topic_bytes)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.record: ConnectionRecord | None = None
        self._recording = cfg.record
        self._record_limit = cfg.record_bytes_limit
        self._record_requests_limit = cfg.record_requests_limit
        self._trace = False
        self._closing = False
        self._write_paused = False
        self._last_rx = 0.0
        self._idle_handle: asyncio.TimerHandle | None = None
        self._grace_handle: asyncio.TimerHandle | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._close_deferred = False
        self._peer_eof = False

    # -- inspection -------------------------------------------------------------------

    @property
    def write_buffer_size(self) -> int:
        """Bytes of answers buffered in the transport, not yet taken by the kernel."""
        t = self._transport
        return 0 if t is None else t.get_write_buffer_size()

    @property
    def read_buffer_size(self) -> int:
        """Bytes received and not yet decoded (at most about one read of requests)."""
        return self._decoder.buffered

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)
        self._transport = t
        state = self._state
        sock = t.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not TCP
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t.set_write_buffer_limits(high=self._high_water, low=self._high_water // 4)
        peer = t.get_extra_info("peername")
        self.record = record = state.open_connection(self, peer[:2] if peer else None)
        self._trace = log.isEnabledFor(logging.DEBUG)
        if self._trace:
            log.debug("conn %d from %s opened", record.id, _fmt_peer(peer))
        if len(state.live) > state.config.max_connections:
            log.warning("conn %d refused: %d connections is the limit", record.id, state.config.max_connections)
            self._close("max-connections")
            return
        self._last_rx = self._loop.time()
        if self._idle_timeout is not None:
            self._idle_handle = self._loop.call_later(self._idle_timeout, self._idle_check)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._last_rx = self._loop.time()
        record = self.record
        assert record is not None
        record.bytes_received += len(data)
        if self._recording:
            _append_capped(record, "_received", data, self._record_limit)
        self._decoder.feed(data)
        self._process()

    def eof_received(self) -> bool:
        # Answers already buffered still go out (transport.close flushes them; CONN-13).
        self._peer_eof = True
        if self._closing:
            if self._transport is not None:
                self._transport.close()
        else:
            self._close("peer closed")
        return True

    def pause_writing(self) -> None:
        self._write_paused = True
        t = self._transport
        if t is not None and not self._closing:
            t.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        t = self._transport
        if t is not None and not self._closing:
            t.resume_reading()
            self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (self._idle_handle, self._grace_handle, self._linger_handle):
            if handle is not None:
                handle.cancel()
        self._idle_handle = self._grace_handle = self._linger_handle = None
        record = self.record
        if record is None:
            return
        if not self._closing:
            self._closing = True
            record.close_reason = f"connection lost: {exc}" if exc else "peer closed"
        record.closed_at = time.time()
        self._state.connection_closed(record.id)
        log.info(
            "conn %d %s closed after %.3fs (%s): %d requests, %d B in, %d B out",
            record.id,
            _fmt_peer(record.peer),
            record.closed_at - record.opened_at,
            record.close_reason,
            record.request_count,
            record.bytes_received,
            record.bytes_sent,
        )

    # -- the hot path -----------------------------------------------------------------

    def _process(self) -> None:
        """Answer every complete request buffered, in order, batching the writes."""
        decoder = self._decoder
        handle = self._handle
        record = self.record
        assert record is not None
        out: list[bytes] = []
        size = 0
        while not (self._write_paused or self._closing):
            try:
                req = decoder.next_request()
            except RemoteProtocolError as exc:
                record.request_count += 1
                if not self._decode_error(exc, out):
                    break
                continue
            if req is None:
                break
            record.request_count += 1
            if self._recording:
                if len(record.requests) < self._record_requests_limit:
                    record.requests.append(req)
                else:
                    record.requests_truncated = True
            if self._trace:
                log.debug("conn %d request %r", record.id, req)
            try:
                size += handle(req, out)
            except Exception:
                size += self._internal_error(req, out)
            if size >= self._high_water:
                self._send(b"".join(out))
                out.clear()
                size = 0
        if out:
            self._send(b"".join(out))
        if self._close_deferred:
            self._finish_close()

    def _handle(self, req: Request, out: list[bytes]) -> int:
        """Append the answer to ``req`` to ``out``; return its size."""
        cid = req.correlation_id
        cls = type(req)
        if cls is ProduceRequest:
            log_ = self._logs.get(req.topic)
            if log_ is None:
                frame = _ERROR.pack(cid, 0, self._missing_topic_code(req.topic))
            elif len(log_) >= self._max_messages:
                frame = _ERROR.pack(cid, 0, _RESOURCE_EXHAUSTED)
            else:
                log_.append((req.timestamp, cast(ProduceRequest, req).payload))
                frame = _PRODUCE_OK.pack(cid, 1, req.timestamp, len(log_) - 1)
            out.append(frame)
            return len(frame)
        if cls is ConsumeRequest:
            log_ = self._logs.get(req.topic)
            if log_ is None:
                frame = _ERROR.pack(cid, 0, self._missing_topic_code(req.topic))
            else:
                offset = cast(ConsumeRequest, req).offset
                if offset < 0 or offset >= len(log_):
                    frame = _ERROR.pack(cid, 0, _INVALID_OFFSET)
                else:
                    ts, payload = log_[offset]
                    out.append(_CONSUME_OK_HEAD.pack(cid, 1, ts, offset + 1, len(payload)))
                    out.append(payload)
                    return 21 + len(payload)
            out.append(frame)
            return len(frame)
        # CREATE_TOPIC
        name = req.topic
        logs = self._logs
        if topic_name_problem(name) is not None:
            frame = _ERROR.pack(cid, 0, _INTERNAL_ERROR if self._reference else _INVALID_REQUEST)
        elif name in logs:
            frame = _ERROR.pack(cid, 0, _TOPIC_ALREADY_EXISTS)
        elif len(logs) >= self._max_topics:
            frame = _ERROR.pack(cid, 0, _RESOURCE_EXHAUSTED)
        else:
            logs[name] = []
            frame = encode_create_topic_ok(cid, req.timestamp, name)
        out.append(frame)
        return len(frame)

    def _missing_topic_code(self, name: str) -> int:
        """PRODUCE/CONSUME on a topic that does not exist: a bad name is INVALID_REQUEST (spec)."""
        if self._reference or topic_name_problem(name) is None:
            return _TOPIC_NOT_FOUND
        return _INVALID_REQUEST

    def _decode_error(self, exc: RemoteProtocolError, out: list[bytes]) -> bool:
        """Answer a frame the decoder rejected; False when the connection must close."""
        record = self.record
        assert record is not None
        cid = exc.correlation_id if exc.correlation_id is not None else 0
        if self._trace:
            log.debug("conn %d frame error (cid %s): %s", record.id, cid, exc)
        if exc.fatal:
            # The stream is lost. The spec answers it (INVALID_MESSAGE_TYPE / INVALID_REQUEST);
            # the reference broker just closes.
            if not self._reference:
                out.append(_ERROR.pack(cid, 0, int(exc.error_code)))
            log.info("conn %d: %s; closing", record.id, exc)
            self._close(exc.reason, flush=False)
            return False
        code = int(exc.error_code)
        if exc.reason == "topic-not-utf8" and self._reference:
            code = _INTERNAL_ERROR if exc.message_type == MessageType.CREATE_TOPIC else _TOPIC_NOT_FOUND
        out.append(_ERROR.pack(cid, 0, code))
        return True

    def _internal_error(self, req: Request, out: list[bytes]) -> int:
        tb = traceback.format_exc()
        self._state.internal_errors.append(tb)
        log.error("conn %s: internal error handling %r\n%s", self.record and self.record.id, req, tb)
        out.append(_ERROR.pack(req.correlation_id, 0, _INTERNAL_ERROR))
        return 6

    # -- output and closing -----------------------------------------------------------

    def _send(self, data: bytes) -> None:
        t = self._transport
        if t is None or t.is_closing():
            return
        record = self.record
        assert record is not None
        record.bytes_sent += len(data)
        if self._recording:
            _append_capped(record, "_sent", data, self._record_limit)
        t.write(data)

    def _close(self, reason: str, *, flush: bool = True) -> None:
        """Close gracefully once the answers written so far are out (CONN-11).

        The write side is shut down (FIN) after the last frame; input is read and
        discarded for :data:`LINGER_SECONDS` (or until the peer's EOF) so that the
        last frame is not destroyed by a TCP reset; a peer that never takes the
        last bytes is aborted after :data:`CLOSE_GRACE_SECONDS`. With
        ``flush=False`` the caller (``_process``) still has answers to write and
        calls :meth:`_finish_close` itself.
        """
        if self._closing:
            return
        self._closing = True
        if self.record is not None and self.record.close_reason is None:
            self.record.close_reason = reason
        if flush:
            self._finish_close()
        else:
            self._close_deferred = True

    def _finish_close(self) -> None:
        self._close_deferred = False
        t = self._transport
        if t is None or t.is_closing():
            return
        if self._peer_eof or not t.can_write_eof():
            t.close()
        else:
            t.write_eof()
            t.resume_reading()  # read and discard while lingering
            self._linger_handle = self._loop.call_later(LINGER_SECONDS, t.close)
        self._grace_handle = self._loop.call_later(CLOSE_GRACE_SECONDS, t.abort)

    def abort(self, reason: str) -> None:
        """Drop the connection now (broker stop)."""
        if self.record is not None and self.record.close_reason is None:
            self.record.close_reason = reason
        self._closing = True
        if self._transport is not None:
            self._transport.abort()

    def _idle_check(self) -> None:
        self._idle_handle = None
        timeout = self._idle_timeout
        if self._closing or timeout is None:
            return
        idle = self._loop.time() - self._last_rx
        if idle < timeout:
            self._idle_handle = self._loop.call_later(timeout - idle, self._idle_check)
            return
        record = self.record
        log.info("conn %s idle for %.3fs: NETWORK_ERROR, closing", record and record.id, idle)
        self._send(IDLE_FRAME)
        self._close("idle timeout")


def _append_capped(record: ConnectionRecord, attr: str, data: bytes, limit: int) -> None:
    buf: bytearray = getattr(record, attr)
    room = limit - len(buf)
    if room >= len(data):
        buf += data
    else:
        if room > 0:
            buf += data[:room]
        setattr(record, attr.lstrip("_") + "_truncated", True)


def _fmt_peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
