"""Every broker case proven: the planted defects of broken_brokers.RawBroker each case catches, and by what symptom.

``PROOFS`` maps each broker case id to the defects (``broken_brokers.DEFECTS``) that make it fail, each with a
piece of the case's reason naming the defect's symptom (pieces separated by ``…`` must appear in that order).
test_proofs.py runs each defect's broker once with every case it proves, checks that every registered case is
proven (or listed in ``UNPROVABLE`` with its reason), and that docs/CONFORMANCE.md shows this table.

After changing the table or the cases, rewrite the doc's table with::

    python -m tests.conformance.broker.proofs --write-doc
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import CaseResult
from conformance._case import Case
from conformance.broker import broker_cases
from tests.conformance.case_proofs import Proof, ProofTable, coverage_markdown, doc_block, with_doc_block

from .broken_brokers import DEFECTS, RawBroker
from .conftest import CAPACITY, run_split

P = Proof

PROOFS: ProofTable = {
    # -- layout
    "layout.create-topic": [
        P("echo-without-length", "answer to CREATE_TOPIC: … (at bytes 13..14 (topic_len, u16)"),
        P("timestamps-not-echoed", "answer to CREATE_TOPIC: … (at bytes 5..12 (timestamp, echoed)"),
    ],
    "layout.produce": [P("offsets-from-one", "answer to the first PRODUCE: … (at bytes 13..16 (offset)")],
    "layout.consume": [
        P("wrong-next-offset", "answer to CONSUME offset 1: … (at bytes 13..16 (next_offset)"),
        P("consume-echoes-timestamp", "answer to CONSUME offset 1: … (at bytes 5..12 (timestamp, as produced)"),
    ],
    "layout.error": [P("long-error", "TOPIC_NOT_FOUND (4) for correlation id 12 … (at byte 5 (error_code)")],
    "layout.section-4-example": [P("out-of-order", "(response 1 of 5) … (at bytes 0..3 (correlation_id)")],
    "layout.create-topic-payload-ignored": [
        P(
            "payload-misread",
            "(response 2 of 2) … an error response INVALID_MESSAGE_TYPE (2) with correlation id 42",
        )
    ],
    "layout.consume-payload-ignored": [
        P("payload-misread", "(response 2 of 2) … got an error response INVALID_REQUEST (1) with correlation id 1 (")
    ],
    "layout.empty-payload": [
        P("empty-payload-as-null", "empty message at offset 0: … (at bytes 17..20 (payload_length): got ff ff ff ff")
    ],
    "layout.binary-payload": [P("payload-as-text", "CONSUME offset 0: … 4096-byte payload … (payload_length)")],
    # -- codes
    "codes.topic-not-found": [
        P("auto-create", "answer to PRODUCE on a missing topic: … got a success response with correlation id 41")
    ],
    "codes.topic-already-exists": [
        P("recreate-truncates", "answer to a second CREATE_TOPIC: … got a success response with correlation id 51")
    ],
    "codes.invalid-offset": [
        P("negative-offset-wraps", "(response 3 of 5) … got a success response with correlation id 62")
    ],
    "codes.order-too-large-first": [
        P(
            "size-checked-last",
            "MESSAGE_TOO_LARGE (3) for correlation id 81 … got an error response INVALID_REQUEST",
        )
    ],
    "codes.order-topic-before-offset": [
        P(
            "negative-offset-first",
            "TOPIC_NOT_FOUND (4) for correlation id 91 … got an error response INVALID_OFFSET",
        )
    ],
    "codes.connection-usable-after-errors": [
        P("close-after-error", "(response 2 of 6): the broker closed the connection before any byte of it")
    ],
    "codes.error-has-no-effect": [
        P("too-large-still-stored", "answer to the next PRODUCE (nothing was stored before it): … (offset)"),
        P("no-size-limit", "answer to the oversized PRODUCE: … got a success response with correlation id 111"),
    ],
    # -- names
    "names.empty": [P("bad-name-internal-error", "CREATE_TOPIC '' … got an error response INTERNAL_ERROR (7)")],
    "names.bad-characters": [
        P("bad-name-internal-error", "(response 1 of 7) … got an error response INTERNAL_ERROR (7)")
    ],
    "names.not-utf8": [P("bad-name-internal-error", "(response 1 of 5) … got an error response INTERNAL_ERROR (7)")],
    "names.multibyte-utf8": [
        P("bad-name-internal-error", "café … (response 1 of 2) … got an error response INTERNAL_ERROR (7)")
    ],
    "names.too-long": [
        P("unchecked-length", "answer to topic_length 256: … no answer within"),
        P("no-close-after-fatal", "after INVALID_REQUEST for topic_length 256 (CONN-10): … it is still open"),
    ],
    "names.max-length": [
        P("max-name-254", "255-byte name: … got an error response INVALID_REQUEST (1)"),
        P("echo-without-length", "255-byte name: … (at bytes 13..14 (topic_len, u16)"),
    ],
    "names.allowed-characters": [
        P("no-leading-punctuation", "CREATE_TOPIC '. … got an error response INVALID_REQUEST (1)")
    ],
    "names.case-sensitive": [
        P("case-insensitive-names", "of the lowercase name … got an error response TOPIC_ALREADY_EXISTS (5)")
    ],
    "names.invalid-on-produce-consume": [
        P(
            "invalid-name-not-found",
            "(response 1 of 5) … an error response TOPIC_NOT_FOUND (4) with correlation id 200",
        )
    ],
    # -- semantics
    "semantics.correlation-id-extremes": [
        P("negative-cid-zeroed", "correlation id -2147483648 … got a success response with correlation id 0:")
    ],
    "semantics.duplicate-correlation-ids": [
        P("dedupe-cids", "correlation id 77 at offset 1 (response 2 of 8) … (at bytes 5..12 (timestamp, echoed)")
    ],
    "semantics.timestamp-extremes": [
        P("negative-timestamps-zeroed", "timestamp INT64_MIN: … (timestamp, echoed): got 00 00 00 00 00 00 00 00"),
        P("timestamps-not-echoed", "timestamp INT64_MIN: … (at bytes 5..12 (timestamp, echoed)"),
    ],
    "semantics.consume-timestamp-ignored": [
        P("consume-echoes-timestamp", "request timestamp 0: … (at bytes 5..12 (timestamp, as produced)")
    ],
    "semantics.dense-offsets": [
        P("offsets-from-one", "40 pipelined PRODUCEs: … at offset 0 (response 1 of 40) … (offset)"),
        P("wrong-next-offset", "(response 1 of 40) … (at bytes 13..16 (next_offset)"),
    ],
    "semantics.offsets-across-connections": [
        P("offsets-per-connection", "PRODUCE #1 (on connection 2 of 3): … (at bytes 13..16 (offset)")
    ],
    "semantics.offsets-under-concurrency": [
        P(
            "offset-race",
            "offsets read back a different message than the one whose PRODUCE was answered with that offset",
        )
    ],
    "semantics.consume-does-not-remove": [
        P("consume-once", "(response 2 of 3) … got an error response INVALID_OFFSET (6)")
    ],
    "semantics.no-auto-create": [
        P("auto-create", "TOPIC_NOT_FOUND (4) for correlation id 1 (response 1 of 2) … got a success response")
    ],
    "semantics.create-race": [
        P("create-race", "of 8 racing CREATE_TOPICs succeeded"),
        P("recreate-truncates", "8 of 8 racing CREATE_TOPICs succeeded"),
    ],
    # -- limits
    "limits.payload-at-max": [
        P("limit-off-by-one", "answer to PRODUCE of exactly 1 MiB: … got an error response MESSAGE_TOO_LARGE (3)")
    ],
    "limits.payload-over-max": [
        P("no-size-limit", "MESSAGE_TOO_LARGE (3) for correlation id 1 (response 1 of 2) … got a success response"),
        P("close-after-error", "(response 2 of 2): the broker closed the connection before any byte of it"),
    ],
    "limits.payload-over-max-any-type": [
        P("limit-on-produce-only", "MESSAGE_TOO_LARGE (3) for correlation id 1 (response 1 of 4) … got a success"),
        P("no-size-limit", "MESSAGE_TOO_LARGE (3) for correlation id 1 (response 1 of 4) … got a success"),
    ],
    "limits.too-large-answered-early": [
        P("unchecked-length", "answer to payload_length 1,048,577 before its payload is sent: … no answer within")
    ],
    "limits.huge-payload-length-not-fatal": [
        P("unchecked-length", "payload_length 2,147,483,647: closed the connection with no answer")
    ],
    "limits.huge-payload-length": [
        P("unchecked-length", "payload_length 1,073,741,824: still open and silent … it waits for the 1,073,741,824")
    ],
    "limits.topic-capacity": [
        P("full-topic-internal-error", "on a full topic: … got an error response INTERNAL_ERROR (7)")
    ],
    # -- malformed
    "malformed.unknown-type": [
        P("unknown-type-silent-close", "message_type 0x00: … the broker closed the connection before any byte of it"),
        P("no-close-after-fatal", "after INVALID_MESSAGE_TYPE for message_type 0x00: … it is still open"),
    ],
    "malformed.unknown-type-first": [
        P(
            "lengths-before-type",
            "INVALID_MESSAGE_TYPE (2) for correlation id 44 … got an error response INVALID_REQUEST (1)",
        ),
        P("unknown-type-silent-close", "correlation id 44: the broker closed the connection before any byte of it"),
    ],
    "malformed.nothing-processed-after-fatal": [
        P(
            "keeps-reading-after-fatal",
            "after message_type 0x04: … an answer to the CREATE_TOPIC behind the fatal",
        ),
        P("no-close-after-fatal", "after message_type 0x04: the connection is still open"),
    ],
    "malformed.negative-topic-length": [
        P("negative-length-silent-close", "topic_length -1: … the broker closed the connection before any byte of it"),
        P("no-close-after-fatal", "after INVALID_REQUEST for topic_length -1: … it is still open"),
    ],
    "malformed.huge-topic-length": [
        P("unchecked-length", "it waits for the 65,536 announced topic bytes"),
        P("no-close-after-fatal", "answered INVALID_REQUEST but left the connection open (CONN-10)"),
    ],
    "malformed.negative-payload-length": [
        P("negative-length-silent-close", "payload_length -1 … the broker closed the connection before any byte of it"),
        P("no-close-after-fatal", "after INVALID_REQUEST for payload_length -1: … it is still open"),
    ],
    "malformed.truncated-at-eof": [
        P("answers-truncated-frame", "after a truncated frame and EOF … it sent an error response INVALID_REQUEST (1)")
    ],
    "malformed.fatal-is-per-connection": [
        P(
            "fatal-closes-all",
            "before another one sent a fatal frame: the broker … the connection with no answer",
        )
    ],
    # -- streams
    "streams.pipelined-batch": [
        P("out-of-order", "answers to 120 pipelined requests: … (response 1 of 120) … (at bytes 0..3 (correlation_id)"),
        P("one-frame-per-read", "answers to 120 pipelined requests: … (response 2 of 120): no answer within"),
    ],
    "streams.pipelined-effects": [
        P("effects-after-read", "(response 2 of 5) … got an error response TOPIC_NOT_FOUND (4) with correlation id 2")
    ],
    # no answer, or (when a busy machine lets a read gather a few bytes) a wrong one
    "streams.one-byte-at-a-time": [P("no-buffering", "answer to … sent one byte at a time:")],
    "streams.split-anywhere": [P("no-buffering", "answers to requests sent in 7-byte pieces: … got an error response")],
    "streams.answered-before-eof-close": [
        P("eof-drops-answers", "sent just before EOF: … the broker closed the connection before any byte of it")
    ],
    "streams.no-unrequested-bytes": [P("flood", "right after connecting: the broker sent … bytes nobody asked for")],
    # -- connections
    "connections.fifty-at-once": [
        P("max-10-connections", "open connections got no answer within … the broker does not serve 50 at once")
    ],
    "connections.stalled-peer": [
        P("stall-blocks-all", "a connection was not answered within … while another was stalled mid-frame")
    ],
    # -- idle
    "idle.closes-idle-connection": [
        P("close-at-once", "before its idle timeout of 0.5 s: not an idle close"),
        P("no-idle-close", "the connection was still open … with an idle timeout of 0.5 s"),
    ],
    "idle.unsolicited-frame": [
        P("idle-close-silent", "expected the unsolicited frame … (RESP-7): the broker closed the connection")
    ],
    "idle.answers-before-unsolicited": [
        P("answers-held-mid-frame", "(response 1 of 3) … got the unsolicited frame 00 00 00 00 00 08"),
        P("idle-close-silent", "the unsolicited frame 00 00 00 00 00 08 (RESP-7) (response 3 of 3): the broker closed"),
    ],
    "idle.bytes-reset-timer": [
        P("idle-timer-per-frame", "sent 6 bytes nobody asked for (the unsolicited frame … into a frame arriving"),
        P("flood", "bytes nobody asked for … into a frame arriving one byte every"),
    ],
    # -- performance
    "performance.consume-cost": [
        P("linear-consume", "the cost of CONSUME grows with the offset: one CONSUME at a time"),
        P("batched-linear-consume", "the cost of CONSUME grows with the offset: one CONSUME at a time"),
    ],
}

#: Cases no planted defect can make fail from outside, each with the reason. None so far.
UNPROVABLE: dict[str, str] = {}

#: The read timeout of the proof runs: every defect that silences an answer costs a case this long.
TIMEOUT = 1.0

DOC = Path(__file__).resolve().parents[3] / "docs" / "CONFORMANCE.md"


def run_defect(defect: str, cases: Sequence[Case], strict: bool) -> list[CaseResult]:
    """``cases`` against fresh RawBrokers with ``defect`` (the idle.* cases against one with a short idle timeout)."""

    def start(idle: float | None) -> RawBroker:
        return RawBroker(defect, idle_timeout=idle, capacity=CAPACITY)

    return run_split(cases, start, strict=strict, timeout=TIMEOUT)


def markdown() -> str:
    """The coverage figure, the table and the defects, as docs/CONFORMANCE.md shows them."""
    return coverage_markdown(broker_cases(), PROOFS, UNPROVABLE, DEFECTS, noun="broker")


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["--write-doc"]:
        text = DOC.read_text(encoding="utf-8")
        if doc_block(text, "broker") is None:
            print(f"{DOC}: no proofs:broker markers", file=sys.stderr)
            return 1
        DOC.write_text(with_doc_block(text, "broker", markdown()), encoding="utf-8")
        return 0
    if argv:
        print("usage: python -m tests.conformance.broker.proofs [--write-doc]", file=sys.stderr)
        return 2
    print(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
