"""The driver process: a client under test behind a JSON-lines pipe.

The runner starts the driver once for the whole run (docs/CONFORMANCE.md has
the contract), writes one command per line to its stdin and waits, up to a
deadline, for the reply with the same ``id`` on its stdout. Its stderr is
collected in the background for the report. A driver that misses a deadline
has hung: :meth:`Driver.request` raises :class:`DriverHung` and the runner
kills it (its whole process group) and starts a fresh one.

Everything the driver writes is bounded (:mod:`conformance._limits`): stdout is
read in lines of at most ``DRIVER_LINE_BYTES`` (a longer line raises
:class:`DriverBrokeContract`), only a few lines ahead of the runner; a line nested
deeper than ``JSON_DEPTH`` is not parsed; the fields of an error reply, each line
of the conversation kept for the report, the number of such lines and the stderr
kept are all cut to size when they are read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

from ._limits import (
    DRIVER_LINE_BYTES,
    DRIVER_LINES_AHEAD,
    ERROR_MESSAGE_CHARS,
    ERROR_NAME_CHARS,
    JSON_DEPTH,
    LOG_HEAD_LINES,
    LOG_LINE_CHARS,
    LOG_TAIL_LINES,
    STDERR_CASE_BYTES,
    STDERR_KEEP_BYTES,
)
from ._text import bounded, decode

#: The ops every driver must know.
BASE_OPS = ("connect", "create_topic", "produce", "consume", "close")


class DriverFault(Exception):
    """The driver itself broke the contract (hung, exited, could not start)."""


class DriverStartError(DriverFault):
    """The driver command could not be started at all."""


class DriverHung(DriverFault):
    """No reply within the command's deadline."""


class DriverGone(DriverFault):
    """The driver exited or closed its stdout."""


class DriverBrokeContract(DriverFault):
    """The driver wrote something the contract rules out (a stdout line over ``DRIVER_LINE_BYTES``)."""


@dataclass(frozen=True)
class DriverError:
    """The ``error`` object of a failed reply."""

    type: str
    code: str | None = None
    message: str = ""

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        msg = f": {self.message}" if self.message else ""
        return f"{self.type}{code}{msg}"


@dataclass(frozen=True)
class Reply:
    """One reply of the driver, with how long it took to come."""

    op: str
    ok: bool
    result: Mapping[str, Any] = field(default_factory=dict)
    error: DriverError | None = None
    elapsed: float = 0.0

    def describe(self) -> str:
        if self.ok:
            return f"ok {json.dumps(dict(self.result), sort_keys=True)[:200]}"
        return f"error {self.error}"


@dataclass
class LogLine:
    """A line of the driver conversation, for the report: ``>`` sent, ``<`` received, ``!`` note."""

    at: float
    direction: str
    text: str


class ConversationLog:
    """The driver conversation of one case, bounded: its first lines and its last lines.

    Each line is cut to ``LOG_LINE_CHARS`` when it is added; past ``LOG_HEAD_LINES`` lines
    only the last ``LOG_TAIL_LINES`` are kept, and a note says how many were dropped between.
    """

    def __init__(self) -> None:
        self._head: list[LogLine] = []
        self._tail: deque[LogLine] = deque(maxlen=LOG_TAIL_LINES)
        self._dropped = 0

    def append(self, at: float, direction: str, text: str) -> None:
        line = LogLine(at, direction, bounded(text, LOG_LINE_CHARS))
        if len(self._head) < LOG_HEAD_LINES:
            self._head.append(line)
            return
        if len(self._tail) == self._tail.maxlen:
            self._dropped += 1
        self._tail.append(line)

    def clear(self) -> None:
        self._head.clear()
        self._tail.clear()
        self._dropped = 0

    def __len__(self) -> int:
        return len(self._head) + len(self._tail) + (1 if self._dropped else 0)

    def __iter__(self) -> Iterator[LogLine]:
        yield from self._head
        if self._dropped:
            yield LogLine(self._tail[0].at, "!", f"[{self._dropped} lines of the conversation not kept]")
        yield from self._tail


@dataclass(frozen=True)
class _Overlong:
    """Stands for a stdout line longer than ``DRIVER_LINE_BYTES``: its first bytes, for the log."""

    head: bytes


