"""The servers the benchmark measures, each its own process: the floor and the mock broker.

The broker runs from its command line with its defaults (spec profile,
validation and storage as always, recording off as by default), except the
idle timeout (off, so that no timer fires during a run) and the per-topic
message limit (raised, so that no timed run fills a topic); neither is on the
per-request path. A server's address is read from the line it prints.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from mega_client.protocol import (
    CreateTopicRequest,
    ErrorCode,
    ErrorResponse,
    ProduceRequest,
    Request,
    ResponseDecoder,
    encode_request,
)

from . import procstat
from .loadgen import HOST, REQUEST_TIMESTAMP

REPO_ROOT = Path(__file__).resolve().parents[1]
_LISTENING = re.compile(r"listening on \S*?:(\d+)")
#: Messages per topic the benchmark's brokers accept (more than any timed run sends).
BENCH_TOPIC_LIMIT = 100_000_000


class Server:
    """A server process: started, ready when it prints its address, stopped with SIGINT."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def floor(cls, log_dir: Path, *, loop: str = "asyncio", consume_payload: int = 100) -> Server:
        argv = [sys.executable, "-m", "bench.floor", "--host", HOST, "--port", "0", "--loop", loop]
        argv += ["--consume-payload", str(consume_payload)]
        return cls(_name("floor", loop), argv, log_dir / f"{_name('floor', loop)}.log")

    @classmethod
    def broker(
        cls,
        log_dir: Path,
        *,
        loop: str = "asyncio",
        name: str = "broker",
        bench_options: bool = True,
        max_messages: int = BENCH_TOPIC_LIMIT,
        cprofile_out: Path | None = None,
    ) -> Server:
        """``python -m mock_broker``; ``bench_options`` turns the idle timeout off and raises the topic limit."""
        argv = [sys.executable]
        if cprofile_out is not None:
            argv += ["-m", "cProfile", "-o", str(cprofile_out)]
        argv += ["-m", "mock_broker", "--host", HOST, "--port", "0", "--log-level", "warning"]
        if loop != "asyncio":
            argv += ["--loop", loop]
        if bench_options:
            argv += ["--idle-timeout", "0", "--max-messages-per-topic", str(max_messages)]
        name = _name(name, loop)
        return cls(name, argv, log_dir / f"{name}.log")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> Server:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=self._log, cwd=REPO_ROOT, env=env, start_new_session=True
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Read the first line of the server's output, which names its port."""
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n") and len(line) < 1000:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} printed no address in {timeout:.0f} s: {self.log_tail()}")
            ch = proc.stdout.read(1)
            if not ch:
                proc.wait(timeout=10)
                raise RuntimeError(f"{self.name} exited ({proc.returncode}): {self.log_tail()}")
            line += ch
        m = _LISTENING.search(line.decode(errors="replace"))
        if m is None:
            raise RuntimeError(f"{self.name} printed no address: {line[:200]!r}")
        self.port = int(m.group(1))

    def log_tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def rss_bytes(self) -> int:
        rss = procstat.rss_bytes(self.pid)
        if rss is None:
            raise RuntimeError("no VmRSS in /proc/PID/status")
        return rss

    def stop(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if self._log is not None:
            self._log.close()
        return proc.returncode


def _name(kind: str, loop: str) -> str:
    return kind if loop == "asyncio" else f"{kind}-{loop}"


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    """Start every server at once, wait until each has printed its address, stop them all at the end."""
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready()
        yield servers
    finally:
        for s in servers:
            s.stop()


# -- set-up traffic, decoded with the codec ---------------------------------------------


def exchange(port: int, requests: list[Request]) -> list[object]:
    """Send ``requests`` pipelined on a new connection; return the decoded answers."""
    decoder = ResponseDecoder()
    for r in requests:
        decoder.expect(r.message_type, r.correlation_id)
    answers: list[object] = []
    with socket.create_connection((HOST, port), timeout=30.0) as sock:
        sock.sendall(b"".join(encode_request(r) for r in requests))
        while len(answers) < len(requests):
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("the server closed the connection during set-up")
            decoder.feed(data)
            while (resp := decoder.next_response()) is not None:
                answers.append(resp)
    return answers


def create_topics(port: int, names: list[str]) -> None:
    """Create every topic (an existing one is fine)."""
    answers = exchange(port, [CreateTopicRequest(i + 1, n, REQUEST_TIMESTAMP) for i, n in enumerate(names)])
    for name, a in zip(names, answers, strict=True):
        if isinstance(a, ErrorResponse) and a.error_code != ErrorCode.TOPIC_ALREADY_EXISTS:
            raise RuntimeError(f"CREATE_TOPIC {name}: error {a.error_code}")


def produce_some(port: int, topic: str, n: int, payload: bytes) -> None:
    """Store ``n`` messages in ``topic``."""
    answers = exchange(port, [ProduceRequest(i + 1, topic, REQUEST_TIMESTAMP, payload) for i in range(n)])
    bad = [a for a in answers if isinstance(a, ErrorResponse)]
    if bad:
        raise RuntimeError(f"PRODUCE to {topic}: {len(bad)} errors, first {bad[0]}")
