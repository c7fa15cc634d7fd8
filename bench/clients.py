"""The client loops: the project's clients against a raw-socket loop, PRODUCE of 100 bytes.

``python -m bench.clients KIND --port P --topic T ...`` runs one loop in its
own process (never the server's) and prints one JSON object with the keys of
``bench/loadgen.c`` (``requests``, ``seconds``, ``self_cpu_seconds`` (here the
client's CPU time), ``server_cpu_seconds`` ...), so the harness reads it like
any other run. Kinds:

- ``raw``: a blocking socket, the prebuilt request sent, exactly the answer's
  17 bytes read, again and again: what a client could cost at least;
- ``sync``: ``MessageClient.produce`` in a closed loop on one connection;
- ``async``: ``--concurrency`` tasks awaiting ``AsyncMessageClient.produce`` on
  one connection: pipelined, like the load generator at that depth.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from mega_client import AsyncMessageClient, MessageClient
from mega_client.protocol import ProduceRequest, encode_request, layouts

from . import procstat
from .loadgen import HOST, PRODUCE_ANSWER_BYTES, REQUEST_TIMESTAMP, payload_of

KINDS = ("raw", "sync", "async")


class Window:
    """The measured window of a loop: counters at its start and at its end."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.t0 = 0.0
        self.n0 = 0
        self.start: procstat.Snapshot | None = None

    def open(self, n: int) -> None:
        self.t0, self.n0, self.start = time.monotonic(), n, procstat.Snapshot.take(self.server_pid)

    def close(self, n: int, kind: str) -> dict[str, Any]:
        t1, end = time.monotonic(), procstat.Snapshot.take(self.server_pid)
        assert self.start is not None
        out: dict[str, Any] = {"loadgen": kind, "requests": n - self.n0, "all_requests": n, "seconds": t1 - self.t0}
        out.update(self.start.window(end))
        out["machine_cpus"] = procstat.machine_cpus()
        out["loadavg"] = procstat.loadavg()
        return out


def closed_loop(step: Callable[[], object], args: argparse.Namespace, kind: str) -> dict[str, Any]:
    """Call ``step`` again and again: ``warmup`` seconds, then ``duration`` seconds counted."""
    now = time.monotonic
    t0 = now()
    measure_from = t0 + args.warmup
    deadline = measure_from + args.duration
    window = Window(args.server_pid)
    n = 0
    opened = False
    while True:
        step()
        n += 1
        t = now()
        if not opened:
            if t >= measure_from:
                window.open(n)
                opened = True
        elif t >= deadline:
            return window.close(n, kind)


def raw_loop(args: argparse.Namespace) -> dict[str, Any]:
    """Send the prebuilt request, read exactly the answer's length; again and again."""
    request = encode_request(ProduceRequest(1, args.topic, REQUEST_TIMESTAMP, payload_of(args.payload)))
    size = PRODUCE_ANSWER_BYTES
    sock = socket.create_connection((HOST, args.port), timeout=10.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(size)
    view = memoryview(buf)
    sendall, recv_into = sock.sendall, sock.recv_into

    def round_trip() -> None:
        sendall(request)
        got = 0
        while got < size:
            k = recv_into(view[got:], size - got)
            if not k:
                raise ConnectionError("the server closed the connection")
            got += k

    try:
        round_trip()  # one answer checked before the loop: the server answers with success
        if buf[layouts.SUCCESS_AT] != 1:
            raise RuntimeError(f"the server answered an error (code {buf[layouts.SUCCESS_AT + 1]})")
        return closed_loop(round_trip, args, "raw")
    finally:
        sock.close()


def sync_loop(args: argparse.Namespace) -> dict[str, Any]:
    """``MessageClient.produce`` in a closed loop on one connection."""
    with MessageClient(HOST, args.port) as client:
        produce = functools.partial(client.produce, args.topic, payload_of(args.payload))
        return closed_loop(produce, args, "sync")


def async_pipelined(args: argparse.Namespace) -> dict[str, Any]:
    """``args.concurrency`` tasks, each awaiting ``AsyncMessageClient.produce`` in a loop, on one connection."""
    return asyncio.run(_async_pipelined(args))


async def _async_pipelined(args: argparse.Namespace) -> dict[str, Any]:
    now = time.monotonic
    topic, payload = args.topic, payload_of(args.payload)
    window = Window(args.server_pid)
    async with AsyncMessageClient(HOST, args.port) as client:
        await client.produce(topic, payload)  # connected, topic checked
        t0 = now()
        measure_from = t0 + args.warmup
        deadline = measure_from + args.duration
        done = 0
        opened = False
        result: dict[str, Any] = {}

        async def worker() -> None:
            nonlocal done, opened
            produce = client.produce
            while True:
                await produce(topic, payload)
                done += 1
                t = now()
                if not opened and t >= measure_from:
                    window.open(done)
                    opened = True
                elif opened and t >= deadline:
                    if not result:
                        result.update(window.close(done, "async"))
                    return

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.clients", description="One client loop; prints JSON.")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--payload", type=int, default=100)
    p.add_argument("--warmup", type=float, default=0.3)
    p.add_argument("--duration", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--server-pid", type=int, default=None)
    args = p.parse_args(argv)
    run = {"raw": raw_loop, "sync": sync_loop, "async": async_pipelined}[args.kind]
    try:
        result = run(args)
    except Exception as exc:  # any failure is reported to the harness, which raises it
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