_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def too_deep(text: str, limit: int = JSON_DEPTH) -> bool:
    """Whether the JSON text ``text`` nests arrays and objects more than ``limit`` deep.

    Checked before ``json.loads``, whose recursion a line of 5,000 ``[`` would exhaust.
    Brackets inside strings do not count; the scan is linear and never recursive.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def default_driver_command() -> list[str]:
    """The bundled driver for mega_client, run by this interpreter."""
    return [sys.executable, "-m", "mega_client.conformance_driver"]


def _kit_root() -> str | None:
    spec = importlib.util.find_spec("conformance")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


def parse_command(command: str | Sequence[str] | None) -> list[str]:
    """The argv of a ``--driver`` value (a shell-style command line); ``None`` is the default driver."""
    if command is None:
        return default_driver_command()
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ValueError("the driver command is empty")
    return argv


class Driver:
    """One driver process at a time, restartable."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        stop_grace: float = 1.0,
    ) -> None:
        self.argv = list(argv)
        self._env = dict(os.environ if env is None else env)
        root = _kit_root()
        if root is not None:
            # So that the default driver (and drivers importing this kit) work from any directory.
            parts = [p for p in self._env.get("PYTHONPATH", "").split(os.pathsep) if p]
            if root not in parts:
                self._env["PYTHONPATH"] = os.pathsep.join([*parts, root])
        self._cwd = cwd
        self._stop_grace = stop_grace
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | _Overlong | None] = queue.Queue(DRIVER_LINES_AHEAD)
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._reading = threading.Event()
        self._stderr = bytearray()
        self._stderr_total = 0
        self._stderr_lock = threading.Lock()
        self._next_id = 1
        self.log = ConversationLog()
        self.starts = 0

    # -- process management -------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the driver process (a no-op when it is running)."""
        if self.alive:
            return
        self._reap()
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise DriverStartError(f"cannot start driver {shlex.join(self.argv)}: {exc.strerror or exc}") from exc
        self._proc = proc
        self.starts += 1
        self._lines = queue.Queue(DRIVER_LINES_AHEAD)
        self._outbox = queue.Queue()
        self._reading = threading.Event()
        self._reading.set()
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdin is not None
        threading.Thread(
            target=_read_stdout, args=(proc.stdout.fileno(), self._lines, self._reading), daemon=True
        ).start()
        threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True).start()
        threading.Thread(target=self._write_stdin, args=(proc.stdin, self._outbox), daemon=True).start()
        self.note(f"driver started: {shlex.join(self.argv)} (pid {proc.pid})")

    def stop(self) -> None:
        """Close the driver's stdin and let it exit; kill it if it does not."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._outbox.put(None)
            try:
                proc.wait(self._stop_grace)
            except subprocess.TimeoutExpired:
                self._kill(proc)
        self._reap()

    def kill(self) -> None:
        """Kill the driver at once (after a hang)."""
        proc = self._proc
        if proc is not None:
            self._kill(proc)
        self._reap()

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is not None:
            self._reading.clear()  # a reader blocked on a full queue gives up
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self.note(f"driver exited with status {proc.returncode}")
            self._proc = None

    # -- pipes ---------------------------------------------------------------

    def _read_stderr(self, stream: Any) -> None:
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    return
                with self._stderr_lock:
                    self._stderr += chunk
                    self._stderr_total += len(chunk)
                    if len(self._stderr) > STDERR_KEEP_BYTES:
                        del self._stderr[: len(self._stderr) - STDERR_KEEP_BYTES]
        except (OSError, ValueError):
            return

    @staticmethod
    def _write_stdin(stream: Any, outbox: queue.Queue[bytes | None]) -> None:
        try:
            while True:
                data = outbox.get()
                if data is None:
                    stream.close()
                    return
                stream.write(data)
                stream.flush()
        except (OSError, ValueError):
            return

    def stderr_mark(self) -> int:
        """A position in the driver's stderr, for :meth:`stderr_since`."""
        with self._stderr_lock:
            return self._stderr_total

    def stderr_since(self, mark: int, limit: int = STDERR_CASE_BYTES) -> str:
        """The stderr written since ``mark`` (its last ``limit`` bytes)."""
        with self._stderr_lock:
            new = self._stderr_total - mark
            data = bytes(self._stderr[-min(new, limit) :]) if new > 0 else b""
        text = data.decode("utf-8", "replace")
        return f"[{new - len(data)} earlier bytes not kept]\n{text}" if new > len(data) else text

    def note(self, text: str) -> None:
        self.log.append(time.monotonic(), "!", text)

    # -- commands ------------------------------------------------------------

    def request(self, op: str, fields: Mapping[str, Any], deadline: float) -> Reply:
        """Send ``op`` and wait up to ``deadline`` seconds for its reply."""
        if not self.alive:
            self._reap()
            self.start()
        cid = self._next_id
        self._next_id += 1
        line = json.dumps({"id": cid, "op": op, **fields}, separators=(",", ":"))
        self.log.append(time.monotonic(), ">", line)
        started = time.monotonic()
        self._outbox.put(line.encode() + b"\n")
        end = started + deadline
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                self.note(f"no reply to id {cid} within {deadline:.1f} s: driver hung")
                raise DriverHung(f"the driver did not answer {op} (id {cid}) within {deadline:.1f} s")
            try:
                raw = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if raw is None:
                proc = self._proc
                status = proc.poll() if proc is not None else None
                if status is None and proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        status = proc.wait(1)
                self.note(f"driver closed its stdout (exit status {status})")
                with contextlib.suppress(queue.Full):
                    self._lines.put_nowait(None)  # later calls see it too
                raise DriverGone(f"the driver exited (status {status}) while answering {op} (id {cid})")
            if isinstance(raw, _Overlong):
                self.log.append(time.monotonic(), "<", decode(raw.head, LOG_LINE_CHARS))
                limit = f"{DRIVER_LINE_BYTES // (1024 * 1024)} MiB"
                self.note(f"a line longer than {limit}, the contract's limit")
                raise DriverBrokeContract(
                    f"the driver wrote a stdout line longer than {limit} while {op} (id {cid}) was pending"
                )
            text = raw.decode("utf-8", "replace").rstrip("\r")
            self.log.append(time.monotonic(), "<", text)
            message = _parse(text)
            if isinstance(message, str):
                self.note(f"{message}: ignored")
                continue
            if not _is_id(message.get("id"), cid):
                self.note("not the reply to the pending command: ignored")
                continue
            return _reply(op, message, time.monotonic() - started)


