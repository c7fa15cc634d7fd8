"""The benchmark's scenarios, each a function of the load generator and fresh server processes.

Every compared pair is measured in rounds that alternate their order (floor
then broker, broker then floor, ...), and every figure is reported as the
median of its rounds with the lowest and highest; a ratio is taken round by
round (the two runs of a round are seconds apart) before its median. Each run
records the server's CPU time from ``/proc`` over the measured window (every
thread, user and kernel), the window's length, and what the rest of the
machine did meanwhile, so that the load a figure was taken under is printed
beside it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import pstats
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mega_client.protocol import ConsumeRequest, encode_request, layouts

from . import procstat
from .loadgen import (
    CONSUME_ANSWER_FIXED_BYTES,
    HOST,
    PRODUCE_ANSWER_BYTES,
    REQUEST_TIMESTAMP,
    RING_REQUESTS,
    Job,
    LoadGenerator,
    Ring,
    Sample,
    consume_ring,
    payload_of,
    produce_ring,
    run_json,
)
from .servers import Server, create_topics, produce_some, running
from .stats import Spread, ratios, spread


@dataclass(frozen=True)
class Sizes:
    """How long and how big: ``QUICK`` for the tests, ``DEFAULT`` for the figures."""

    rounds: int
    warmup: float
    duration: float
    fill_messages: int
    deep_offset: int
    idle_connections: int
    profile_seconds: float
    payload: int = 100
    depth: int = 64
    async_concurrency: int = 64


DEFAULT = Sizes(
    rounds=5,
    warmup=0.3,
    duration=1.0,
    fill_messages=1_000_000,
    deep_offset=990_000,
    idle_connections=3000,
    profile_seconds=3.0,
)
QUICK = Sizes(
    rounds=2,
    warmup=0.05,
    duration=0.15,
    fill_messages=20_000,
    deep_offset=18_000,
    idle_connections=50,
    profile_seconds=0.5,
)

#: The benchmark's parts, in the order they run.
SECTIONS = ("efficiency", "deep", "idle", "client")
#: The efficiency cells: (operation, connections), each at ``Sizes.depth`` requests in flight per connection.
CELLS = (("produce", 1), ("produce", 8), ("consume", 1), ("consume", 8))
#: A server using less than this share of a CPU in a window was not kept busy: the report flags it.
SATURATED = 0.9

#: The issue's targets: (key, label, comparison, target).
TARGETS = (
    ("produce_efficiency_1", "pipelined PRODUCE, 1 connection: floor CPU/req ÷ broker CPU/req", ">=", 0.6),
    ("produce_efficiency_8", "pipelined PRODUCE, 8 connections: floor CPU/req ÷ broker CPU/req", ">=", 0.6),
    ("consume_deep_cost", "CONSUME at the deep offset: broker CPU/req ÷ at offset 0", "<=", 1.2),
    ("stored_overhead_bytes", "memory beyond the payload per stored 100-byte message (bytes)", "<=", 150.0),
    ("idle_connection_bytes", "memory per idle connection (bytes)", "<=", 3072.0),
    ("sync_client_time_ratio", "sync client time per request ÷ the raw-socket loop's", "<=", 1.3),
)


def summarize(samples: list[Sample]) -> dict[str, Any]:
    """A server's (or a client's) figures over its rounds: medians and spreads, and every round."""
    return {
        "cpu_us": spread(s.cpu_us for s in samples),
        "rate": spread(s.rate for s in samples),
        "busy": spread(s.busy for s in samples),
        "answers_per_read": spread(s.answers_per_read for s in samples),
        "system_share": spread(s.system_share for s in samples),
        "self_cpu_us": spread(s.self_cpu_seconds / s.requests * 1e6 if s.requests else None for s in samples),
        "others_cores": spread(s.others_cores for s in samples),
        "loadavg1": spread(s.loadavg1 for s in samples),
        "rounds": [s.as_dict() for s in samples],
    }


def load_of(*groups: list[Sample]) -> dict[str, Any]:
    """The machine's load over every run of a figure: load average and other processes' CPUs."""
    samples = [s for g in groups for s in g]
    return {"loadavg1": spread(s.loadavg1 for s in samples), "others_cores": spread(s.others_cores for s in samples)}


class Bench:
    """Runs the scenarios; each returns the part of the results dict it measured."""

    def __init__(
        self,
        sizes: Sizes,
        *,
        workdir: Path,
        loadgen: LoadGenerator,
        loops: tuple[str, ...] = ("asyncio",),
        spin: bool = False,
        log: Callable[[str], None] = print,
    ) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.loadgen = loadgen
        self.loops = loops
        self.spin = spin
        self.log = log
        self.payload = payload_of(sizes.payload)
        self._rings: dict[str, Ring] = {}

    # -- helpers ----------------------------------------------------------------------

    def produce_ring(self, topic: str) -> Ring:
        if topic not in self._rings:
            data = produce_ring(topic, self.sizes.payload)
            self._rings[topic] = Ring.write(self.workdir, topic, data, PRODUCE_ANSWER_BYTES)
        return self._rings[topic]

    def consume_ring(self, topic: str, first_offset: int) -> Ring:
        key = f"consume-{topic}-{first_offset}"
        if key not in self._rings:
            data = consume_ring(topic, first_offset)
            size = CONSUME_ANSWER_FIXED_BYTES + self.sizes.payload
            self._rings[key] = Ring.write(self.workdir, key, data, size)
        return self._rings[key]

    def timed(self, server: Server, ring: Ring, conns: int, depth: int | None = None) -> Sample:
        s = self.sizes
        job = Job(
            server.port, ring, conns, depth or s.depth, s.warmup, s.duration, server_pid=server.pid, spin=self.spin
        )
        return self.loadgen.run(job)

    def client_run(self, kind: str, server: Server, topic: str) -> Sample:
        s = self.sizes
        argv = [sys.executable, "-m", "bench.clients", kind, "--port", str(server.port), "--topic", topic]
        argv += ["--payload", str(s.payload), "--warmup", repr(s.warmup), "--duration", repr(s.duration)]
        argv += ["--concurrency", str(s.async_concurrency), "--server-pid", str(server.pid)]
        return run_json(argv, s.warmup + s.duration + 120, f"client loop {kind}")

    def _say(self, what: str, sample: Sample) -> None:
        cpu = f"{sample.cpu_us:6.3f} µs/req" if sample.cpu_us is not None else "   n/a µs/req"
        busy = f"busy {sample.busy:4.0%}" if sample.busy is not None else "busy  n/a"
        others = f"{sample.others_cores:.2f}" if sample.others_cores is not None else "n/a"
        self.log(f"    {what:34} {cpu}  {sample.rate:>11,.0f} req/s  {busy}  others {others} CPUs")

    # -- 1. efficiency: the floor and the broker ------------------------------------------

    def efficiency(self) -> list[dict[str, Any]]:
        """Pipelined PRODUCE and CONSUME on 1 and 8 connections, floor and broker on each loop, rounds interleaved."""
        s = self.sizes
        samples: dict[tuple[str, int, str], list[Sample]] = {}
        for r in range(s.rounds):
            servers: list[Server] = []
            for loop in self.loops:
                servers += [Server.floor(self.workdir, loop=loop, consume_payload=s.payload)]
                servers += [Server.broker(self.workdir, loop=loop)]
            order = servers if r % 2 == 0 else servers[::-1]
            self.log(f"  round {r + 1} of {s.rounds} ({', '.join(x.name for x in order)}):")
            with running(*servers):
                for srv in servers:
                    if srv.name.startswith("broker"):
                        topics = [f"p-c{conns}-r{r}" for op, conns in CELLS if op == "produce"]
                        create_topics(srv.port, ["consume-src", *topics])
                        produce_some(srv.port, "consume-src", RING_REQUESTS, self.payload)
                for op, conns in CELLS:
                    ring = (
                        self.produce_ring(f"p-c{conns}-r{r}")
                        if op == "produce"
                        else self.consume_ring("consume-src", 0)
                    )
                    for srv in order:
                        sample = self.timed(srv, ring, conns)
                        samples.setdefault((op, conns, srv.name), []).append(sample)
                        self._say(f"{op} {conns} conn x {s.depth}, {srv.name}", sample)
        rows = []
        for loop in self.loops:
            suffix = "" if loop == "asyncio" else f"-{loop}"
            for op, conns in CELLS:
                fl = samples[(op, conns, "floor" + suffix)]
                br = samples[(op, conns, "broker" + suffix)]
                row: dict[str, Any] = {
                    "op": op,
                    "conns": conns,
                    "depth": s.depth,
                    "loop": loop,
                    "floor": summarize(fl),
                    "broker": summarize(br),
                    "efficiency": spread(ratios([x.cpu_us for x in fl], [x.cpu_us for x in br])),
                    "rate_ratio": spread(ratios([x.rate for x in br], [x.rate for x in fl])),
                    "load": load_of(fl, br),
                }
                if loop != "asyncio":
                    base = samples[(op, conns, "broker")]
                    row["vs_asyncio_broker"] = spread(ratios([x.cpu_us for x in base], [x.cpu_us for x in br]))
                rows.append(row)
        return rows

    # -- 2. a deep topic: CONSUME cost by offset, memory per stored message -----------------

    def deep_topic(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fill a topic (memory per message), then CONSUME at offset 0 against the deep offset, rounds interleaved."""
        s = self.sizes
        broker = Server.broker(self.workdir, name="broker-deep", max_messages=s.fill_messages + 10_000)
        with running(broker):
            create_topics(broker.port, ["warm", "deep"])
            warm = self.produce_ring("warm")
            # the allocator's first arenas and the interpreter's caches, before the baseline is read
            self.loadgen.run(Job(broker.port, warm, 1, 256, count=4 * RING_REQUESTS))
            time.sleep(0.2)
            rss0 = broker.rss_bytes()
            fill = self.loadgen.run(
                Job(broker.port, self.produce_ring("deep"), 1, 256, count=s.fill_messages, server_pid=broker.pid)
            )
            time.sleep(0.2)
            rss1 = broker.rss_bytes()
            per_msg = (rss1 - rss0) / s.fill_messages
            memory = {
                "messages": s.fill_messages,
                "payload_bytes": s.payload,
                "rss_before": rss0,
                "rss_after": rss1,
                "bytes_per_message": per_msg,
                "overhead_bytes_per_message": per_msg - s.payload,
                "fill": fill.as_dict(),
            }
            self.log(
                f"  stored {s.fill_messages:,} messages of {s.payload} B at {fill.rate:,.0f} req/s: RSS "
                f"{rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB, {per_msg:.0f} B each, "
                f"{per_msg - s.payload:.0f} B overhead"
            )
            rings = {"offset0": self.consume_ring("deep", 0), "deep": self.consume_ring("deep", s.deep_offset)}
            runs: dict[str, list[Sample]] = {"offset0": [], "deep": []}
            for r in range(s.rounds):
                for key in ("offset0", "deep") if r % 2 == 0 else ("deep", "offset0"):
                    sample = self.timed(broker, rings[key], 1)
                    runs[key].append(sample)
                    self._say(f"consume 1 conn x {s.depth}, offset {'0' if key == 'offset0' else 'deep'}", sample)
        offset = {
            "topic_messages": s.fill_messages,
            "deep_offset": s.deep_offset,
            "conns": 1,
            "depth": s.depth,
            "offset0": summarize(runs["offset0"]),
            "deep": summarize(runs["deep"]),
            "cost_ratio": spread(ratios([x.cpu_us for x in runs["deep"]], [x.cpu_us for x in runs["offset0"]])),
            "rate_ratio": spread(ratios([x.rate for x in runs["offset0"]], [x.rate for x in runs["deep"]])),
            "load": load_of(runs["offset0"], runs["deep"]),
        }
        return memory, offset

    # -- 3. memory per idle connection -------------------------------------------------------

    def idle_connections(self) -> dict[str, Any]:
        """RSS growth of a broker with default options while N connections each send one CONSUME, then idle.

        A CONSUME (of the topic's one message) so that the connection has decoded a request
        and written an answer, and nothing is stored: a PRODUCE each would add a stored
        message per connection, which the stored-message figure already counts.
        One fresh broker per round (memory freed by a round stays with the process
        and would hide the next one's growth); RSS moves by whole pages, so N is
        large and the rounds give a median with its spread.
        """
        n = self._connections_allowed(self.sizes.idle_connections)
        request = encode_request(ConsumeRequest(1, "idle", REQUEST_TIMESTAMP, 0))
        answer_bytes = CONSUME_ANSWER_FIXED_BYTES + self.sizes.payload
        rounds: list[dict[str, float]] = []
        for i in range(self.sizes.rounds):
            broker = Server.broker(self.workdir, name=f"broker-idle-{i}", bench_options=False)
            with running(broker):
                create_topics(broker.port, ["idle"])
                produce_some(broker.port, "idle", 1, self.payload)
                for _ in range(2):  # the first connections' one-off costs (pools, caches) before the baseline
                    self._hold(broker.port, 20, request, answer_bytes)
                time.sleep(0.2)
                rss0 = broker.rss_bytes()
                socks = self._hold(broker.port, n, request, answer_bytes, close=False)
                try:
                    time.sleep(0.3)
                    rss1 = broker.rss_bytes()
                finally:
                    for sock in socks:
                        sock.close()
            per = (rss1 - rss0) / n
            rounds.append({"rss_before": rss0, "rss_after": rss1, "bytes_per_connection": per})
            self.log(f"  {n:,} idle connections: RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB, {per:,.0f} B each")
        per_round = spread(r["bytes_per_connection"] for r in rounds)
        assert per_round is not None
        return {"connections": n, "rounds": rounds, "bytes_per_connection": per_round}

    @staticmethod
    def _connections_allowed(wanted: int) -> int:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = wanted + 200
        if soft != resource.RLIM_INFINITY and soft < need:
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return wanted if soft == resource.RLIM_INFINITY else max(10, min(wanted, soft - 200))

    @staticmethod
    def _hold(port: int, n: int, request: bytes, answer_bytes: int, *, close: bool = True) -> list[socket.socket]:
        """``n`` connections, each with ``request`` answered; closed unless ``close`` is False."""
        socks = [socket.create_connection((HOST, port), timeout=30.0) for _ in range(n)]
        for sock in socks:
            sock.sendall(request)
        for sock in socks:
            got = b""
            # An error answer is shorter than a success: stop reading once the flag says error.
            while len(got) < answer_bytes and (len(got) <= layouts.SUCCESS_AT or got[layouts.SUCCESS_AT] == 1):
                chunk = sock.recv(answer_bytes - len(got))
                if not chunk:
                    raise ConnectionError("the broker closed an idle-test connection")
                got += chunk
            if got[layouts.SUCCESS_AT] != 1:
                raise RuntimeError(f"the broker answered an idle-test request with an error: {got.hex(' ')}")
        if close:
            for sock in socks:
                sock.close()
            return []
        return socks

    # -- 4. the client ---------------------------------------------------------------------

    def client(self) -> dict[str, Any]:
        """The sync client against a raw-socket loop; the async client against the broker's capacity."""
        s = self.sizes
        broker = Server.broker(self.workdir, name="broker-clients")
        runs: dict[str, list[Sample]] = {"raw": [], "sync": [], "capacity": [], "async": []}
        with running(broker):
            topics = ["client-raw", "client-sync", "client-async"] + [f"capacity-r{r}" for r in range(s.rounds)]
            create_topics(broker.port, topics)
            for r in range(s.rounds):
                for kind in ("raw", "sync") if r % 2 == 0 else ("sync", "raw"):
                    sample = self.client_run(kind, broker, f"client-{kind}")
                    runs[kind].append(sample)
                    self._say_client(f"{kind} closed loop", sample)
            for r in range(s.rounds):
                for kind in ("capacity", "async") if r % 2 == 0 else ("async", "capacity"):
                    if kind == "capacity":
                        sample = self.timed(broker, self.produce_ring(f"capacity-r{r}"), 1, s.async_concurrency)
                        self._say(f"load generator 1 conn x {s.async_concurrency}", sample)
                    else:
                        sample = self.client_run("async", broker, "client-async")
                        self._say_client(f"async client x {s.async_concurrency}", sample)
                    runs[kind].append(sample)
        raw_us = [1e6 / x.rate if x.rate else None for x in runs["raw"]]
        sync_us = [1e6 / x.rate if x.rate else None for x in runs["sync"]]
        return {
            "op": "produce",
            "payload_bytes": s.payload,
            "raw": summarize(runs["raw"]),
            "sync": summarize(runs["sync"]),
            "raw_us_per_request": spread(raw_us),
            "sync_us_per_request": spread(sync_us),
            "sync_time_ratio": spread(ratios(sync_us, raw_us)),
            "closed_loop_load": load_of(runs["raw"], runs["sync"]),
            "async_concurrency": s.async_concurrency,
            "capacity": summarize(runs["capacity"]),
            "async": summarize(runs["async"]),
            "async_share_of_capacity": spread(
                ratios([x.rate for x in runs["async"]], [x.rate for x in runs["capacity"]])
            ),
            "pipelined_load": load_of(runs["capacity"], runs["async"]),
        }

    def _say_client(self, what: str, sample: Sample) -> None:
        client = sample.self_cpu_seconds / sample.requests * 1e6 if sample.requests else 0.0
        us = 1e6 / sample.rate if sample.rate else 0.0
        self.log(f"    {what:34} {us:6.2f} µs/req  {sample.rate:>11,.0f} req/s  client CPU {client:.2f} µs/req")

    # -- profile ----------------------------------------------------------------------------

    def profile_broker(self) -> dict[str, Any]:
        """cProfile of a broker under pipelined PRODUCE (1 then 8 connections); py-spy too when installed."""
        s = self.sizes
        out: dict[str, Any] = {}
        prof_path = self.workdir / "broker.prof"
        broker = Server.broker(self.workdir, name="broker-cprofile", cprofile_out=prof_path)
        with running(broker):
            create_topics(broker.port, ["prof"])
            for conns in (1, 8):
                ring = self.produce_ring("prof")
                self.loadgen.run(Job(broker.port, ring, conns, s.depth, 0.1, s.profile_seconds / 2))
        if prof_path.exists():
            out["cprofile"] = _top_from_pstats(prof_path)
            out["cprofile_file"] = str(prof_path)
        pyspy = shutil.which("py-spy")
        if pyspy is None:
            out["py_spy_note"] = "py-spy is not installed (pip install py-spy)"
            return out
        broker = Server.broker(self.workdir, name="broker-pyspy")
        raw = self.workdir / "broker.pyspy.txt"
        with running(broker):
            create_topics(broker.port, ["prof"])
            secs = max(1, round(s.profile_seconds))
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(broker.pid), "--duration", str(secs), "--rate", "250",
                 "--format", "raw", "--output", str(raw), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(0.3)
            self.loadgen.run(Job(broker.port, self.produce_ring("prof"), 1, s.depth, 0.0, secs + 0.5))
            _, err = spy.communicate(timeout=60)
        if spy.returncode == 0 and raw.exists():
            out["py_spy"] = _top_from_collapsed(raw)
            out["py_spy_file"] = str(raw)
        else:
            out["py_spy_note"] = f"py-spy failed: {err.decode(errors='replace').strip()[:300]}"
        return out

    # -- everything --------------------------------------------------------------------------

    def run(self, sections: set[str], *, profile: bool = False) -> dict[str, Any]:
        """The parts of the benchmark that ``sections`` names (see :data:`SECTIONS`), in order."""
        t0 = time.monotonic()
        results: dict[str, Any] = {"meta": self.meta()}
        took: dict[str, float] = {}
        for name in (*SECTIONS, "profile"):
            if name in sections or (name == "profile" and profile):
                t = time.monotonic()
                results.update(self._section(name))
                took[name] = time.monotonic() - t
        results["meta"]["section_seconds"] = took
        results["targets"] = evaluate_targets(results)
        results["meta"]["seconds"] = time.monotonic() - t0
        results["meta"]["loadavg_end"] = procstat.loadavg()
        return results

    def _section(self, name: str) -> dict[str, Any]:
        """Run one part of the benchmark; its keys of the results dict."""
        if name == "efficiency":
            self.log(f"efficiency: floor and broker, {self.sizes.rounds} rounds, order alternating:")
            return {"efficiency": self.efficiency()}
        if name == "deep":
            self.log("a deep topic:")
            memory, offset = self.deep_topic()
            return {"memory": memory, "consume_offset": offset}
        if name == "idle":
            self.log("idle connections:")
            return {"idle_connections": self.idle_connections()}
        if name == "client":
            self.log("the client:")
            return {"client": self.client()}
        self.log("profile:")
        return {"profile": self.profile_broker()}

    def meta(self) -> dict[str, Any]:
        """What the figures were taken with and on."""
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": procstat.loadavg(),
            "loadgen": self.loadgen.kind,
            "loadgen_note": self.loadgen.note,
            "loops": list(self.loops),
            "spin": self.spin,
            "sizes": asdict(self.sizes),
        }


