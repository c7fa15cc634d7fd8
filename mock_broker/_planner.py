"""The fault planner: from the rules that fired to what happens, as data. Pure: no I/O, no clock.

:func:`replacement_error` says whether an ``error`` rule replaces the answer
(then the request has no effect); :func:`plan_answer` turns an answer and the
rules that hit its request into output steps; :func:`plan_connect` does the
same for a new connection. Matching the rules (and counting their matches) is
the registry's job (:meth:`~mock_broker._faults.FaultRegistry.match_request`),
running the steps the output scheduler's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mega_client.protocol import MessageType, UnsolicitedError, encode_error, encode_response, layouts
from mega_client.protocol.limits import INT32_MAX, INT32_MIN, UINT16_MAX

from . import _faults as f
from ._steps import Close, Hold, Reset, Sleep, Sliced, Step, Write

_INT32_SPAN = INT32_MAX - INT32_MIN + 1


@dataclass(frozen=True, slots=True)
class AnswerPlan:
    """How one answer leaves: ``steps`` in order.

    ``ends_by`` is the rule that ends the connection (``close``, ``close-after``,
    ``reset``): no request after this one is read. ``slow_read`` is a rate to
    read the connection at from now on.
    """

    steps: tuple[Step, ...]
    ends_by: f.FaultRule | None = None
    slow_read: int | None = None

    @property
    def immediate(self) -> bool:
        """Only writes, nothing to wait for: the steps can join the batch of plain answers."""
        return self.ends_by is None and all(type(s) is Write for s in self.steps)


@dataclass(frozen=True, slots=True)
class ConnectPlan:
    """What a new connection goes through, from the connect rules that fired.

    ``applied`` are the rules that took effect, in order (those after a
    ``close`` or ``reset`` do not); ``refuse`` the seconds of each listener
    pause; ``ends_with`` a :class:`Close` or :class:`Reset` that ends the
    connection at once.
    """

    applied: tuple[f.FaultRule, ...]
    refuse: tuple[float, ...] = ()
    silent: bool = False
    slow_read: int | None = None
    ends_with: Close | Reset | None = None


def as_int8(code: int) -> int:
    """A fault may name any code byte 0..255; the wire field is an int8."""
    return code - 256 if code > 127 else code


def replacement_error(rules: Sequence[f.FaultRule]) -> int | None:
    """The error code that replaces the answer (the last ``error`` rule's), or None."""
    code = None
    for rule in rules:
        if isinstance(rule.effect, f.Error):
            code = rule.effect.code
    return code


def error_answer(correlation_id: int, code: int) -> bytes:
    """The error frame a rule asks for (any code byte, 0..255)."""
    return encode_error(correlation_id, as_int8(code))


def plan_answer(rules: Sequence[f.FaultRule], answer: bytes, message_type: int) -> AnswerPlan:
    """The steps that deliver ``answer`` (already the ``error`` rule's, if one fired) under ``rules``.

    Several rules may hit one request: ``wrong-cid``/``bad-flag``/``bad-length``
    alter the answer, ``unsolicited`` frames go before it, ``trailing`` bytes
    after it (wherever it goes), ``delay`` adds up, and the last of the delivery
    actions (``slice``, ``close``, ``close-after``, ``reset``, ``silent``,
    ``hold``) decides how it leaves.
    """
    hits = _AnswerHits.of(rules)
    if hits.mutations:
        answer = mutate(answer, hits.mutations, message_type)
    delivery = hits.delivery
    if delivery is not None and isinstance(delivery.effect, f.Silent):
        answer, delivery = b"", None
    answer += hits.after  # goes wherever the answer goes: with it, sliced, held or delayed
    steps: list[Step] = []
    if hits.delay_ms:
        steps.append(Sleep(hits.delay_ms / 1000))
    steps.extend(Write(frame) for frame in hits.before)
    if delivery is None:
        if answer or not steps:
            steps.append(Write(answer))
        return AnswerPlan(tuple(steps), None, hits.slow_read)
    leaving, ends_by = _leave(answer, delivery)
    return AnswerPlan((*steps, *leaving), ends_by, hits.slow_read)


@dataclass(slots=True)
class _AnswerHits:
    """The rules that hit one request, sorted by what they do to its answer."""

    delay_ms: int = 0
    before: list[bytes] = field(default_factory=list)
    after: bytes = b""
    mutations: list[f.Effect] = field(default_factory=list)
    #: The last of the delivery rules: it decides how the answer leaves.
    delivery: f.FaultRule | None = None
    slow_read: int | None = None

    @classmethod
    def of(cls, rules: Sequence[f.FaultRule]) -> _AnswerHits:
        hits = cls()
        for rule in rules:
            effect = rule.effect
            if isinstance(effect, f.Delay):
                hits.delay_ms += effect.ms
            elif isinstance(effect, f.Unsolicited):
                hits.before.append(encode_response(UnsolicitedError(as_int8(effect.code))))
            elif isinstance(effect, f.Trailing):
                hits.after += effect.data
            elif isinstance(effect, (f.WrongCid, f.BadFlag, f.BadLength)):
                hits.mutations.append(effect)
            elif isinstance(effect, f.SlowRead):
                hits.slow_read = effect.bytes_per_second
            elif isinstance(effect, (f.Slice, f.Close, f.CloseAfter, f.Reset, f.Silent, f.Hold)):
                hits.delivery = rule
        return hits


def _leave(answer: bytes, delivery: f.FaultRule) -> tuple[tuple[Step, ...], f.FaultRule | None]:
    """How ``answer`` leaves under a delivery rule other than ``silent``, and the rule if it ends the connection."""
    how = delivery.effect
    if isinstance(how, f.Slice):
        return (Sliced(answer, how.size, how.pause_ms / 1000),), None
    if isinstance(how, f.Hold):
        return (Hold(answer),), None
    # close, close-after, reset
    cut = (Write(answer[: how.k]),) if isinstance(how, f.CloseAfter) and how.k else ()
    return (*cut, Reset() if isinstance(how, f.Reset) else Close()), delivery


def plan_connect(rules: Sequence[f.FaultRule]) -> ConnectPlan:
    """What the connect rules that fired do to a new connection (rules after a close or reset do nothing)."""
    applied: list[f.FaultRule] = []
    refuse: list[float] = []
    silent = False
    slow_read: int | None = None
    ends_with: Close | Reset | None = None
    for rule in rules:
        applied.append(rule)
        effect = rule.effect
        if isinstance(effect, f.Close):
            ends_with = Close()
        elif isinstance(effect, f.Reset):
            ends_with = Reset()
        elif isinstance(effect, f.Refuse):
            refuse.append(effect.ms / 1000)
        elif isinstance(effect, f.Silent):
            silent = True
        elif isinstance(effect, f.SlowRead):
            slow_read = effect.bytes_per_second
        if ends_with is not None:
            break
    return ConnectPlan(tuple(applied), tuple(refuse), silent, slow_read, ends_with)


def mutate(answer: bytes, effects: Sequence[f.Effect], message_type: int) -> bytes:
    """Apply ``wrong-cid`` / ``bad-flag`` / ``bad-length`` to an encoded answer.

    Each rewrites one field of the codec's own layout (``mega_client.protocol.layouts``).
    """
    buf = bytearray(answer)
    head = layouts.RESPONSE_HEAD
    if len(buf) < head.size:
        return answer
    success = head.unpack_from(buf)[1] == 1
    for effect in effects:
        cid, flag = head.unpack_from(buf)
        if isinstance(effect, f.WrongCid):
            head.pack_into(buf, 0, (cid + 1 - INT32_MIN) % _INT32_SPAN + INT32_MIN, flag)
        elif isinstance(effect, f.BadFlag):
            head.pack_into(buf, 0, cid, as_int8(effect.value))
        elif isinstance(effect, f.BadLength) and success:
            # The length field is the last of the success head of CONSUME and of CREATE_TOPIC.
            if message_type == MessageType.CONSUME:
                ok_head, length = layouts.CONSUME_OK_HEAD, effect.value
            elif message_type == MessageType.CREATE_TOPIC:
                ok_head, length = layouts.CREATE_TOPIC_OK_HEAD, effect.value & UINT16_MAX
            else:
                continue
            if len(buf) >= ok_head.size:
                *fields, _ = ok_head.unpack_from(buf)
                ok_head.pack_into(buf, 0, *fields, length)
    return bytes(buf)
