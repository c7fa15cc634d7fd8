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
import select
import socket
import struct
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from mega_client.protocol import (
    ErrorCode,
    MessageType,
    RemoteProtocolError,
    RequestDecoder,
    RequestFields,
    UnsolicitedError,
    encode_consume_ok,
    encode_create_topic_ok,
    encode_error,
    encode_produce_ok,
    encode_response,
    layouts,
    request_from_fields,
    topic_name_problem,
)

from ._record import AppliedFault

if TYPE_CHECKING:
    from ._faults import FaultRule
    from ._record import ConnectionRecord
    from ._state import BrokerState

log = logging.getLogger("mock_broker")


_PRODUCE = int(MessageType.PRODUCE)
_CONSUME = int(MessageType.CONSUME)
_INVALID_REQUEST = int(ErrorCode.INVALID_REQUEST)
_TOPIC_NOT_FOUND = int(ErrorCode.TOPIC_NOT_FOUND)
_TOPIC_ALREADY_EXISTS = int(ErrorCode.TOPIC_ALREADY_EXISTS)
_INVALID_OFFSET = int(ErrorCode.INVALID_OFFSET)
_INTERNAL_ERROR = int(ErrorCode.INTERNAL_ERROR)
_RESOURCE_EXHAUSTED = int(ErrorCode.RESOURCE_EXHAUSTED)

#: The unsolicited frame sent to an idle connection before it is closed.
IDLE_FRAME = encode_response(UnsolicitedError(ErrorCode.NETWORK_ERROR))

#: A closing connection whose peer does not take its last bytes is aborted after this long.
CLOSE_GRACE_SECONDS = 5.0

#: How long a connection closed by the broker keeps reading (and discarding) after its FIN.
LINGER_SECONDS = 2.0

#: How often a ``connect:silent`` connection (which is not read) is checked for a peer close.
SILENT_WATCH_SECONDS = 0.25

_PEER_GONE = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)

