"""Every limit of the MEGA protocol, and the topic name rules, in one place."""

from __future__ import annotations

import re

#: Largest payload a broker accepts (docs/PROTOCOL.md, SEM clauses): 1 MiB.
MAX_PAYLOAD_BYTES = 1024 * 1024

#: A topic name is 1 to 255 bytes of ``[A-Za-z0-9._-]``.
MAX_TOPIC_BYTES = 255
_TOPIC_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")

#: Messages a topic holds before PRODUCE is answered RESOURCE_EXHAUSTED.
MAX_MESSAGES_PER_TOPIC = 1_000_000

#: Seconds without a byte received before a broker sends NETWORK_ERROR and closes.
IDLE_TIMEOUT_SECONDS = 30.0

#: The reference broker's port.
DEFAULT_PORT = 8080

#: Correlation id the broker uses for its unsolicited error frame.
UNSOLICITED_CORRELATION_ID = 0

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT16_MAX = 2**16 - 1


def topic_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid topic name, or ``None`` if it is."""
    if not name:
        return "topic name is empty"
    if len(name) > MAX_TOPIC_BYTES:
        return f"topic name is {len(name)} characters, over {MAX_TOPIC_BYTES}"
    if _TOPIC_CHARACTERS.fullmatch(name) is None:
        return f"topic name {name!r} has characters outside [A-Za-z0-9._-]"
    return None


def is_valid_topic_name(name: str) -> bool:
    """True when ``name`` follows the topic name rules."""
    return topic_name_problem(name) is None
