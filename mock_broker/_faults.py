"""Fault injection (issue 5). For now: the registry the hot path checks."""

from __future__ import annotations


class FaultRegistry:
    """The fault rules of one broker. ``active`` is the one flag the hot path reads."""

    def __init__(self) -> None:
        self.active = False

    def clear(self) -> None:
        """Remove every rule."""
        self.active = False