def _median(d: dict[str, Any] | None) -> float | None:
    return None if d is None else float(d["median"])


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against this run's medians."""
    rows = {(r["op"], r["conns"], r["loop"]): r for r in results.get("efficiency", [])}
    mem = results.get("memory", {})
    measured: dict[str, float | None] = {
        "produce_efficiency_1": _median(rows.get(("produce", 1, "asyncio"), {}).get("efficiency")),
        "produce_efficiency_8": _median(rows.get(("produce", 8, "asyncio"), {}).get("efficiency")),
        "consume_deep_cost": _median(results.get("consume_offset", {}).get("cost_ratio")),
        "stored_overhead_bytes": mem.get("overhead_bytes_per_message"),
        "idle_connection_bytes": (results.get("idle_connections", {}).get("bytes_per_connection") or {}).get("median"),
        "sync_client_time_ratio": _median(results.get("client", {}).get("sync_time_ratio")),
    }
    out = []
    for key, label, cmp, target in TARGETS:
        value = measured[key]
        met = None if value is None else (value >= target if cmp == ">=" else value <= target)
        out.append({"key": key, "label": label, "measured": value, "target": target, "cmp": cmp, "met": met})
    return out


def saturation_note(row: dict[str, Any]) -> str | None:
    """Why a row's servers were not kept busy, when they were not."""
    lows = []
    for side in ("floor", "broker"):
        busy = row[side]["busy"]
        if busy is not None and round(busy["median"], 2) < SATURATED:  # as printed
            lows.append(f"{side} {busy['median']:.0%}")
    return ", ".join(lows) if lows else None


