"""Topic storage: one append-only Python list of ``(timestamp, payload)`` per topic.

Append and read by offset are both O(1), so CONSUME costs the same at any
offset (the reference broker walks a queue: O(k)). The broker runs on one event
loop thread and handles a request from start to end without yielding, so
offsets are dense and unique across connections without any lock.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A stored message as kept in a topic's log.
Entry = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored by the broker (what :meth:`MockBroker.messages` returns)."""

    offset: int
    timestamp: int
    payload: bytes


class TopicStore:
    """Every topic of one broker. Not thread-safe: use it from the broker's loop."""

    __slots__ = ("logs",)

    def __init__(self) -> None:
        #: name -> log. The connection protocol reads this dict directly on its hot path.
        self.logs: dict[str, list[Entry]] = {}

    def create(self, name: str) -> bool:
        """Create an empty topic; False if it exists already."""
        if name in self.logs:
            return False
        self.logs[name] = []
        return True

    def append(self, name: str, timestamp: int, payload: bytes) -> int:
        """Append to an existing topic and return the new message's offset."""
        log = self.logs[name]
        log.append((timestamp, payload))
        return len(log) - 1

    def counts(self) -> dict[str, int]:
        """Topic name -> number of messages, in creation order."""
        return {name: len(log) for name, log in self.logs.items()}

    def messages(self, name: str, offset: int = 0, limit: int | None = None) -> list[StoredMessage]:
        """The messages of ``name`` from ``offset``, at most ``limit`` (KeyError if there is no such topic)."""
        entries = self.logs[name]
        stop = len(entries) if limit is None else offset + limit
        return [StoredMessage(offset + i, ts, payload) for i, (ts, payload) in enumerate(entries[offset:stop])]

    def clear(self) -> None:
        """Drop every topic (in place: connections keep a reference to :attr:`logs`)."""
        self.logs.clear()
