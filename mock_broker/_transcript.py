"""The answers a connection was sent, read back out of its recorded bytes and paired with its requests.

The broker keeps what it sent as raw bytes (cheap, see :mod:`mock_broker._record`);
this reads them back with the codec's own response decoder, only when someone
asks. A response carries no type, so each frame is read as the answer to the
oldest unanswered recorded request with the frame's correlation id (an error
frame has the same layout whatever it answers). What fault rules send on
purpose is read as faithfully as the bytes allow: an unsolicited frame or the
answer to a frame the broker rejected (it is not among the recorded requests)
is an answer to no request; a frame the decoder cannot follow (a ``bad-flag``,
``bad-length`` or ``trailing`` rule, a ``wrong-cid`` success) ends the reading,
and the rest is reported as undecoded from that byte on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from mega_client.protocol import (
    MessageType,
    RemoteProtocolError,
    ResponseDecoder,
    ResponseEvent,
    UnsolicitedError,
)
from mega_client.protocol.layouts import RESPONSE_HEAD
from mega_client.protocol.limits import MAX_TOPIC_BYTES

#: The first chunk fed to the decoder for one frame; doubled until the frame is complete.
_FIRST_CHUNK = 256


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """One frame of the sent bytes: where it starts, its size, and the request it answers.

    ``request_index`` is the 0-based index of the recorded request it answers,
    ``None`` for a frame that answers none of them.
    """

    position: int
    size: int
    frame: ResponseEvent
    request_index: int | None


@dataclass(frozen=True, slots=True)
class Transcript:
    """Every frame read from the sent bytes; ``undecoded_at`` is where reading stopped, and why."""

    answers: tuple[ReadAnswer, ...]
    undecoded_at: int | None = None
    undecoded_reason: str | None = None


def read_answers(requests: Sequence[tuple[int, int]], sent: bytes, max_payload_bytes: int) -> Transcript:
    """Read ``sent`` frame by frame as answers to ``requests``: (message type, correlation id), in order."""
    unanswered: dict[int, deque[int]] = {}
    for i, (_, cid) in enumerate(requests):
        unanswered.setdefault(cid, deque()).append(i)
    view = memoryview(sent)
    answers: list[ReadAnswer] = []
    pos = 0
    end = len(sent)
    while pos < end:
        if end - pos < RESPONSE_HEAD.size:
            return Transcript(tuple(answers), pos, f"an incomplete frame of {end - pos} bytes")
        cid, success = RESPONSE_HEAD.unpack_from(sent, pos)
        waiting = unanswered.get(cid)
        index: int | None = waiting[0] if waiting else None
        if index is not None:
            message_type: int = requests[index][0]
        elif success == 0:
            message_type = MessageType.PRODUCE  # an error frame reads the same whatever it answers
        else:
            reason = f"a success frame with correlation id {cid} that answers no recorded request"
            return Transcript(tuple(answers), pos, reason)
        decoder = ResponseDecoder(max_payload_bytes=max_payload_bytes, max_topic_bytes=MAX_TOPIC_BYTES)
        decoder.expect(message_type, cid)
        fed = 0
        chunk = _FIRST_CHUNK
        frame: ResponseEvent | None = None
        try:
            while frame is None and pos + fed < end:
                decoder.feed(view[pos + fed : pos + fed + chunk])
                fed = min(fed + chunk, end - pos)
                chunk *= 2
                frame = decoder.next_response()
        except RemoteProtocolError as exc:
            return Transcript(tuple(answers), pos, str(exc))
        if frame is None:
            return Transcript(tuple(answers), pos, f"an incomplete frame of {end - pos} bytes")
        size = fed - decoder.buffered
        if isinstance(frame, UnsolicitedError):
            index = None  # the unsolicited notice answers no request, whatever its correlation id
        if index is not None:
            unanswered[cid].popleft()
        answers.append(ReadAnswer(pos, size, frame, index))
        pos += size
    return Transcript(tuple(answers))
