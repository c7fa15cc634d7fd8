"""What the OS says about CPU time and memory: a process's, this process's, the machine's.

Linux ``/proc`` only; every reader returns None where ``/proc`` cannot say.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time of every thread of ``pid`` so far: ``/proc/PID/task/*/schedstat`` (ns), else ``/proc/PID/stat``."""
    try:
        total = 0
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    user_system = process_user_system_seconds(pid)
    return None if user_system is None else sum(user_system)


def process_user_system_seconds(pid: int) -> tuple[float, float] | None:
    """User and kernel CPU time of ``pid`` so far (``/proc/PID/stat``, clock ticks)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = _clock_ticks()
        return int(fields[11]) / tick, int(fields[12]) / tick
    except (OSError, ValueError, IndexError):
        return None


def machine_busy_seconds() -> float | None:
    """CPU-seconds every CPU of the machine spent neither idle nor waiting for I/O (``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            first = f.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
        return (user + nice + system + irq + softirq + steal) / _clock_ticks()
    except (OSError, ValueError, IndexError):
        return None


def loadavg() -> list[float] | None:
    """The 1, 5 and 15-minute load averages."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` now (``VmRSS`` of ``/proc/PID/status``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class Snapshot:
    """The counters a measured window is the difference of."""

    server_cpu: float | None
    server_user_system: tuple[float, float] | None
    self_cpu: float
    machine_busy: float | None

    @classmethod
    def take(cls, server_pid: int | None) -> Snapshot:
        """Read them all now."""
        return cls(
            process_cpu_seconds(server_pid) if server_pid else None,
            process_user_system_seconds(server_pid) if server_pid else None,
            _self_cpu(),
            machine_busy_seconds(),
        )

    def window(self, end: Snapshot) -> dict[str, float | None]:
        """What was spent between this snapshot and ``end``, with the loadgen's JSON keys."""

        def diff(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else b - a

        us0, us1 = self.server_user_system, end.server_user_system
        return {
            "server_cpu_seconds": diff(self.server_cpu, end.server_cpu),
            "server_user_seconds": None if us0 is None or us1 is None else us1[0] - us0[0],
            "server_system_seconds": None if us0 is None or us1 is None else us1[1] - us0[1],
            "self_cpu_seconds": end.self_cpu - self.self_cpu,
            "machine_busy_seconds": diff(self.machine_busy, end.machine_busy),
        }


def _self_cpu() -> float:
    return time.process_time()


def machine_cpus() -> int:
    """CPUs the OS shows."""
    return os.cpu_count() or 1
