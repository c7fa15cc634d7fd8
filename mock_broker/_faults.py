"""Fault rules: what makes the broker fail on purpose, parsed from one grammar.

A rule is text in this grammar (fields separated by ``:``)::

    TARGET[@TOPIC]:ACTION[=ARG][:WHEN][:conn=N]

The actions, their arguments and their help lines are described once, in
:data:`ACTIONS`; the parser, the validation, ``str(rule)`` and the
``--help`` text (:func:`grammar_help`) are all driven by that table. Each
action parses to a small frozen *effect* (:class:`Error`, :class:`Delay`,
:class:`Slice`, ...) that :mod:`mock_broker._planner` turns into output steps.

To add an action: write its effect class (``parse`` and ``arg_text``), add a
row to :data:`ACTIONS`, and teach :func:`mock_broker._planner.plan_answer` (or
``plan_connect``) what it does. mock_broker/README.md lists the actions too (a
test checks that it names every one).

A malformed rule raises :class:`FaultRuleError` (a ValueError) with a one-line message.
"""

from __future__ import annotations

import builtins
import contextlib
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from mega_client.protocol import ErrorCode, MessageType
from mega_client.protocol.limits import INT32_MAX, INT32_MIN

DEFAULT_SLICE_PAUSE_MS = 10
#: The most bytes a ``trailing=HEX`` rule may send.
MAX_TRAILING_BYTES = 65536
#: The longest delay or pause a rule may ask for: an hour.
MAX_MS = 3_600_000
#: Counts (``nth=N``, ``conn=N``, byte counts) are at most this.
MAX_COUNT = 2**63


class FaultRuleError(ValueError):
    """A fault rule that does not parse (a ValueError with a one-line message)."""


# -- argument readers -------------------------------------------------------------------


def _int(text: str, what: str, lo: int, hi: int) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise FaultRuleError(f"{what} must be an integer, not {text!r}") from None
    if not lo <= value <= hi:
        raise FaultRuleError(f"{what} must be {lo}..{hi}, not {value}")
    return value


def _code(text: str, what: str) -> int:
    """An error code by name (any case, ``-`` for ``_``) or number; a byte 0..255."""
    name = text.strip().upper().replace("-", "_")
    if name in ErrorCode.__members__:
        return int(ErrorCode[name])
    try:
        return _int(text, what, -128, 255) & 0xFF
    except FaultRuleError:
        names = ", ".join(ErrorCode.__members__)
        raise FaultRuleError(f"{what} must be an error code name ({names}) or 0..255, not {text!r}") from None


