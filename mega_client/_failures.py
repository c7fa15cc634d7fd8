"""What a request's caller is told when its connection fails: one error per request.

Both clients ask here, so that the same failure reads the same in each. A
request whose bytes were never written gets ``request_sent=False`` (safe to
send again); every other one ``request_sent=True`` (CONN-14: its outcome is
unknown).
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import ConnectionClosedByBroker, MegaConnectionError, MegaError, MegaProtocolError, MegaTimeoutError
from .protocol import EndOfStream, ProtocolViolation, Request, UnsolicitedFrame


def describe(request: Request) -> str:
    """``PRODUCE (request 7)``: a request, as error messages name it."""
    return f"{request.message_type.name} (request {request.correlation_id})"


#: How a connection can end, as ClientConnection reports it.
Ending = UnsolicitedFrame | EndOfStream | ProtocolViolation

#: The error each request gets when its connection fails: given the request, or ``None`` for a
#: request never written.
ErrorFor = Callable[[Request | None], MegaError]


def unsent(why: str) -> MegaConnectionError:
    """The error of a call whose request was never written: safe to send again."""
    return MegaConnectionError(f"{why} before the request was written", request_sent=False)


def ending_errors(event: Ending, lost: BaseException | None = None) -> ErrorFor:
    """The errors of the requests left when the connection ended with ``event``.

    Every request pending fails (CLIENT-10, CLIENT-14, CONN-9), and each may
    have reached the broker (``request_sent=True``). ``lost`` is the socket's
    error when the stream ended with one (a reset, a failed write).
    """
    oldest = event.unanswered[0] if event.unanswered else None
    reason = (getattr(lost, "strerror", None) or lost) if lost is not None else None

    def error_for(request: Request | None) -> MegaError:
        if request is None:
            return unsent("the connection ended")
        if isinstance(event, ProtocolViolation):
            return MegaProtocolError.from_codec(event.error)
        if isinstance(event, UnsolicitedFrame):
            return ConnectionClosedByBroker(event.error_code)
        if reason is not None:
            return MegaConnectionError(f"connection lost: {reason}", request_sent=True)
        if request is oldest and event.partial_bytes:  # its answer was the one under way
            where = f"mid-response, after {event.partial_bytes} bytes of the answer to {describe(request)}"
        else:
            where = f"before answering {describe(request)}"
        return MegaConnectionError(f"broker closed the connection {where}", request_sent=True)

    return error_for


def timeout_errors(oldest: Request, timeout: float) -> ErrorFor:
    """The errors when ``oldest`` timed out and its connection is closed (CLIENT-11)."""

    def error_for(request: Request | None) -> MegaError:
        if request is oldest:
            return MegaTimeoutError(f"no complete answer to {describe(oldest)} within {timeout}s", request_sent=True)
        return MegaConnectionError(
            f"connection closed after request {oldest.correlation_id} timed out", request_sent=request is not None
        )

    return error_for
