"""The driver process: a client under test behind a JSON-lines pipe.

The runner starts the driver once for the whole run (docs/CONFORMANCE.md has
the contract), writes one command per line to its stdin and waits, up to a
deadline, for the reply with the same ``id`` on its stdout. Its stderr is
collected in the background for the report. A driver that misses a deadline
has hung: :meth:`Driver.request` raises :class:`DriverHung` and the runner
kills it (its whole process group) and starts a fresh one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The ops every driver must know.
BASE_OPS = ("connect", "create_topic", "produce", "consume", "close")

_STDERR_KEEP = 256 * 1024


class DriverFault(Exception):
    """The driver itself broke the contract (hung, exited, could not start)."""


class DriverStartError(DriverFault):
    """The driver command could not be started at all."""


class DriverHung(DriverFault):
    """No reply within the command's deadline."""


class DriverGone(DriverFault):
    """The driver exited or closed its stdout."""


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
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._stderr = bytearray()
        self._stderr_total = 0
        self._stderr_lock = threading.Lock()
        self._next_id = 1
        self.log: list[LogLine] = []
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
        self._lines = queue.Queue()
        self._outbox = queue.Queue()
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdin is not None
        threading.Thread(target=self._read_stdout, args=(proc.stdout, self._lines), daemon=True).start()
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
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self.note(f"driver exited with status {proc.returncode}")
            self._proc = None

    # -- pipes ---------------------------------------------------------------

    @staticmethod
    def _read_stdout(stream: Any, lines: queue.Queue[bytes | None]) -> None:
        try:
            for line in iter(stream.readline, b""):
                lines.put(line)
        except (OSError, ValueError):
            pass
        lines.put(None)

    def _read_stderr(self, stream: Any) -> None:
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    return
                with self._stderr_lock:
                    self._stderr += chunk
                    self._stderr_total += len(chunk)
                    if len(self._stderr) > _STDERR_KEEP:
                        del self._stderr[: len(self._stderr) - _STDERR_KEEP]
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

    def stderr_since(self, mark: int, limit: int = 16 * 1024) -> str:
        """The stderr written since ``mark`` (its last ``limit`` bytes)."""
        with self._stderr_lock:
            new = self._stderr_total - mark
            data = bytes(self._stderr[-new:]) if new > 0 else b""
        if len(data) > limit:
            data = b"[...]\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def note(self, text: str) -> None:
        self.log.append(LogLine(time.monotonic(), "!", text))

    # -- commands ------------------------------------------------------------

    def request(self, op: str, fields: Mapping[str, Any], deadline: float) -> Reply:
        """Send ``op`` and wait up to ``deadline`` seconds for its reply."""
        if not self.alive:
            self._reap()
            self.start()
        cid = self._next_id
        self._next_id += 1
        line = json.dumps({"id": cid, "op": op, **fields}, separators=(",", ":"))
        self.log.append(LogLine(time.monotonic(), ">", line))
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
                self._lines.put(None)  # later calls see it too
                raise DriverGone(f"the driver exited (status {status}) while answering {op} (id {cid})")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.log.append(LogLine(time.monotonic(), "<", text))
            try:
                message = json.loads(text)
            except ValueError:
                self.note("not a JSON line: ignored")
                continue
            if not isinstance(message, dict) or message.get("id") != cid:
                self.note("not the reply to the pending command: ignored")
                continue
            return _reply(op, message, time.monotonic() - started)


def _reply(op: str, message: Mapping[str, Any], elapsed: float) -> Reply:
    ok = message.get("ok") is True
    if ok:
        result = message.get("result")
        return Reply(op, True, result if isinstance(result, dict) else {}, None, elapsed)
    err = message.get("error")
    if not isinstance(err, dict):
        return Reply(op, False, {}, DriverError("malformed", None, f"reply has no error object: {message}"), elapsed)
    code = err.get("code")
    return Reply(
        op,
        False,
        {},
        DriverError(
            str(err.get("type", "malformed")),
            None if code is None else str(code),
            str(err.get("message", "")),
        ),
        elapsed,
    )
