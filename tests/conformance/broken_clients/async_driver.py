"""The kit's own AsyncMessageClient with one planted defect, behind the bundled driver (``--async``).

    python tests/conformance/broken_clients/async_driver.py --defect reuse-cid

Each defect replaces one piece of the real client (mega_client), so a broken
copy differs from the kit's client by exactly that piece; without ``--defect``
it is the kit's client itself. tests/conformance/test_broken_clients.py proves
that the pipelining cases catch each one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import deque
from typing import Any

from mega_client import _async, conformance_driver
from mega_client.errors import MegaTimeoutError
from mega_client.protocol import Answer, ProtocolViolation, Request
from mega_client.protocol._connection import ClientConnection

DEFECTS = {
    "reuse-cid": "correlation ids count 1..8 and start again, so requests still pending share ids (CLIENT-4)",
    "fail-oldest-only": (
        "a protocol error fails only the request whose answer broke it; the requests behind it stay pending "
        "until their own timeout (CLIENT-10)"
    ),
    "discard-answers-at-end": (
        "answers that arrive together with the end of the connection (the unsolicited frame, a broken answer) "
        "are thrown away with it: their requests fail though they were answered (CLIENT-14, CONN-9)"
    ),
}

#: reuse-cid: ids go 1, 2, ..., CYCLE, 1, ...
CYCLE = 8


def plant(defect: str) -> None:
    if defect == "reuse-cid":
        send = ClientConnection.send
        init = _async._Pipeline.__init__

        def reusing_send(self: ClientConnection, request: Request) -> bytes:
            data = send(self, request)
            self._next_cid = request.correlation_id % CYCLE + 1
            return data

        def pipeline_init(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self._in_flight = _SameIdInOrder()  # the client still works: it matches by order

        ClientConnection.send = reusing_send  # type: ignore[method-assign]
        _async._Pipeline.__init__ = pipeline_init  # type: ignore[method-assign]
    elif defect == "fail-oldest-only":
        ended = _async._Pipeline._ended

        def oldest_only(self: Any, event: Any, lost: Exception | None) -> None:
            if not isinstance(event, ProtocolViolation) or len(event.unanswered) < 2:
                ended(self, event, lost)
                return
            # The broken answer's request fails; the others are left to time out.
            ended(self, ProtocolViolation(event.error, event.unanswered[:1]), lost)
            for request in event.unanswered[1:]:
                call = self._in_flight.pop(request.correlation_id, None)
                if call is not None:
                    asyncio.get_running_loop().call_later(self._timeout, _time_out, call.future)

        _async._Pipeline._ended = oldest_only  # type: ignore[method-assign]
    elif defect == "discard-answers-at-end":

        def take_events(self: Any, lost: Exception | None) -> None:
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
                future = self._in_flight.pop(answer.request.correlation_id).future
                if not future.done():
                    future.set_result(answer.response)
            if answers and self._in_flight:
                self._clock.restart()

        _async._Pipeline._take_events = take_events  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown defect {defect!r}")


def _time_out(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(MegaTimeoutError("no answer", request_sent=True))


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
