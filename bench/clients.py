"""Client-side loops: the project's clients against a raw-socket loop.

Each function runs in a load worker process (never in the server's), opens its
own connection, warms up, then counts round trips for ``duration`` seconds. It
returns ``(round_trips, seconds, cpu_seconds)``: the process CPU time spent in
the measured window, so the client's own cost per request can be compared
without the noise of the wake-ups that dominate a closed loop on this machine.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from mega_client import AsyncMessageClient, MessageClient
from mega_client.protocol import layouts

#: Where an answer's success byte is; the error code follows it in an error answer.
SUCCESS_AT = layouts.SUCCESS_AT


@dataclass(frozen=True)
class ClientSpec:
    """What a client loop sends where: PRODUCE ``payload`` to ``topic``.

    ``request`` is the same PRODUCE prebuilt (for the raw loop), and
    ``response_bytes`` the size of its answer.
    """

    host: str
    port: int
    topic: str
    payload: bytes
    request: bytes
    response_bytes: int
    warmup: float
    duration: float
    concurrency: int = 64


def measure_closed_loop(step: Callable[[], object], warmup: float, duration: float) -> tuple[int, float, float]:
    """Call ``step`` again and again: for ``warmup`` seconds, then counting for ``duration``.

    Returns ``(calls in the window, the window's seconds, process CPU seconds in it)``.
    """
    now = time.monotonic
    t0 = now()
    measure_from = t0 + warmup
    deadline = measure_from + duration
    n = 0
    base = -1
    t_base = cpu_base = 0.0
    while True:
        step()
        n += 1
        t = now()
        if base < 0:
            if t >= measure_from:
                base, t_base, cpu_base = n, t, time.process_time()
        elif t >= deadline:
            return n - base, t - t_base, time.process_time() - cpu_base


def raw_socket_loop(spec: ClientSpec) -> tuple[int, float, float]:
    """Send the prebuilt request, read exactly the answer's length; again and again.

    A blocking closed loop with no decoding at all: what a client could cost at least.
    """
    request = spec.request
    response_bytes = spec.response_bytes
    sock = socket.create_connection((spec.host, spec.port), timeout=10.0)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray(response_bytes)
    view = memoryview(buf)
    sendall = sock.sendall
    recv_into = sock.recv_into

    def round_trip() -> None:
        sendall(request)
        got = 0
        while got < response_bytes:
            k = recv_into(view[got:], response_bytes - got)
            if not k:
                raise ConnectionError("the server closed the connection")
            got += k

    try:
        round_trip()  # one answer checked before the loop: the server answers with success
        if buf[SUCCESS_AT] != 1:
            raise RuntimeError(f"the server answered an error (code {buf[SUCCESS_AT + 1]})")
        return measure_closed_loop(round_trip, spec.warmup, spec.duration)
    finally:
        sock.close()


def sync_client_loop(spec: ClientSpec) -> tuple[int, float, float]:
    """``MessageClient.produce`` in a closed loop on one connection."""
    with MessageClient(spec.host, spec.port) as client:
        produce = functools.partial(client.produce, spec.topic, spec.payload)
        return measure_closed_loop(produce, spec.warmup, spec.duration)


def async_client_pipelined(spec: ClientSpec) -> tuple[int, float, float]:
    """``spec.concurrency`` tasks, each awaiting ``AsyncMessageClient.produce`` in a loop, on one connection."""
    return asyncio.run(_async_pipelined(spec))


async def _async_pipelined(spec: ClientSpec) -> tuple[int, float, float]:
    now = time.monotonic
    topic = spec.topic
    payload = spec.payload
    async with AsyncMessageClient(spec.host, spec.port) as client:
        await client.produce(topic, payload)  # connected, topic checked
        t0 = now()
        measure_from = t0 + spec.warmup
        deadline = measure_from + spec.duration
        done = 0
        window: list[float] = []  # t_base, count at base, cpu at base

        async def worker() -> None:
            nonlocal done
            produce = client.produce
            while True:
                await produce(topic, payload)
                done += 1
                t = now()
                if not window and t >= measure_from:
                    window.extend((t, float(done), time.process_time()))
                if t >= deadline:
                    return

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
        t_end = now()
        cpu_end = time.process_time()
    t_base, n_base, cpu_base = window
    return done - int(n_base), t_end - t_base, cpu_end - cpu_base
