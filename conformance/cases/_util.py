"""Small judging helpers shared by the case modules.

Expected values here are written out by hand from docs/PROTOCOL.md (a length
as ``n.to_bytes(4, "big")``, a type byte as ``0x03``); nothing is produced by
the kit's encoders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance._context import ClientContext
from conformance._wire import hexline

#: Milliseconds a client's timestamp may be away from the judge's clock (CLIENT-18).
CLOCK_SLACK_MS = 5_000

#: A payload whose bytes are every value 0..255, NUL and invalid UTF-8 included.
BINARY = bytes(range(256)) * 4

#: Multibyte UTF-8 text: 14 characters, 20 bytes.
UTF8_TEXT = "héllo wörld €✓"


def expect_field(ctx: ClientContext, raw: bytes, start: int, expected: bytes, name: str) -> None:
    """``raw[start:start+len(expected)]`` must be ``expected``."""
    end = start + len(expected)
    got = raw[start:end]
    if len(raw) < end:
        ctx.fail(
            f"{name}: the request ends after {len(raw)} bytes, before bytes {start}..{end - 1} "
            f"(received: {hexline(raw)})"
        )
    if got != expected:
        ctx.fail(f"{name} (bytes {start}..{end - 1}) is {hexline(got)}, expected {hexline(expected)}")


def expect_length(ctx: ClientContext, raw: bytes, expected: int, what: str, hint: str = "") -> None:
    if len(raw) != expected:
        more = f"; {hint}" if hint else ""
        ctx.fail(f"{what} is {len(raw)} bytes, expected {expected}{more} (received: {hexline(raw, 48)})")


def expect_ms_timestamp(ctx: ClientContext, value: int, before_ms: int, after_ms: int, what: str) -> None:
    """``value`` must be the wall clock in milliseconds, within :data:`CLOCK_SLACK_MS`."""
    low, high = before_ms - CLOCK_SLACK_MS, after_ms + CLOCK_SLACK_MS
    if not low <= value <= high:
        hint = ""
        unit = wrong_timestamp_unit(value, before_ms)
        if unit is not None:
            hint = f" (that is the time in {unit}, not milliseconds)"
        elif value and low <= int.from_bytes(value.to_bytes(8, "big", signed=True), "little", signed=True) <= high:
            hint = " (that is the time in milliseconds, little-endian)"
        ctx.fail(f"{what} timestamp is {value}, expected milliseconds since the epoch near {before_ms}{hint}")


#: A day, in milliseconds: how close to the wall clock a timestamp in the wrong unit comes.
DAY_MS = 86_400_000

#: Clock units a timestamp is sometimes sent in by mistake, and how many of each make a millisecond.
WRONG_UNITS = (("seconds", 1 / 1000), ("microseconds", 1000), ("nanoseconds", 1_000_000))


def wrong_timestamp_unit(value: int, now_ms: int) -> str | None:
    """The unit ``value`` is the wall clock in (within a day), when that unit is not milliseconds (SEM-7)."""
    for unit, per_ms in WRONG_UNITS:
        if abs(value - now_ms * per_ms) <= DAY_MS * per_ms:
            return unit
    return None


def check_echo(ctx: ClientContext, result: Mapping[str, Any], name: str, what: str) -> None:
    """The topic create_topic reported is the name it asked for. A difference is the client misdecoding the
    broker's echo (RESP-4, CLIENT-16), whatever the case is about: the broker echoes the name it received."""
    echo = result.get("topic")
    if echo != name:
        ctx.fail(
            f"{what} reported the topic {echo!r}, but the broker echoed {name!r}: the CREATE_TOPIC success answer "
            "was misdecoded (RESP-4: a u16 length, then the name; CLIENT-16)"
        )


def wait_closed(ctx: ClientContext, conn: int = -1, timeout: float = 1.0) -> bool:
    """Whether the broker saw connection ``conn`` end within ``timeout`` seconds."""
    return ctx.wait_for(lambda: bool(ctx.records()) and bool(ctx.records()[conn].closed), timeout)
