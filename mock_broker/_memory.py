"""A broker-wide bound on request bytes held while frames are assembled.

Each connection's decoder holds the start of a frame until the rest arrives: up
to the largest frame allowed (1 MiB of payload and its head). A thousand
connections doing that at once would hold a gigabyte. So a connection whose
partial frame grows past :data:`FREE_BYTES` must be granted its whole frame's
size out of a budget shared by the broker (``max_buffered_request_bytes``).
When the budget cannot cover it, the connection is no longer read (the bytes
stay in the kernel and the client waits) until grants are released, first
come, first served. A granted connection is always able to finish its frame,
so grants always come back: the broker makes progress whatever the load, and
connections sending small frames are never stopped.

What the broker holds is then at most the budget, plus :data:`FREE_BYTES` per
connection, plus, per waiting connection, what its last read brought (asyncio
reads at most 256 KiB at a time).
"""

from __future__ import annotations

from typing import Protocol

#: A partial frame up to this size needs no grant (every frame head fits, and most frames).
FREE_BYTES = 64 * 1024


class Holder(Protocol):
    """A connection that holds request bytes: its grant, and how it is told to read again."""

    grant: int

    def memory_granted(self) -> None: ...


class RequestMemory:
    """The budget of request bytes for the frames being assembled by every connection of one broker."""

    __slots__ = ("_waiting", "granted", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.granted = 0
        # Insertion-ordered: the first to wait is the first served.
        self._waiting: dict[Holder, int] = {}

    @property
    def waiting(self) -> int:
        """Connections not read until memory is released."""
        return len(self._waiting)

    def hold(self, holder: Holder, held: int, frame_bytes: int | None) -> bool:
        """``holder`` holds ``held`` bytes of a frame of ``frame_bytes`` (None: not known yet).

        True: it may go on reading. False: it must stop reading until
        :meth:`Holder.memory_granted` is called.
        """
        if held <= FREE_BYTES:
            if holder.grant:
                self.release(holder)
            return True
        want = max(held, frame_bytes or 0)
        if want <= holder.grant:
            return True
        extra = want - holder.grant
        if not self._waiting and (self.granted + extra <= self.limit or self.granted == holder.grant):
            self.granted += extra
            holder.grant = want
            return True
        self._waiting[holder] = want
        return False

    def release(self, holder: Holder) -> None:
        """``holder`` no longer holds a large frame (it completed, or the connection ended)."""
        self._waiting.pop(holder, None)
        if holder.grant:
            self.granted -= holder.grant
            holder.grant = 0
            self._serve_waiting()

    def _serve_waiting(self) -> None:
        for holder, want in list(self._waiting.items()):
            extra = want - holder.grant
            # With nothing granted, the first waiter goes ahead whatever its size: progress.
            if self.granted + extra > self.limit and self.granted > 0:
                return
            del self._waiting[holder]
            self.granted += extra
            holder.grant = want
            holder.memory_granted()
