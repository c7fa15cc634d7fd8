"""The driver's pipes are read within bounds: line length, lines ahead, JSON depth, log size, reply fields."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading

import pytest

from conformance._driver import (
    ConversationLog,
    Driver,
    DriverBrokeContract,
    _Overlong,
    _read_stdout,
    too_deep,
)
from conformance._limits import (
    DRIVER_LINE_BYTES,
    DRIVER_LINES_AHEAD,
    ERROR_MESSAGE_CHARS,
    ERROR_NAME_CHARS,
    LOG_HEAD_LINES,
    LOG_LINE_CHARS,
    LOG_TAIL_LINES,
)


def test_too_deep_counts_nesting_not_brackets_in_strings() -> None:
    assert too_deep("[" * 5000)
    assert too_deep("[" * 33 + "]" * 33)
    assert not too_deep("[" * 32 + "]" * 32)
    assert not too_deep("[]" * 100_000)  # many brackets, shallow
    assert not too_deep('{"a": "' + "[" * 1000 + '"}')  # inside a string
    assert not too_deep('{"a": "\\"' + "[" * 1000 + '"}')  # an escaped quote does not end the string


def test_the_conversation_log_keeps_its_head_and_tail() -> None:
    log = ConversationLog()
    for i in range(10_000):
        log.append(float(i), "<", f"line {i} " + "x" * 1000)
    lines = list(log)
    assert len(lines) == LOG_HEAD_LINES + 1 + LOG_TAIL_LINES
    assert lines[0].text.startswith("line 0 ")
    dropped = 10_000 - LOG_HEAD_LINES - LOG_TAIL_LINES
    assert lines[LOG_HEAD_LINES].text == f"[{dropped} lines of the conversation not kept]"
    assert lines[-1].text.startswith("line 9999 ")
    assert all(len(line.text) <= LOG_LINE_CHARS + 40 for line in lines)


def _reader_of(chunks: list[bytes]) -> list[bytes | _Overlong | None]:
    """What _read_stdout hands on for a pipe that carries ``chunks``."""
    read_end, write_end = os.pipe()
    lines: queue.Queue[bytes | _Overlong | None] = queue.Queue(DRIVER_LINES_AHEAD)
    reading = threading.Event()
    reading.set()
    thread = threading.Thread(target=_read_stdout, args=(read_end, lines, reading), daemon=True)
    thread.start()

    def feed() -> None:
        for chunk in chunks:
            os.write(write_end, chunk)
        os.close(write_end)

    threading.Thread(target=feed, daemon=True).start()
    out: list[bytes | _Overlong | None] = []
    while not out or out[-1] is not None:
        out.append(lines.get(timeout=30))
    thread.join(10)
    os.close(read_end)
    return out


def test_lines_are_cut_at_newlines_across_reads() -> None:
    assert _reader_of([b"ab", b"c\nde", b"f\n\n", b"tail"]) == [b"abc", b"def", b"", b"tail", None]


def test_a_line_over_the_limit_is_handed_on_as_overlong_and_the_rest_dropped() -> None:
    big = b"x" * (DRIVER_LINE_BYTES + 10)
    out = _reader_of([b"first\n", big[: len(big) // 2], big[len(big) // 2 :] + b"\nafter\n"])
    assert out[0] == b"first"
    assert isinstance(out[1], _Overlong)
    assert out[1].head == b"x" * LOG_LINE_CHARS
    assert out[2:] == [b"after", None]


def test_a_flooding_driver_blocks_on_its_own_writes() -> None:
    """The reader stays a few lines ahead: the writer's pipe fills and its writes block."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    lines: queue.Queue[bytes | _Overlong | None] = queue.Queue(DRIVER_LINES_AHEAD)
    reading = threading.Event()
    reading.set()
    threading.Thread(target=_read_stdout, args=(read_end, lines, reading), daemon=True).start()
    written = 0
    line = b"n" * 1023 + b"\n"
    blocked = 0
    while blocked < 200 and written < 64 * 1024 * 1024:
        try:
            written += os.write(write_end, line)
            blocked = 0
        except BlockingIOError:
            blocked += 1
            threading.Event().wait(0.005)
    assert written < 64 * 1024 * 1024  # the writer was stopped: nobody reads ahead without bound
    assert lines.qsize() == DRIVER_LINES_AHEAD
    reading.clear()
    os.close(write_end)
    os.close(read_end)


REPLIES = r"""
import json, sys
for line in sys.stdin:
    cmd = json.loads(line)
    for bogus in (True, 1.0, str(cmd["id"])):
        print(json.dumps({"id": bogus, "ok": True, "result": {"bogus": True}}), flush=True)
    error = {"type": "t" * 10000, "code": "c" * 10000, "message": "m" * 100000}
    print(json.dumps({"id": cmd["id"], "ok": False, "error": error}), flush=True)
"""


def test_only_the_integer_id_answers_and_error_fields_are_cut() -> None:
    driver = Driver([sys.executable, "-c", REPLIES])
    try:
        reply = driver.request("connect", {}, 30)
    finally:
        driver.stop()
    assert not reply.ok
    assert reply.error is not None
    assert len(reply.error.type) < ERROR_NAME_CHARS + 40
    assert len(reply.error.code or "") < ERROR_NAME_CHARS + 40
    assert len(reply.error.message) < ERROR_MESSAGE_CHARS + 40
    notes = [line.text for line in driver.log if line.direction == "!"]
    assert notes.count("not the reply to the pending command: ignored") == 3


OVERLONG = r"""
import sys
sys.stdin.readline()
sys.stdout.write("y" * (5 * 1024 * 1024) + "\n")
sys.stdout.flush()
sys.stdin.readline()
"""


def test_an_overlong_reply_breaks_the_contract() -> None:
    driver = Driver([sys.executable, "-c", OVERLONG])
    try:
        with pytest.raises(DriverBrokeContract, match="longer than 4 MiB while connect"):
            driver.request("connect", {}, 30)
    finally:
        driver.kill()
    received = [line.text for line in driver.log if line.direction == "<"]
    assert received == ["y" * LOG_LINE_CHARS]
    assert json.dumps([line.text for line in driver.log])  # all of it printable as JSON
