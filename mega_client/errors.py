"""The exceptions the client raises: one family under :class:`MegaError`.

::

    MegaError
    ├── BrokerError                  the broker answered a request with an error code
    │   ├── InvalidRequestError          1  INVALID_REQUEST
    │   ├── InvalidMessageTypeError      2  INVALID_MESSAGE_TYPE
    │   ├── MessageTooLargeError         3  MESSAGE_TOO_LARGE
    │   ├── TopicNotFoundError           4  TOPIC_NOT_FOUND
    │   ├── TopicAlreadyExistsError      5  TOPIC_ALREADY_EXISTS
    │   ├── InvalidOffsetError           6  INVALID_OFFSET
    │   ├── BrokerInternalError          7  INTERNAL_ERROR
    │   ├── BrokerNetworkError           8  NETWORK_ERROR (as the answer to a request)
    │   └── ResourceExhaustedError       9  RESOURCE_EXHAUSTED
    ├── MegaConnectionError          also a ConnectionError: refused, reset, closed
    │   └── ConnectionClosedByBroker     the broker's unsolicited error frame (correlation id 0)
    ├── MegaTimeoutError             also a TimeoutError: connect or request deadline passed
    ├── MegaProtocolError            the broker's bytes break the protocol
    ├── ClientStateError             also a RuntimeError: used before connect() or after close()
    └── ValidationError              also a ValueError: an argument rejected before sending
        ├── InvalidTopicNameError
        └── PayloadTooLargeError

A broker error leaves the connection usable. After a connection, timeout or
protocol error the client has closed its connection (the byte stream can no
longer be trusted) and the next call opens a new one.
"""

from __future__ import annotations

from typing import ClassVar

from .protocol import ErrorCode, RemoteProtocolError, code_name
from .protocol._codes import error_code_or_int

__all__ = [
    "BrokerError",
    "BrokerInternalError",
    "BrokerNetworkError",
    "ClientStateError",
    "ConnectionClosedByBroker",
    "InvalidMessageTypeError",
    "InvalidOffsetError",
    "InvalidRequestError",
    "InvalidTopicNameError",
    "MegaConnectionError",
    "MegaError",
    "MegaProtocolError",
    "MegaTimeoutError",
    "MessageTooLargeError",
    "PayloadTooLargeError",
    "ResourceExhaustedError",
    "TopicAlreadyExistsError",
    "TopicNotFoundError",
    "ValidationError",
]


class MegaError(Exception):
    """Base class of every exception this client raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt without calling __init__ (the subclasses' signatures differ from their args):
        # the class, the args (the message) and the attributes.
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


# --------------------------------------------------------------------------- broker errors


class BrokerError(MegaError):
    """The broker answered a request with ``success = 0`` and an error code.

    ``code`` is an :class:`~mega_client.protocol.ErrorCode` member (a plain
    ``int`` for a code this client does not know), ``code_name`` the
    protocol's name for it (``"TOPIC_NOT_FOUND"``, or ``"UNKNOWN_<n>"``) and
    ``correlation_id`` the id of the request it answers. The connection stays
    open and usable.

    Catch a specific subclass (``except TopicNotFoundError``) or this class and
    look at ``code``. :meth:`for_code` builds the right subclass for a code.
    """

    #: The code a subclass stands for (``None`` on the base class).
    default_code: ClassVar[ErrorCode | None] = None

    def __init__(self, code: int, correlation_id: int | None = None, message: str | None = None) -> None:
        self.code: int = error_code_or_int(code)
        self.code_name: str = code_name(code)
        self.correlation_id = correlation_id
        if message is None:
            message = f"broker answered {self.code_name} ({int(code)})"
            if correlation_id is not None:
                message += f" to request {correlation_id}"
        super().__init__(message)

    @staticmethod
    def for_code(code: int, correlation_id: int | None = None) -> BrokerError:
        """The exception for ``code``: its subclass, or :class:`BrokerError` for an unknown code."""
        cls = _BY_CODE.get(code, BrokerError)
        return cls(code, correlation_id)


class InvalidRequestError(BrokerError):
    """INVALID_REQUEST (1): the broker found the request malformed."""

    default_code = ErrorCode.INVALID_REQUEST


class InvalidMessageTypeError(BrokerError):
    """INVALID_MESSAGE_TYPE (2): the broker does not know the request's type."""

    default_code = ErrorCode.INVALID_MESSAGE_TYPE


class MessageTooLargeError(BrokerError):
    """MESSAGE_TOO_LARGE (3): the payload is over the broker's limit.

    This client refuses payloads over 1 MiB before sending them
    (:class:`PayloadTooLargeError`), so this means the broker's limit is lower.
    """

    default_code = ErrorCode.MESSAGE_TOO_LARGE


class TopicNotFoundError(BrokerError):
    """TOPIC_NOT_FOUND (4): PRODUCE or CONSUME on a topic that does not exist."""

    default_code = ErrorCode.TOPIC_NOT_FOUND


class TopicAlreadyExistsError(BrokerError):
    """TOPIC_ALREADY_EXISTS (5): CREATE_TOPIC of a name that exists.

    When a CREATE_TOPIC was retried after a dropped connection, the first
    attempt may be the one that created the topic.
    """

    default_code = ErrorCode.TOPIC_ALREADY_EXISTS


