"""The kit's own AsyncMessageClient with one planted defect, behind the bundled driver (``--async``).

    python tests/conformance/broken_clients/async_driver.py --defect reuse-cid

Each defect replaces one piece of the real client (mega_client), so a broken
copy differs from the kit's client by exactly that piece, and keeps working
apart from it (reuse-cid still matches answers by order, for instance);
without ``--defect`` it is the kit's client itself. tests/conformance/proofs.py
proves that the pipelining cases catch each one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from mega_client import _async, conformance_driver
from mega_client._retry import NO_RETRY
from mega_client.errors import MegaConnectionError, MegaTimeoutError
from mega_client.protocol import Answer, ErrorCode, ErrorResponse, ProtocolViolation, Request, UnsolicitedFrame
from mega_client.protocol._connection import ClientConnection
from mega_client.protocol.limits import INT32_MAX

DEFECTS = {
    "reuse-cid": "correlation ids count 1..8 and start again, so requests still pending share ids (CLIENT-4)",
    "wrap-to-start": (
        "after 2**31 - 1 the correlation ids start again from the connection's first id, which may still be "
        "pending (CLIENT-4)"
    ),
    "wrap-to-zero": "after 2**31 - 1 the correlation ids go on at 0, the unsolicited frame's id (CLIENT-5)",
    "fail-oldest-only": (
        "a protocol error fails only the request whose answer broke it; the requests behind it stay pending "
        "until their own timeout (CLIENT-10)"
    ),
    "discard-answers-at-end": (
        "answers that arrive together with the end of the connection (the unsolicited frame, a broken answer) "
        "are thrown away with it: their requests fail though they were answered (CLIENT-14, CONN-9)"
    ),
    "unsolicited-answers-the-oldest": (
        "the unsolicited frame taken as the answer to the oldest request pending (an error NETWORK_ERROR); only "
        "the requests behind it fail with the connection"
    ),
    "writes-newest-first": (
        "calls made together are queued and written on the next turn of the event loop, newest first "
        "(the queue is a stack)"
    ),
    "one-event-per-read": "each read hands out at most one answer; answers that came in the same read wait",
    "no-buffering-across-reads": (
        "each read is decoded on its own: bytes of an answer left from the last read are dropped"
    ),
    "timeout-ms-as-us": "the request timeout taken in the wrong unit: a thousandth of the one asked for",
    "one-at-a-time": "a call waits for the answer to the one before it: one request in flight at a time",
    "error-fails-the-rest": (
        "an error response ends the connection: the requests behind it fail with a connection error"
    ),
    "reconnect-after-error": "after an error response the connection is closed once nothing is in flight",
    "network-error-ends-connection": (
        "an error response NETWORK_ERROR carrying the request's own id taken as the unsolicited frame"
    ),
    "ignore-idle-bytes": "bytes arriving while nothing is pending are dropped, and the connection kept",
    "silent-at-least-once": (
        "PRODUCEs are resent after a connection failure although the caller did not ask for at-least-once"
    ),
    "no-close-on-failure": ("after a timeout or a protocol error the requests fail but the connection is not closed"),
    "no-retry": "nothing is retried: CONSUMEs whose connection dropped fail",
}

#: reuse-cid: ids go 1, 2, ..., CYCLE, 1, ...
CYCLE = 8

Pipeline = Any  # mega_client._async._Pipeline, private


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` with ``make(the original)``."""
    setattr(owner, name, make(getattr(owner, name)))


def _client_init(**forced: Any) -> None:
    """AsyncMessageClient built with ``forced`` settings, whatever the driver asks."""

    def make(init: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **{**kwargs, **forced})

        return patched

    _patch(_async.AsyncMessageClient, "__init__", make)


