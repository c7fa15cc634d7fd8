"""The client cases, by area; importing this package registers them all."""

from . import errors, framing, lifecycle, pipelining

__all__ = ["errors", "framing", "lifecycle", "pipelining"]
