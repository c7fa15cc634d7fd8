"""Topic storage: per topic, its messages as the tails of the PRODUCE frames that brought them.

A message is kept as the bytes its PRODUCE frame carried from the timestamp
on (``timestamp``, ``payload_length``, payload: the codec's
``layouts.REQUEST_TAIL`` and what follows it), inside a bytes object that
several messages may share: :class:`TopicLog` holds, per message, that object
and where the tail starts in it.

Why this shape, measured: the broker's fast path stores a run of PRODUCE
frames to one topic by keeping the bytes read as they are (one slice per run,
none when the run is the whole read) and one position per message, where a
bytes object per payload and a timestamp apiece cost about 200 ns more per
request (allocation and fresh memory for every message; bench/ and
docs/PERFORMANCE.md). The frame's head and topic stay inside the shared bytes,
which costs less than an object per payload (its header alone is 33 bytes)
while the topic is short; so the fast path takes topics of at most
:data:`SHARED_TOPIC_BYTES` bytes, and other messages get a bytes object of
their own (start 0).

Append and read by offset are both O(1), so CONSUME costs the same at any
offset (the reference broker walks a queue: O(k)). The broker runs on one event
loop thread and handles a request from start to end without yielding, so
offsets are dense and unique across connections without any lock. Storing a
million messages creates no object the garbage collector must walk (bytes and
arrays are not tracked), which a full collection otherwise does again and again.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

from mega_client.protocol import layouts

_TAIL = layouts.REQUEST_TAIL  # timestamp, payload_length
_TAIL_BYTES = _TAIL.size

#: Topics up to this long are stored in the frames' shared bytes (see the module's docstring).
SHARED_TOPIC_BYTES = 32


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as stored by the broker (what :meth:`MockBroker.messages` returns)."""

    offset: int
    timestamp: int
    payload: bytes


class TopicLog:
    """One topic's messages: message ``i``'s tail starts at ``starts[i]`` in ``frames[i]``.

    The broker's fast path appends to both itself; :meth:`append` is for everything else.
    """

    __slots__ = ("frames", "starts")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.starts = array("q")

    def __len__(self) -> int:
        return len(self.frames)

    def append(self, timestamp: int, payload: bytes) -> int:
        """Store a message; return its offset. ValueError for a timestamp outside int64."""
        try:
            tail = _TAIL.pack(timestamp, len(payload))
        except struct.error:
            raise ValueError(f"timestamp {timestamp} does not fit a signed 64-bit integer") from None
        self.frames.append(tail + payload)
        self.starts.append(0)
        return len(self.frames) - 1

    def message(self, offset: int) -> tuple[int, bytes]:
        """Message ``offset``'s timestamp and payload (IndexError past the end)."""
        frame = self.frames[offset]
        at = self.starts[offset]
        timestamp, plen = _TAIL.unpack_from(frame, at)
        at += _TAIL_BYTES
        return timestamp, frame[at : at + plen]


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
        return {name: len(log) for name, log in self.logs.items()}

    def messages(self, name: str, offset: int = 0, limit: int | None = None) -> list[StoredMessage]:
        """The messages of ``name`` from ``offset``, at most ``limit`` (KeyError if there is no such topic)."""
        log = self.logs[name]
        stop = len(log) if limit is None else min(len(log), offset + limit)
        return [StoredMessage(i, *log.message(i)) for i in range(max(offset, 0), stop)]

    def clear(self) -> None:
        """Drop every topic (in place: connections keep a reference to :attr:`logs`)."""
        self.logs.clear()
