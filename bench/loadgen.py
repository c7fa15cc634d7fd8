"""The benchmark's load generator: ``bench/loadgen.c``, built with the C compiler, else ``bench.pyload``.

The requests are built here, with the codec (``encode_request``), into a ring
file; the generator only sends slices of it and checks that every answer
echoes its request's correlation id and carries the success byte. The C
program is compiled once per source and compiler into a cache folder
(``$XDG_CACHE_HOME/mega-testkit``, else ``~/.cache/mega-testkit``, else a
temporary folder), never into the source tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mega_client.protocol import ConsumeRequest, ProduceRequest, encode_request, layouts

HOST = "127.0.0.1"
SOURCE = Path(__file__).with_name("loadgen.c")
#: Requests in one prebuilt ring (also how many distinct offsets a CONSUME ring reads).
RING_REQUESTS = 1024
#: Size of a successful PRODUCE answer.
PRODUCE_ANSWER_BYTES = layouts.PRODUCE_OK.size
#: Size of a successful CONSUME answer, without its payload.
CONSUME_ANSWER_FIXED_BYTES = layouts.CONSUME_OK_HEAD.size
#: A fixed request timestamp (2023-11-14T22:13:20Z): the broker stores what it is sent.
REQUEST_TIMESTAMP = 1_700_000_000_000


def payload_of(size: int) -> bytes:
    """The benchmark's payload of ``size`` bytes."""
    return bytes(i % 251 for i in range(size))


def produce_ring(topic: str, payload_bytes: int, n: int = RING_REQUESTS) -> bytes:
    """``n`` PRODUCE requests of ``payload_bytes`` bytes each, correlation ids 0..n-1, back to back."""
    payload = payload_of(payload_bytes)
    return b"".join(encode_request(ProduceRequest(i, topic, REQUEST_TIMESTAMP, payload)) for i in range(n))


def consume_ring(topic: str, first_offset: int, n: int = RING_REQUESTS) -> bytes:
    """``n`` CONSUME requests for offsets ``first_offset .. first_offset + n - 1``."""
    return b"".join(encode_request(ConsumeRequest(i, topic, REQUEST_TIMESTAMP, first_offset + i)) for i in range(n))


@dataclass(frozen=True)
class Ring:
    """A ring of equal-length requests in a file, and the size of each one's success answer."""

    path: Path
    request_bytes: int
    response_bytes: int

    @classmethod
    def write(cls, folder: Path, name: str, data: bytes, response_bytes: int, n: int = RING_REQUESTS) -> Ring:
        size, rem = divmod(len(data), n)
        if rem:
            raise ValueError("the ring's requests are not all the same length")
        path = folder / f"{name}.ring"
        path.write_bytes(data)
        return cls(path, size, response_bytes)


@dataclass(frozen=True)
class Job:
    """One run: ``conns`` connections keep ``depth`` requests in flight for ``warmup + duration`` seconds
    (the answers of the last ``duration`` counted), or each sends ``count`` requests."""

    port: int
    ring: Ring
    conns: int = 1
    depth: int = 64
    warmup: float = 0.3
    duration: float = 1.0
    count: int | None = None
    server_pid: int | None = None
    spin: bool = False
    host: str = HOST

    def argv(self) -> list[str]:
        a = [
            "--host", self.host, "--port", str(self.port), "--ring", str(self.ring.path),
            "--request-bytes", str(self.ring.request_bytes), "--response-bytes", str(self.ring.response_bytes),
            "--conns", str(self.conns), "--depth", str(self.depth),
            "--warmup", repr(self.warmup), "--duration", repr(self.duration),
            "--echo-bytes", str(layouts.CORRELATION_ID.size), "--success-at", str(layouts.SUCCESS_AT),
            "--success-value", "1",
        ]  # fmt: skip
        if self.count is not None:
            a += ["--count", str(self.count)]
        if self.server_pid is not None:
            a += ["--server-pid", str(self.server_pid)]
        if self.spin:
            a.append("--spin")
        return a


