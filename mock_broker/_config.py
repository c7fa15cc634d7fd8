"""BrokerConfig: every knob of the mock broker, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mega_client.protocol.limits import (
    IDLE_TIMEOUT_SECONDS,
    INT32_MAX,
    MAX_MESSAGES_PER_TOPIC,
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_BYTES,
    UINT16_MAX,
)

Profile = Literal["spec", "reference"]
PROFILES: tuple[Profile, ...] = ("spec", "reference")

#: How many topic bytes the ``reference`` profile reads before it gives up on a frame.
#: The reference broker reads any length; we read up to a uint16's worth (still bounded)
#: and answer as for any invalid name.
REFERENCE_MAX_TOPIC_BYTES = UINT16_MAX


@dataclass(frozen=True)
class BrokerConfig:
    """How a :class:`~mock_broker.MockBroker` listens, answers and records.

    ``port=0`` (the default here) picks a free ephemeral port; the CLI's default
    is the reference broker's 8080. ``idle_timeout=None`` (or 0) disables the
    idle timeout. ``record`` keeps, per connection, the decoded requests and the
    raw bytes both ways, each direction capped at ``record_bytes_limit`` bytes
    and the request (and applied fault) lists at ``record_requests_limit``
    entries (then flagged truncated). The records of at most
    ``max_closed_records`` closed connections, holding at most
    ``max_closed_record_bytes`` of transcript between them, are kept (the
    oldest go first; a closed record without transcript costs about 0.5 KiB).

    ``write_buffer_high_water`` bounds what one connection has planned to send
    and not yet sent (answers, and a fault's delayed or sliced ones); past it
    the connection is not read until its client takes the answers.
    ``max_buffered_request_bytes`` bounds, across every connection, the request
    bytes held while large frames are assembled (see :mod:`mock_broker._memory`).
    """

    host: str = "127.0.0.1"
    port: int = 0
    profile: Profile = "spec"
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    max_messages_per_topic: int = MAX_MESSAGES_PER_TOPIC
    max_topics: int = 100_000
    max_connections: int = 10_000
    idle_timeout: float | None = IDLE_TIMEOUT_SECONDS
    write_buffer_high_water: int = 1024 * 1024
    max_buffered_request_bytes: int = 256 * 1024 * 1024
    backlog: int = 1024
    record: bool = True
    record_bytes_limit: int = 4 * 1024 * 1024
    record_requests_limit: int = 100_000
    max_closed_records: int = 100_000
    max_closed_record_bytes: int = 64 * 1024 * 1024
    faults: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        for name in (
            "max_payload_bytes",
            "max_messages_per_topic",
            "record_bytes_limit",
            "record_requests_limit",
            "max_closed_records",
            "max_closed_record_bytes",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        # Lengths and offsets are int32 on the wire (next_offset = offset + 1 included).
        for name in ("max_payload_bytes", "max_messages_per_topic"):
            if getattr(self, name) > INT32_MAX:
                raise ValueError(f"{name} must fit an int32, not {getattr(self, name)}")
        for name in (
            "max_topics",
            "max_connections",
            "write_buffer_high_water",
            "max_buffered_request_bytes",
            "backlog",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)}")
        if self.idle_timeout is not None and self.idle_timeout < 0:
            raise ValueError(f"idle_timeout must be >= 0 (0 or None: never), not {self.idle_timeout}")
        if isinstance(self.faults, str):  # type: ignore[unreachable]
            raise ValueError("faults must be a sequence of rule strings, not one string")
        object.__setattr__(self, "faults", tuple(self.faults))

    @property
    def reference(self) -> bool:
        """True for the ``reference`` profile."""
        return self.profile == "reference"

    @property
    def max_topic_bytes(self) -> int:
        """The topic_length the request decoder accepts before the frame is fatal."""
        return REFERENCE_MAX_TOPIC_BYTES if self.reference else MAX_TOPIC_BYTES

    @property
    def effective_idle_timeout(self) -> float | None:
        """``idle_timeout``, with 0 folded into ``None`` (never)."""
        return self.idle_timeout or None

    def replace(self, **changes: Any) -> BrokerConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)


def make_config(config: BrokerConfig | None, overrides: dict[str, Any]) -> BrokerConfig:
    """``config`` (or the defaults) with keyword overrides; unknown names are a TypeError."""
    fields = {f.name for f in dataclasses.fields(BrokerConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown broker option(s): {', '.join(unknown)}")
    base = config if config is not None else BrokerConfig()
    return dataclasses.replace(base, **overrides) if overrides else base