def _code_text(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _required(arg: str | None, syntax: str) -> str:
    if arg is None:
        name = syntax.partition("=")[0].partition("[")[0]
        raise FaultRuleError(f"action {name} needs an argument ({syntax})")
    return arg


def _none(arg: str | None, name: str) -> None:
    if arg is not None:
        raise FaultRuleError(f"action {name} takes no argument")


# -- effects: what each action does, as data ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Error:
    """Answer with this error code instead of handling the request (nothing is stored)."""

    code: int
    name: ClassVar[str] = "error"

    @classmethod
    def parse(cls, arg: str | None) -> Error:
        return cls(_code(_required(arg, "error=CODE"), "error=CODE"))

    def arg_text(self) -> str | None:
        return _code_text(self.code)


@dataclass(frozen=True, slots=True)
class Delay:
    """Answer ``ms`` milliseconds late; later answers wait behind it."""

    ms: int
    name: ClassVar[str] = "delay"

    @classmethod
    def parse(cls, arg: str | None) -> Delay:
        return cls(_int(_required(arg, "delay=MS"), "delay=MS", 0, MAX_MS))

    def arg_text(self) -> str | None:
        return str(self.ms)


@dataclass(frozen=True, slots=True)
class Slice:
    """Send the answer in pieces of ``size`` bytes, ``pause_ms`` apart."""

    size: int
    pause_ms: int = DEFAULT_SLICE_PAUSE_MS
    name: ClassVar[str] = "slice"

    @classmethod
    def parse(cls, arg: str | None) -> Slice:
        size, has_pause, pause = _required(arg, "slice=N[/MS]").partition("/")
        n = _int(size, "slice=N", 1, 2**31)
        return cls(n, _int(pause, "slice=N/MS", 0, MAX_MS) if has_pause else DEFAULT_SLICE_PAUSE_MS)

    def arg_text(self) -> str | None:
        return f"{self.size}/{self.pause_ms}"


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection (FIN) instead of answering; for ``connect``, at once."""

    name: ClassVar[str] = "close"

    @classmethod
    def parse(cls, arg: str | None) -> Close:
        _none(arg, cls.name)
        return cls()

    def arg_text(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class CloseAfter:
    """Send the first ``k`` bytes of the answer, then close."""

    k: int
    name: ClassVar[str] = "close-after"

    @classmethod
    def parse(cls, arg: str | None) -> CloseAfter:
        return cls(_int(_required(arg, "close-after=K"), "close-after=K", 0, 2**31))

    def arg_text(self) -> str | None:
        return str(self.k)


@dataclass(frozen=True, slots=True)
class Reset:
    """Reset the connection (RST: SO_LINGER 0, then close)."""

    name: ClassVar[str] = "reset"

    @classmethod
    def parse(cls, arg: str | None) -> Reset:
        _none(arg, cls.name)
        return cls()

    def arg_text(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class Silent:
    """Never answer (the request); never read nor answer (the connection)."""

    name: ClassVar[str] = "silent"

    @classmethod
    def parse(cls, arg: str | None) -> Silent:
        _none(arg, cls.name)
        return cls()

    def arg_text(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class WrongCid:
    """Answer with correlation id + 1."""

    name: ClassVar[str] = "wrong-cid"

    @classmethod
    def parse(cls, arg: str | None) -> WrongCid:
        _none(arg, cls.name)
        return cls()

    def arg_text(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class BadFlag:
    """Set the answer's success byte to ``value``."""

    value: int = 2
    name: ClassVar[str] = "bad-flag"

    @classmethod
    def parse(cls, arg: str | None) -> BadFlag:
        return cls() if arg is None else cls(_int(arg, "bad-flag=V", -128, 255) & 0xFF)

    def arg_text(self) -> str | None:
        return str(self.value)


@dataclass(frozen=True, slots=True)
class BadLength:
    """Set the length field of a CONSUME (i32) or CREATE_TOPIC (u16, mod 65536) success."""

    value: int
    name: ClassVar[str] = "bad-length"

    @classmethod
    def parse(cls, arg: str | None) -> BadLength:
        return cls(_int(_required(arg, "bad-length=V"), "bad-length=V", INT32_MIN, INT32_MAX))

    def arg_text(self) -> str | None:
        return str(self.value)


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """Send the frame ``00 00 00 00 | 00 | code`` just before the answer."""

    code: int
    name: ClassVar[str] = "unsolicited"

    @classmethod
    def parse(cls, arg: str | None) -> Unsolicited:
        return cls(_code(_required(arg, "unsolicited=CODE"), "unsolicited=CODE"))

    def arg_text(self) -> str | None:
        return _code_text(self.code)


@dataclass(frozen=True, slots=True)
class Trailing:
    """Send these bytes right after the answer: bytes that answer nothing (CLIENT-9)."""

    data: bytes
    name: ClassVar[str] = "trailing"

    @classmethod
    def parse(cls, arg: str | None) -> Trailing:
        text = _required(arg, "trailing=HEX")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            raise FaultRuleError(f"trailing=HEX needs hex digits, two per byte, not {text!r}") from None
        if not 1 <= len(data) <= MAX_TRAILING_BYTES:
            raise FaultRuleError(f"trailing=HEX needs 1..{MAX_TRAILING_BYTES} bytes, not {len(data)}")
        return cls(data)

    def arg_text(self) -> str | None:
        return self.data.hex()


@dataclass(frozen=True, slots=True)
class Hold:
    """Keep the answer back; send it together with the next one, in one write."""

    name: ClassVar[str] = "hold"

    @classmethod
    def parse(cls, arg: str | None) -> Hold:
        _none(arg, cls.name)
        return cls()

    def arg_text(self) -> str | None:
        return None


@dataclass(frozen=True, slots=True)
class SlowRead:
    """From now on read the connection at about ``bytes_per_second``."""

    bytes_per_second: int
    name: ClassVar[str] = "slow-read"

    @classmethod
    def parse(cls, arg: str | None) -> SlowRead:
        return cls(_int(_required(arg, "slow-read=BPS"), "slow-read=BYTES_PER_S", 1, 2**40))

    def arg_text(self) -> str | None:
        return str(self.bytes_per_second)


@dataclass(frozen=True, slots=True)
class Refuse:
    """Stop listening for ``ms`` milliseconds, so that new connections are refused."""

    ms: int
    name: ClassVar[str] = "refuse"

    @classmethod
    def parse(cls, arg: str | None) -> Refuse:
        return cls(_int(_required(arg, "refuse=MS"), "refuse=MS", 0, MAX_MS))

    def arg_text(self) -> str | None:
        return str(self.ms)


Effect = (
    Error
    | Delay
    | Slice
    | Close
    | CloseAfter
    | Reset
    | Silent
    | WrongCid
    | BadFlag
    | BadLength
    | Unsolicited
    | Trailing
    | Hold
    | SlowRead
    | Refuse
)


class Action(NamedTuple):
    """One row of the table: an action's effect class, its syntax, and what it does per target."""

    effect: Callable[[str | None], Effect]
    syntax: str
    request: str | None  # help as a request action; None: not one
    connect: str | None  # help as a connect action; None: not one


#: Every action, in help order. The one description of the grammar's actions.
ACTIONS: dict[str, Action] = {
    "error": Action(
        Error.parse, "error=CODE", "answer this error code (name or 0..255) instead; nothing is stored", None
    ),
    "delay": Action(Delay.parse, "delay=MS", "answer MS ms late (later answers wait behind it)", None),
    "slice": Action(
        Slice.parse,
        "slice=N[/MS]",
        f"send the answer N bytes at a time, MS ms apart (default {DEFAULT_SLICE_PAUSE_MS})",
        None,
    ),
    "close": Action(Close.parse, "close", "close instead of answering", "accept, then close at once (FIN)"),
    "close-after": Action(CloseAfter.parse, "close-after=K", "send the first K bytes of the answer, then close", None),
    "reset": Action(Reset.parse, "reset", "reset the connection (RST)", "accept, then reset at once (RST)"),
    "silent": Action(
        Silent.parse,
        "silent",
        "never answer this request (the connection stays open)",
        "accept, never read nor answer (not even the idle timeout)",
    ),
    "wrong-cid": Action(WrongCid.parse, "wrong-cid", "answer with correlation id + 1", None),
    "bad-flag": Action(BadFlag.parse, "bad-flag[=V]", "success byte V (default 2)", None),
    "bad-length": Action(
        BadLength.parse,
        "bad-length=V",
        "length field of a CONSUME (i32) / CREATE_TOPIC (u16) success set to V; other answers unchanged",
        None,
    ),
    "unsolicited": Action(
        Unsolicited.parse, "unsolicited=CODE", "send 00 00 00 00 00 CODE just before the answer", None
    ),
    "trailing": Action(
        Trailing.parse, "trailing=HEX", "send these bytes right after the answer, in the same write (CLIENT-9)", None
    ),
    "hold": Action(Hold.parse, "hold", "hold the answer back, send it with the next one in one write", None),
    "slow-read": Action(
        SlowRead.parse,
        "slow-read=BPS",
        "from now on read this connection at about BPS bytes/s",
        "read the connection at about BPS bytes/s",
    ),
    "refuse": Action(
        Refuse.parse,
        "refuse=MS",
        None,
        "stop listening MS ms: with always (the default) or once as soon as the rule is added, with always "
        "again after every connection accepted later, with nth/every after the matching connections",
    ),
}

REQUEST_TARGETS = ("produce", "consume", "create_topic", "any")
TARGETS = (*REQUEST_TARGETS, "connect")
WHENS = ("always", "once", "nth", "every")
REQUEST_ACTIONS = tuple(name for name, a in ACTIONS.items() if a.request is not None)
CONNECT_ACTIONS = tuple(name for name, a in ACTIONS.items() if a.connect is not None)

_TARGET_TYPES: dict[str, int | None] = {
    "produce": int(MessageType.PRODUCE),
    "consume": int(MessageType.CONSUME),
    "create_topic": int(MessageType.CREATE_TOPIC),
    "any": None,
}

GRAMMAR = "TARGET[@TOPIC]:ACTION[=ARG][:WHEN][:conn=N]"


def grammar_help(width: int = 100) -> str:
    """The grammar as the CLI's ``--help`` shows it, made from :data:`ACTIONS`."""
    column = max(len(a.syntax) for a in ACTIONS.values()) + 6

    def rows(which: str) -> list[str]:
        out = []
        for a in ACTIONS.values():
            text = a.request if which == "request" else a.connect
            if text is not None:
                first = f"    {a.syntax:<{column - 4}}"
                out.extend(textwrap.wrap(text, width, initial_indent=first, subsequent_indent=" " * column))
        return out

    lines = [
        f"fault rules (--fault, repeatable): {GRAMMAR}",
        "  TARGET  produce | consume | create_topic | any (per request) | connect (per connection);",
        "          @TOPIC restricts a request rule to requests naming that topic",
        "  ACTION for requests:",
        *rows("request"),
        "  ACTION for connect:",
        *rows("connect"),
        "  WHEN    always (default) | once | nth=N | every=N   (matches counted per rule, across connections)",
        "  conn=N  only connection N (1, 2, ... in accept order)",
        "  Several rules may hit one request: error replaces the answer; wrong-cid, bad-flag and bad-length",
        "  alter it; unsolicited, trailing and delay add to it; the last of slice, close, close-after,",
        "  reset, silent and hold decides how it leaves.",
        "  e.g. --fault 'produce:error=RESOURCE_EXHAUSTED:every=10' --fault 'consume@orders:slice=1/5'",
    ]
    return "\n".join(lines)


@dataclass(eq=False)
class FaultRule:
    """One parsed rule (see the module docstring for the grammar).

    ``effect`` is what the action does (an :data:`Effect`); ``n`` the count of
    ``nth`` / ``every``. ``matched`` and ``fired`` count, on the broker, the
    events that matched the rule and those it was applied to. Rules compare by
    identity.
    """

    target: str
    effect: Effect
    topic: str | None = None
    when: str = "always"
    n: int | None = None
    conn: int | None = None
    matched: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise FaultRuleError(f"unknown target {self.target!r} (one of {', '.join(TARGETS)})")
        allowed = CONNECT_ACTIONS if self.target == "connect" else REQUEST_ACTIONS
        if self.action not in allowed:
            raise FaultRuleError(f"unknown action {self.action!r} for {self.target} (one of {', '.join(allowed)})")
        if self.topic is not None and self.target == "connect":
            raise FaultRuleError("a connect rule takes no @TOPIC")
        if self.when not in WHENS:
            raise FaultRuleError(f"unknown WHEN {self.when!r} (one of always, once, nth=N, every=N)")
        if self.when in ("nth", "every") and (self.n is None or self.n < 1):
            raise FaultRuleError(f"{self.when}=N needs N >= 1")

    @property
    def action(self) -> str:
        """The action's name (``"error"``, ``"slice"``, ...)."""
        return self.effect.name

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
            raise FaultRuleError(f"expected {GRAMMAR}")
        target, at, topic = fields[0].partition("@")
        target = target.lower()
        if at and not topic:
            raise FaultRuleError("empty @TOPIC")
        if target not in TARGETS:
            raise FaultRuleError(f"unknown target {target!r} (one of {', '.join(TARGETS)})")
        name, has_arg, arg = fields[1].partition("=")
        name = name.lower()
        allowed = CONNECT_ACTIONS if target == "connect" else REQUEST_ACTIONS
        if name not in allowed:
            raise FaultRuleError(f"unknown action {name!r} for {target} (one of {', '.join(allowed)})")
        effect = ACTIONS[name].effect(arg if has_arg else None)
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
                conn = _int(value, "conn=N", 1, MAX_COUNT)
            elif key in ("always", "once") and not has_value:
                when = key
            elif key in ("nth", "every") and has_value:
                when, n = key, _int(value, f"{key}=N", 1, MAX_COUNT)
            else:
                raise FaultRuleError(f"unknown field {f!r} (WHEN is always, once, nth=N or every=N; or conn=N)")
        return cls(target, effect, topic or None, when, n, conn)

    def __str__(self) -> str:
        arg = self.effect.arg_text()
        head = self.target + (f"@{self.topic}" if self.topic else "")
        parts = [head, self.action + ("" if arg is None else f"={arg}")]
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
        return isinstance(self.effect, Refuse) and self.when in ("always", "once")

    @property
    def refuse_seconds(self) -> float:
        """How long a ``connect:refuse`` rule keeps the listener down (0 for other rules)."""
        return self.effect.ms / 1000 if isinstance(self.effect, Refuse) else 0.0


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
