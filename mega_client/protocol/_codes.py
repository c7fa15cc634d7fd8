"""The protocol's numeric codes: message types and error codes (docs/PROTOCOL.md).

This is the only place these numbers are written down in the code base.
"""

from __future__ import annotations

import enum


class MessageType(enum.IntEnum):
    """The request's ``message_type`` byte."""

    PRODUCE = 0x01
    CONSUME = 0x02
    CREATE_TOPIC = 0x03


class ErrorCode(enum.IntEnum):
    """The ``error_code`` byte of an error response."""

    INVALID_REQUEST = 1
    INVALID_MESSAGE_TYPE = 2
    MESSAGE_TOO_LARGE = 3
    TOPIC_NOT_FOUND = 4
    TOPIC_ALREADY_EXISTS = 5
    INVALID_OFFSET = 6
    INTERNAL_ERROR = 7
    NETWORK_ERROR = 8
    RESOURCE_EXHAUSTED = 9


def error_code_or_int(value: int) -> int:
    """Return the :class:`ErrorCode` member for ``value``, or ``value`` itself if unknown.

    A broker newer than this kit may send codes we do not know; they are still
    well-formed frames, so they are kept as plain ints rather than rejected.
    """
    try:
        return ErrorCode(value)
    except ValueError:
        return value


def code_name(value: int) -> str:
    """The protocol's name for an error code, or ``UNKNOWN_<n>``."""
    try:
        return ErrorCode(value).name
    except ValueError:
        return f"UNKNOWN_{value}"