# -- profiles -------------------------------------------------------------------------


def _top_from_pstats(path: Path, n: int = 15) -> dict[str, Any]:
    st = pstats.Stats(str(path))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    rows = [
        {
            "function": f"{_short(file)}:{line}({name})",
            "calls": nc,
            "self_pct": 100.0 * tt / total,
            "cum_pct": 100.0 * ct / total,
        }
        for (file, line, name), (_cc, nc, tt, ct, _callers) in raw.items()
    ]
    rows.sort(key=lambda r: r["self_pct"], reverse=True)
    return {"total_seconds": total, "top_self": rows[:n]}


def _short(file: str) -> str:
    for marker in ("/mock_broker/", "/mega_client/", "/asyncio/", "/selectors", "/lib/python"):
        i = file.find(marker)
        if i >= 0:
            return file[i + 1 :]
    return file


def _top_from_collapsed(path: Path, n: int = 15) -> dict[str, Any]:
    """Self sample shares per function from py-spy's raw (collapsed) output."""
    counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        total += int(count_s)
        leaf = _frame_name(stack.split(";")[-1])
        counts[leaf] = counts.get(leaf, 0) + int(count_s)
    total = total or 1
    top = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return {"samples": total, "top_self": [{"function": f, "self_pct": 100.0 * c / total} for f, c in top]}


def _frame_name(frame: str) -> str:
    # "data_received (mock_broker/_protocol.py:136)" -> "mock_broker/_protocol.py:data_received"
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not m:
        return frame.strip()
    return f"{_short(m.group(2))}:{m.group(1)}"


def spread_text(d: dict[str, Any] | None, fmt: str = ".2f") -> str:
    """``median [low-high]`` of a spread dict, for reports."""
    if d is None:
        return "n/a"
    sp = Spread(**d)
    if sp.n == 1:
        return format(sp.median, fmt)
    return f"{format(sp.median, fmt)} [{format(sp.low, fmt)}-{format(sp.high, fmt)}]"
