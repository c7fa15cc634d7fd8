"""Received bytes not yet decoded, as in h11's ``_receivebuffer``.

Frames are parsed in place from ``data[pos:]``. A chunk that arrives while the
buffer is empty becomes ``data`` as it is, with no copy; chunks that arrive
while a frame is incomplete wait in a list and are joined only once the
decoder asks for at least as many bytes as they complete (:meth:`ensure`), so
a large frame arriving in many pieces is copied once, not once per piece.

Decoders read ``data`` and ``pos`` directly and advance ``pos`` themselves:
this is the innermost loop of the broker and the client.
"""

from __future__ import annotations


class ReceiveBuffer:
    """Bytes received and not yet consumed."""

    __slots__ = ("_waiting", "_waiting_len", "data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0
        # Made when a chunk must wait: most buffers never need it (an empty list is 56 bytes,
        # and the broker has one buffer per connection).
        self._waiting: list[bytes] | None = None
        self._waiting_len = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos + self._waiting_len

    def extend(self, chunk: bytes | bytearray | memoryview) -> None:
        if self.pos >= len(self.data) and not self._waiting:
            self.data = bytes(chunk)  # no copy when it is bytes already
            self.pos = 0
        else:
            piece = bytes(chunk)
            if self._waiting is None:
                self._waiting = []
            self._waiting.append(piece)
            self._waiting_len += len(piece)

    def ensure(self, n: int) -> bool:
        """Make ``data[pos:pos + n]`` hold the next ``n`` bytes; False if fewer are buffered."""
        data, pos = self.data, self.pos
        if len(data) - pos >= n:
            return True
        waiting = self._waiting
        if waiting is None or len(data) - pos + self._waiting_len < n:
            return False
        self.data = b"".join([data[pos:], *waiting])
        self.pos = 0
        self._waiting = None
        self._waiting_len = 0
        return True

    def peek(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer if fewer are buffered), without consuming them.

        Unlike :meth:`ensure` it copies only those bytes, not every chunk waiting:
        a caller may look at a frame's head after every read of a large frame.
        """
        head = self.data[self.pos : self.pos + n]
        if len(head) >= n or not self._waiting:
            return head
        parts = [head]
        need = n - len(head)
        for chunk in self._waiting:
            parts.append(chunk[:need])
            need -= len(chunk)
            if need <= 0:
                break
        return b"".join(parts)

    def consume(self, n: int) -> None:
        """Drop ``n`` bytes from the front (the caller checked they are there)."""
        if self._waiting:
            self.ensure(n)
        self.pos += n

    def clear(self) -> int:
        """Drop everything; return how many bytes were dropped."""
        n = len(self)
        self.data = b""
        self.pos = 0
        self._waiting = None
        self._waiting_len = 0
        return n
