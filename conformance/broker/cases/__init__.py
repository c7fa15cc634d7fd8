"""The broker cases, by area; importing this package registers them all."""

from . import codes, connections, idle, layout, limits, malformed, names, performance, semantics, streams

__all__ = [
    "codes",
    "connections",
    "idle",
    "layout",
    "limits",
    "malformed",
    "names",
    "performance",
    "semantics",
    "streams",
]
