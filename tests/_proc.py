"""The kit's commands as subprocesses, for the tests: the environment, and waits that always end.

Every wait here has a deadline: a child that stops talking is killed and the
test fails with what it said, instead of hanging the run.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The checkout the tests run from.
ROOT = Path(__file__).resolve().parents[1]


def kit_env() -> dict[str, str]:
    """This process's environment with the checkout first on PYTHONPATH (and no coverage hook)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("COVERAGE_PROCESS_START", None)
    return env


def run_module(module: str, *args: str, timeout: float = 120, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` in ``cwd`` (the checkout), to its end (TimeoutExpired after ``timeout`` s)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=kit_env(),
        cwd=cwd,
        check=False,
    )


def start_module(module: str, *args: str, stderr: Path | None = None) -> subprocess.Popen[str]:
    """``python -m MODULE ARGS`` from the checkout, running, with every standard stream a pipe.

    ``stderr``: a file for the child's stderr instead of a pipe, for a child that may log more
    than a pipe holds before anyone reads it (it would block on its next log line).
    """
    with contextlib.ExitStack() as files:
        err = files.enter_context(stderr.open("w")) if stderr is not None else subprocess.PIPE
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=kit_env(),
            cwd=ROOT,
        )


class LineReader:
    """The lines a child writes to its stdout, each waited for with a deadline.

    It reads the pipe itself (``select`` and ``os.read``), so it never blocks past the
    deadline; do not mix it with reads of ``proc.stdout``.
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self._fd = proc.stdout.fileno()
        self._buf = b""

    def readline(self, timeout: float = 10.0) -> str:
        """The next line (with its newline; "" at EOF). On timeout the child is killed and the test fails."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            ready = select.select([self._fd], [], [], max(remaining, 0))[0] if remaining > 0 else []
            if not ready:
                _, err = kill(self.proc)
                raise AssertionError(f"no line from the child within {timeout} s; got {self._buf!r}; stderr: {err}")
            chunk = os.read(self._fd, 65536)
            if not chunk:
                line, self._buf = self._buf, b""
                return line.decode("utf-8", "replace")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace") + "\n"


def kill(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Kill ``proc`` and collect what it wrote (stdout, stderr)."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    out, err = proc.communicate(timeout=10)
    return out or "", err or ""


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, str, str]:
    """Send ``sig`` and wait for the exit (killing it after ``timeout`` s): exit status, stdout, stderr."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = kill(proc)
        raise AssertionError(f"still running {timeout} s after signal {sig}; stderr: {err}") from None
    return proc.returncode, out or "", err or ""


def start_server(
    module: str, *args: str, timeout: float = 10.0, stderr: Path | None = None, traced: bool = False
) -> tuple[subprocess.Popen[str], str, int]:
    """``python -m MODULE --port 0 ARGS`` (the mock broker, the bench's floor), once its first line says
    where it listens: (process, host, port).

    ``traced``: run it under ``tests._traced`` (tracemalloc on; SIGUSR1 prints the bytes it holds).
    """
    launcher = ("tests._traced", module) if traced else (module,)
    proc = start_module(*launcher, "--port", "0", *args, stderr=stderr)
    line = LineReader(proc).readline(timeout)
    m = re.search(r"listening on ([\d.]+):(\d+)", line)
    if m is None:
        _, err = kill(proc)
        raise AssertionError(f"no 'listening on' line from {module}: {line!r}; stderr: {err}")
    return proc, m.group(1), int(m.group(2))


def start_mock_broker(
    *args: str, timeout: float = 10.0, stderr: Path | None = None
) -> tuple[subprocess.Popen[str], str, int]:
    """``python -m mock_broker --port 0 ARGS``, once it says where it listens: (process, host, port)."""
    return start_server("mock_broker", *args, timeout=timeout, stderr=stderr)


@dataclass(frozen=True)
class Measured:
    """A finished child: its exit status, what it wrote, and its peak resident memory in bytes."""

    returncode: int
    stdout: str
    stderr: str
    peak_rss: int


# Runs the command given after its first argument, waits for it with wait4 and writes its peak
# RSS (KiB) to the file named by its first argument; exits with the command's status.
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(module: str, *args: str, timeout: float = 180) -> Measured:
    """``python -m MODULE ARGS`` from the checkout, to its end, with its peak RSS (``wait4``'s ``ru_maxrss``).

    Linux starts a new process's peak at the peak of the memory it was forked from, and a pytest
    worker can hold a few hundred MB: so a small launcher starts the command and measures it. The
    peak is the command's own, or that of a process it started and waited for, whichever is
    larger (the kernel reports the largest): keep such grandchildren small when measuring.
    On timeout everything is killed and the test fails.
    """
    with tempfile.TemporaryDirectory() as folder:
        rss_file = Path(folder) / "rss"
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(rss_file), sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=kit_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"python -m {module} {' '.join(args)} did not end within {timeout} s") from None
        peak = int(rss_file.read_text()) * 1024
    return Measured(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), peak)
