"""The broker's objects as JSON values: what the control API answers and the records file holds.

Pure functions from the broker's objects (rules, records, messages, its
config) to dicts of JSON types. Bytes appear as ``{"size", "base64", "hex"}``
(payloads) or ``{"size", "hex"}`` (raw transcripts); times are seconds since
the epoch (``time.time()``), as floats. Nothing here touches the broker's loop:
call them on snapshots (``ConnectionRecord.snapshot()``) from any thread.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
from typing import Any

from mega_client.protocol import (
    ConsumeRequest,
    ConsumeResponse,
    CreateTopicResponse,
    ErrorResponse,
    MessageType,
    ProduceResponse,
    Request,
    UnsolicitedError,
    code_name,
)

from ._config import BrokerConfig
from ._faults import FaultRule
from ._record import AppliedFault, ConnectionRecord
from ._storage import StoredMessage
from ._transcript import ReadAnswer, read_answers

JSON = dict[str, Any]


def payload_view(data: bytes) -> JSON:
    """A payload both ways a test may compare it: base64 and hex."""
    return {"size": len(data), "base64": base64.b64encode(data).decode("ascii"), "hex": data.hex()}


def rule_view(rule: FaultRule, rule_id: int) -> JSON:
    """A fault rule: its id, its text, its parts, and how often it matched and applied."""
    return {
        "id": rule_id,
        "rule": str(rule),
        "target": rule.target,
        "topic": rule.topic,
        "action": rule.action,
        "arg": rule.effect.arg_text(),
        "when": rule.when,
        "n": rule.n,
        "conn": rule.conn,
        "matched": rule.matched,
        "fired": rule.fired,
    }


def message_view(message: StoredMessage) -> JSON:
    """A stored message."""
    return {"offset": message.offset, "timestamp": message.timestamp, "payload": payload_view(message.payload)}


def config_view(config: BrokerConfig) -> JSON:
    """Every field of the broker's config."""
    view = dataclasses.asdict(config)
    view["faults"] = list(config.faults)
    return view


def _peer(record: ConnectionRecord) -> JSON | None:
    if record.peer is None:
        return None
    host, port = record.peer
    return {"host": host, "port": port}


def record_summary(record: ConnectionRecord) -> JSON:
    """A connection without its transcript: who, when, how it ended, and its counts."""
    return {
        "id": record.id,
        "peer": _peer(record),
        "state": "closed" if record.closed else "open",
        "opened_at": record.opened_at,
        "closed_at": record.closed_at,
        "close_reason": record.close_reason,
        "request_count": record.request_count,
        "bytes_received": record.bytes_received,
        "bytes_sent": record.bytes_sent,
        "faults_applied": record.faults_applied,
        "truncated": {
            "requests": record.requests_truncated,
            "received": record.received_truncated,
            "sent": record.sent_truncated,
        },
    }


def fault_view(fault: AppliedFault) -> JSON:
    """One application of a fault rule."""
    return {
        "rule": fault.rule,
        "action": fault.action,
        "at": fault.at,
        "request_index": fault.request_index,
        "correlation_id": fault.correlation_id,
    }


def request_view(index: int, request: Request) -> JSON:
    """A decoded request; ``index`` is 1-based, in the order the connection sent them."""
    view: JSON = {
        "index": index,
        "type": MessageType(request.message_type).name,
        "correlation_id": request.correlation_id,
        "topic": request.topic,
        "timestamp": request.timestamp,
    }
    if isinstance(request, ConsumeRequest):
        view["offset"] = request.offset
    view["payload"] = payload_view(request.payload)
    return view


def answer_view(answer: ReadAnswer, at: float | None) -> JSON:
    """A frame read back from the sent bytes: ``position`` and ``size`` locate it in ``sent``."""
    frame = answer.frame
    view: JSON = {"position": answer.position, "size": answer.size, "at": at}
    if isinstance(frame, UnsolicitedError):
        view.update(kind="unsolicited", correlation_id=0, success=False)
        view.update(error_code=frame.error_code, error=code_name(frame.error_code))
    elif isinstance(frame, ErrorResponse):
        view.update(kind="error", correlation_id=frame.correlation_id, success=False)
        view.update(error_code=int(frame.error_code), error=code_name(frame.error_code))
    elif isinstance(frame, CreateTopicResponse):
        view.update(kind="create_topic", correlation_id=frame.correlation_id, success=True)
        view.update(timestamp=frame.timestamp, topic=frame.topic)
    elif isinstance(frame, ProduceResponse):
        view.update(kind="produce", correlation_id=frame.correlation_id, success=True)
        view.update(timestamp=frame.timestamp, offset=frame.offset)
    else:
        assert isinstance(frame, ConsumeResponse)
        view.update(kind="consume", correlation_id=frame.correlation_id, success=True)
        view.update(timestamp=frame.timestamp, next_offset=frame.next_offset, payload=payload_view(frame.payload))
    return view


def record_detail(record: ConnectionRecord, max_payload_bytes: int) -> JSON:
    """A connection with its whole transcript.

    ``requests``: each decoded request with its ``answer`` (``null`` if none was
    sent); ``other_answers``: frames that answer no recorded request;
    ``received`` / ``sent``: every raw byte each way; ``segments``: each chunk
    as it crossed the socket (``offset`` into ``received`` or ``sent``);
    ``sent_undecoded``: where the sent bytes stopped reading as frames, and why;
    ``faults``: each fault applied.
    """
    view = record_summary(record)
    segments = record.segments
    received = b"".join(s.data for s in segments if s.direction == "in")
    sent = b"".join(s.data for s in segments if s.direction == "out")
    decoded = record.requests
    transcript = read_answers([(r.message_type, r.correlation_id) for r in decoded], sent, max_payload_bytes)
    # When each answer was written: the time of the sent segment holding its first byte.
    starts: list[int] = []
    times: list[float] = []
    seg_views: list[JSON] = []
    offsets = {"in": 0, "out": 0}
    for seg in segments:
        if seg.direction == "out":
            starts.append(offsets["out"])
            times.append(seg.at)
        seg_views.append(
            {"at": seg.at, "direction": seg.direction, "offset": offsets[seg.direction], "hex": seg.data.hex()}
        )
        offsets[seg.direction] += len(seg.data)

    def written_at(position: int) -> float | None:
        i = bisect.bisect_right(starts, position) - 1
        return times[i] if i >= 0 else None

    requests = [request_view(i + 1, r) for i, r in enumerate(decoded)]
    for request in requests:
        request["answer"] = None
    others: list[JSON] = []
    for answer in transcript.answers:
        shown = answer_view(answer, written_at(answer.position))
        if answer.request_index is None:
            others.append(shown)
        else:
            requests[answer.request_index]["answer"] = shown
    view.update(
        requests=requests,
        other_answers=others,
        received={"size": len(received), "hex": received.hex()},
        sent={"size": len(sent), "hex": sent.hex()},
        segments=seg_views,
        sent_undecoded=None
        if transcript.undecoded_at is None
        else {"offset": transcript.undecoded_at, "reason": transcript.undecoded_reason},
        faults=[fault_view(f) for f in record.faults],
    )
    return view