#: An output operation of a faulted connection: (kind, value).
_Op = tuple[str, Any]


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
        # Fault injection. With no rule, only ``self._faults.active`` is read per batch.
        self._faults = state.faults
        self._ops: deque[_Op] = deque()
        self._ops_bytes = 0
        self._ops_timer: asyncio.TimerHandle | None = None
        self._out_slow = False  # ops pending or an answer held: answers go through _queue
        self._ops_full = False
        self._held = b""
        self._silent = False
        self._slow_rate = 0
        self._throttled = False
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._silent_timer: asyncio.TimerHandle | None = None

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
        if self._faults.active:
            self._connect_faults()

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
        if self._slow_rate:
            self._throttle(len(data))

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
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._closing:
            self._update_reading()
            self._process()

    def _update_reading(self) -> None:
        """Read unless a client does not take its answers, a fault throttles or silences it."""
        t = self._transport
        if t is None or t.is_closing() or self._closing:
            return
        if self._write_paused or self._ops_full or self._throttled or self._silent:
            t.pause_reading()
        else:
            t.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for handle in (
            self._idle_handle,
            self._grace_handle,
            self._linger_handle,
            self._ops_timer,
            self._throttle_timer,
            self._silent_timer,
        ):
            if handle is not None:
                handle.cancel()
        self._idle_handle = self._grace_handle = self._linger_handle = None
        self._ops_timer = self._throttle_timer = self._silent_timer = None
        self._ops.clear()
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
        """Answer every complete request buffered, in order, batching the writes.

        With no fault rule, no recording and no tracing, a tight loop does only
        what each request needs; anything else takes :meth:`_process_observed`.
        The flags that stop the loop (paused writing, closing) can only change
        when answers are written or a frame is rejected, so only then are they read.
        """
        if self._faults.active or self._recording or self._trace:
            self._process_observed()
            return
        if self._stalled():
            return
        next_fields = self._decoder.next_fields
        handle = self._handle
        high_water = self._high_water
        out: list[bytes] = []
        size = 0
        count = 0
        while True:
            try:
                req = next_fields()
            except RemoteProtocolError as exc:
                count += 1
                frame = self._decode_error(exc, out)
                if frame is None:
                    break
                out.append(frame)
                size += len(frame)
                continue
            if req is None:
                break
            count += 1
            try:
                size += handle(req, out)
            except Exception:
                size += self._internal_error(req, out)
            if size >= high_water:
                self._emit(b"".join(out))
                out.clear()
                size = 0
                if self._stalled():
                    break
        assert self.record is not None
        self.record.request_count += count
        if out:
            self._emit(b"".join(out))
        if self._close_deferred:
            self._finish_close()

    def _stalled(self) -> bool:
        """Requests wait: the client does not take its answers, or the connection is closing."""
        return self._write_paused or self._closing or self._ops_full

    def _process_observed(self) -> None:
        """:meth:`_process` for a connection with fault rules, recording or tracing on."""
        decoder = self._decoder
        handle = self._handle
        record = self.record
        assert record is not None
        faults = self._faults
        out: list[bytes] = []
        size = 0
        while not (self._write_paused or self._closing or self._ops_full):
            try:
                req = decoder.next_fields()
            except RemoteProtocolError as exc:
                record.request_count += 1
                frame = self._decode_error(exc, out)
                if frame is None:
                    break
                if faults.active:
                    mtype = exc.message_type if exc.message_type is not None else 0
                    size = self._faulted(None, mtype, None, exc.correlation_id or 0, frame, out, size)
                else:
                    out.append(frame)
                    size += len(frame)
                continue
            if req is None:
                break
            record.request_count += 1
            if self._recording or self._trace:
                self._observe(req)
            if faults.active:
                size = self._faulted(req, req[0], req[2], req[1], None, out, size)
            else:
                try:
                    size += handle(req, out)
                except Exception:
                    size += self._internal_error(req, out)
            if size >= self._high_water:
                self._emit(b"".join(out))
                out.clear()
                size = 0
        if out:
            self._emit(b"".join(out))
        if self._close_deferred:
            self._finish_close()

    def _observe(self, req: RequestFields) -> None:
        """Record and trace a request: only here is a frame object built."""
        record = self.record
        assert record is not None
        frame = request_from_fields(req)
        if self._recording:
            if len(record.requests) < self._record_requests_limit:
                record.requests.append(frame)
            else:
                record.requests_truncated = True
        if self._trace:
            log.debug("conn %d request %r", record.id, frame)

    def _handle(self, req: RequestFields, out: list[bytes]) -> int:
        """Append the answer to ``req`` to ``out``; return its size."""
        mtype, cid, topic, timestamp, offset, payload = req
        if mtype == _PRODUCE:
            log_ = self._logs.get(topic)
            if log_ is None:
                frame = encode_error(cid, self._missing_topic_code(topic))
            elif (n := len(log_)) >= self._max_messages:
                frame = encode_error(cid, _RESOURCE_EXHAUSTED)
            else:
                log_.append((timestamp, payload))
                frame = encode_produce_ok(cid, timestamp, n)
            out.append(frame)
            return len(frame)
        if mtype == _CONSUME:
            log_ = self._logs.get(topic)
            if log_ is None:
                frame = encode_error(cid, self._missing_topic_code(topic))
            elif offset < 0 or offset >= len(log_):
                frame = encode_error(cid, _INVALID_OFFSET)
            else:
                ts, payload = log_[offset]
                frame = encode_consume_ok(cid, ts, offset + 1, payload)
            out.append(frame)
            return len(frame)
        # CREATE_TOPIC
        logs = self._logs
        if topic_name_problem(topic) is not None:
            frame = encode_error(cid, _INTERNAL_ERROR if self._reference else _INVALID_REQUEST)
        elif topic in logs:
            frame = encode_error(cid, _TOPIC_ALREADY_EXISTS)
        elif len(logs) >= self._max_topics:
            frame = encode_error(cid, _RESOURCE_EXHAUSTED)
        else:
            logs[topic] = []
            frame = encode_create_topic_ok(cid, timestamp, topic)
        out.append(frame)
        return len(frame)

    def _missing_topic_code(self, name: str) -> int:
        """PRODUCE/CONSUME on a topic that does not exist: a bad name is INVALID_REQUEST (spec)."""
        if self._reference or topic_name_problem(name) is None:
            return _TOPIC_NOT_FOUND
        return _INVALID_REQUEST

    def _decode_error(self, exc: RemoteProtocolError, out: list[bytes]) -> bytes | None:
        """The answer to a frame the decoder rejected; None when the connection must close.

        For a fatal error the spec profile's answer is appended to ``out`` here.
        """
        record = self.record
        assert record is not None
        cid = exc.correlation_id if exc.correlation_id is not None else 0
        if self._trace:
            log.debug("conn %d frame error (cid %s): %s", record.id, cid, exc)
        if exc.fatal:
            # The stream is lost. The spec answers it (INVALID_MESSAGE_TYPE / INVALID_REQUEST);
            # the reference broker just closes.
            if not self._reference:
                out.append(encode_error(cid, int(exc.error_code)))
            log.info("conn %d: %s; closing", record.id, exc)
            self._close(exc.reason, flush=False)
            return None
        code = int(exc.error_code)
        if exc.reason == "topic-not-utf8" and self._reference:
            code = _INTERNAL_ERROR if exc.message_type == MessageType.CREATE_TOPIC else _TOPIC_NOT_FOUND
        return encode_error(cid, code)

    def _internal_error(self, req: RequestFields, out: list[bytes]) -> int:
        tb = traceback.format_exc()
        self._state.internal_errors.append(tb)
        log.error("conn %s: internal error handling %r\n%s", self.record and self.record.id, req, tb)
        out.append(encode_error(req[1], _INTERNAL_ERROR))
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
        if self._out_slow:  # delayed or sliced answers first
            self._queue([("close", None)])
            return
        self._finish_close_now()

    def _finish_close_now(self) -> None:
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
        now = self._loop.time()
        if self._write_paused or self._ops_full or self._throttled:
            # The broker stopped reading, not the client: its answers are still owed (CONN-8).
            self._last_rx = now
        idle = now - self._last_rx
        if idle < timeout:
            self._idle_handle = self._loop.call_later(timeout - idle, self._idle_check)
            return
        record = self.record
        log.info("conn %s idle for %.3fs: NETWORK_ERROR, closing", record and record.id, idle)
        self._emit(IDLE_FRAME)
        self._close("idle timeout")

    # -- output of a faulted connection ----------------------------------------------

    def _emit(self, data: bytes) -> None:
        """Write answers, behind any delayed, sliced or held ones."""
        if self._out_slow:
            self._queue([("write", data)])
        else:
            self._send(data)

    def _queue(self, ops: list[_Op]) -> None:
        for kind, value in ops:
            if kind in ("write", "hold"):
                self._ops_bytes += len(value)
        self._ops.extend(ops)
        self._out_slow = True
        if self._ops_timer is None:
            self._run_ops(from_timer=False)
        if self._ops_bytes > self._high_water and not self._ops_full:
            # Answers pile up behind a delay: stop reading until they are out.
            self._ops_full = True
            self._update_reading()

    def _run_ops(self, from_timer: bool = True) -> None:
        self._ops_timer = None
        ops = self._ops
        while ops:
            kind, value = ops.popleft()
            if kind == "write":
                self._ops_bytes -= len(value)
                if self._held:
                    value, self._held = self._held + value, b""
                self._send(value)
            elif kind == "hold":
                self._ops_bytes -= len(value)
                self._held += value
            elif kind == "sleep":
                self._ops_timer = self._loop.call_later(value, self._run_ops)
                break
            elif kind == "close":
                if self._held:
                    held, self._held = self._held, b""
                    self._send(held)
                self._finish_close_now()
            elif kind == "reset":
                self._reset_now()
        self._out_slow = bool(ops) or self._ops_timer is not None or bool(self._held)
        if self._ops_full and self._ops_bytes <= self._high_water // 4:
            self._ops_full = False
            self._update_reading()
            if from_timer and not self._closing:
                self._process()

    def _reset_now(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        t = self._transport
        if t is None or t.is_closing():
            return
        sock = t.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()

    # -- applying fault rules -----------------------------------------------------------

    def _note_fault(self, rule: FaultRule, cid: int | None) -> None:
        record = self.record
        assert record is not None
        index = None if cid is None else record.request_count
        if len(record.faults) < self._record_requests_limit:
            record.faults.append(AppliedFault(str(rule), rule.action, time.time(), index, cid))
        if cid is None:
            log.info("conn %d: fault %s applied on connect", record.id, rule)
        else:
            log.info("conn %d: fault %s applied to request #%d (cid %d)", record.id, rule, index, cid)

    def _fault_close(self, rule: FaultRule) -> None:
        """Stop reading requests now; the queued ``close``/``reset`` op ends the connection."""
        self._closing = True
        if self.record is not None and self.record.close_reason is None:
            self.record.close_reason = f"fault {rule}"

    def _faulted(  # noqa: PLR0917
        self,
        req: RequestFields | None,
        mtype: int,
        topic: str | None,
        cid: int,
        answer: bytes | None,
        out: list[bytes],
        size: int,
    ) -> int:
        """Handle a request (or send a decode error's ``answer``) through the fault rules.

        Returns the new size of ``out`` (0 once it was flushed ahead of queued output).
        """
        record = self.record
        assert record is not None
        rules = self._faults.match_request(mtype, topic, record.id)
        if not rules:
            if answer is None:
                assert req is not None
                return size + self._handle_safe(req, out)
            out.append(answer)
            return size + len(answer)
        error_code: int | None = None
        delay_ms = 0
        pre: list[bytes] = []
        post = b""
        mutations: list[FaultRule] = []
        delivery: FaultRule | None = None
        for rule in rules:
            self._note_fault(rule, cid)
            action = rule.action
            if action == "error":
                error_code = rule.arg
            elif action == "delay":
                delay_ms += rule.arg or 0
            elif action == "unsolicited":
                pre.append(encode_error(0, _as_int8(rule.arg or 0)))
            elif action == "trailing":
                post += rule.data
            elif action in ("wrong-cid", "bad-flag", "bad-length"):
                mutations.append(rule)
            elif action == "slow-read":
                self._start_slow_read(rule.arg or 1)
            else:
                delivery = rule
        if error_code is not None:
            answer = encode_error(cid, _as_int8(error_code))  # the request has no effect
        elif answer is None:
            assert req is not None
            parts: list[bytes] = []
            self._handle_safe(req, parts)
            answer = b"".join(parts)
        if mutations:
            answer = _mutate(answer, mutations, mtype)
        kind = delivery.action if delivery is not None else None
        if kind == "silent":
            answer = b""
            kind = None
        answer += post  # goes wherever the answer goes: with it, sliced, held or delayed
        if kind is None and not delay_ms:
            out.extend(pre)
            out.append(answer)
            return size + len(answer) + 6 * len(pre)
        if out:
            self._emit(b"".join(out))
            out.clear()
        ops: list[_Op] = []
        if delay_ms:
            ops.append(("sleep", delay_ms / 1000))
        ops.extend(("write", p) for p in pre)
        if kind is None:
            if answer:
                ops.append(("write", answer))
        elif kind == "slice":
            assert delivery is not None
            step = delivery.arg or 1
            pause = (delivery.arg2 or 0) / 1000
            for start in range(0, len(answer), step):
                if start:
                    ops.append(("sleep", pause))
                ops.append(("write", answer[start : start + step]))
        elif kind == "hold":
            ops.append(("hold", answer))
        else:  # close, close-after, reset
            assert delivery is not None
            self._fault_close(delivery)
            if kind == "close-after" and delivery.arg:
                ops.append(("write", answer[: delivery.arg]))
            ops.append(("reset" if kind == "reset" else "close", None))
        self._queue(ops)
        return 0

    def _handle_safe(self, req: RequestFields, out: list[bytes]) -> int:
        try:
            return self._handle(req, out)
        except Exception:
            return self._internal_error(req, out)

    def _connect_faults(self) -> None:
        record = self.record
        assert record is not None
        for rule in self._faults.match_connect(record.id):
            self._note_fault(rule, None)
            action = rule.action
            if action == "close":
                self._close(f"fault {rule}")
            elif action == "reset":
                self._fault_close(rule)
                self._reset_now()
            elif action == "refuse":
                if self._state.refuse_connections is not None:
                    self._state.refuse_connections((rule.arg or 0) / 1000)
            elif action == "silent":
                self._silent = True
                if self._idle_handle is not None:
                    self._idle_handle.cancel()
                    self._idle_handle = None
                self._update_reading()
                # Python 3.10 adds the transport's reader after connection_made even when
                # reading was paused in it: pause again once that has happened.
                self._loop.call_soon(self._repause)
                self._silent_timer = self._loop.call_later(SILENT_WATCH_SECONDS, self._watch_silent)
            elif action == "slow-read":
                self._start_slow_read(rule.arg or 1)
            if self._closing:
                break

    def _repause(self) -> None:
        t = self._transport
        if self._silent and t is not None and not t.is_closing():
            t.resume_reading()
            t.pause_reading()

    def _watch_silent(self) -> None:
        """A silent connection is not read, so a peer close is noticed by polling for it."""
        self._silent_timer = None
        t = self._transport
        if t is None or t.is_closing():
            return
        sock = t.get_extra_info("socket")
        try:
            poller = select.poll()
            poller.register(sock.fileno(), _PEER_GONE)
            gone = bool(poller.poll(0))
        except (OSError, ValueError, AttributeError):
            gone = False
        if gone:
            self.abort("peer closed (silent connection)")
        else:
            self._silent_timer = self._loop.call_later(SILENT_WATCH_SECONDS, self._watch_silent)

    def _start_slow_read(self, bytes_per_second: int) -> None:
        self._slow_rate = bytes_per_second
        t = self._transport
        sock = t.get_extra_info("socket") if t is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, max(2048, min(bytes_per_second, 65536)))

    def _throttle(self, nbytes: int) -> None:
        """After reading ``nbytes``, pause reading long enough to keep to the slow-read rate."""
        pause = nbytes / self._slow_rate
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
        self._throttled = True
        self._update_reading()
        self._throttle_timer = self._loop.call_later(pause, self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttle_timer = None
        self._throttled = False
        self._update_reading()


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


def _as_int8(code: int) -> int:
    """A fault may name any code byte 0-255; the wire field is an int8."""
    return code - 256 if code > 127 else code


def _mutate(answer: bytes, rules: list[FaultRule], mtype: int) -> bytes:
    """Apply ``wrong-cid`` / ``bad-flag`` / ``bad-length`` to an encoded answer.

    Each rewrites one field of the codec's own layout (``mega_client.protocol.layouts``).
    """
    buf = bytearray(answer)
    head = layouts.RESPONSE_HEAD
    if len(buf) < head.size:
        return answer
    success = head.unpack_from(buf)[1] == 1
    for rule in rules:
        cid, flag = head.unpack_from(buf)
        if rule.action == "wrong-cid":
            head.pack_into(buf, 0, (cid + 1 + 2**31) % 2**32 - 2**31, flag)
        elif rule.action == "bad-flag":
            head.pack_into(buf, 0, cid, _as_int8((rule.arg or 0) & 0xFF))
        elif rule.action == "bad-length" and success and rule.arg is not None:
            # The length field is the last of the success head of CONSUME and of CREATE_TOPIC.
            if mtype == MessageType.CONSUME:
                ok_head, length = layouts.CONSUME_OK_HEAD, rule.arg
            elif mtype == MessageType.CREATE_TOPIC:
                ok_head, length = layouts.CREATE_TOPIC_OK_HEAD, rule.arg & 0xFFFF
            else:
                continue
            if len(buf) >= ok_head.size:
                *fields, _ = ok_head.unpack_from(buf)
                ok_head.pack_into(buf, 0, *fields, length)
    return bytes(buf)
