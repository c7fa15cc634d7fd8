"""The load generator in Python: what the benchmark uses when no C compiler is there.

``python -m bench.pyload`` takes the options of ``bench/loadgen.c`` and prints
the same JSON, so the harness runs either one the same way. It is the same
design (one process, a selector over every connection, each connection's
window refilled as soon as answers arrive, every answer's echoed id and
success byte checked) but costs several times the C generator's CPU per
request: with one CPU for it and one for the server, it cannot keep a fast
server busy, and the report says so (the server's busy share is printed
beside every figure).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import procstat

RECV_BYTES = 1 << 18


@dataclass
class _Conn:
    sock: socket.socket
    inflight: int = 0
    sent: int = 0
    ring_pos: int = 0
    unsent: int = 0
    ans_off: int = 0
    ans_index: int = 0
    head: bytes = b""


class LoadError(Exception):
    """The run cannot go on: a wrong answer, a closed connection, a stall."""


class PyLoad:
    """One run, options as in loadgen.c."""

    def __init__(self, args: argparse.Namespace, ring: bytes) -> None:
        self.a = args
        self.ring = ring + ring  # any run of up to one ring's bytes is contiguous from any position
        self.ring_bytes = len(ring)
        self.ring_requests = len(ring) // args.request_bytes
        self.head_bytes = max(args.echo_bytes, args.success_at + 1)
        self.sending = True
        self.answers = 0
        self.reads = 0
        self.sel = selectors.DefaultSelector()

    def _flush(self, c: _Conn) -> None:
        view = memoryview(self.ring)
        while c.unsent:
            chunk = min(c.unsent, self.ring_bytes)
            try:
                n = c.sock.send(view[c.ring_pos : c.ring_pos + chunk])
            except BlockingIOError:
                break
            c.unsent -= n
            c.ring_pos = (c.ring_pos + n) % self.ring_bytes
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.unsent else 0)
        if self.sel.get_key(c.sock).events != events:
            self.sel.modify(c.sock, events, c)

    def _refill(self, c: _Conn) -> None:
        if not self.sending:
            return
        k = self.a.depth - c.inflight
        if self.a.count is not None:
            k = min(k, self.a.count - c.sent)
        if k <= 0:
            return
        c.inflight += k
        c.sent += k
        c.unsent += k * self.a.request_bytes
        self._flush(c)

    def _answers(self, c: _Conn, data: bytes) -> int:
        a = self.a
        done = 0
        i, n = 0, len(data)
        while i < n:
            if c.ans_off < self.head_bytes:
                take = min(self.head_bytes - c.ans_off, n - i)
                c.head += data[i : i + take]
                c.ans_off += take
                i += take
                if c.ans_off < self.head_bytes:
                    break
                if c.head[a.success_at] != a.success_value:
                    raise LoadError(
                        f"answer {self.answers + done} is not a success (byte {c.head[a.success_at]} at offset "
                        f"{a.success_at}): is the topic missing or full?"
                    )
                at = c.ans_index * a.request_bytes
                if c.head[: a.echo_bytes] != self.ring[at : at + a.echo_bytes]:
                    raise LoadError(f"answer {self.answers + done} does not echo its request's correlation id")
                c.head = b""
                continue
            take = min(a.response_bytes - c.ans_off, n - i)
            c.ans_off += take
            i += take
            if c.ans_off == a.response_bytes:
                c.ans_off = 0
                c.ans_index = (c.ans_index + 1) % self.ring_requests
                done += 1
        return done

    def run(self) -> dict[str, object]:  # noqa: PLR0912, PLR0915 - the hot loop, inlined: calls cost throughput
        a = self.a
        conns = []
        for _ in range(a.conns):
            sock = socket.create_connection((a.host, a.port), timeout=a.stall_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            c = _Conn(sock)
            self.sel.register(sock, selectors.EVENT_READ, c)
            conns.append(c)
        timed = a.count is None
        now = time.monotonic
        t0 = now()
        window_at = t0 + (a.warmup if timed else 0.0)
        deadline = window_at + a.duration
        start: tuple[float, int, int, procstat.Snapshot] | None = None
        end: tuple[float, int, int, procstat.Snapshot] | None = None
        if not timed:
            start = (now(), 0, 0, procstat.Snapshot.take(a.server_pid))
        busy = len(conns)
        for c in conns:
            self._refill(c)
        last = now()
        timeout = 0.0 if a.spin else 0.05
        try:
            while busy:
                events = self.sel.select(timeout)
                for key, mask in events:
                    c = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._flush(c)
                    if not mask & selectors.EVENT_READ:
                        continue
                    try:
                        data = c.sock.recv(RECV_BYTES)
                    except BlockingIOError:
                        continue
                    if not data:
                        raise LoadError(f"the server closed a connection (after {self.answers} answers)")
                    self.reads += 1
                    k = self._answers(c, data)
                    if not k:
                        continue
                    self.answers += k
                    c.inflight -= k
                    self._refill(c)
                    if c.inflight == 0 and (not self.sending or (a.count is not None and c.sent >= a.count)):
                        busy -= 1
                t = now()
                if events:
                    last = t
                elif t - last > a.stall_timeout:
                    raise LoadError(f"no answer for {a.stall_timeout:.0f} s ({self.answers} answers so far)")
                if timed and start is None and t >= window_at:
                    start = (t, self.answers, self.reads, procstat.Snapshot.take(a.server_pid))
                if timed and start is not None and end is None and t >= deadline:
                    end = (t, self.answers, self.reads, procstat.Snapshot.take(a.server_pid))
                    self.sending = False
                    busy = sum(1 for c in conns if c.inflight > 0)
            if end is None:
                end = (now(), self.answers, self.reads, procstat.Snapshot.take(a.server_pid))
        finally:
            self.sel.close()
            for c in conns:
                c.sock.close()
        assert start is not None
        out: dict[str, object] = {
            "loadgen": "python",
            "conns": a.conns,
            "depth": a.depth,
            "requests": end[1] - start[1],
            "all_requests": self.answers,
            "reads": end[2] - start[2],
            "seconds": end[0] - start[0],
        }
        out.update(start[3].window(end[3]))
        out["machine_cpus"] = procstat.machine_cpus()
        out["loadavg"] = procstat.loadavg()
        return out


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"seconds in 0..86400: {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The options of bench/loadgen.c."""
    p = argparse.ArgumentParser(
        prog="python -m bench.pyload", description="The load generator in Python (the options of bench/loadgen.c)."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ring", type=Path, required=True, help="prebuilt requests, back to back")
    p.add_argument("--request-bytes", type=_positive, required=True)
    p.add_argument("--response-bytes", type=_positive, required=True)
    p.add_argument("--conns", type=_positive, default=1)
    p.add_argument("--depth", type=_positive, default=64)
    p.add_argument("--warmup", type=_seconds, default=0.3)
    p.add_argument("--duration", type=_seconds, default=1.0)
    p.add_argument("--count", type=_positive, default=None)
    p.add_argument("--server-pid", type=_positive, default=None)
    p.add_argument("--echo-bytes", type=int, default=4)
    p.add_argument("--success-at", type=int, default=4)
    p.add_argument("--success-value", type=int, default=1)
    p.add_argument("--spin", action="store_true")
    p.add_argument("--stall-timeout", type=_seconds, default=20.0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ring = args.ring.read_bytes()
        if not ring or len(ring) % args.request_bytes:
            raise LoadError("the ring file is empty or not a whole number of requests")
        result = PyLoad(args, ring).run()
    except (LoadError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
