"""The benchmark's scenarios and the run that measures them all, side by side.

Every server runs as its own process (``python -m bench.floor``,
``python -m mock_broker``), the load in worker processes (:mod:`bench.load`),
so no two of them share a GIL. Figures that are compared (the broker and the
floor, offset 0 and a deep offset, the client and the raw loop) are measured
in the same run, interleaved, ``reps`` times each; the median is kept. Each
timed run also records the server's CPU time per request, read from
``/proc``, which the noise of a shared machine disturbs far less than rates.
"""

from __future__ import annotations

import contextlib
import os
import platform
import pstats
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mega_client.protocol import (
    CreateTopicRequest,
    ErrorCode,
    ErrorResponse,
    ProduceRequest,
    Request,
    ResponseDecoder,
    encode_request,
)

from . import clients
from .load import (
    CONSUME_RESPONSE_FIXED_BYTES,
    PRODUCE_RESPONSE_BYTES,
    RING_REQUESTS,
    LoadPool,
    LoadResult,
    bench_timestamp,
    consume_ring,
    default_processes,
    produce_ring,
    request_size,
)

REPO_ROOT = Path(__file__).resolve().parents[1]

#: megaload's arguments: mode, connections, depth, requests per connection, topic, offset base.
MegaloadCell = tuple[str, int, int, int, str, int]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Sizes:
    """How long and how big: ``QUICK`` for the tests, ``DEFAULT`` for the figures."""

    warmup: float
    duration: float
    reps: int
    fill_messages: int
    deep_offset: int
    client_duration: float
    megaload_seconds: float
    megaload_cells: str  # "all" or "pipelined-produce"
    profile_seconds: float
    payload: int = 100
    async_concurrency: int = 64


DEFAULT = Sizes(
    warmup=0.3,
    duration=1.5,
    reps=2,
    fill_messages=1_000_000,
    deep_offset=990_000,
    client_duration=1.5,
    megaload_seconds=1.2,
    megaload_cells="all",
    profile_seconds=3.0,
)
QUICK = Sizes(
    warmup=0.05,
    duration=0.2,
    reps=1,
    fill_messages=20_000,
    deep_offset=18_000,
    client_duration=0.2,
    megaload_seconds=0.2,
    megaload_cells="pipelined-produce",
    profile_seconds=0.5,
)

OPS = ("produce", "consume")
CONNS = (1, 8)
DEPTHS = (1, 64)

#: The issue's targets: (key, label, comparison, target).
TARGETS = (
    ("produce_pipelined_ratio_1", "pipelined PRODUCE, 1 conn: broker / floor", ">=", 0.6),
    ("produce_pipelined_ratio_8", "pipelined PRODUCE, 8 conns: broker / floor", ">=", 0.6),
    ("consume_deep_cost_ratio", "CONSUME cost at the deep offset / at offset 0", "<=", 1.2),
    ("overhead_bytes_per_message", "memory overhead per stored message (bytes)", "<=", 200.0),
    ("sync_client_slowdown", "raw-socket loop / sync client (round trips/s)", "<=", 1.5),
)


# -- servers as processes -------------------------------------------------------------


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