def _same_ids_in_order() -> None:
    """Calls in flight kept by id, several per id, first in first out: the client still matches by order."""

    def make(init: Any) -> Any:
        def patched(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self._in_flight = _SameIdInOrder()

        return patched

    _patch(_async._Pipeline, "__init__", make)


def _next_cid_after(choose: Callable[[ClientConnection, int], int]) -> None:
    """ClientConnection numbers the request after ``cid`` with ``choose(connection, cid)``."""

    def make(send: Any) -> Any:
        def patched(self: ClientConnection, request: Request) -> bytes:
            data: bytes = send(self, request)
            self._next_cid = choose(self, request.correlation_id)
            return data

        return patched

    _patch(ClientConnection, "send", make)


def _answer(pipeline: Pipeline, answer: Answer) -> None:
    future = pipeline._in_flight.pop(answer.request.correlation_id).future
    if not future.done():
        future.set_result(answer.response)


def plant(defect: str) -> None:
    if defect == "reuse-cid":
        _next_cid_after(lambda _conn, cid: cid % CYCLE + 1)
        _same_ids_in_order()
    elif defect == "wrap-to-start":
        firsts: dict[int, int] = {}

        def first_id(conn: ClientConnection, cid: int) -> int:
            first = firsts.setdefault(id(conn), cid)
            return first if cid >= INT32_MAX else cid + 1

        _next_cid_after(first_id)
        _same_ids_in_order()
    elif defect == "wrap-to-zero":
        _next_cid_after(lambda _conn, cid: 0 if cid >= INT32_MAX else cid + 1)
    elif defect == "fail-oldest-only":

        def make(ended: Any) -> Any:
            def oldest_only(self: Pipeline, event: Any, lost: Exception | None) -> None:
                if not isinstance(event, ProtocolViolation) or len(event.unanswered) < 2:
                    ended(self, event, lost)
                    return
                # The broken answer's request fails; the others are left to time out.
                ended(self, ProtocolViolation(event.error, event.unanswered[:1]), lost)
                for request in event.unanswered[1:]:
                    call = self._in_flight.pop(request.correlation_id, None)
                    if call is not None:
                        asyncio.get_running_loop().call_later(self._timeout, _time_out, call.future)

            return oldest_only

        _patch(_async._Pipeline, "_ended", make)
    elif defect == "discard-answers-at-end":

        def discarding(self: Pipeline, lost: Exception | None) -> None:
            events = []
            while (event := self.protocol.next_event()) is not None:
                events.append(event)
            answers = [e for e in events if isinstance(e, Answer)]
            ending = [e for e in events if not isinstance(e, Answer)]
            if ending:  # the end came with these answers: they go with it
                unanswered = tuple(a.request for a in answers) + ending[0].unanswered
                self._ended(type(ending[0])(*_with_unanswered(ending[0], unanswered)), lost)
                return
            for answer in answers:
                _answer(self, answer)
            if answers and self._in_flight:
                self._clock.restart()

        _async._Pipeline._take_events = discarding  # type: ignore[method-assign]
    elif defect == "unsolicited-answers-the-oldest":

        def make(ended: Any) -> Any:
            def answering(self: Pipeline, event: Any, lost: Exception | None) -> None:
                if isinstance(event, UnsolicitedFrame) and event.unanswered:
                    oldest, *rest = event.unanswered
                    _answer(self, Answer(oldest, ErrorResponse(oldest.correlation_id, event.error_code)))
                    event = UnsolicitedFrame(event.error_code, tuple(rest))
                ended(self, event, lost)

            return answering

        _patch(_async._Pipeline, "_ended", make)
    elif defect == "writes-newest-first":

        def deferred(self: Pipeline, operation: Any) -> asyncio.Future[Any]:
            if not self.alive:
                raise MegaConnectionError("the connection is closed", request_sent=False)
            call = _async._Call(operation, self._loop.create_future())
            self._queue.append(call)
            if len(self._queue) == 1:
                self._loop.call_soon(self._write_queued)
            return call.future

        _async._Pipeline.submit = deferred  # type: ignore[method-assign]

        def make_init(init: Any) -> Any:
            def patched(self: Pipeline, *args: Any, **kwargs: Any) -> None:
                init(self, *args, **kwargs)
                self._queue = _Stack()

            return patched

        _patch(_async._Pipeline, "__init__", make_init)
    elif defect == "one-event-per-read":

        def one_event(self: Pipeline, lost: Exception | None) -> None:
            event = self.protocol.next_event()
            if isinstance(event, Answer):
                _answer(self, event)
                if self._in_flight:
                    self._clock.restart()
            elif event is not None:
                self._ended(event, lost)

        _async._Pipeline._take_events = one_event  # type: ignore[method-assign]
    elif defect == "no-buffering-across-reads":

        def make(received: Any) -> Any:
            def each_read_alone(self: Pipeline, data: bytes) -> None:
                self.protocol._buf.clear()
                received(self, data)

            return each_read_alone

        _patch(_async._Pipeline, "data_received", make)
    elif defect == "timeout-ms-as-us":

        def make(init: Any) -> Any:
            def patched(self: Any, *args: Any, request_timeout: float = 10.0, **kwargs: Any) -> None:
                init(self, *args, request_timeout=request_timeout / 1000, **kwargs)

            return patched

        _patch(_async.AsyncMessageClient, "__init__", make)
    elif defect == "one-at-a-time":

        def make(attempt: Any) -> Any:
            async def serialized(self: Any, operation: Any) -> Any:
                lock = self.__dict__.setdefault("_one_at_a_time", asyncio.Lock())
                async with lock:
                    return await attempt(self, operation)

            return serialized

        _patch(_async.AsyncMessageClient, "_attempt", make)
    elif defect in ("error-fails-the-rest", "reconnect-after-error", "network-error-ends-connection"):
        _plant_error_handling(defect)
    elif defect == "ignore-idle-bytes":

        def make(next_event: Any) -> Any:
            def dropping(self: ClientConnection) -> Any:
                if not self._pending and not self._eof:
                    self._buf.clear()
                    return None
                return next_event(self)

            return dropping

        _patch(ClientConnection, "next_event", make)
    elif defect == "silent-at-least-once":
        _client_init(produce_delivery="at-least-once")
    elif defect == "no-close-on-failure":

        def failing_open(self: Pipeline, error_for: Any) -> None:
            self._shut(self.protocol.close(), error_for)  # and no abort: the socket stays open

        def ending_open(self: Pipeline, event: Any, lost: Exception | None) -> None:
            self._shut(event.unanswered, _async.ending_errors(event, lost))
            if not isinstance(event, ProtocolViolation):
                self._abort()

        _async._Pipeline.fail = failing_open  # type: ignore[method-assign]
        _async._Pipeline._ended = ending_open  # type: ignore[method-assign]
    elif defect == "no-retry":
        _client_init(retry=NO_RETRY)
    else:
        raise SystemExit(f"unknown defect {defect!r}")


def _plant_error_handling(defect: str) -> None:
    """Defects in what an error response does to the connection."""

    def taking(self: Pipeline, lost: Exception | None) -> None:
        protocol, in_flight = self.protocol, self._in_flight
        answered = False
        while (event := protocol.next_event()) is not None:
            if not isinstance(event, Answer):
                self._ended(event, lost)
                return
            answered = True
            response = event.response
            if not isinstance(response, ErrorResponse):
                _answer(self, event)
                continue
            if defect == "network-error-ends-connection" and response.error_code == ErrorCode.NETWORK_ERROR:
                unanswered = (event.request, *protocol.close())
                self._ended(UnsolicitedFrame(int(ErrorCode.NETWORK_ERROR), unanswered), lost)
                return
            _answer(self, event)
            if defect == "error-fails-the-rest":
                self.fail(lambda r: MegaConnectionError("an error response ended the connection", request_sent=True))
                return
            if defect == "reconnect-after-error":
                self._error_seen = True
        if answered and in_flight:
            self._clock.restart()
        elif getattr(self, "_error_seen", False) and not self._queue:
            self._shut((), lambda _r: MegaConnectionError("closed after an error response", request_sent=False))
            if self._transport is not None:
                self._transport.close()

    _async._Pipeline._take_events = taking  # type: ignore[method-assign]


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(MegaTimeoutError("no answer", request_sent=True))


class _Stack(deque[Any]):
    """writes-newest-first: a queue whose "oldest" is its newest."""

    def popleft(self) -> Any:
        return self.pop()


class _SameIdInOrder(dict[int, Any]):
    """In-flight calls by correlation id, several per id, each id's calls first in, first out."""

    def __setitem__(self, key: int, value: Any) -> None:
        queue = super().get(key)
        if queue is None:
            super().__setitem__(key, deque([value]))
        else:
            queue.append(value)

    def pop(self, key: int, *default: Any) -> Any:
        queue = super().get(key)
        if not queue:
            if default:
                return default[0]
            raise KeyError(key)
        value = queue.popleft()
        if not queue:
            super().pop(key)
        return value

    def __len__(self) -> int:
        return sum(len(q) for q in self.values())


def _with_unanswered(event: Any, unanswered: tuple[Request, ...]) -> tuple[Any, ...]:
    """The fields of an ending event with ``unanswered`` in place of its own."""
    fields = [getattr(event, f) for f in event.__dataclass_fields__]
    names = list(event.__dataclass_fields__)
    fields[names.index("unanswered")] = unanswered
    return tuple(fields)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--defect", choices=sorted(DEFECTS))
    args = parser.parse_args()
    if args.defect:
        plant(args.defect)
    return conformance_driver.main(["--async"])


if __name__ == "__main__":
    sys.exit(main())
