"""BrokerState: what the connections of one broker share (config, topics, records)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._config import BrokerConfig
from ._faults import FaultRegistry
from ._record import ConnectionRecord
from ._storage import TopicStore

if TYPE_CHECKING:
    from ._protocol import BrokerProtocol

log = logging.getLogger("mock_broker")

#: Tracebacks of handler failures kept for inspection; a long-running broker keeps the latest.
INTERNAL_ERRORS_KEPT = 1000


class BrokerState:
    """Shared by every connection of a broker; used on the broker's loop only."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.store = TopicStore()
        self.faults = FaultRegistry()
        self.live: dict[int, BrokerProtocol] = {}
        self.records: list[ConnectionRecord] = []
        self.next_id = 1
        #: Tracebacks of exceptions raised while handling a request (each answered INTERNAL_ERROR).
        self.internal_errors: deque[str] = deque(maxlen=INTERNAL_ERRORS_KEPT)
        self._idle_waiters: list[asyncio.Future[None]] = []
        #: Set by the server: stop listening for the given seconds (the ``refuse`` fault).
        self.refuse_connections: Callable[[float], None] | None = None

    def open_connection(self, proto: BrokerProtocol, peer: tuple[str, int] | None) -> ConnectionRecord:
        """Give a new connection its id and record."""
        conn_id = self.next_id
        self.next_id += 1
        record = ConnectionRecord(conn_id, peer, time.time())
        self.records.append(record)
        self.live[conn_id] = proto
        return record

    def connection_closed(self, conn_id: int) -> None:
        """Forget a live connection; wake :meth:`wait_no_connections` waiters."""
        self.live.pop(conn_id, None)
        limit = self.config.max_closed_records
        if len(self.records) > len(self.live) + limit + max(100, limit // 10):
            self._prune_records(limit)
        if not self.live and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _prune_records(self, limit: int) -> None:
        """Keep every live connection's record and the newest ``limit`` closed ones."""
        closed = [r for r in self.records if r.closed]
        drop = {id(r) for r in closed[: max(0, len(closed) - limit)]}
        self.records[:] = [r for r in self.records if id(r) not in drop]

    async def wait_no_connections(self) -> None:
        """Return once no connection is live."""
        while self.live:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(fut)
            await fut

    def reset(self) -> None:
        """Drop topics, closed connections' records, fault rules and internal errors."""
        self.store.clear()
        self.records[:] = [r for r in self.records if not r.closed]
        self.faults.clear()
        self.internal_errors.clear()
