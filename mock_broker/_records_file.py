"""RecordsFile: ``--records-file PATH``, each connection's record as one JSON line, written as it closes.

The broker's loop only takes a snapshot of the closed connection's record (a
copy of its lists, not of its bytes) and queues it; a thread of its own turns
it into JSON (the same view as ``GET /v1/connections/{id}``) and writes it, so
a large transcript never holds up the clients. Every connection closes at the
latest when the broker stops, so at exit the file holds every connection. The
queue is bounded (:data:`MAX_QUEUED_RECORDS`, :data:`MAX_QUEUED_BYTES` of
transcript): past it a record is dropped and counted, and a warning says so.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from pathlib import Path
from typing import IO

from ._record import ConnectionRecord
from ._views import record_detail

log = logging.getLogger("mock_broker")

MAX_QUEUED_RECORDS = 10_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024


class RecordsFile:
    """JSON lines of connection records (opening the file may raise OSError)."""

    def __init__(self, path: Path, max_payload_bytes: int) -> None:
        self.path = path
        self._file: IO[str] = path.open("w", encoding="ascii")
        self._max_payload = max_payload_bytes
        self._queue: queue.SimpleQueue[ConnectionRecord | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued = 0
        self._queued_bytes = 0
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._write_all, name="mock-broker-records", daemon=True)
        self._thread.start()

    def connection_closed(self, record: ConnectionRecord) -> None:
        """On the broker's loop: queue the record (or drop it when the queue is full)."""
        size = record.kept_bytes
        with self._lock:
            full = self._queued >= MAX_QUEUED_RECORDS or self._queued_bytes + size > MAX_QUEUED_BYTES
            if full:
                self.dropped += 1
            else:
                self._queued += 1
                self._queued_bytes += size
        if full:
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("records file: %d records dropped (the writer is behind)", self.dropped)
            return
        self._queue.put(record.snapshot())

    def _write_all(self) -> None:
        while (record := self._queue.get()) is not None:
            with self._lock:
                self._queued -= 1
                self._queued_bytes -= record.kept_bytes
            try:
                self._file.write(json.dumps(record_detail(record, self._max_payload)) + "\n")
                self._file.flush()
                self.written += 1
            except (OSError, ValueError) as exc:
                log.error("records file %s: cannot write: %s", self.path, exc)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then close the file."""
        self._queue.put(None)
        self._thread.join(timeout)
        try:
            self._file.close()
        except OSError as exc:
            log.error("records file %s: cannot close: %s", self.path, exc)
        if self.dropped:
            log.warning("records file: %d records written, %d dropped", self.written, self.dropped)
