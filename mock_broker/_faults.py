"""Fault injection: rules that make the broker fail on purpose, protocol-aware.

A rule is text in this grammar (fields separated by ``:``)::

    TARGET[@TOPIC]:ACTION[=ARG][:WHEN][:conn=N]

TARGET
    ``produce`` | ``consume`` | ``create_topic`` | ``any`` (per request), or
    ``connect`` (per new connection). ``@TOPIC`` restricts a request rule to
    requests naming that topic.

ACTION for requests
    ``error=CODE``       answer with this error code (name such as TOPIC_NOT_FOUND, or a
                         number 0..255) instead of handling the request (nothing is stored)
    ``delay=MS``         answer MS milliseconds late (later answers wait behind it)
    ``slice=N[/MS]``     send the answer in pieces of N bytes, MS ms apart (default 10)
    ``close``            close the connection instead of answering
    ``close-after=K``    send the first K bytes of the answer, then close
    ``reset``            reset the connection (RST: SO_LINGER 0, then close)
    ``silent``           never answer this request; the connection stays open
    ``wrong-cid``        answer with correlation id + 1
    ``bad-flag[=V]``     success byte V (default 2)
    ``bad-length=V``     the answer's length field set to V: payload_length of a CONSUME
                         success (i32), topic_len of a CREATE_TOPIC success (u16, V mod 65536);
                         other answers have no length field and go out unchanged
    ``unsolicited=CODE`` send the frame ``00 00 00 00 | 00 | CODE`` just before the answer
    ``trailing=HEX``     send these bytes right after the answer, in the same write: bytes
                         that answer nothing, arriving while no request is pending (CLIENT-9)
    ``hold``             keep the answer back; send it together with the next one, in one write
    ``slow-read=BPS``    from now on read this connection at about BPS bytes per second

ACTION for connect
    ``close``            accept, then close at once (FIN)
    ``reset``            accept, then reset at once (RST)
    ``refuse=MS``        stop listening for MS ms, so that new connections are refused.
                         With ``always`` (the default) or ``once`` the listener goes down as
                         soon as the rule is added; ``always`` also takes it down again
                         after every connection accepted later, ``nth``/``every`` only after
                         the matching connections. The accepted connection itself is served.
    ``silent``           accept, never read and never answer (not even the idle timeout)
    ``slow-read=BPS``    read the connection at about BPS bytes per second

WHEN
    ``always`` (default) | ``once`` (the first match only) | ``nth=N`` (only the N-th
    match, 1-based) | ``every=N`` (every N-th match). Matches are counted per rule,
    across connections.

``conn=N``
    only on connection id N (ids count from 1 in the order connections are accepted).

Examples: ``produce:error=RESOURCE_EXHAUSTED:every=10``, ``consume@orders:slice=1/5``,
``any:silent:conn=2``, ``connect:close:once``, ``connect:refuse=100``.

A malformed rule raises ValueError with a one-line message.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mega_client.protocol import ErrorCode, MessageType

REQUEST_TARGETS = ("produce", "consume", "create_topic", "any")
TARGETS = (*REQUEST_TARGETS, "connect")
REQUEST_ACTIONS = (
    "error",
    "delay",
    "slice",
    "close",
    "close-after",
    "reset",
    "silent",
    "wrong-cid",
    "bad-flag",
    "bad-length",
    "unsolicited",
    "trailing",
    "hold",
    "slow-read",
)
CONNECT_ACTIONS = ("close", "reset", "refuse", "silent", "slow-read")
WHENS = ("always", "once", "nth", "every")

_TARGET_TYPES: dict[str, int | None] = {
    "produce": int(MessageType.PRODUCE),
    "consume": int(MessageType.CONSUME),
    "create_topic": int(MessageType.CREATE_TOPIC),
    "any": None,
}

#: action -> (argument required?, default)
_ARGS: dict[str, tuple[bool, int | None]] = {
    "error": (True, None),
    "delay": (True, None),
    "slice": (True, None),
    "close": (False, None),
    "close-after": (True, None),
    "reset": (False, None),
    "silent": (False, None),
    "wrong-cid": (False, None),
    "bad-flag": (False, 2),
    "bad-length": (True, None),
    "unsolicited": (True, None),
    "trailing": (True, None),
    "hold": (False, None),
    "slow-read": (True, None),
    "refuse": (True, None),
}

DEFAULT_SLICE_PAUSE_MS = 10
#: The most bytes a ``trailing=HEX`` rule may send.
MAX_TRAILING_BYTES = 65536


class FaultRuleError(ValueError):
    """A fault rule that does not parse (a ValueError with a one-line message)."""


def _int(text: str, what: str, lo: int, hi: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise FaultRuleError(f"{what} must be an integer, not {text!r}") from None
    if not lo <= value <= hi:
        raise FaultRuleError(f"{what} must be {lo}..{hi}, not {value}")
    return value


def _code(text: str, what: str) -> int:
    name = text.strip().upper().replace("-", "_")
    if name in ErrorCode.__members__:
        return int(ErrorCode[name])
    try:
        return _int(text, what, -128, 255) & 0xFF
    except FaultRuleError:
        names = ", ".join(ErrorCode.__members__)
        raise FaultRuleError(f"{what} must be an error code name ({names}) or 0..255, not {text!r}") from None


def _hex(text: str) -> bytes:
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise FaultRuleError(f"trailing=HEX needs hex digits, two per byte, not {text!r}") from None
    if not 1 <= len(data) <= MAX_TRAILING_BYTES:
        raise FaultRuleError(f"trailing=HEX needs 1..{MAX_TRAILING_BYTES} bytes, not {len(data)}")
    return data


@dataclass(eq=False)
class FaultRule:
    """One parsed rule (see the module docstring for the grammar).

    ``arg`` is the action's numeric argument (error code, ms, bytes, value),
    ``arg2`` the pause of ``slice``; ``n`` the count of ``nth`` / ``every``;
    ``data`` the bytes of ``trailing`` (``arg`` is then their count).
    ``matched`` and ``fired`` count, on the broker, the events that matched the
    rule and those it was applied to. Rules compare by identity.
    """

    target: str
    action: str
    arg: int | None = None
    arg2: int | None = None
    topic: str | None = None
    when: str = "always"
    n: int | None = None
    conn: int | None = None
    data: bytes = b""
    matched: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise FaultRuleError(f"unknown target {self.target!r} (one of {', '.join(TARGETS)})")
        actions = CONNECT_ACTIONS if self.target == "connect" else REQUEST_ACTIONS
        if self.action not in actions:
            raise FaultRuleError(f"unknown action {self.action!r} for {self.target} (one of {', '.join(actions)})")
        if self.topic is not None and self.target == "connect":
            raise FaultRuleError("a connect rule takes no @TOPIC")
        if self.when not in WHENS:
            raise FaultRuleError(f"unknown WHEN {self.when!r} (one of always, once, nth=N, every=N)")
        if self.when in ("nth", "every") and (self.n is None or self.n < 1):
            raise FaultRuleError(f"{self.when}=N needs N >= 1")
        required, default = _ARGS[self.action]
        if self.action == "trailing":
            if not 1 <= len(self.data) <= MAX_TRAILING_BYTES:
                raise FaultRuleError(f"action trailing needs 1..{MAX_TRAILING_BYTES} bytes (trailing=HEX)")
            self.arg = len(self.data)
        elif self.data:
            raise FaultRuleError(f"action {self.action} takes no bytes")
        if self.arg is None:
            if required:
                raise FaultRuleError(f"action {self.action} needs an argument ({self.action}=...)")
            self.arg = default
        elif not required and default is None:
            raise FaultRuleError(f"action {self.action} takes no argument")
        if self.action == "slice" and self.arg2 is None:
            self.arg2 = DEFAULT_SLICE_PAUSE_MS

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """Parse ``TARGET[@TOPIC]:ACTION[=ARG][:WHEN][:conn=N]``; FaultRuleError (a ValueError) if bad."""
        try:
            return cls._parse(text)
        except FaultRuleError as exc:
            raise FaultRuleError(f"bad fault rule {text!r}: {exc}") from None

    @classmethod
    def _parse(cls, text: str) -> FaultRule:
        fields = [f.strip() for f in text.strip().split(":")]
        if len(fields) < 2 or not all(fields):
            raise FaultRuleError("expected TARGET[@TOPIC]:ACTION[=ARG][:WHEN][:conn=N]")
        target, _, topic = fields[0].partition("@")
        target = target.lower()
        if "@" in fields[0] and not topic:
            raise FaultRuleError("empty @TOPIC")
        action, has_arg, arg_text = fields[1].partition("=")
        action = action.lower()
        arg: int | None = None
        arg2: int | None = None
        data = b""
        if has_arg and action == "trailing":
            data = _hex(arg_text)
        elif has_arg:
            arg, arg2 = cls._parse_arg(action, arg_text)
        when, n, conn = "always", None, None
        seen: set[str] = set()
        for f in fields[2:]:
            key, has_value, value = f.partition("=")
            key = key.lower()
            kind = "conn" if key == "conn" else "when"
            if kind in seen:
                raise FaultRuleError(f"more than one {'conn=N' if kind == 'conn' else 'WHEN'} field")
            seen.add(kind)
            if key == "conn":
                conn = _int(value, "conn=N", 1, 2**63)
            elif key in ("always", "once") and not has_value:
                when = key
            elif key in ("nth", "every") and has_value:
                when, n = key, _int(value, f"{key}=N", 1, 2**63)
            else:
                raise FaultRuleError(f"unknown field {f!r} (WHEN is always, once, nth=N or every=N; or conn=N)")
        return cls(target, action, arg, arg2, topic or None, when, n, conn, data)

    @staticmethod
    def _parse_arg(action: str, text: str) -> tuple[int, int | None]:
        if action in ("error", "unsolicited"):
            return _code(text, f"{action}=CODE"), None
        if action == "slice":
            size, has_pause, pause = text.partition("/")
            n = _int(size, "slice=N", 1, 2**31)
            return n, (_int(pause, "slice=N/MS", 0, 3_600_000) if has_pause else None)
        if action in ("delay", "refuse"):
            return _int(text, f"{action}=MS", 0, 3_600_000), None
        if action == "close-after":
            return _int(text, "close-after=K", 0, 2**31), None
        if action == "bad-flag":
            return _int(text, "bad-flag=V", -128, 255) & 0xFF, None
        if action == "bad-length":
            return _int(text, "bad-length=V", -(2**31), 2**31 - 1), None
        if action == "slow-read":
            return _int(text, "slow-read=BYTES_PER_S", 1, 2**40), None
        if action in _ARGS:
            raise FaultRuleError(f"action {action} takes no argument")
        return 0, None  # unknown action: reported by __post_init__

    def __str__(self) -> str:
        head = self.target + (f"@{self.topic}" if self.topic else "")
        action = self.action
        if self.action in ("error", "unsolicited") and self.arg is not None:
            try:
                action += f"={ErrorCode(self.arg).name}"
            except ValueError:
                action += f"={self.arg}"
        elif self.action == "slice":
            action += f"={self.arg}/{self.arg2}"
        elif self.action == "trailing":
            action += f"={self.data.hex()}"
        elif self.arg is not None:
            action += f"={self.arg}"
        parts = [head, action]
        if self.when in ("nth", "every"):
            parts.append(f"{self.when}={self.n}")
        elif self.when != "always":
            parts.append(self.when)
        if self.conn is not None:
            parts.append(f"conn={self.conn}")
        return ":".join(parts)

    def __repr__(self) -> str:
        return f"FaultRule({str(self)!r}, matched={self.matched}, fired={self.fired})"

    # -- matching (on the broker's loop) ------------------------------------------------

    def matches_request(self, message_type: int, topic: str | None, conn_id: int) -> bool:
        """Does a request of this type, topic and connection match (WHEN aside)?"""
        if self.target == "connect":
            return False
        mtype = _TARGET_TYPES[self.target]
        if mtype is not None and mtype != message_type:
            return False
        if self.topic is not None and self.topic != topic:
            return False
        return self.conn is None or self.conn == conn_id

    def count_and_fire(self) -> bool:
        """Count one match; True if WHEN says to apply the rule to it."""
        self.matched += 1
        m = self.matched
        when = self.when
        if when == "always":
            fire = True
        elif when == "once":
            fire = m == 1
        elif when == "nth":
            fire = m == self.n
        else:
            fire = self.n is not None and m % self.n == 0
        if fire:
            self.fired += 1
        return fire

    @property
    def refuses_at_add(self) -> bool:
        """A ``connect:refuse`` rule that takes the listener down as soon as it is added."""
        return self.target == "connect" and self.action == "refuse" and self.when in ("always", "once")


class FaultRegistry:
    """The fault rules of one broker.

    ``add`` / ``remove`` / ``clear`` / ``list`` / ``applied`` are safe from any
    thread. ``active`` is the one attribute the broker's hot path reads.
    """

    def __init__(self) -> None:
        self.active = False
        self._rules: tuple[FaultRule, ...] = ()
        self._lock = threading.Lock()
        #: Called with each added rule (the broker uses it for ``connect:refuse``).
        self.on_add: Callable[[FaultRule], None] | None = None

    def add(self, rule: str | FaultRule) -> FaultRule:
        """Add a rule (text or FaultRule) and return it. ValueError for a bad rule."""
        parsed = FaultRule.parse(rule) if isinstance(rule, str) else rule
        if not isinstance(parsed, FaultRule):
            raise TypeError(f"a fault rule is a str or a FaultRule, not {type(rule).__name__}")
        with self._lock:
            self._rules = (*self._rules, parsed)
            self.active = True
        if self.on_add is not None:
            self.on_add(parsed)
        return parsed

    def remove(self, rule: FaultRule) -> None:
        """Remove ``rule`` (ValueError if it is not there)."""
        with self._lock:
            if not any(r is rule for r in self._rules):
                raise ValueError(f"fault rule not in this broker: {rule}")
            self._rules = tuple(r for r in self._rules if r is not rule)
            self.active = bool(self._rules)

    def discard(self, rule: FaultRule) -> None:
        """Remove ``rule`` if it is there."""
        with contextlib.suppress(ValueError):
            self.remove(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = ()
            self.active = False

    def list(self) -> builtins.list[FaultRule]:
        """The rules, in the order they were added."""
        return builtins.list(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[FaultRule]:
        return iter(self._rules)

    @contextlib.contextmanager
    def applied(self, *rules: str | FaultRule) -> Iterator[builtins.list[FaultRule]]:
        """Add ``rules`` for the duration of a ``with`` block, then remove them."""
        added: builtins.list[FaultRule] = []
        try:
            for rule in rules:
                added.append(self.add(rule))
            yield added
        finally:
            for rule in added:
                self.discard(rule)

    # -- matching (on the broker's loop) ------------------------------------------------

    def match_request(self, message_type: int, topic: str | None, conn_id: int) -> builtins.list[FaultRule]:
        """The rules to apply to this request, in order (counting every match)."""
        return [r for r in self._rules if r.matches_request(message_type, topic, conn_id) and r.count_and_fire()]

    def match_connect(self, conn_id: int) -> builtins.list[FaultRule]:
        """The connect rules to apply to a new connection, in order."""
        return [
            r
            for r in self._rules
            if r.target == "connect"
            and (r.conn is None or r.conn == conn_id)
            and not (r.refuses_at_add and r.when == "once")  # spent when added
            and r.count_and_fire()
        ]
