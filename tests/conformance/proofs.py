"""Every client case proven: the planted defects of the test-only clients each case catches, and by what symptom.

A defect names a driver and its planted defect:

- ``mega:<defect>``: the standalone raw-socket client (broken_clients/megaclient.py behind driver.py) with
  that one defect. A few of its defects only show together with another (a name counted in characters is
  only sent by a client that does not check names first): ``mega:<a>+<b>`` plants both.
- ``async:<defect>``: the kit's own AsyncMessageClient with one piece replaced (broken_clients/async_driver.py),
  for the pipelining cases, which the sequential megaclient skips.

``PROOFS`` maps each client case id to the defects that make it fail, each with a piece of the case's reason
naming the defect's symptom (pieces separated by ``…`` must appear in that order). test_proofs.py runs each
defect's driver once with every case it proves, checks that every registered case is proven (or listed in
``UNPROVABLE`` with its reason), and that docs/CONFORMANCE.md shows this table.

After changing the table or the cases, rewrite the doc's table with::

    python -m tests.conformance.proofs --write-doc
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import REGISTRY, Case, CaseResult, Runner

from .broken_clients.async_driver import DEFECTS as ASYNC_DEFECTS
from .broken_clients.megaclient import DEFECTS as MEGA_DEFECTS
from .case_proofs import Proof, ProofTable, coverage_markdown, doc_block, with_doc_block
from .conftest import ASYNC_DRIVER, broken_driver

P = Proof

#: megaclient defects that only show together with another one: each is planted in a combination below.
ONLY_COMBINED = frozenset({"connect-keeps-socket"})

PROOFS: ProofTable = {
    # -- framing: request layouts
    "framing.create-topic.layout": [
        P("mega:omit-payload-length-create", "payload_length missing after the timestamp (REQ-4, REQ-7)"),
        P("mega:topic-length-little-endian", "topic_length (bytes 5..8) is 07 00 00 00, expected 00 00 00 07"),
    ],
    "framing.produce.layout": [
        P("mega:payload-length-little-endian", "payload_length (bytes 24..27) is 03 00 00 00, expected 00 00 00 03"),
        P("mega:payload-length-includes-itself", "payload_length (bytes 24..27) is 00 00 00 07, expected 00 00 00 03"),
        P("mega:topic-length-little-endian", "topic_length (bytes 5..8) is 07 00 00 00, expected 00 00 00 07"),
    ],
    "framing.consume.layout": [
        P("mega:omit-payload-length-consume", "payload_length missing after the offset (REQ-6, REQ-7)"),
        P("mega:offset-little-endian", "offset (bytes 24..27) is 05 00 00 00, expected 00 00 00 05"),
        P("mega:topic-length-little-endian", "topic_length (bytes 5..8) is 07 00 00 00, expected 00 00 00 07"),
    ],
    "framing.create-topic.payload-length-present": [
        P("mega:omit-payload-length-create", "CREATE_TOPIC is 24 bytes: it ends before a payload_length")
    ],
    "framing.consume.payload-length-present": [
        P("mega:omit-payload-length-consume", "no complete CONSUME request was received (28 trailing bytes")
    ],
    "framing.create-topic.payload-length-zero": [
        P("mega:payload-on-create-and-consume", "payload_length (bytes 24..27) is 00 00 00 01, expected 00 00 00 00")
    ],
    "framing.consume.payload-length-zero": [
        P("mega:payload-on-create-and-consume", "payload_length (bytes 28..31) is 00 00 00 01, expected 00 00 00 00")
    ],
    "framing.produce.payload-length-matches": [
        P("mega:payload-length-includes-itself", "no PRODUCE request … a request announcing 14 payload bytes")
    ],
    "framing.lengths.payload-utf8-bytes": [
        P("mega:char-lengths", "payload_length is 14 for a payload of 20 bytes (14 characters)")
    ],
    "framing.lengths.topic-utf8-bytes": [
        P("mega:no-name-check+char-lengths", "topic_length (bytes 5..8) is 00 00 00 06, expected 00 00 00 09")
    ],
    "framing.lengths.topic-length-big-endian": [
        P("mega:topic-length-little-endian", "topic_length (bytes 5..8) is c8 00 00 00, expected 00 00 00 c8")
    ],
    "framing.lengths.payload-length-big-endian": [
        P("mega:payload-length-little-endian", "payload_length (bytes 24..27) is 03 02 01 00, expected 00 01 02 03")
    ],
    "framing.consume.offset-big-endian": [
        P("mega:offset-little-endian", "offset (bytes 24..27) is 04 03 02 01, expected 01 02 03 04")
    ],
    "framing.topic.bytes-verbatim": [
        P("mega:lowercase-topics", "topic (bytes 9..15) is 61 7a 30 39 2e 5f 2d, expected 41 7a 30 39 2e 5f 2d")
    ],
    "framing.stream.back-to-back": [
        P("mega:newline-after-request", "after ['CREATE_TOPIC'] the stream has … bytes left")
    ],
    # -- framing: timestamps and correlation ids
    "framing.timestamp.create-topic-ms": [
        P("mega:timestamp-seconds", "(that is the time in seconds, not milliseconds)"),
        P("mega:timestamp-microseconds", "(that is the time in microseconds, not milliseconds)"),
        P("mega:timestamp-zero", "the request's timestamp is 0, expected milliseconds since the epoch"),
    ],
    "framing.timestamp.produce-ms": [
        P("mega:timestamp-seconds", "(that is the time in seconds, not milliseconds)"),
        P("mega:timestamp-microseconds", "(that is the time in microseconds, not milliseconds)"),
        P("mega:timestamp-zero", "the request's timestamp is 0, expected milliseconds since the epoch"),
    ],
    "framing.timestamp.consume-ms": [
        P("mega:timestamp-seconds", "(that is the time in seconds, not milliseconds)"),
        P("mega:timestamp-microseconds", "(that is the time in microseconds, not milliseconds)"),
        P("mega:timestamp-zero", "the request's timestamp is 0, expected milliseconds since the epoch"),
    ],
    "framing.timestamp.unit-is-milliseconds": [
        P("mega:timestamp-seconds", "the CREATE_TOPIC timestamp is … the time in seconds, not milliseconds (SEM-7)"),
        P("mega:timestamp-microseconds", "the CREATE_TOPIC timestamp is … the time in microseconds, not milliseconds"),
    ],
    "framing.correlation-id.fresh-per-request": [
        P("mega:constant-cid", "correlation ids repeat on one connection: [1, 1, 1")
    ],
    "framing.correlation-id.not-zero": [P("mega:cid-from-zero", "correlation id 0 used by ['CREATE_TOPIC']")],
    # -- framing: reading responses
    "framing.response.create-topic-byte-by-byte": [
        P("mega:recv-once", "create_topic: expected success, got error protocol … shorter than expected")
    ],
    "framing.response.produce-byte-by-byte": [
        P("mega:recv-once", "produce: expected success, got error protocol … shorter than expected")
    ],
    "framing.response.consume-byte-by-byte": [
        P("mega:recv-once", "consume: expected success, got error protocol … shorter than expected")
    ],
    "framing.response.error-byte-by-byte": [
        P("mega:recv-once", "expected a broker TOPIC_NOT_FOUND error, got protocol … shorter than expected")
    ],
    "framing.response.small-slices-with-pauses": [
        P("mega:recv-once", "consume: expected success, got error protocol … shorter than expected")
    ],
    "framing.response.slow-slices": [
        P("mega:recv-once", "produce: expected success, got error protocol … shorter than expected")
    ],
    "framing.response.larger-than-4k": [
        P("mega:recv-once", "consume: expected success, got error protocol … shorter than expected")
    ],
    "framing.response.long-text-in-segments": [
        P("mega:recv-once", "expected success, got error protocol … shorter than expected")
    ],
    "framing.response.coalesced-with-next-frame": [
        P("mega:discard-extra-bytes", "the next PRODUCE went out on the connection whose unsolicited frame arrived"),
        P("mega:recv-once", "the next PRODUCE went out on the connection whose unsolicited frame arrived"),
        P("mega:no-idle-check", "the next PRODUCE went out on the connection whose unsolicited frame arrived"),
    ],
    "framing.response.late-within-timeout": [P("mega:short-timeout", "produce: expected success, got error timeout")],
    # -- framing: payloads and results
    "framing.payload.one-mib-roundtrip": [
        P("mega:limits-exclusive", "produce 1 MiB: expected success, got error usage")
    ],
    "framing.payload.binary-roundtrip": [
        P("mega:payload-as-text", "the broker stored [2048] bytes, not the 1024 sent"),
        P("mega:truncate-at-nul", "the broker stored [0] bytes, not the 1024 sent"),
    ],
    "framing.payload.empty-roundtrip": [
        P("mega:empty-payload-refused", "produce empty: expected success, got error usage")
    ],
    "framing.payload.utf8-roundtrip": [P("mega:char-lengths", "the broker stored [14] bytes, not the 20 sent")],
    "framing.payload.trailing-whitespace-kept": [
        P("mega:strip-payload", "the broker stored [10] bytes, not the 12 sent"),
        P("mega:truncate-at-nul", "the broker stored [2] bytes, not the 12 sent"),
    ],
    "framing.create-topic.echo-decoded": [
        P("mega:echo-misread", "but the broker echoed 'probe-a': the CREATE_TOPIC success answer was misdecoded")
    ],
    "framing.create-topic.echo-255-bytes": [
        P("mega:echo-misread", "create_topic of a 255-byte name reported the topic … answer was misdecoded"),
        P("mega:limits-exclusive", "create_topic: expected success, got error usage: invalid topic name"),
    ],
    "framing.produce.offsets-reported": [P("mega:offsets-from-one", "reported offsets [1, 2, 3], expected [0, 1, 2]")],
    "framing.consume.next-offset-reported": [P("mega:next-offset-echoes-request", "next_offset 1")],
    "framing.consume.timestamp-reported": [
        P("mega:timestamp-reported-in-seconds", "reported timestamp … but the PRODUCE carried")
    ],
    "framing.consume.same-offset-twice": [
        P("mega:consume-advances-cursor", "consume #2: expected success, got error broker INVALID_OFFSET")
    ],
    # -- errors: error codes
    "errors.broker.topic-not-found-produce": [
        P("mega:error-codes-off-by-one", "expected broker error TOPIC_NOT_FOUND, got code 'TOPIC_ALREADY_EXISTS'")
    ],
    "errors.broker.topic-not-found-consume": [
        P("mega:error-codes-off-by-one", "expected broker error TOPIC_NOT_FOUND, got code 'TOPIC_ALREADY_EXISTS'")
    ],
    "errors.broker.topic-already-exists": [
        P("mega:error-codes-off-by-one", "expected broker error TOPIC_ALREADY_EXISTS, got code 'INVALID_OFFSET'")
    ],
    "errors.broker.invalid-offset-at-end": [
        P("mega:error-codes-off-by-one", "expected broker error INVALID_OFFSET, got code 'INTERNAL_ERROR'")
    ],
    "errors.broker.invalid-offset-negative": [
        P(
            "mega:clamp-negative-offset",
            "consume offset -1: expected a broker or usage INVALID_OFFSET error, got success",
        ),
        P("mega:error-codes-off-by-one", "expected broker error INVALID_OFFSET, got code 'INTERNAL_ERROR'"),
    ],
    "errors.broker.resource-exhausted": [
        P("mega:error-codes-off-by-one", "expected broker error RESOURCE_EXHAUSTED, got code 'UNKNOWN_10'")
    ],
    "errors.broker.message-too-large": [
        P("mega:error-codes-off-by-one", "expected broker error MESSAGE_TOO_LARGE, got code 'TOPIC_NOT_FOUND'")
    ],
    "errors.broker.invalid-request": [
        P("mega:error-codes-off-by-one", "expected broker error INVALID_REQUEST, got code 'INVALID_MESSAGE_TYPE'")
    ],
    "errors.broker.invalid-message-type": [
        P("mega:error-codes-off-by-one", "expected broker error INVALID_MESSAGE_TYPE, got code 'MESSAGE_TOO_LARGE'")
    ],
    "errors.broker.internal-error": [
        P("mega:error-codes-off-by-one", "expected broker error INTERNAL_ERROR, got code 'NETWORK_ERROR'")
    ],
    "errors.broker.resource-exhausted-injected": [
        P("mega:error-codes-off-by-one", "expected broker error RESOURCE_EXHAUSTED, got code 'UNKNOWN_10'")
    ],
    "errors.broker.network-error-with-request-id": [
        P("mega:code-8-ends-connection", "produce: expected a broker NETWORK_ERROR error, got connection"),
        P("mega:error-codes-off-by-one", "expected broker error NETWORK_ERROR, got code 'RESOURCE_EXHAUSTED'"),
    ],
    "errors.broker.unknown-code": [
        P("mega:unknown-code-protocol-error", "produce: expected a broker error, got protocol: unknown error code 42"),
        P("mega:error-codes-off-by-one", "code 'UNKNOWN_43', expected UNKNOWN_42"),
    ],
    "errors.broker.unknown-code-above-127": [
        P("mega:error-code-unsigned", "code 'UNKNOWN_200', expected UNKNOWN_-56 (the byte 0xc8 as an i8)"),
        P("mega:unknown-code-protocol-error", "produce: expected a broker error, got protocol: unknown error code -56"),
    ],
    # -- errors: the connection goes on after a broker error
    "errors.recovery.after-broker-error": [
        P("mega:broker-error-fatal", "consume after the error: expected success, got error connection"),
        P("mega:offsets-from-one", "produce after the error reported offset 2"),
    ],
    "errors.recovery.same-connection-after-broker-error": [
        P("mega:reconnect-after-error", "the client opened 2 connections; an error response should not end one")
    ],
    "errors.recovery.error-on-consume-is-six-bytes": [
        P("mega:error-read-as-success-layout", "consume offset 7: expected a broker INVALID_OFFSET error, got timeout")
    ],
    "errors.recovery.error-on-create-topic-is-six-bytes": [
        P(
            "mega:error-read-as-success-layout",
            "second create_topic: expected a broker TOPIC_ALREADY_EXISTS error, got timeout",
        )
    ],
    "errors.recovery.after-message-too-large": [
        P("mega:broker-error-fatal", "produce after MESSAGE_TOO_LARGE: expected success, got error connection")
    ],
    # -- errors: broken responses
    "errors.protocol.wrong-correlation-id": [
        P("mega:no-cid-check", "produce answered with a wrong correlation id: expected a protocol error, got success")
    ],
    "errors.protocol.wrong-correlation-id-closes": [
        P("mega:keep-failed-connection", "the connection is still open 1 s after the protocol error")
    ],
    "errors.protocol.wrong-correlation-id-consume": [
        P("mega:no-cid-check", "consume answered with a wrong correlation id: expected a protocol error, got success")
    ],
    "errors.protocol.bad-success-flag-2": [
        P("mega:lax-success-flag", "produce answered with success flag 2: expected a protocol error, got success")
    ],
    "errors.protocol.bad-success-flag-ff": [
        P("mega:lax-success-flag", "consume answered with success flag 0xff: expected a protocol error, got success")
    ],
    "errors.protocol.bad-success-flag-closes": [
        P("mega:keep-failed-connection", "the connection is still open 1 s after the protocol error")
    ],
    "errors.protocol.payload-length-over-limit": [
        P("mega:no-length-checks", "consume with an over-long payload_length: expected a protocol error, got timeout")
    ],
    "errors.protocol.payload-length-negative": [
        P("mega:no-length-checks", "consume with payload_length -1: expected a protocol error, got success")
    ],
    "errors.protocol.echo-length-over-limit": [
        P("mega:no-length-checks", "create_topic with echo length 300: expected a protocol error, got timeout")
    ],
    "errors.protocol.recover-by-reconnecting": [
        P("mega:sticky-failure", "produce after reconnecting: expected success, got error connection")
    ],
    "errors.protocol.stray-frame-with-id-0": [
        P("mega:no-cid-check", "produce preceded by a stray id-0 frame: expected a protocol error, got broker")
    ],
    "errors.protocol.bytes-while-idle": [
        P("mega:no-idle-check", "went out on the connection the stray bytes came on, and was reported as a success"),
        P(
            "mega:discard-extra-bytes",
            "went out on the connection the stray bytes came on, and was reported as a success",
        ),
    ],
    # -- errors: connection ends
    "errors.connection.eof-before-answer": [
        P(
            "mega:connection-errors-as-protocol",
            "produce on a connection closed by the broker: expected a connection error, got protocol",
        )
    ],
    "errors.connection.eof-mid-response": [
        P(
            "mega:connection-errors-as-protocol",
            "produce with a truncated response: expected a connection error, got protocol",
        )
    ],
    "errors.connection.eof-mid-consume-response": [
        P("mega:eof-truncates-payload", "a truncated response was reported as a 4-byte payload"),
        P(
            "mega:connection-errors-as-protocol",
            "consume with a truncated response: expected a connection error, got protocol",
        ),
    ],
    "errors.connection.reset-before-answer": [
        P(
            "mega:connection-errors-as-protocol",
            "produce on a reset connection: expected a connection error, got protocol",
        )
    ],
    "errors.connection.unsolicited-while-pending": [
        P(
            "mega:unsolicited-as-broker-error",
            "produce answered by the unsolicited frame: expected a connection error, got broker NETWORK_ERROR",
        )
    ],
    # -- errors: silence and timeouts
    "errors.timeout.silent-produce": [
        P("mega:timeout-as-protocol-error", "produce to a silent broker: expected a timeout error, got protocol"),
        P("mega:short-timeout", "timed out after … before the 0.5 s timeout"),
    ],
    "errors.timeout.silent-consume": [
        P("mega:timeout-as-protocol-error", "consume from a silent broker: expected a timeout error, got protocol")
    ],
    "errors.timeout.silent-create-topic": [
        P("mega:timeout-as-protocol-error", "create_topic on a silent broker: expected a timeout error, got protocol")
    ],
    "errors.timeout.silent-after-accept": [
        P(
            "mega:timeout-as-protocol-error",
            "create_topic on a silent connection: expected a timeout or connection error, got protocol",
        )
    ],
    "errors.timeout.closes-connection": [
        P("mega:keep-failed-connection", "the connection is still open 1 s after the timeout")
    ],
    "errors.timeout.late-answer-not-taken": [
        P("mega:no-timeout", "produce answered late: expected a timeout error, got success"),
        P("mega:resend-produce-on-timeout", "produce answered late: expected a timeout error, got success"),
        P("mega:timeout-as-protocol-error", "produce answered late: expected a timeout error, got protocol"),
    ],
    "errors.timeout.recover-by-reconnecting": [
        P("mega:sticky-failure", "request after reconnecting: expected success, got error connection"),
    ],
    # -- errors: the client's own checks
    "errors.client-check.empty-topic": [
        P("mega:no-name-check", "create_topic(''): expected a usage error, got broker INVALID_REQUEST")
    ],
    "errors.client-check.topic-too-long": [
        P("mega:no-name-check", "create_topic of 256 bytes: expected a usage error, got broker INVALID_REQUEST")
    ],
    "errors.client-check.topic-bad-character": [
        P("mega:no-name-check", "create_topic('a b'): expected a usage error, got broker INVALID_REQUEST")
    ],
    "errors.client-check.produce-bad-topic": [
        P("mega:no-name-check", "produce to 'no/slash': expected a usage error, got broker INVALID_REQUEST")
    ],
    "errors.client-check.payload-over-limit": [
        P("mega:no-size-check", "produce of 1 MiB + 1: expected a usage error, got broker MESSAGE_TOO_LARGE")
    ],
    "errors.client-check.invalid-name-never-succeeds": [
        P("mega:sanitize-names", "create_topic('a b'): expected a usage or broker INVALID_REQUEST error, got success")
    ],
    "errors.client-check.oversized-never-succeeds": [
        P(
            "mega:truncate-oversized",
            "produce of 1 MiB + 1: expected a usage or broker MESSAGE_TOO_LARGE error, got success",
        )
    ],
    "errors.client-check.valid-edge-names-accepted": [
        P("mega:strict-name-check", "create_topic('-'): expected success, got error usage"),
        P("mega:echo-misread", "but the broker echoed 'a': the CREATE_TOPIC success answer was misdecoded"),
    ],
    # -- lifecycle: connecting
    "lifecycle.connect.request-before-connect-fails": [
        P("mega:connect-on-first-request", "produce before connect: expected a usage error, got")
    ],
    "lifecycle.connect.opens-one-connection": [
        P("mega:handshake-on-connect", "the client sent 4 bytes before any request"),
        P("mega:probe-connection", "connect opened 2 connections"),
    ],
    "lifecycle.connect.one-connection-for-many-requests": [
        P("mega:connection-per-request", "8 requests used 9 connections")
    ],
    "lifecycle.connect.refused": [
        P("mega:refused-as-timeout", "connect to a closed port: expected a connection error, got timeout")
    ],
    "lifecycle.connect.times-out": [
        P(
            "mega:timeout-as-protocol-error",
            "connect to a listener that never accepts: expected a timeout or connection error, got protocol",
        )
    ],
    "lifecycle.connect.closed-at-once": [
        P("mega:sticky-failure", "create_topic after connecting again: expected success, got error connection")
    ],
    "lifecycle.connect.reset-at-once": [
        P("mega:sticky-failure", "create_topic after connecting again: expected success, got error connection")
    ],
    "lifecycle.connect.retried-while-refused": [
        P(
            "mega:no-connect-retry",
            "connect while the broker refuses for 100 ms: expected success, got error connection",
        )
    ],
    # -- lifecycle: closing
    "lifecycle.close.sends-fin": [
        P("mega:close-with-reset", "the connection ended with a reset"),
    ],
    "lifecycle.close.ends-connection": [
        P("mega:never-close", "the connection is still open 1 s after close: the socket was not closed")
    ],
    "lifecycle.close.sends-nothing": [P("mega:close-sends-goodbye", "close sent 6 bytes")],
    "lifecycle.close.twice": [
        P("mega:close-requires-open-connection", "second close: expected success, got error usage")
    ],
    "lifecycle.close.without-connection": [
        P("mega:close-requires-open-connection", "close while not connected: expected success, got error usage")
    ],
    "lifecycle.close.after-broker-drop": [
        P("mega:close-requires-open-connection", "close after the drop: expected success, got error usage")
    ],
    "lifecycle.after-close.produce-fails": [
        P("mega:reconnect-after-close", "produce after close: expected a usage or connection error, got success")
    ],
    "lifecycle.after-close.consume-fails": [
        P("mega:reconnect-after-close", "consume after close: expected a usage or connection error, got success")
    ],
    "lifecycle.after-close.create-topic-fails": [
        P("mega:reconnect-after-close", "create_topic after close: expected a usage or connection error, got success")
    ],
    "lifecycle.after-close.connect-again": [
        P("mega:closed-is-final", "connect again: expected success, got error usage"),
        P("mega:local-offsets", "offset 0, expected 1"),
        P("mega:offsets-from-one", "offset 2, expected 1"),
    ],
    # -- lifecycle: dropped connections, reconnecting, retries
    "lifecycle.reconnect.explicit-after-drop": [
        P("mega:sticky-failure", "produce after reconnecting: expected success, got error connection"),
        P(
            "mega:connection-errors-as-protocol",
            "produce on a dropped connection: expected a connection error, got protocol",
        ),
    ],
    "lifecycle.reconnect.next-call-after-drop": [
        P(
            "mega:no-auto-reconnect",
            "the call after the drop (no connect in between): expected success, got error connection",
        )
    ],
    "lifecycle.reconnect.after-broker-restart": [
        P("mega:sticky-failure", "create_topic on the restarted broker: expected success, got error connection")
    ],
    "lifecycle.reconnect.next-call-after-broker-restart": [
        P(
            "mega:no-auto-reconnect",
            "second call after the restart (no connect in between): expected success, got error connection",
        )
    ],
    "lifecycle.retry.consume-after-drop": [
        P("mega:no-retry", "consume on a dropped connection: expected success, got error connection")
    ],
    "lifecycle.retry.create-topic-after-drop": [
        P(
            "mega:no-retry",
            "create_topic on a dropped connection: expected a broker TOPIC_ALREADY_EXISTS error, got connection",
        )
    ],
    # -- lifecycle: no silent duplicate PRODUCE
    "lifecycle.no-duplicate.produce-after-eof": [
        P("mega:resend-produce", "the PRODUCE was sent 2 times and reported once: a silent resend")
    ],
    "lifecycle.no-duplicate.produce-after-reset": [
        P("mega:resend-produce", "the PRODUCE was sent 2 times and reported once: a silent resend")
    ],
    "lifecycle.no-duplicate.produce-after-truncated-answer": [
        P("mega:resend-produce", "the PRODUCE was sent 2 times and reported once: a silent resend")
    ],
    "lifecycle.no-duplicate.produce-after-timeout": [
        P("mega:resend-produce-on-timeout", "the PRODUCE was sent 2 times and reported once: a silent resend"),
        P("mega:no-timeout", "produce answered 1 s late with a 500 ms timeout: expected a timeout error, got success"),
    ],
    "lifecycle.no-duplicate.produce-after-unsolicited": [
        P("mega:resend-produce", "the PRODUCE was sent 2 times and reported once: a silent resend")
    ],
    "lifecycle.no-duplicate.produce-after-protocol-error": [
        P("mega:resend-produce", "the PRODUCE was sent 2 times and reported once: a silent resend")
    ],
    # -- lifecycle: the idle timeout
    "lifecycle.idle.request-after-idle-close": [
        P(
            "mega:no-idle-check+unsolicited-as-broker-error",
            "produce after the idle close: expected a connection error, got broker NETWORK_ERROR",
        )
    ],
    "lifecycle.idle.connect-after-idle-close": [
        P(
            "mega:no-idle-check+connect-keeps-socket",
            "produce after reconnecting: expected success, got error connection",
        )
    ],
    "lifecycle.idle.next-call-reconnects": [
        P(
            "mega:no-auto-reconnect",
            "create_topic after the idle close (no connect in between): expected success, got error connection",
        )
    ],
    "lifecycle.idle.no-duplicate-after-idle-close": [
        P("mega:replay-last-produce", "the broker holds 2 copies of the message b'before-idle', produced once")
    ],
    # -- lifecycle: state across connections
    "lifecycle.state.offsets-continue-across-connections": [
        P("mega:local-offsets", "offset 0, expected 2"),
        P("mega:offsets-from-one", "offset 3, expected 2"),
    ],
    # -- pipelining: order and matching
    "pipelining.order.mixed-100": [
        P("async:writes-newest-first", "request 1 (produce 'pipe-a'): offset … expected 10 (answers matched to"),
        P("async:error-fails-the-rest", "expected a broker TOPIC_NOT_FOUND error, got connection"),
    ],
    "pipelining.order.coalesced-answers": [
        P("async:one-event-per-read", "request 2 (consume offset 1): expected success, got error timeout")
    ],
    "pipelining.order.answers-split-at-every-byte": [
        P("async:no-buffering-across-reads", "): expected success, got error")
    ],
    "pipelining.order.answers-arrive-slowly": [
        P("async:timeout-ms-as-us", "request 1 of 20: expected success, got error timeout")
    ],
    "pipelining.order.thousand-produces": [
        P("async:writes-newest-first", "request 1 of 1,000: offset 999, expected 0 (answers matched to")
    ],
    "pipelining.order.large-answers-among-small": [
        P("async:no-buffering-across-reads", "(consume offset … expected success, got error")
    ],
    "pipelining.order.issued-order-on-the-wire": [
        P("async:writes-newest-first", "request 2 (produce 'one'): expected success, got error broker TOPIC_NOT_FOUND")
    ],
    "pipelining.in-flight-together": [
        P("async:one-at-a-time", "only 1 of the 20 requests reached the broker before the first answer")
    ],
    # -- pipelining: correlation ids
    "pipelining.cid.unique-among-pending": [
        P("async:reuse-cid", "of 200 pending requests reuse an id pending already")
    ],
    "pipelining.cid.unique-across-the-wrap": [
        P("async:reuse-cid", "ids repeat across the wrap"),
        P("async:wrap-to-start", "ids repeat across the wrap: [2147483638"),
    ],
    "pipelining.cid.wrap-skips-zero": [P("async:wrap-to-zero", "id 0 was used at the wrap")],
    # -- pipelining: errors in the middle
    "pipelining.errors.error-in-the-middle": [
        P("async:error-fails-the-rest", "(produce, after the error): expected success, got error connection")
    ],
    "pipelining.errors.connection-kept-after-an-error": [
        P("async:reconnect-after-error", "2 connections: an error response ended one")
    ],
    "pipelining.errors.a-code-per-request": [
        P(
            "async:network-error-ends-connection",
            "request 8 of 9: expected a broker NETWORK_ERROR error, got connection",
        ),
        P("async:error-fails-the-rest", "request 2 of 9: expected a broker INVALID_MESSAGE_TYPE error, got connection"),
    ],
    # -- pipelining: protocol errors in the middle
    "pipelining.protocol.wrong-correlation-id-fifth": [
        P("async:fail-oldest-only", "(pending behind a protocol error: CLIENT-10): expected a protocol or connection"),
        P("async:no-close-on-failure", "the connection is still open 2 s after the protocol error"),
    ],
    "pipelining.protocol.bad-success-flag-fifth": [
        P("async:fail-oldest-only", "(pending behind a protocol error: CLIENT-10): expected a protocol or connection")
    ],
    "pipelining.protocol.bad-length-fifth": [
        P("async:fail-oldest-only", "(pending behind a protocol error: CLIENT-10): expected a protocol or connection")
    ],
    "pipelining.protocol.stray-bytes-after-the-last-answer": [
        P("async:ignore-idle-bytes", "the next request succeeded on the connection that had carried stray bytes"),
        P(
            "async:discard-answers-at-end",
            "of 10: expected success, got error protocol … while no request is pending",
        ),
    ],
    # -- pipelining: the connection ends with requests in flight
    "pipelining.end.eof-after-five-answers": [
        P("async:silent-at-least-once", "request 6 of 10 … it had gone out on the connection that ended, yet succeeded")
    ],
    "pipelining.end.reset-after-five-answers": [
        P("async:silent-at-least-once", "request 6 of 10 … it had gone out on the connection that ended, yet succeeded")
    ],
    "pipelining.end.unsolicited-after-five-answers": [
        P(
            "async:silent-at-least-once",
            "request 6 of 10 … it had gone out on the connection that ended, yet succeeded",
        ),
        P(
            "async:unsolicited-answers-the-oldest",
            "request 6 of 10 (pending at the unsolicited frame: CLIENT-14): expected a connection error, got broker",
        ),
    ],
    "pipelining.end.truncated-sixth-answer": [
        P("async:silent-at-least-once", "request 6 of 10 … it had gone out on the connection that ended, yet succeeded")
    ],
    "pipelining.end.answers-then-write-failure": [
        P(
            "async:silent-at-least-once",
            "(pending at the reset: CLIENT-14): it had gone out on the connection that ended",
        ),
    ],
    # -- pipelining: backpressure, timeouts, retries
    "pipelining.backpressure.broker-reads-slowly": [
        P("async:writes-newest-first", "request 1 of 2,000: offset 1999, expected 0 (answers matched to")
    ],
    "pipelining.timeout.all-pending-fail": [
        P("async:no-close-on-failure", "the connection is still open 2 s after the timeout")
    ],
    "pipelining.timeout.late-answer-not-taken": [
        P("async:no-close-on-failure", "the connection is still open 2 s after the timeout")
    ],
    "pipelining.retry.consumes-after-a-drop": [
        P("async:no-retry", "request 3 (consume 2): expected success, got error connection")
    ],
}

#: Cases no planted defect can make fail from outside, each with the reason. None so far.
UNPROVABLE: dict[str, str] = {}

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONFORMANCE.md"


def describe(defect: str) -> str:
    """What a defect of the table does: its driver's description, each planted flag's for a combination."""
    kind, _, name = defect.partition(":")
    table = MEGA_DEFECTS if kind == "mega" else ASYNC_DEFECTS if kind == "async" else {}
    flags = name.split("+")
    if not name or any(flag not in table for flag in flags):
        raise KeyError(f"no defect {defect!r}")
    where = "megaclient" if kind == "mega" else "AsyncMessageClient"
    return f"{where}: " + "; and ".join(
        f"{table[flag]}" if len(flags) == 1 else f"{flag}: {table[flag]}" for flag in flags
    )


def defects() -> dict[str, str]:
    """Every defect the drivers plant (the ones that show only in a combination, in their combination), described."""
    names = [f"mega:{d}" for d in MEGA_DEFECTS if d not in ONLY_COMBINED]
    names += [f"async:{d}" for d in ASYNC_DEFECTS]
    names += [d for proofs in PROOFS.values() for p in proofs if "+" in (d := p.defect)]
    return {name: describe(name) for name in dict.fromkeys(names)}


def command(defect: str) -> list[str]:
    """The driver command line of ``defect`` (``mega:<flags>`` or ``async:<defect>``)."""
    kind, _, name = defect.partition(":")
    if kind == "mega":
        return broken_driver(name)
    if kind == "async":
        return [sys.executable, str(ASYNC_DRIVER), *(["--defect", name] if name else [])]
    raise ValueError(f"a defect is mega:<defect> or async:<defect>, not {defect!r}")


def run_defect(defect: str, cases: Sequence[Case], strict: bool) -> list[CaseResult]:
    """``cases`` against one driver with ``defect``, one after another."""
    with Runner(command(defect), strict=strict) as runner:
        return runner.run(cases)


def client_cases() -> list[Case]:
    return REGISTRY.of("client")


def markdown() -> str:
    """The coverage figure, the table and the defects, as docs/CONFORMANCE.md shows them."""
    return coverage_markdown(client_cases(), PROOFS, UNPROVABLE, defects(), noun="client")


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["--write-doc"]:
        text = DOC.read_text(encoding="utf-8")
        if doc_block(text, "client") is None:
            print(f"{DOC}: no proofs:client markers", file=sys.stderr)
            return 1
        DOC.write_text(with_doc_block(text, "client", markdown()), encoding="utf-8")
        return 0
    if argv:
        print("usage: python -m tests.conformance.proofs [--write-doc]", file=sys.stderr)
        return 2
    print(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
