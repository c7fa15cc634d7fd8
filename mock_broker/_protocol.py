"""BrokerProtocol: the asyncio edge of one connection. It moves bytes and runs timers; it decides nothing.

Received bytes go to the connection's sans-IO core (:mod:`mock_broker._connection`),
and the steps it returns are written to the transport at once, or, when a
fault rule delays, slices or holds an answer, handed to an output scheduler
(:mod:`mock_broker._output`) made for the purpose. Everything about time
lives here: the idle timeout, the linger and grace periods of a close, the
pauses of a slow reader.

Reading stops while any of these holds, and resumes when none does: the
client does not take its answers (the transport's buffer is over the
high-water mark), the planned output is (a fault's delayed answers pile up), a
``slow-read`` rule throttles, a ``connect:silent`` rule silences, or the
broker-wide budget for request bytes (:mod:`mock_broker._memory`) has no room
for the large frame this connection is assembling, or the connection waits for a
place in the connection pool (``--connection-pool``). So a connection holds at
most one read's worth of requests and about one high-water mark of output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import struct
import time
from typing import TYPE_CHECKING, cast

from ._connection import BrokerConnection
from ._memory import FREE_BYTES
from ._output import OutputScheduler
from ._planner import ConnectPlan
from ._steps import Close, Reset, Step, Write

if TYPE_CHECKING:
    from ._state import BrokerState

log = logging.getLogger("mock_broker")

#: A closing connection whose peer does not take its last bytes is aborted after this long.
CLOSE_GRACE_SECONDS = 5.0

#: How long a connection closed by the broker keeps reading (and discarding) after its FIN.
LINGER_SECONDS = 2.0

#: How often a ``connect:silent`` connection (which is not read) is checked for a peer close.
SILENT_WATCH_SECONDS = 0.25

_PEER_GONE = select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0)

# Why reading is stopped (bits of BrokerProtocol._stops).
_WRITE_PAUSED = 1  # the transport's buffer is over the high-water mark
_OUTPUT_FULL = 2  # planned output (delayed, sliced, held answers) is over it
_THROTTLED = 4  # a slow-read rule
_SILENT = 8  # a connect:silent rule
_MEMORY = 16  # waiting for room in the broker-wide request budget
_POOLED = 32  # waiting for a place in the connection pool (--connection-pool)

#: Stops that are the broker's doing, not the client's: the client is not idle meanwhile (CONN-8).
_BROKER_STOPS = _WRITE_PAUSED | _OUTPUT_FULL | _THROTTLED | _MEMORY | _POOLED


class BrokerProtocol(asyncio.BufferedProtocol):
    """One client connection, as asyncio sees it.

    A buffered protocol: the transport reads into one buffer that every
    connection of the broker shares (they run on one loop, and each read is
    handled before the next one starts), and the bytes read are copied out of it
    at their exact size. A plain protocol would have each read allocate 256 KiB
    and shrink it, which glibc serves with mmap, mremap and munmap and page
    faults: measured, that tripled the kernel time per request.
    """

    __slots__ = (
        "_core",
        "_grace_timer",
        "_high_water",
        "_idle_timer",
        "_last_rx",
        "_linger_timer",
        "_loop",
        "_output",
        "_peer_eof",
        "_pumping",
        "_record_limit",
        "_recording",
        "_silent_timer",
        "_slow_rate",
        "_state",
        "_stops",
        "_throttle_timer",
        "_transport",
        "grant",
    )

    def __init__(self, state: BrokerState) -> None:
        cfg = state.config
        self._state = state
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._core: BrokerConnection | None = None
        self._output: OutputScheduler | None = None
        self._high_water = cfg.write_buffer_high_water
        self._recording = cfg.record
        self._record_limit = cfg.record_bytes_limit
        self._stops = 0
        self._pumping = False
        self._peer_eof = False
        self._last_rx = 0.0
        self._slow_rate = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._grace_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._silent_timer: asyncio.TimerHandle | None = None
        #: Bytes granted by the broker-wide request budget (see mock_broker._memory).
        self.grant = 0

    # -- inspection -------------------------------------------------------------------

    @property
    def core(self) -> BrokerConnection:
        assert self._core is not None
        return self._core

    @property
    def write_buffer_size(self) -> int:
        """Bytes of answers buffered in the transport, not yet taken by the kernel."""
        t = self._transport
        return 0 if t is None else t.get_write_buffer_size()

    @property
    def read_buffer_size(self) -> int:
        """Bytes received and not yet decoded (at most about one read of requests)."""
        return 0 if self._core is None else self._core.buffered

    # -- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = cast(asyncio.Transport, transport)
        self._transport = t
        state = self._state
        cfg = state.config
        sock = t.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not TCP
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t.set_write_buffer_limits(high=self._high_water, low=self._high_water // 4)
        peer = t.get_extra_info("peername")
        record = state.open_connection(self, peer[:2] if peer else None)
        trace = log.isEnabledFor(logging.DEBUG)
        self._core = core = BrokerConnection(
            record,
            state.answerer,
            state.faults,
            cfg.new_decoder(),
            recording=cfg.record,
            record_bytes_limit=cfg.record_bytes_limit,
            internal_errors=state.internal_errors,
            trace=trace,
        )
        if trace:
            log.debug("conn %d from %s opened", record.id, _fmt_peer(peer))
        if len(state.live) > cfg.max_connections:
            log.warning("conn %d refused: %d connections is the limit", record.id, cfg.max_connections)
            self._deliver(core.close("max-connections"))
            return
        if state.pool is None or state.pool.enter(self):
            self._start_idle_timer()
        else:
            log.info("conn %d waits for a place in the pool of %d connections", record.id, state.pool.size)
            self._stop_reading(_POOLED, True)
            self._loop.call_soon(self._repause)
        plan = core.connect_plan()
        if plan is not None:
            self._apply_connect(plan)

    def _start_idle_timer(self) -> None:
        self._last_rx = self._loop.time()
        timeout = self._state.config.effective_idle_timeout
        if timeout is not None:
            self._idle_timer = self._loop.call_later(timeout, self._idle_check, context=self._state.timer_context)

    def _leave_pool(self) -> None:
        """Give up this connection's place (or its wait) in the pool: it is closing."""
        if self._state.pool is not None:
            self._state.pool.leave(self)

    def pool_admitted(self) -> None:
        """A place in the connection pool came free: this connection is served from now on."""
        if self._core is not None and self._core.closing:
            return
        self._start_idle_timer()
        self._stop_reading(_POOLED, False)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._state.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._state.read_buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        core = self._core
        assert core is not None
        if core.closing:  # read and discarded while the close lingers
            return
        self._last_rx = self._loop.time()
        core.receive_data(data)
        self._pump()
        if self._slow_rate:
            self._throttle(len(data))

    def eof_received(self) -> bool:
        # Answers already planned still go out (CONN-13); the close happens after them.
        self._peer_eof = True
        core = self._core
        assert core is not None
        if core.closing:
            if self._transport is not None:
                self._transport.close()
        else:
            self._deliver(core.close("peer closed"))
        return True

    def pause_writing(self) -> None:
        self._stop_reading(_WRITE_PAUSED, True)

    def resume_writing(self) -> None:
        self._stop_reading(_WRITE_PAUSED, False)
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (
            self._idle_timer,
            self._grace_timer,
            self._linger_timer,
            self._throttle_timer,
            self._silent_timer,
        ):
            if timer is not None:
                timer.cancel()
        self._idle_timer = self._grace_timer = self._linger_timer = None
        self._throttle_timer = self._silent_timer = None
        if self._output is not None:
            self._output.cancel()
        state = self._state
        state.memory.release(self)
        self._leave_pool()
        core = self._core
        if core is None:
            return
        core.close(f"connection lost: {exc}" if exc else "peer closed")
        record = core.record
        record.closed_at = time.time()
        state.connection_closed(record)
        faults = f", {record.faults_applied} faults applied" if record.faults_applied else ""
        log.info(
            "conn %d %s closed after %.3fs (%s): %d requests, %d B in, %d B out%s",
            record.id,
            _fmt_peer(record.peer),
            record.closed_at - record.opened_at,
            record.close_reason,
            record.request_count,
            record.bytes_received,
            record.bytes_sent,
            faults,
        )

    # -- requests in, steps out ---------------------------------------------------------

    def _pump(self) -> None:
        """Answer what is buffered while the output has room; then see to the request budget."""
        core = self._core
        if core is None or self._pumping:
            return
        self._pumping = True
        try:
            while not self._stops & (_WRITE_PAUSED | _OUTPUT_FULL):
                room = self._high_water - (self._output.cost if self._output is not None else 0)
                steps = core.next_output(max(room, 1))
                if steps:
                    self._deliver(steps)
                if not core.more:
                    break
        finally:
            self._pumping = False
        if core.read_rate is not None and core.read_rate != self._slow_rate:
            self._start_slow_read(core.read_rate)
        if core.closing:
            self._state.memory.release(self)
        elif self.grant or core.buffered > FREE_BYTES:
            waits = not self._state.memory.hold(self, core.buffered, core.frame_bytes)
            self._stop_reading(_MEMORY, waits)

    def _deliver(self, steps: list[Step]) -> None:
        """Run ``steps``: plain writes (and a close) at once, anything timed through the scheduler."""
        output = self._output
        if output is None or not output.busy:
            for i, step in enumerate(steps):
                kind = type(step)
                if kind is Write:
                    self.send(cast(Write, step).data)
                elif kind is Close and output is None:
                    self.close_now()
                else:
                    if output is None:
                        output = self._output = OutputScheduler(self._loop, self, self._high_water // 4)
                    output.push(steps[i:])
                    break
        else:
            output.push(steps)
        if output is not None and output.cost > self._high_water:
            # A fault's answers pile up behind a delay: stop reading until they are out.
            self._stop_reading(_OUTPUT_FULL, True)

    # -- OutputTarget: what the scheduler drives ---------------------------------------------

    def send(self, data: bytes) -> None:
        t = self._transport
        if t is None or t.is_closing() or not data:
            return
        record = self.core.record
        record.bytes_sent += len(data)
        if self._recording:
            record.keep_segment(time.time(), "out", data, self._record_limit)
        t.write(data)

    def close_now(self) -> None:
        """Close gracefully once the answers written so far are out (CONN-11).

        The write side is shut down (FIN) after the last frame; input is read and
        discarded for :data:`LINGER_SECONDS` (or until the peer's EOF) so that the
        last frame is not destroyed by a TCP reset; a peer that never takes the
        last bytes is aborted after :data:`CLOSE_GRACE_SECONDS`.
        """
        self._leave_pool()
        t = self._transport
        if t is None or t.is_closing():
            return
        if self._peer_eof or not t.can_write_eof():
            t.close()
        else:
            t.write_eof()
            t.resume_reading()  # read and discard while lingering
            self._linger_timer = self._loop.call_later(LINGER_SECONDS, t.close)
        self._grace_timer = self._loop.call_later(CLOSE_GRACE_SECONDS, t.abort)

    def reset_now(self) -> None:
        """Close with a TCP reset (SO_LINGER 0)."""
        self._leave_pool()
        t = self._transport
        if t is None or t.is_closing():
            return
        sock = t.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()

    def output_drained(self) -> None:
        if self._stops & _OUTPUT_FULL:
            self._stop_reading(_OUTPUT_FULL, False)
            self._pump()

    # -- the broker's own doings ----------------------------------------------------------

    def abort(self, reason: str) -> None:
        """Drop the connection now, whatever is planned (broker stop)."""
        if self._core is not None:
            self._core.close(reason)
        if self._output is not None:
            self._output.cancel()
        if self._transport is not None:
            self._transport.abort()

    def memory_granted(self) -> None:
        """The request budget has room for this connection's frame again."""
        self._stop_reading(_MEMORY, False)

    def _stop_reading(self, why: int, stop: bool) -> None:
        before = self._stops
        self._stops = before | why if stop else before & ~why
        if bool(before) == bool(self._stops):
            return
        t = self._transport
        if t is None or t.is_closing() or self.core.closing:
            return
        if self._stops:
            t.pause_reading()
        else:
            t.resume_reading()

    def _idle_check(self) -> None:
        self._idle_timer = None
        core = self._core
        timeout = self._state.config.effective_idle_timeout
        if core is None or core.closing or timeout is None:
            return
        now = self._loop.time()
        if self._stops & _BROKER_STOPS:
            # The broker stopped reading, not the client: its answers are still owed (CONN-8).
            self._last_rx = now
        idle = now - self._last_rx
        if idle < timeout:
            context = self._state.timer_context
            self._idle_timer = self._loop.call_later(timeout - idle, self._idle_check, context=context)
            return
        log.info("conn %d idle for %.3fs: NETWORK_ERROR, closing", core.record.id, idle)
        self._deliver(core.idle_timeout())

    # -- connect rules ------------------------------------------------------------------

    def _apply_connect(self, plan: ConnectPlan) -> None:
        refuse = self._state.refuse_connections
        for seconds in plan.refuse:
            if refuse is not None:
                refuse(seconds)
        if plan.silent:
            self._stop_reading(_SILENT, True)
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self._loop.call_soon(self._repause)
            self._silent_timer = self._loop.call_later(SILENT_WATCH_SECONDS, self._watch_silent)
        if plan.slow_read is not None:
            self._start_slow_read(plan.slow_read)
        if isinstance(plan.ends_with, Close):
            self.close_now()
        elif isinstance(plan.ends_with, Reset):
            self.reset_now()

    def _repause(self) -> None:
        # Python 3.10 adds the transport's reader after connection_made even when reading
        # was paused in it: pause again once that has happened.
        t = self._transport
        if self._stops & (_SILENT | _POOLED) and t is not None and not t.is_closing():
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
        """After reading ``nbytes``, stop reading long enough to keep to the slow-read rate."""
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
        self._stop_reading(_THROTTLED, True)
        self._throttle_timer = self._loop.call_later(nbytes / self._slow_rate, self._unthrottle)

    def _unthrottle(self) -> None:
        self._throttle_timer = None
        self._stop_reading(_THROTTLED, False)


def _fmt_peer(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
