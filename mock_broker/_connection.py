"""BrokerConnection: one connection's side of the protocol, with no I/O (the h11 way).

Bytes go in (:meth:`BrokerConnection.receive_data`); output steps come out
(:meth:`BrokerConnection.next_output`): the answers to every complete request,
in order, and a :class:`~mock_broker._steps.Close` when the connection must
end. No sockets, no event loop, no timers: the asyncio side
(:mod:`mock_broker._protocol`) moves the bytes and runs the steps, and tests
can feed bytes and read steps like they do with the codec.

It owns the request decoder and the connection's state; the answers come from
the broker's :class:`~mock_broker._answers.Answerer` (the checks of section 5.2
and the store), and, when fault rules are active, pass through the planner
(:mod:`mock_broker._planner`).
"""

from __future__ import annotations

import enum
import logging
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import cast

from mega_client.protocol import (
    ErrorCode,
    RemoteProtocolError,
    RequestDecoder,
    RequestFields,
    UnsolicitedError,
    encode_response,
    request_from_fields,
)

from . import _planner
from ._answers import Answerer
from ._faults import FaultRegistry, FaultRule
from ._record import AppliedFault, ConnectionRecord
from ._steps import Close, Step, Write, cost

log = logging.getLogger("mock_broker")


#: The unsolicited frame sent to an idle connection before it is closed.
IDLE_FRAME = encode_response(UnsolicitedError(ErrorCode.NETWORK_ERROR))


class State(enum.Enum):
    """Where a connection is: reading requests, or closing (no request is read any more)."""

    OPEN = "open"
    CLOSING = "closing"