class Server:
    """A server process: started, polled until it accepts, stopped with SIGINT."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def floor(cls, log_dir: Path, consume_payload: int) -> Server:
        port = free_port()
        argv = [sys.executable, "-m", "bench.floor", "--host", HOST, "--port", str(port)]
        argv += ["--consume-payload", str(consume_payload)]
        return cls("floor", argv, port, log_dir / "floor.log")

    @classmethod
    def broker(
        cls, log_dir: Path, name: str = "broker", max_messages: int = 100_000_000, cprofile_out: Path | None = None
    ) -> Server:
        """The mock broker; ``max_messages`` per topic is raised so that no timed run can fill a topic."""
        port = free_port()
        argv = [sys.executable]
        if cprofile_out is not None:
            argv += ["-m", "cProfile", "-o", str(cprofile_out)]
        argv += ["-m", "mock_broker", "--host", HOST, "--port", str(port), "--idle-timeout", "0"]
        argv += ["--log-level", "warning", "--max-messages-per-topic", str(max_messages)]
        return cls(name, argv, port, log_dir / f"{name}.log")

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> Server:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self._proc.returncode}): {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} is not listening after {timeout:.0f} s: {self.log_tail()}"
                    ) from None
                time.sleep(0.02)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def rss_bytes(self) -> int:
        """Resident memory now (VmRSS of /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc/PID/status")

    def cpu_seconds(self) -> float:
        """CPU time used so far, every thread: /proc/PID/task/*/schedstat (ns), else /proc/PID/stat (ticks)."""
        total = 0
        try:
            for task in Path(f"/proc/{self.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
            return total / 1e9
        except (OSError, ValueError, IndexError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _clock_ticks()

    def user_system_seconds(self) -> tuple[float, float]:
        """User and kernel CPU time so far (/proc/PID/stat, clock ticks)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        tick = _clock_ticks()
        return int(fields[11]) / tick, int(fields[12]) / tick

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
        return proc.returncode


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[tuple[Server, ...]]:
    """Start every server, wait until all accept, stop them all at the end."""
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


def exchange(port: int, requests: list[Request]) -> list[Any]:
    """Send ``requests`` pipelined on a new connection; return the decoded answers."""
    decoder = ResponseDecoder()
    for r in requests:
        decoder.expect(r.message_type, r.correlation_id)
    answers: list[Any] = []
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
    ts = bench_timestamp()
    answers = exchange(port, [CreateTopicRequest(i + 1, n, ts) for i, n in enumerate(names)])
    for name, a in zip(names, answers, strict=True):
        if isinstance(a, ErrorResponse) and a.error_code != ErrorCode.TOPIC_ALREADY_EXISTS:
            raise RuntimeError(f"CREATE_TOPIC {name}: error {a.error_code}")


def produce_some(port: int, topic: str, n: int, payload: bytes) -> None:
    """Store ``n`` messages in ``topic``."""
    ts = bench_timestamp()
    answers = exchange(port, [ProduceRequest(i + 1, topic, ts, payload) for i in range(n)])
    bad = [a for a in answers if isinstance(a, ErrorResponse)]
    if bad:
        raise RuntimeError(f"PRODUCE to {topic}: {len(bad)} errors, first {bad[0]}")


# -- the run ----------------------------------------------------------------------------


@dataclass
class Run:
    """One timed run of one cell on one server."""

    rate: float
    cpu_us_per_request: float | None
    responses: int
    seconds: float


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _median_opt(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _median(present) if present else None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


class Bench:
    """Runs every scenario and collects the results dict (see ``docs/PERFORMANCE.md``)."""

    def __init__(
        self,
        sizes: Sizes,
        *,
        workdir: Path,
        load_processes: int | None = None,
        spin: str = "auto",
        megaload: bool = True,
        megaload_src: Path | None = None,
        profile: bool = False,
        log: Callable[[str], None] = print,
    ) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.load_processes = load_processes or default_processes()
        self.spin = spin
        self.megaload = megaload
        self.megaload_src = megaload_src
        self.profile = profile
        self.log = log
        self.payload = bytes(i % 251 for i in range(sizes.payload))

    # -- helpers ----------------------------------------------------------------------

    def _spin(self, depth: int) -> bool:
        """Busy-poll in closed loops only (see :class:`bench.load.LoadJob`), unless told otherwise."""
        return self.spin == "always" or (self.spin == "auto" and depth == 1)

    def _timed(self, pool: LoadPool, server: Server, ring: bytes, response_bytes: int, cell: tuple[int, int]) -> Run:
        conns, depth = cell
        s = self.sizes
        cpu0 = server.cpu_seconds()
        res: LoadResult = pool.run(
            host=HOST,
            port=server.port,
            ring=ring,
            request_bytes=request_size(ring),
            response_bytes=response_bytes,
            conns=conns,
            depth=depth,
            warmup=s.warmup,
            duration=s.duration,
            spin=self._spin(depth),
        )
        cpu = server.cpu_seconds() - cpu0
        per = cpu / res.all_responses * 1e6 if res.all_responses and cpu > 0 else None
        return Run(res.rate, per, res.responses, res.seconds)

    # -- scenarios --------------------------------------------------------------------

    def throughput(self, pool: LoadPool, floor: Server, broker: Server) -> list[dict[str, Any]]:
        """PRODUCE and CONSUME, 1 and 8 connections, depth 1 and 64, floor and broker interleaved."""
        s = self.sizes
        cells: list[dict[str, Any]] = []
        create_topics(broker.port, ["consume-src"])
        produce_some(broker.port, "consume-src", RING_REQUESTS, self.payload)
        names = [f"tp-c{c}-d{d}-r{r}" for c in CONNS for d in DEPTHS for r in range(s.reps)]
        create_topics(broker.port, names)
        consume = consume_ring("consume-src", 0)
        consume_resp = CONSUME_RESPONSE_FIXED_BYTES + s.payload
        for op in OPS:
            for conns in CONNS:
                for depth in DEPTHS:
                    runs: dict[str, list[Run]] = {"floor": [], "broker": []}
                    for rep in range(s.reps):
                        if op == "produce":
                            ring = produce_ring(f"tp-c{conns}-d{depth}-r{rep}", s.payload)
                            resp = PRODUCE_RESPONSE_BYTES
                        else:
                            ring, resp = consume, consume_resp
                        order = (floor, broker) if rep % 2 == 0 else (broker, floor)
                        for server in order:
                            runs[server.name].append(self._timed(pool, server, ring, resp, (conns, depth)))
                    cell = self._cell(op, conns, depth, runs)
                    self.log(
                        f"  {op:7} conns={conns} depth={depth:2}: floor {cell['floor_rps']:>9,.0f}  "
                        f"broker {cell['broker_rps']:>9,.0f} req/s  ratio {cell['ratio']:.2f}"
                    )
                    cells.append(cell)
        return cells

    @staticmethod
    def _cell(op: str, conns: int, depth: int, runs: dict[str, list[Run]]) -> dict[str, Any]:
        f_rps = _median([r.rate for r in runs["floor"]])
        b_rps = _median([r.rate for r in runs["broker"]])
        f_cpu = _median_opt([r.cpu_us_per_request for r in runs["floor"]])
        b_cpu = _median_opt([r.cpu_us_per_request for r in runs["broker"]])
        return {
            "op": op,
            "conns": conns,
            "depth": depth,
            "floor_rps": f_rps,
            "broker_rps": b_rps,
            "ratio": _ratio(b_rps, f_rps),
            "floor_cpu_us": f_cpu,
            "broker_cpu_us": b_cpu,
            "cpu_ratio": _ratio(b_cpu, f_cpu),
            "floor_runs": [r.rate for r in runs["floor"]],
            "broker_runs": [r.rate for r in runs["broker"]],
        }

    def deep(self, pool: LoadPool, deep: Server) -> tuple[dict[str, Any], dict[str, Any]]:
        """Memory growth for ``fill_messages`` messages, then CONSUME at offset 0 against the deep offset."""
        s = self.sizes
        create_topics(deep.port, ["warm", "deep"])
        warm = produce_ring("warm", s.payload)
        pool.run(
            host=HOST, port=deep.port, ring=warm, request_bytes=request_size(warm),
            response_bytes=PRODUCE_RESPONSE_BYTES, conns=1, depth=64, count=4 * RING_REQUESTS, spin=self._spin(64),
        )  # fmt: skip
        time.sleep(0.2)
        rss0 = deep.rss_bytes()
        ring = produce_ring("deep", s.payload)
        t0 = time.monotonic()
        fill = pool.run(
            host=HOST, port=deep.port, ring=ring, request_bytes=request_size(ring),
            response_bytes=PRODUCE_RESPONSE_BYTES, conns=1, depth=256, count=s.fill_messages, spin=self._spin(64),
        )  # fmt: skip
        fill_secs = time.monotonic() - t0
        time.sleep(0.2)
        rss1 = deep.rss_bytes()
        per_msg = (rss1 - rss0) / s.fill_messages
        memory = {
            "messages": s.fill_messages,
            "payload_bytes": s.payload,
            "rss_before": rss0,
            "rss_after": rss1,
            "bytes_per_message": per_msg,
            "overhead_bytes_per_message": per_msg - s.payload,
        }
        self.log(
            f"  memory: {s.fill_messages:,} messages of {s.payload} B: RSS {rss0 / 2**20:.1f} -> "
            f"{rss1 / 2**20:.1f} MiB, {per_msg:.0f} B/message, overhead {per_msg - s.payload:.0f} B"
        )
        resp = CONSUME_RESPONSE_FIXED_BYTES + s.payload
        rings = {"0": consume_ring("deep", 0), "deep": consume_ring("deep", s.deep_offset)}
        runs: dict[str, list[Run]] = {"0": [], "deep": []}
        for rep in range(s.reps):
            for key in ("0", "deep") if rep % 2 == 0 else ("deep", "0"):
                runs[key].append(self._timed(pool, deep, rings[key], resp, (1, 64)))
        r0 = _median([r.rate for r in runs["0"]])
        rd = _median([r.rate for r in runs["deep"]])
        c0 = _median_opt([r.cpu_us_per_request for r in runs["0"]])
        cd = _median_opt([r.cpu_us_per_request for r in runs["deep"]])
        offset = {
            "topic_messages": s.fill_messages,
            "deep_offset": s.deep_offset,
            "conns": 1,
            "depth": 64,
            "fill_rps": fill.responses / fill_secs if fill_secs > 0 else 0.0,
            "offset0_rps": r0,
            "deep_rps": rd,
            "cost_ratio": _ratio(r0, rd),
            "offset0_cpu_us": c0,
            "deep_cpu_us": cd,
            "cpu_ratio": _ratio(cd, c0),
        }
        self.log(
            f"  consume at offset 0: {r0:,.0f} req/s, at {s.deep_offset:,}: {rd:,.0f} req/s "
            f"(cost ratio {offset['cost_ratio']:.2f}); fill {offset['fill_rps']:,.0f} req/s"
        )
        return memory, offset

    def client(self, pool: LoadPool, broker: Server) -> dict[str, Any]:
        """Sync client against a raw-socket loop (closed loop), async client pipelined; PRODUCE to the broker."""
        s = self.sizes
        topic = "client-bench"
        create_topics(broker.port, [topic])
        request = encode_request(ProduceRequest(1, topic, bench_timestamp(), self.payload))
        spec = clients.ClientSpec(
            HOST, broker.port, topic, self.payload, request, PRODUCE_RESPONSE_BYTES, s.warmup, s.client_duration,
            s.async_concurrency,
        )  # fmt: skip
        results: dict[str, list[tuple[int, float, float]]] = {"raw": [], "sync": []}
        for rep in range(s.reps):
            for kind in ("raw", "sync") if rep % 2 == 0 else ("sync", "raw"):
                fn = clients.raw_socket_loop if kind == "raw" else clients.sync_client_loop
                results[kind].append(pool.call(fn, spec))
        async_runs = [pool.call(clients.async_client_pipelined, spec) for _ in range(s.reps)]

        def rate(r: tuple[int, float, float]) -> float:
            return r[0] / r[1] if r[1] > 0 else 0.0

        def cpu_us(r: tuple[int, float, float]) -> float | None:
            return r[2] / r[0] * 1e6 if r[0] and r[2] > 0 else None

        raw = _median([rate(r) for r in results["raw"]])
        sync = _median([rate(r) for r in results["sync"]])
        raw_cpu = _median_opt([cpu_us(r) for r in results["raw"]])
        sync_cpu = _median_opt([cpu_us(r) for r in results["sync"]])
        out = {
            "server": "broker",
            "op": "produce",
            "raw_rps": raw,
            "sync_rps": sync,
            "slowdown": _ratio(raw, sync),
            "raw_cpu_us": raw_cpu,
            "sync_cpu_us": sync_cpu,
            "cpu_ratio": _ratio(sync_cpu, raw_cpu),
            "async_concurrency": s.async_concurrency,
            "async_rps": _median([rate(r) for r in async_runs]),
            "async_cpu_us": _median_opt([cpu_us(r) for r in async_runs]),
        }
        self.log(
            f"  client: raw loop {raw:,.0f}/s, sync client {sync:,.0f}/s (slowdown {out['slowdown']:.2f}); "
            f"async x{s.async_concurrency}: {out['async_rps']:,.0f}/s"
        )
        return out

    # -- megaload ---------------------------------------------------------------------

    def _megaload_binary(self) -> tuple[Path | None, str]:
        src = self.megaload_src
        if src is None:
            env = os.environ.get("MEGALOAD_SRC")
            src = Path(env) if env else REPO_ROOT.parent / "shared" / "tools" / "megaload.c"
        if not src.is_file():
            return None, f"megaload source not found at {src}"
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            return None, "no C compiler (gcc) on PATH"
        out = self.workdir / "megaload"
        proc = subprocess.run(
            [cc, "-O2", "-pthread", "-o", str(out), str(src)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            return None, f"gcc failed: {proc.stderr.strip()[:500]}"
        return out, f"compiled from {src} with {cc} -O2 -pthread"

    def _megaload(self, binary: Path, server: Server, cell: MegaloadCell) -> float | None:
        mode, conns, depth, reqs, topic, base = cell
        env = dict(os.environ, MEGALOAD_OFFSET_BASE=str(base))
        argv = [str(binary), HOST, str(server.port), mode, str(conns), str(reqs), str(depth), str(self.sizes.payload)]
        try:
            proc = subprocess.run([*argv, topic], capture_output=True, text=True, env=env, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            self.log(f"  megaload {mode} c{conns} d{depth} on {server.name}: timed out")
            return None
        m = re.search(r"([\d.]+) req/s", proc.stdout)
        if proc.returncode != 0 or m is None:
            self.log(f"  megaload {mode} c{conns} d{depth} on {server.name} failed: {proc.stderr.strip()[:200]}")
            return None
        return float(m.group(1))

    def megaload_cross_check(
        self, binary: Path, floor: Server, broker: Server, deep: Server, cells: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The same cells from the C load generator, sized from the Python figures."""
        s = self.sizes
        out_cells: list[dict[str, Any]] = []
        for cell in cells:
            op, conns, depth = cell["op"], cell["conns"], cell["depth"]
            if s.megaload_cells != "all" and not (op == "produce" and depth > 1 and conns == 1):
                continue
            row: dict[str, Any] = {"op": op, "conns": conns, "depth": depth}
            for server in (floor, broker):
                est = cell[f"{server.name}_rps"] or 1000.0
                reqs = max(4 * depth, int(est * s.megaload_seconds / conns))
                topic = f"ml-{op}-c{conns}-d{depth}-{server.name}"
                row[f"{server.name}_rps"] = self._megaload(binary, server, (op, conns, depth, reqs, topic, 0))
            row["ratio"] = _ratio(row["broker_rps"], row["floor_rps"])
            out_cells.append(row)
            self.log(
                f"  megaload {op:7} conns={conns} depth={depth:2}: floor {row['floor_rps'] or 0:>9,.0f}  "
                f"broker {row['broker_rps'] or 0:>9,.0f} req/s"
            )
        deep_row: dict[str, Any] = {"deep_offset": s.deep_offset, "conns": 1, "depth": 64}
        reqs = max(256, int(20_000 * s.megaload_seconds))
        for key, base in (("offset0_rps", 0), ("deep_rps", s.deep_offset)):
            deep_row[key] = self._megaload(binary, deep, ("consume", 1, 64, reqs, "deep", base))
        deep_row["cost_ratio"] = _ratio(deep_row["offset0_rps"], deep_row["deep_rps"])
        return {"cells": out_cells, "deep": deep_row}

    # -- profile ----------------------------------------------------------------------

    def profile_broker(self, pool: LoadPool) -> dict[str, Any]:
        """cProfile of a broker process under pipelined PRODUCE; py-spy too when it is installed."""
        s = self.sizes
        out: dict[str, Any] = {}
        prof_path = self.workdir / "broker.prof"
        broker = Server.broker(self.workdir, name="broker-cprofile", cprofile_out=prof_path)
        with running(broker):
            create_topics(broker.port, ["prof"])
            ring = produce_ring("prof", s.payload)
            for conns in (1, 8):
                pool.run(
                    host=HOST, port=broker.port, ring=ring, request_bytes=request_size(ring),
                    response_bytes=PRODUCE_RESPONSE_BYTES, conns=conns, depth=64, warmup=0.1,
                    duration=s.profile_seconds / 2, spin=self._spin(64),
                )  # fmt: skip
        if prof_path.exists():
            out["cprofile"] = _top_from_pstats(prof_path)
            out["cprofile_file"] = str(prof_path)
        pyspy = shutil.which("py-spy")
        if pyspy is None:
            out["py_spy"] = None
            out["py_spy_note"] = "py-spy is not installed (pip install py-spy)"
            return out
        broker = Server.broker(self.workdir, name="broker-pyspy")
        raw = self.workdir / "broker.pyspy.txt"
        with running(broker):
            create_topics(broker.port, ["prof"])
            ring = produce_ring("prof", s.payload)
            secs = max(1, round(s.profile_seconds))
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(broker.pid), "--duration", str(secs), "--rate", "250",
                 "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(0.3)
            user0, sys0 = broker.user_system_seconds()
            pool.run(
                host=HOST, port=broker.port, ring=ring, request_bytes=request_size(ring),
                response_bytes=PRODUCE_RESPONSE_BYTES, conns=1, depth=64, warmup=0.0, duration=secs + 0.5,
                spin=self._spin(64),
            )  # fmt: skip
            user1, sys1 = broker.user_system_seconds()
            _, err = spy.communicate(timeout=60)
        busy = (user1 - user0) + (sys1 - sys0)
        out["kernel_share_pct"] = 100.0 * (sys1 - sys0) / busy if busy > 0 else None
        if spy.returncode == 0 and raw.exists():
            out["py_spy"] = _top_from_collapsed(raw)
            out["py_spy_file"] = str(raw)
        else:
            out["py_spy"] = None
            out["py_spy_note"] = f"py-spy failed: {err.decode(errors='replace').strip()[:300]}"
        return out

    # -- everything -------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        s = self.sizes
        started = time.time()
        t0 = time.monotonic()
        results: dict[str, Any] = {"meta": self._meta(started)}
        # Room for megaload's own 1000-message prefills on top of the fill.
        deep_cap = s.fill_messages + 100_000
        floor = Server.floor(self.workdir, s.payload)
        broker = Server.broker(self.workdir)
        deep = Server.broker(self.workdir, name="broker-deep", max_messages=deep_cap)
        with LoadPool(self.load_processes) as pool, running(floor, broker, deep):
            self.log(f"throughput ({s.reps} runs of {s.duration}s each, medians):")
            cells = self.throughput(pool, floor, broker)
            results["throughput"] = cells
            self.log("deep topic:")
            results["memory"], results["consume_offset"] = self.deep(pool, deep)
            self.log("client:")
            results["client"] = self.client(pool, broker)
            if self.megaload:
                binary, note = self._megaload_binary()
                results["megaload"] = {"available": binary is not None, "note": note}
                if binary is not None:
                    self.log(f"megaload cross-check ({note}):")
                    results["megaload"].update(self.megaload_cross_check(binary, floor, broker, deep, cells))
                else:
                    self.log(f"megaload skipped: {note}")
            else:
                results["megaload"] = {"available": False, "note": "skipped (--no-megaload)"}
            results["broker_rss_end"] = broker.rss_bytes()
        if self.profile:
            with LoadPool(1) as pool:
                self.log("profile:")
                results["profile"] = self.profile_broker(pool)
        results["targets"] = evaluate_targets(results)
        results["meta"]["seconds"] = time.monotonic() - t0
        results["meta"]["loadavg_end"] = _loadavg()
        return results

    def _meta(self, started: float) -> dict[str, Any]:
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": _loadavg(),
            "load_processes": self.load_processes,
            "spin": self.spin,
            "sizes": asdict(self.sizes),
        }


def _loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against this run's figures."""
    cells = {(c["op"], c["conns"], c["depth"]): c for c in results.get("throughput", [])}
    measured: dict[str, float | None] = {
        "produce_pipelined_ratio_1": cells.get(("produce", 1, 64), {}).get("ratio"),
        "produce_pipelined_ratio_8": cells.get(("produce", 8, 64), {}).get("ratio"),
        "consume_deep_cost_ratio": results.get("consume_offset", {}).get("cost_ratio"),
        "overhead_bytes_per_message": results.get("memory", {}).get("overhead_bytes_per_message"),
        "sync_client_slowdown": results.get("client", {}).get("slowdown"),
    }
    out = []
    for key, label, cmp, target in TARGETS:
        value = measured[key]
        met = None if value is None else (value >= target if cmp == ">=" else value <= target)
        out.append({"key": key, "label": label, "measured": value, "target": target, "cmp": cmp, "met": met})
    return out


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One results dict from several runs: the median of every number, field by field.

    Ratios are taken as the median of each run's own ratio (a ratio is only
    meaningful within one run on a noisy machine), not recomputed from medians.
    """
    merged = _merge(list(runs))
    assert isinstance(merged, dict)
    merged["targets"] = evaluate_targets(merged)
    merged["meta"]["runs"] = len(runs)
    merged["meta"]["seconds"] = sum(r["meta"]["seconds"] for r in runs)
    merged["meta"]["loadavg_start"] = runs[0]["meta"]["loadavg_start"]
    merged["meta"]["loadavg_end"] = runs[-1]["meta"]["loadavg_end"]
    return merged


def _merge(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if not present:
        return None
    first = present[0]
    if all(v == first for v in present) or isinstance(first, (bool, str)):
        return first
    if isinstance(first, (int, float)):
        nums = [v for v in present if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return float(statistics.median(nums))
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for v in present if isinstance(v, dict) for k in v))
        return {k: _merge([v.get(k) for v in present if isinstance(v, dict)]) for k in keys}
    if (
        isinstance(first, list)
        and first
        and isinstance(first[0], dict)
        and all(isinstance(v, list) and len(v) == len(first) for v in present)
    ):
        return [_merge([v[i] for v in present]) for i in range(len(first))]
    return first


# -- profiles -------------------------------------------------------------------------


def _top_from_pstats(path: Path, n: int = 15) -> dict[str, Any]:
    st = pstats.Stats(str(path))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    rows = []
    for (file, line, name), (_cc, nc, tt, ct, _callers) in raw.items():
        rows.append(
            {
                "function": f"{_short(file)}:{line}({name})",
                "calls": nc,
                "self_pct": 100.0 * tt / total,
                "cum_pct": 100.0 * ct / total,
            }
        )
    rows.sort(key=lambda r: r["self_pct"], reverse=True)
    return {"total_seconds": total, "top_self": rows[:n]}


def _short(file: str) -> str:
    for marker in ("/mock_broker/", "/mega_client/", "/asyncio/", "/selectors", "/lib/python"):
        i = file.find(marker)
        if i >= 0:
            return file[i + 1 :]
    return file


def _top_from_collapsed(path: Path, n: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        if frames:
            self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for f in set(frames):
            incl_counts[f] = incl_counts.get(f, 0) + count
    total = total or 1
    top_self = sorted(self_counts.items(), key=lambda kv: kv[1], reverse=True)[:n]
    top_incl = sorted(incl_counts.items(), key=lambda kv: kv[1], reverse=True)[: n + 10]
    return {
        "samples": total,
        "top_self": [{"function": f, "self_pct": 100.0 * c / total} for f, c in top_self],
        "top_inclusive": [{"function": f, "incl_pct": 100.0 * c / total} for f, c in top_incl],
    }


def _frame_name(frame: str) -> str:
    # "data_received (mock_broker/_protocol.py:136)" -> "mock_broker/_protocol.py:data_received"
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not m:
        return frame.strip()
    return f"{_short(m.group(2))}:{m.group(1)}"


def make_workdir() -> Path:
    """A temporary folder for logs, profiles and the megaload binary."""
    return Path(tempfile.mkdtemp(prefix="mega-bench-"))
