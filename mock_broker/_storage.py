"""Topic storage: per topic, the timestamps and the payloads of its messages, in two parallel sequences.

Append and read by offset are both O(1), so CONSUME costs the same at any
offset (the reference broker walks a queue: O(k)). The broker runs on one event
loop thread and handles a request from start to end without yielding, so
offsets are dense and unique across connections without any lock.

Why two sequences and not a list of ``(timestamp, payload)`` tuples: a message
then costs its payload object, one list slot and 8 bytes of ``array('q')``
(about 55 bytes beyond a 100-byte payload, not about 150), and storing a
million messages creates no object the garbage collector must walk (a tuple is
one; bytes are not), which a full collection otherwise does again and again.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored by the broker (what :meth:`MockBroker.messages` returns)."""

    offset: int
    timestamp: int
    payload: bytes


class TopicLog:
    """One topic's messages: ``timestamps[i]`` and ``payloads[i]`` are message ``i``'s.

    The broker's hot path appends to both lists itself; :meth:`append` is for everything else.
    """

    __slots__ = ("payloads", "timestamps")

    def __init__(self) -> None:
        self.timestamps = array("q")
        self.payloads: list[bytes] = []

    def __len__(self) -> int:
        return len(self.payloads)

    def append(self, timestamp: int, payload: bytes) -> int:
        """Store a message; return its offset. ValueError for a timestamp outside int64."""
        try:
            self.timestamps.append(timestamp)
        except OverflowError:
            raise ValueError(f"timestamp {timestamp} does not fit a signed 64-bit integer") from None
        self.payloads.append(payload)
        return len(self.payloads) - 1


class TopicStore:
    """Every topic of one broker. Not thread-safe: use it from the broker's loop."""

    __slots__ = ("logs",)

    def __init__(self) -> None:
        #: name -> log. The broker's answers read this dict directly on their hot path.
        self.logs: dict[str, TopicLog] = {}

    def create(self, name: str) -> bool:
        """Create an empty topic; False if it exists already."""
        if name in self.logs:
            return False
        self.logs[name] = TopicLog()
        return True

    def append(self, name: str, timestamp: int, payload: bytes) -> int:
        """Append to an existing topic (KeyError if none) and return the new message's offset."""
        return self.logs[name].append(timestamp, payload)

    def counts(self) -> dict[str, int]:
        """Topic name -> number of messages, in creation order."""
        return {name: len(log.payloads) for name, log in self.logs.items()}

    def messages(self, name: str, offset: int = 0, limit: int | None = None) -> list[StoredMessage]:
        """The messages of ``name`` from ``offset``, at most ``limit`` (KeyError if there is no such topic)."""
        log = self.logs[name]
        stop = len(log.payloads) if limit is None else offset + limit
        pairs = zip(log.timestamps[offset:stop], log.payloads[offset:stop], strict=True)
        return [StoredMessage(offset + i, ts, payload) for i, (ts, payload) in enumerate(pairs)]

    def clear(self) -> None:
        """Drop every topic (in place: connections keep a reference to :attr:`logs`)."""
        self.logs.clear()
