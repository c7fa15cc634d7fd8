"""A byte buffer with a read position, as in h11's ``_receivebuffer``.

Frames are parsed in place from ``data[pos:]``; consumed bytes are dropped
lazily so that a run of small frames costs no copying.
"""

from __future__ import annotations

_COMPACT_AT = 64 * 1024


class ReceiveBuffer:
    """Bytes received and not yet consumed."""

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = bytearray()
        self.pos = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def extend(self, chunk: bytes | bytearray | memoryview) -> None:
        self.data += chunk

    def consume(self, n: int) -> None:
        """Drop ``n`` bytes from the front."""
        self.pos += n
        if self.pos >= len(self.data):
            self.data.clear()
            self.pos = 0
        elif self.pos >= _COMPACT_AT and self.pos * 2 >= len(self.data):
            del self.data[: self.pos]
            self.pos = 0

    def take(self, n: int) -> bytes:
        """Return and consume the next ``n`` bytes (the caller checked they are there)."""
        start = self.pos
        out = bytes(self.data[start : start + n])
        self.consume(n)
        return out

    def clear(self) -> int:
        """Drop everything; return how many bytes were dropped."""
        n = len(self)
        self.data.clear()
        self.pos = 0
        return n