@dataclass(frozen=True)
class Sample:
    """What one run measured, over its window (for a ``count`` run: the whole run)."""

    generator: str
    requests: int
    seconds: float
    all_requests: int
    reads: int | None
    server_cpu_seconds: float | None
    server_user_seconds: float | None
    server_system_seconds: float | None
    self_cpu_seconds: float
    machine_busy_seconds: float | None
    machine_cpus: int
    loadavg1: float | None

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Sample:
        la = d.get("loadavg")
        return cls(
            generator=str(d.get("loadgen", "?")),
            requests=int(d["requests"]),
            seconds=float(d["seconds"]),
            all_requests=int(d["all_requests"]),
            reads=None if d.get("reads") is None else int(d["reads"]),
            server_cpu_seconds=d.get("server_cpu_seconds"),
            server_user_seconds=d.get("server_user_seconds"),
            server_system_seconds=d.get("server_system_seconds"),
            self_cpu_seconds=float(d["self_cpu_seconds"]),
            machine_busy_seconds=d.get("machine_busy_seconds"),
            machine_cpus=int(d.get("machine_cpus") or os.cpu_count() or 1),
            loadavg1=float(la[0]) if la and la[0] is not None and la[0] >= 0 else None,
        )

    @property
    def rate(self) -> float:
        """Answers per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float | None:
        """The server's CPU time per answer, µs (every thread, user + kernel)."""
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds / self.requests * 1e6

    @property
    def busy(self) -> float | None:
        """The server's CPU time over the window's length: 1.0 is one CPU kept busy the whole time."""
        if self.server_cpu_seconds is None or self.seconds <= 0:
            return None
        return self.server_cpu_seconds / self.seconds

    @property
    def others_cores(self) -> float | None:
        """CPUs' worth of work by every other process of the machine during the window (neither the server
        nor the load generator): the noise this figure was taken in."""
        if self.machine_busy_seconds is None or self.seconds <= 0:
            return None
        mine = (self.server_cpu_seconds or 0.0) + self.self_cpu_seconds
        return max(0.0, (self.machine_busy_seconds - mine) / self.seconds)

    @property
    def answers_per_read(self) -> float | None:
        """Answers the generator got per read: the server's batch (one write per read) as the client sees it."""
        return self.requests / self.reads if self.reads else None

    @property
    def system_share(self) -> float | None:
        """The kernel's share of the server's CPU time."""
        u, s = self.server_user_seconds, self.server_system_seconds
        return s / (u + s) if u is not None and s is not None and u + s > 0 else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("rate", "cpu_us", "busy", "others_cores", "answers_per_read", "system_share"):
            d[name] = getattr(self, name)
        return d


class LoadError(RuntimeError):
    """The load generator failed (its message says why)."""


def _cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "mega-testkit"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except OSError:
        return Path(tempfile.mkdtemp(prefix="mega-loadgen-"))


def build(cc: str | None = None) -> tuple[Path | None, str]:
    """Compile bench/loadgen.c (once per source and compiler); (the binary or None, a note saying what happened)."""
    cc = cc or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc or not shutil.which(cc):
        return None, "no C compiler (cc, gcc or $CC) on PATH: using the Python load generator (bench/pyload.py)"
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{cc} does not run ({exc}): using the Python load generator"
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + cc.encode() + version.encode()).hexdigest()[:16]
    folder = _cache_folder()
    binary = folder / f"loadgen-{digest}"
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary, f"bench/loadgen.c built with {cc} -O2 (cached: {binary})"
    tmp = folder / f".loadgen-{digest}.{os.getpid()}"
    proc = subprocess.run(
        [cc, "-O2", "-o", str(tmp), str(SOURCE)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        with contextlib.suppress(OSError):
            tmp.unlink()
        why = " ".join(proc.stderr.split())[:300]
        return None, f"{cc} could not build bench/loadgen.c ({why}): using the Python load generator"
    os.replace(tmp, binary)  # atomic: two runs building at once both end with a whole binary
    return binary, f"bench/loadgen.c built with {cc} -O2 into {binary}"


class LoadGenerator:
    """Runs jobs with the C program, or with ``python -m bench.pyload``."""

    def __init__(self, kind: str, argv: list[str], note: str) -> None:
        self.kind = kind
        self.argv = argv
        self.note = note

    @classmethod
    def choose(cls, prefer: str = "auto") -> LoadGenerator:
        """``auto``: C when it builds, else Python; ``c``: C or an error; ``python``: Python."""
        if prefer != "python":
            binary, note = build()
            if binary is not None:
                return cls("c", [str(binary)], note)
            if prefer == "c":
                raise LoadError(note)
        else:
            note = "the Python load generator (--loadgen python)"
        return cls("python", [sys.executable, "-m", "bench.pyload"], note)

    def run(self, job: Job) -> Sample:
        """Run ``job`` to its end; its figures."""
        limit = job.warmup + job.duration + 120 if job.count is None else 600 + job.count * job.conns / 10_000
        return run_json([*self.argv, *job.argv()], limit, f"load generator ({self.kind})")


def run_json(argv: list[str], timeout: float, what: str) -> Sample:
    """Run a program that prints a run's figures as one JSON line (the load generators, bench.clients)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        raise LoadError(f"{what} did not finish in {time.monotonic() - t0:.0f} s") from None
    line = proc.stdout.strip().splitlines()[-1:] or [""]
    try:
        d = json.loads(line[0])
    except ValueError:
        d = {"error": f"exit status {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-500:]!r}"}
    if not isinstance(d, dict) or "error" in d or proc.returncode != 0:
        why = d.get("error") if isinstance(d, dict) else d
        raise LoadError(f"{what}: {why}")
    return Sample.from_json(d)