class InvalidOffsetError(BrokerError):
    """INVALID_OFFSET (6): CONSUME of an offset below 0 or past the last message."""

    default_code = ErrorCode.INVALID_OFFSET


class BrokerInternalError(BrokerError):
    """INTERNAL_ERROR (7): any other failure in the broker.

    The reference broker also answers an invalid topic name this way; this
    client rejects such names before sending (:class:`InvalidTopicNameError`).
    """

    default_code = ErrorCode.INTERNAL_ERROR


class BrokerNetworkError(BrokerError):
    """NETWORK_ERROR (8) sent as the answer to a request (with its correlation id).

    The broker's unsolicited NETWORK_ERROR frame (correlation id 0, sent
    before it closes an idle connection) is a :class:`ConnectionClosedByBroker`.
    """

    default_code = ErrorCode.NETWORK_ERROR


class ResourceExhaustedError(BrokerError):
    """RESOURCE_EXHAUSTED (9): the topic holds as many messages as the broker allows."""

    default_code = ErrorCode.RESOURCE_EXHAUSTED


_BY_CODE: dict[int, type[BrokerError]] = {
    cls.default_code: cls
    for cls in (
        InvalidRequestError,
        InvalidMessageTypeError,
        MessageTooLargeError,
        TopicNotFoundError,
        TopicAlreadyExistsError,
        InvalidOffsetError,
        BrokerInternalError,
        BrokerNetworkError,
        ResourceExhaustedError,
    )
}


# --------------------------------------------------------------------------- transport errors


class _RequestFailure(MegaError):
    """A failure that may have come after the request's bytes went out: ``request_sent`` says.

    ``request_sent=True``: some of the request's bytes were handed to the
    operating system, so it may have reached the broker, and a PRODUCE may or
    may not have been stored (CONN-14). ``request_sent=False``: the request was
    certainly never written (connecting failed, or it was still waiting in the
    asyncio client's queue when the connection ended), so sending it again
    cannot store a message twice; the retry policy does so even for a PRODUCE.
    """

    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class MegaConnectionError(_RequestFailure, ConnectionError):
    """The connection could not be opened, or was lost (refused, reset, closed).

    ``request_sent`` says whether the failed request's bytes may have reached
    the broker: when it is true, a PRODUCE may or may not have been stored;
    when it is false, the request was never written. The client has closed
    its side; the next call reconnects.
    """


class ConnectionClosedByBroker(MegaConnectionError):
    """The broker sent its unsolicited error frame (correlation id 0) and is closing.

    The reference broker does this with NETWORK_ERROR after 30 s without a
    request. ``code`` and ``code_name`` are the frame's error code. When the
    frame is found on an idle connection, before a request is sent, the client
    just reconnects; this is raised when it arrives instead of an answer.
    """

    def __init__(self, code: int, *, request_sent: bool = True) -> None:
        self.code: int = error_code_or_int(code)
        self.code_name: str = code_name(code)
        super().__init__(
            f"broker sent an unsolicited {self.code_name} frame and is closing the connection",
            request_sent=request_sent,
        )


class MegaTimeoutError(_RequestFailure, TimeoutError):
    """A connect or a request did not finish within its timeout.

    ``request_sent`` is as for :class:`MegaConnectionError`. The client has
    closed the connection (a late answer must not be taken for the next one).
    """


class MegaProtocolError(MegaError):
    """The broker's bytes break the protocol; the client has closed the connection.

    ``reason`` is the codec's short tag (``"correlation-mismatch"``,
    ``"bad-success-flag"``, ``"negative-length"``, ``"length-over-limit"``,
    ...) or the client's own (``"topic-echo-mismatch"``), ``correlation_id``
    the id read off the offending frame when there was one, and ``__cause__``
    the codec's :class:`~mega_client.protocol.RemoteProtocolError`. (A response
    cut short by the broker closing is a :class:`MegaConnectionError`: the
    bytes were fine, the connection ended.)
    """

    def __init__(self, message: str, *, reason: str, correlation_id: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.correlation_id = correlation_id

    @classmethod
    def from_codec(cls, exc: RemoteProtocolError) -> MegaProtocolError:
        """Wrap the codec's error, which becomes the ``__cause__``."""
        error = cls(f"protocol error from the broker: {exc}", reason=exc.reason, correlation_id=exc.correlation_id)
        error.__cause__ = exc
        return error


# --------------------------------------------------------------------------- usage errors


class ClientStateError(MegaError, RuntimeError):
    """The client was used before :meth:`connect` or after :meth:`close`."""


class ValidationError(MegaError, ValueError):
    """An argument was rejected before anything was sent."""


class InvalidTopicNameError(ValidationError):
    """A topic name is not 1 to 255 characters of ``[A-Za-z0-9._-]``."""


class PayloadTooLargeError(ValidationError):
    """A payload is over 1 MiB (1,048,576 bytes) once encoded."""


def _rebuild(cls: type[MegaError], args: tuple[object, ...], state: dict[str, object]) -> MegaError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc
