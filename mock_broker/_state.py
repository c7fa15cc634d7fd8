"""BrokerState: what the connections of one broker share (config, store, answers, rules, records, memory)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

from ._answers import Answerer
from ._config import BrokerConfig
from ._connection import BrokerConnection
from ._faults import FaultRegistry
from ._memory import RequestMemory
from ._record import ConnectionRecord
from ._storage import TopicStore

log = logging.getLogger("mock_broker")


class LiveConnection(Protocol):
    """What the broker's state and server use of an open connection (a BrokerProtocol is one)."""

    @property
    def core(self) -> BrokerConnection: ...

    @property
    def write_buffer_size(self) -> int: ...

    @property
    def read_buffer_size(self) -> int: ...

    def abort(self, reason: str) -> None: ...

    def pool_admitted(self) -> None: ...


#: Bytes one read may bring (asyncio's own read size).
_READ_BYTES = 256 * 1024

#: Tracebacks of handler failures kept for inspection; a long-running broker keeps the latest.
INTERNAL_ERRORS_KEPT = 1000


class Totals(NamedTuple):
    """What every connection the broker has a record of did: the open ones, and those closed since the last reset."""

    connections_open: int
    connections_closed: int
    requests: int
    bytes_received: int
    bytes_sent: int


class ConnectionPool:
    """At most ``size`` connections served at once, like the reference broker's pool of 10 threads.

    A connection beyond them is accepted by TCP but not read (no answer, no idle
    timeout) until one of those served closes; then the oldest waiting one is
    served, and what it sent meanwhile is handled late.
    """

    __slots__ = ("_serving", "_waiting", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._serving: set[LiveConnection] = set()
        self._waiting: deque[LiveConnection] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def enter(self, proto: LiveConnection) -> bool:
        """A new connection: True if it is served now, False if it waits for a place."""
        if len(self._serving) < self.size:
            self._serving.add(proto)
            return True
        self._waiting.append(proto)
        return False

    def leave(self, proto: LiveConnection) -> None:
        """A connection ended: its place goes to the oldest one waiting."""
        if proto in self._serving:
            self._serving.discard(proto)
            while self._waiting and len(self._serving) < self.size:
                nxt = self._waiting.popleft()
                self._serving.add(nxt)
                nxt.pool_admitted()
        else:
            with contextlib.suppress(ValueError):
                self._waiting.remove(proto)


class BrokerState:
    """Shared by every connection of a broker; used on the broker's loop only."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        #: One bound method for every record (``config.new_decoder`` makes a new one each time: 64 B).
        self.new_decoder = config.new_decoder
        #: The context this broker's idle timers run in: without one, each timer copies the loop's
        #: (60 B per idle connection), and the broker keeps nothing in context variables. One per
        #: broker, not per process: a context is entered by one thread at a time, and brokers run
        #: on threads of their own (ThreadedMockBroker). So the idle close runs without the host
        #: program's context variables.
        self.timer_context = contextvars.Context()
        self.store = TopicStore()
        self.answerer = Answerer(config, self.store)
        self.faults = FaultRegistry()
        self.memory = RequestMemory(config.max_buffered_request_bytes)
        self.pool = ConnectionPool(config.connection_pool) if config.connection_pool is not None else None
        #: The buffer every connection's reads go into (see mock_broker._protocol): one loop, one read at a time.
        self.read_buffer = memoryview(bytearray(_READ_BYTES))
        self.live: dict[int, LiveConnection] = {}
        self.records: list[ConnectionRecord] = []
        self.next_id = 1
        #: Tracebacks of exceptions raised while handling a request (each answered INTERNAL_ERROR).
        self.internal_errors: deque[str] = deque(maxlen=INTERNAL_ERRORS_KEPT)
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._closed_count = 0
        self._closed_bytes = 0
        # Sums over the connections closed since the last reset (pruning their records keeps them),
        # so that totals() costs O(open connections), not O(records).
        self._closed_totals = [0, 0, 0, 0]  # connections, requests, bytes received, bytes sent
        #: Called with each record as its connection closes (the control plane's records file).
        self.on_closed: list[Callable[[ConnectionRecord], None]] = []
        #: Set by the server: stop listening for the given seconds (the ``refuse`` fault).
        self.refuse_connections: Callable[[float], None] | None = None

    def open_connection(self, proto: LiveConnection, peer: tuple[str, int] | None) -> ConnectionRecord:
        """Give a new connection its id and record."""
        conn_id = self.next_id
        self.next_id += 1
        cfg = self.config
        record = ConnectionRecord(
            conn_id, peer, time.time(), new_decoder=self.new_decoder, requests_limit=cfg.record_requests_limit
        )
        self.records.append(record)
        self.live[conn_id] = proto
        return record

    def connection_closed(self, record: ConnectionRecord) -> None:
        """Forget a live connection; keep its record within the bounds; wake :meth:`wait_no_connections`."""
        self.live.pop(record.id, None)
        sums = self._closed_totals
        sums[0] += 1
        sums[1] += record.request_count
        sums[2] += record.bytes_received
        sums[3] += record.bytes_sent
        for listener in self.on_closed:
            try:
                listener(record)
            except Exception:  # an observer must not break the broker
                log.exception("conn %d: a listener failed on close", record.id)
        self._closed_count += 1
        self._closed_bytes += record.kept_bytes
        cfg = self.config
        # Prune in batches (a tenth over the limits at least) so that closing is O(1) on average.
        over_count = self._closed_count > cfg.max_closed_records + max(100, cfg.max_closed_records // 10)
        if over_count or self._closed_bytes > cfg.max_closed_record_bytes * 11 // 10:
            self._prune(cfg.max_closed_records, cfg.max_closed_record_bytes)
        if not self.live and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _prune(self, max_count: int, max_bytes: int) -> None:
        """Keep every live connection's record, and the newest closed ones within both limits."""
        keep: set[int] = set()
        count = size = 0
        for r in reversed(self.records):
            if not r.closed:
                continue
            if count >= max_count or size + r.kept_bytes > max_bytes:
                break
            keep.add(id(r))
            count += 1
            size += r.kept_bytes
        self.records[:] = [r for r in self.records if not r.closed or id(r) in keep]
        self._closed_count, self._closed_bytes = count, size

    async def wait_no_connections(self) -> None:
        """Return once no connection is live."""
        while self.live:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(fut)
            await fut

    def totals(self) -> Totals:
        """Counts over the open connections and those closed since the last reset."""
        closed, requests, received, sent = self._closed_totals
        for proto in self.live.values():
            record = proto.core.record
            requests += record.request_count
            received += record.bytes_received
            sent += record.bytes_sent
        return Totals(len(self.live), closed, requests, received, sent)

    def reset(self) -> None:
        """Drop topics, closed connections' records, fault rules and internal errors."""
        self.store.clear()
        self.records[:] = [r for r in self.records if not r.closed]
        self._closed_count = self._closed_bytes = 0
        self._closed_totals = [0, 0, 0, 0]
        self.faults.clear()
        self.internal_errors.clear()
