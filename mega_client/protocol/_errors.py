"""The codec's one exception family.

``RemoteProtocolError``: bytes received from the peer break the spec.
``LocalProtocolError``: we were asked to encode something the wire cannot carry, or to send
on a :class:`ClientConnection` that cannot take it.
"""

from __future__ import annotations

from ._codes import ErrorCode


class ProtocolError(Exception):
    """Base class of every error the codec raises."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break docs/PROTOCOL.md.

    ``reason`` is a short kebab-case tag (``"unknown-message-type"``,
    ``"bad-success-flag"``, ...) that tests and reports can match on.

    For a request, ``error_code`` is what a broker answers and
    ``correlation_id`` the id to answer with (``None`` when it was never read).
    ``fatal`` says whether the byte stream is lost: after a fatal error the
    decoder refuses further use and the connection must be closed; after a
    non-fatal one the offending frame has been consumed (or is being skipped)
    and decoding can go on.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        fatal: bool = True,
        error_code: ErrorCode = ErrorCode.INVALID_REQUEST,
        correlation_id: int | None = None,
        message_type: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.fatal = fatal
        self.error_code = error_code
        self.correlation_id = correlation_id
        self.message_type = message_type


class LocalProtocolError(ProtocolError, ValueError):
    """A frame given to an encoder cannot be represented on the wire, or a
    :class:`~mega_client.protocol.ClientConnection` cannot send it (ended, or not its next id)."""