class BrokerConnection:
    """The protocol state of one client connection.

    ``record`` is the connection's :class:`ConnectionRecord` (its counts and
    close reason are always kept); with ``recording`` the bytes received are
    kept in it too, up to ``record_bytes_limit``. ``internal_errors`` collects the
    tracebacks of requests whose handling raised (each answered INTERNAL_ERROR).
    """

    __slots__ = (
        "_answerer",
        "_decoder",
        "_faults",
        "_internal_errors",
        "_now",
        "_record_bytes_limit",
        "_recording",
        "_trace",
        "more",
        "read_rate",
        "record",
        "state",
    )

    def __init__(  # noqa: PLR0913 - four collaborators, then the broker's options by name
        self,
        record: ConnectionRecord,
        answerer: Answerer,
        faults: FaultRegistry,
        decoder: RequestDecoder,
        *,
        recording: bool = False,
        record_bytes_limit: int = 0,
        internal_errors: deque[str] | None = None,
        trace: bool = False,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.record = record
        self.state = State.OPEN
        #: Set by a ``slow-read`` rule: read this connection at about this many bytes per second.
        self.read_rate: int | None = None
        #: After :meth:`next_output`: False when it answered everything complete (no need to ask again).
        self.more = True
        self._answerer = answerer
        self._faults = faults
        self._decoder = decoder
        self._recording = recording
        self._record_bytes_limit = record_bytes_limit
        self._internal_errors = internal_errors if internal_errors is not None else deque(maxlen=100)
        self._trace = trace
        self._now = now

    # -- input ------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add bytes received from the client (ignored once closing: read and discarded)."""
        if self.state is State.OPEN:
            record = self.record
            record.bytes_received += len(data)
            if self._recording:
                record.keep_segment(self._now(), "in", data, self._record_bytes_limit)
            self._decoder.feed(data)

    @property
    def buffered(self) -> int:
        """Request bytes held, waiting to complete a frame."""
        return self._decoder.buffered

    @property
    def frame_bytes(self) -> int | None:
        """The size of the frame being assembled, once its lengths have arrived."""
        return self._decoder.frame_bytes

    @property
    def closing(self) -> bool:
        return self.state is State.CLOSING

    # -- output -----------------------------------------------------------------------------

    def next_output(self, budget: int) -> list[Step]:
        """The steps that answer the complete requests buffered, in order, until ``budget`` bytes are planned.

        Returns ``[]`` when no complete request is buffered (or the connection is
        closing). Call again while it returns steps and the I/O side has room.
        """
        if self.state is not State.OPEN:
            self.more = False
            return []
        if self._faults.active or self._trace:
            return self._observed_output(budget)
        # The hot path: runs of PRODUCEs and of CONSUMEs answered in place (Answerer.fast_run),
        # any other frame decoded to a plain tuple and answered; the answers joined into one write.
        decoder = self._decoder
        next_fields = decoder.next_fields
        answer = self._answerer.answer
        fast_run = self._answerer.fast_run
        out: list[bytes] = []
        size = 0
        count = 0
        steps: list[Step] = []
        while size < budget:
            view = decoder.contiguous()
            if view is not None:
                end, n, added = fast_run(view[0], view[1], out, budget - size)
                if n:
                    decoder.consumed_to(end)
                    count += n
                    size += added
                    continue
            try:
                req = next_fields()
            except RemoteProtocolError as exc:
                count += 1
                frame = self._frame_error(exc)
                if frame:
                    out.append(frame)
                    size += len(frame)
                if exc.fatal:
                    steps.append(Close())
                    break
                continue
            if req is None:
                break
            count += 1
            try:
                frame = answer(req)
            except Exception:
                frame = self._internal_error(req)
            out.append(frame)
            size += len(frame)
        self.record.request_count += count
        self.more = size >= budget and not self.closing
        if out:
            steps.insert(0, Write(b"".join(out)))
        return steps

    def _observed_output(self, budget: int) -> list[Step]:
        """:meth:`next_output` with fault rules active or every request traced."""
        decoder = self._decoder
        record = self.record
        faults = self._faults
        batch = _Batch()
        while batch.size < budget and not self.closing:
            try:
                req = decoder.next_fields()
            except RemoteProtocolError as exc:
                record.request_count += 1
                frame = self._frame_error(exc)
                if exc.fatal:  # its answer (if the profile gives one), then close
                    if frame:
                        batch.write(frame)
                    batch.end()
                    break
                assert frame is not None
                mtype = exc.message_type if exc.message_type is not None else 0
                cid = exc.correlation_id or 0
                self._deliver(faults.match_request(mtype, None, record.id), frame, mtype, cid, batch)
                continue
            if req is None:
                break
            record.request_count += 1
            if self._trace:
                log.debug("conn %d request %r", record.id, request_from_fields(req))
            mtype, cid, topic = req[0], req[1], req[2]
            rules = faults.match_request(mtype, topic, record.id) if faults.active else []
            code = _planner.replacement_error(rules)
            if code is not None:
                frame = _planner.error_answer(cid, code)  # the request has no effect
            else:
                try:
                    frame = self._answerer.answer(req)
                except Exception:
                    frame = self._internal_error(req)
            self._deliver(rules, frame, mtype, cid, batch)
        self.more = batch.size >= budget and not self.closing
        return batch.steps()

    def _deliver(self, rules: list[FaultRule], frame: bytes, mtype: int, cid: int, batch: _Batch) -> None:
        """Add ``frame``, delivered as ``rules`` say, to ``batch``."""
        if not rules:
            batch.write(frame)
            return
        for rule in rules:
            self._note_fault(rule, cid)
        plan = _planner.plan_answer(rules, frame, mtype)
        if plan.slow_read is not None:
            self.read_rate = plan.slow_read
        batch.plan(plan)
        if plan.ends_by is not None:
            self.close(f"fault {plan.ends_by}", planned=True)

    # -- ending -----------------------------------------------------------------------------

    def close(self, reason: str, *, planned: bool = False) -> list[Step]:
        """Stop reading requests; the steps that end the connection (``[Close()]``).

        ``planned``: a fault's plan already holds the close (or reset) step.
        The first reason given is the one recorded.
        """
        if self.state is State.CLOSING:
            return []
        self.state = State.CLOSING
        if self.record.close_reason is None:
            self.record.close_reason = reason
        return [] if planned else [Close()]

    def idle_timeout(self) -> list[Step]:
        """The client sent nothing for too long: NETWORK_ERROR with correlation id 0, then close."""
        if self.state is not State.OPEN:
            return []
        return [Write(IDLE_FRAME), *self.close("idle timeout")]

    def connect_plan(self) -> _planner.ConnectPlan | None:
        """What the connect rules do to this new connection (None with no rule active)."""
        if not self._faults.active:
            return None
        plan = _planner.plan_connect(self._faults.match_connect(self.record.id))
        for rule in plan.applied:
            self._note_fault(rule, None)
        if plan.ends_with is not None:
            self.close(f"fault {plan.applied[-1]}", planned=True)
        return plan

    # -- helpers ----------------------------------------------------------------------------

    def _frame_error(self, exc: RemoteProtocolError) -> bytes | None:
        """The answer to a rejected frame; a fatal one also closes the connection."""
        record = self.record
        if self._trace:
            log.debug("conn %d frame error (cid %s): %s", record.id, exc.correlation_id, exc)
        frame = self._answerer.frame_error(exc)
        if exc.fatal:
            log.info("conn %d: %s; closing", record.id, exc)
            self.close(exc.reason, planned=True)
        return frame

    def _internal_error(self, req: RequestFields) -> bytes:
        tb = traceback.format_exc()
        self._internal_errors.append(tb)
        log.error("conn %d: internal error handling %r\n%s", self.record.id, req, tb)
        return Answerer.internal_error(req)

    def _note_fault(self, rule: FaultRule, cid: int | None) -> None:
        record = self.record
        index = None if cid is None else record.request_count
        record.add_fault(AppliedFault(str(rule), rule.action, self._now(), index, cid))
        if cid is None:
            log.debug("conn %d: fault %s applied on connect", record.id, rule)
        else:
            log.debug("conn %d: fault %s applied to request #%d (cid %d)", record.id, rule, index, cid)


class _Batch:
    """The output of one :meth:`BrokerConnection.next_output` call with faults: plain answers are
    joined into one write; a plan that must wait (or end the connection) goes after them, in order."""

    __slots__ = ("_out", "_steps", "size")

    def __init__(self) -> None:
        self._out: list[bytes] = []
        self._steps: list[Step] = []
        self.size = 0  # what the output planned so far costs (see mock_broker._steps.cost)

    def write(self, data: bytes) -> None:
        self._out.append(data)
        self.size += len(data)

    def plan(self, plan: _planner.AnswerPlan) -> None:
        if plan.immediate:
            for step in plan.steps:
                self.write(cast(Write, step).data)
            return
        self._flush()
        self._steps.extend(plan.steps)
        self.size += sum(cost(s) for s in plan.steps)

    def end(self) -> None:
        """The connection closes after what is in the batch."""
        self._flush()
        self._steps.append(Close())

    def steps(self) -> list[Step]:
        self._flush()
        return self._steps

    def _flush(self) -> None:
        if self._out:
            self._steps.append(Write(b"".join(self._out)))
            self._out.clear()
