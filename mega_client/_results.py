"""What successful calls return: small frozen objects, also readable as mappings.

Attribute access is the typed API (``result.offset``). For code written
against the seed client, which returned dicts, ``result["offset"]``,
``result.get("offset")``, ``"offset" in result`` and ``dict(result)`` work
too, with the field names as keys.

Bytes versus text:

- :attr:`Consumed.payload` is always the message's exact bytes;
- :attr:`Consumed.text` is those bytes decoded as UTF-8 (it raises
  :class:`UnicodeDecodeError` if they are not valid UTF-8);
- ``consumed["payload"]``, the seed-compatible mapping view, is the decoded
  text when the bytes are valid UTF-8 and the bytes otherwise, so the seed's
  ``print(f"Consumed message: {consume_response['payload']}")`` prints the
  message, not ``b'...'``. New code should use ``.payload`` or ``.text``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import KeysView
from dataclasses import dataclass
from typing import Any

__all__ = ["Consumed", "Produced", "TopicCreated"]

_PREVIEW_BYTES = 64


class _MappingView:
    """``result["field"]`` and friends, for the seed's dict-style access."""

    __slots__ = ()

    def _field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if isinstance(key, str) and key in self._field_names():
            return getattr(self, key)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._field_names()

    def keys(self) -> KeysView[str]:
        """The field names, so that ``dict(result)`` works."""
        return dict.fromkeys(self._field_names()).keys()

    def get(self, key: str, default: Any = None) -> Any:
        """``result[key]``, or ``default`` when ``key`` is not a field."""
        try:
            return self[key]
        except KeyError:
            return default


@dataclass(frozen=True, slots=True)
class TopicCreated(_MappingView):
    """CREATE_TOPIC succeeded.

    ``topic`` is the broker's echo of the name, ``timestamp`` the request's
    timestamp as the broker echoed it (milliseconds since the Unix epoch).
    ``str()`` of it is the topic name.
    """

    topic: str
    timestamp: int
    correlation_id: int

    def __str__(self) -> str:
        return self.topic


@dataclass(frozen=True, slots=True)
class Produced(_MappingView):
    """PRODUCE succeeded: the message was stored in ``topic`` at ``offset``.

    ``timestamp`` is the one sent with the message (milliseconds since the
    Unix epoch), echoed by the broker.
    """

    topic: str
    offset: int
    timestamp: int
    correlation_id: int


@dataclass(frozen=True, slots=True, repr=False)
class Consumed(_MappingView):
    """CONSUME succeeded: the message at ``offset`` of ``topic``.

    ``payload`` is the message's exact bytes; :attr:`text` decodes them as
    UTF-8. ``next_offset`` is the offset to read next, ``timestamp`` the one
    the message was produced with. ``self["payload"]`` is the seed-compatible
    view: the text when the bytes are valid UTF-8, else the bytes.
    """

    topic: str
    offset: int
    payload: bytes
    next_offset: int
    timestamp: int
    correlation_id: int

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (raises :class:`UnicodeDecodeError` if it is not)."""
        return self.payload.decode("utf-8")

    def __getitem__(self, key: str) -> Any:
        if key == "payload":
            try:
                return self.payload.decode("utf-8")
            except UnicodeDecodeError:
                return self.payload
        return _MappingView.__getitem__(self, key)

    def __repr__(self) -> str:
        payload = repr(self.payload[:_PREVIEW_BYTES])
        if len(self.payload) > _PREVIEW_BYTES:
            payload += f"...({len(self.payload)} bytes)"
        return (
            f"Consumed(topic={self.topic!r}, offset={self.offset}, payload={payload}, "
            f"next_offset={self.next_offset}, timestamp={self.timestamp}, "
            f"correlation_id={self.correlation_id})"
        )