def _read_stdout(fd: int, lines: queue.Queue[bytes | _Overlong | None], reading: threading.Event) -> None:
    """Hand the driver's stdout on as lines (:class:`_LineCutter`), a few ahead of the runner.

    The queue is bounded, so a driver that floods its stdout blocks on its own writes instead
    of filling the runner's memory. ``None`` marks the end of the stream.
    """

    def put(item: bytes | _Overlong | None) -> bool:
        while reading.is_set():
            try:
                lines.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    cutter = _LineCutter()
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            for item in cutter.feed(chunk):
                if not put(item):
                    return
    except (OSError, ValueError):
        pass
    last = cutter.unterminated()
    if last is not None and not put(last):
        return
    put(None)


class _LineCutter:
    """Cuts a byte stream into lines (without their newline) of at most ``DRIVER_LINE_BYTES``.

    A longer line is handed on as an :class:`_Overlong` as soon as it passes the limit; the
    rest of it is read and dropped, so a line costs no more memory than the limit.
    """

    def __init__(self) -> None:
        self._line = bytearray()
        self._dropping = False  # inside an over-long line, up to its newline

    def feed(self, chunk: bytes) -> Iterator[bytes | _Overlong]:
        """The lines (and over-long lines) that ``chunk`` completes, in order."""
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = memoryview(chunk)[start : len(chunk) if end < 0 else end]
            if not self._dropping:
                overlong = self._extend(piece)
                if overlong is not None:
                    yield overlong
            if end < 0:
                return
            if self._dropping:
                self._dropping = False
            else:
                yield bytes(self._line)
                self._line.clear()
            start = end + 1

    def _extend(self, piece: memoryview) -> _Overlong | None:
        """Add ``piece`` to the current line, or, when that would pass the limit, start dropping it."""
        if len(self._line) + len(piece) <= DRIVER_LINE_BYTES:
            self._line += piece
            return None
        head = bytes(self._line[:LOG_LINE_CHARS]) + bytes(piece[: max(0, LOG_LINE_CHARS - len(self._line))])
        self._line.clear()
        self._dropping = True
        return _Overlong(head)

    def unterminated(self) -> bytes | None:
        """The last line, when the stream ended without its newline (not when it was over-long)."""
        return bytes(self._line) if self._line and not self._dropping else None


def _parse(text: str) -> dict[str, Any] | str:
    """A reply line as a JSON object, or why it is not one."""
    if not text.lstrip().startswith("{"):
        return "not a JSON object"
    if too_deep(text):
        return f"JSON nested more than {JSON_DEPTH} deep: not parsed"
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return "not a JSON line"
    if not isinstance(message, dict):
        return "not a JSON object"
    return message


def _is_id(value: object, cid: int) -> bool:
    """``value`` is the integer ``cid`` (not ``true``, not ``1.0``)."""
    return type(value) is int and value == cid


def reply_from(op: str, message: Mapping[str, Any], elapsed: float) -> Reply:
    """The :class:`Reply` a reply object (or an entry of a pipeline's ``results``) stands for."""
    return _reply(op, message, elapsed)


def _reply(op: str, message: Mapping[str, Any], elapsed: float) -> Reply:
    ok = message.get("ok") is True
    if ok:
        result = message.get("result")
        return Reply(op, True, result if isinstance(result, dict) else {}, None, elapsed)
    err = message.get("error")
    if not isinstance(err, dict):
        text = bounded(str(message), ERROR_MESSAGE_CHARS)
        return Reply(op, False, {}, DriverError("malformed", None, f"reply has no error object: {text}"), elapsed)
    code = err.get("code")
    return Reply(
        op,
        False,
        {},
        DriverError(
            bounded(str(err.get("type", "malformed")), ERROR_NAME_CHARS),
            None if code is None else bounded(str(code), ERROR_NAME_CHARS),
            bounded(str(err.get("message", "")), ERROR_MESSAGE_CHARS),
        ),
        elapsed,
    )
