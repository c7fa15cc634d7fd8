"""BrokerConfig: every knob of the mock broker, in one frozen dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mega_client.protocol import RequestDecoder
from mega_client.protocol.limits import (
    IDLE_TIMEOUT_SECONDS,
    INT32_MAX,
    MAX_MESSAGES_PER_TOPIC,
    MAX_PAYLOAD_BYTES,
    MAX_TOPIC_BYTES,
)

Profile = Literal["spec", "reference"]
PROFILES: tuple[Profile, ...] = ("spec", "reference")

#: The longest length the ``reference`` profile reads. The reference broker allocates
#: ``new byte[length]`` for a topic or a payload before reading it; the JVM refuses arrays
#: this close to 2**31 (Java's own collections stop at Integer.MAX_VALUE - 8), and the broker
#: closes the connection with no answer. Measured: 2,147,483,647 closes at once, 2**30 is
#: allocated (and waited for). The profile waits for such bytes too, skipping them as they
#: arrive rather than allocating them.
REFERENCE_MAX_LENGTH = INT32_MAX - 8


@dataclass(frozen=True)
class BrokerConfig:
    """How a :class:`~mock_broker.MockBroker` listens, answers and records.

    ``port=0`` (the default here) picks a free ephemeral port; the CLI's default
    is the reference broker's 8080. ``idle_timeout=None`` (or 0) disables the
    idle timeout. ``record`` keeps, per connection, the raw bytes both ways, each
    direction capped at ``record_bytes_limit`` bytes (then flagged truncated); the
    requests are decoded from them when asked for, at most ``record_requests_limit``
    of them (the applied faults are capped there too). The records of at most
    ``max_closed_records`` closed connections, holding at most
    ``max_closed_record_bytes`` of transcript between them, are kept (the
    oldest go first; a closed record without transcript costs about 0.5 KiB).

    ``write_buffer_high_water`` bounds what one connection has planned to send
    and not yet sent (answers, and a fault's delayed or sliced ones); past it
    the connection is not read until its client takes the answers.
    ``max_buffered_request_bytes`` bounds, across every connection, the request
    bytes held while large frames are assembled (see :mod:`mock_broker._memory`).

    ``connection_pool=N`` serves at most N connections at once, like the
    reference broker's pool of 10 threads: a later connection is accepted and
    left unread (no answer, no idle timeout) until one of the N closes, then
    served. Off by default, in both profiles.
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
    connection_pool: int | None = None
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
        if self.connection_pool is not None and self.connection_pool < 1:
            raise ValueError(f"connection_pool must be >= 1 (or None: no pool), not {self.connection_pool}")
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
        """The longest topic the request decoder keeps (longer: fatal, or skipped in ``reference``)."""
        return MAX_TOPIC_BYTES

    def new_decoder(self) -> RequestDecoder:
        """A request decoder that reads frames as the profile says.

        ``reference`` reads the way the reference broker does, without its cost in
        memory: a topic over 255 bytes is skipped as it arrives and the frame is then
        answered as a bad name; MESSAGE_TOO_LARGE is answered once the whole payload has
        arrived; a length over :data:`REFERENCE_MAX_LENGTH` closes the connection.
        """
        if not self.reference:
            return RequestDecoder(max_payload_bytes=self.max_payload_bytes, max_topic_bytes=MAX_TOPIC_BYTES)
        return RequestDecoder(
            max_payload_bytes=self.max_payload_bytes,
            max_topic_bytes=MAX_TOPIC_BYTES,
            skip_long_topics=True,
            oversized_after_payload=True,
            max_length=REFERENCE_MAX_LENGTH,
        )

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
