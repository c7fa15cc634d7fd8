"""The load generator: closed-loop MEGA traffic from worker processes.

Built so that it is not the bottleneck:

- the request bytes are built once, before the run, with
  :func:`mega_client.protocol.encode_request` (a ring of requests of one fixed
  length, sent as slices of one buffer);
- responses are not decoded: a connection counts the bytes it receives and
  divides by the (fixed) size of a success response. In every chunk read, the
  success byte of the first answer that starts in it is checked (one byte per
  read), and the byte count must come out exact at the end, so an error answer
  (6 bytes, which would shift the count) stops the run with a clear message;
- the work runs in separate worker processes (spawned once, reused for every
  scenario), never in the process of the server being measured.

A connection keeps ``depth`` requests in flight: depth 1 is a closed loop (send,
wait for the answer, send again); depth 64 refills the window as soon as any
answers arrive.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from mega_client.protocol import ConsumeRequest, ProduceRequest, encode_request, layouts

#: Size of a successful PRODUCE response.
PRODUCE_RESPONSE_BYTES = layouts.PRODUCE_OK.size
#: Size of a successful CONSUME response, without the payload.
CONSUME_RESPONSE_FIXED_BYTES = layouts.CONSUME_OK_HEAD.size
#: Where an answer's success byte is; the error code follows it in an error answer.
SUCCESS_AT = layouts.SUCCESS_AT
#: Size of an error answer.
ERROR_RESPONSE_BYTES = layouts.ERROR_RESPONSE.size
#: Requests in one prebuilt ring (also how many distinct offsets a CONSUME ring reads).
RING_REQUESTS = 1024
#: Seconds without a byte from a busy connection before the run is declared stuck.
STALL_TIMEOUT = 20.0

T = TypeVar("T")


def bench_timestamp() -> int:
    """A fixed request timestamp for one run (milliseconds since the epoch)."""
    return int(time.time() * 1000)


def produce_ring(topic: str, payload_bytes: int, n: int = RING_REQUESTS) -> bytes:
    """``n`` PRODUCE requests of ``payload_bytes`` bytes each, back to back."""
    ts = bench_timestamp()
    payload = bytes(i % 251 for i in range(payload_bytes))
    return b"".join(encode_request(ProduceRequest(i, topic, ts, payload)) for i in range(n))


def consume_ring(topic: str, first_offset: int, n: int = RING_REQUESTS) -> bytes:
    """``n`` CONSUME requests for offsets ``first_offset .. first_offset + n - 1``."""
    ts = bench_timestamp()
    return b"".join(encode_request(ConsumeRequest(i, topic, ts, first_offset + i)) for i in range(n))


@dataclass(frozen=True)
class LoadJob:
    """One worker's share of a scenario.

    With ``count`` set, each connection sends exactly ``count`` requests and the
    job ends when all are answered (used to fill topics). Otherwise it runs for
    ``warmup + duration`` seconds and counts the answers of the last ``duration``.
    ``start_at`` is a :func:`time.monotonic` instant (system-wide on Linux) so
    that the workers of one scenario start together. With ``spin`` the worker
    busy-polls its sockets instead of sleeping in the kernel until an answer
    comes (as megaload does): on a virtual machine, waking an idle CPU costs
    tens of microseconds, more than the server's work for one request, and a
    blocking closed loop then measures the wake-ups rather than the server.
    """

    host: str
    port: int
    ring: bytes
    request_bytes: int
    response_bytes: int
    conns: int
    depth: int
    warmup: float = 0.3
    duration: float = 2.0
    count: int | None = None
    start_at: float = 0.0
    spin: bool = True


@dataclass
class LoadResult:
    """Answers counted in the measured window, the window's length, and every answer of the run."""

    responses: int
    seconds: float
    conns: int
    all_responses: int
    per_process: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.responses / self.seconds if self.seconds > 0 else 0.0


class _Conn:
    __slots__ = ("carry", "inflight", "pos", "sent", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.carry = 0
        self.inflight = 0
        self.pos = 0
        self.sent = 0


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=STALL_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _check_answer(buf: bytearray, n: int, carry: int, rsize: int) -> None:
    """Check the success byte of the first answer that starts in ``buf[:n]``.

    ``carry`` is how many bytes of a partial answer came before this chunk.
    """
    at = (rsize - carry) % rsize + SUCCESS_AT
    if at < n and buf[at] != 1:
        code = buf[at + 1] if at + 1 < n else -1
        raise RuntimeError(
            f"the server answered an error (success byte {buf[at]}, code {code}) instead of success; "
            "is the topic full (RESOURCE_EXHAUSTED), or missing?"
        )


def _sendall(sock: socket.socket, data: memoryview) -> None:
    """``sendall`` that also works on a non-blocking socket (spinning while the buffer is full)."""
    while data:
        try:
            n = sock.send(data)
        except BlockingIOError:
            continue
        data = data[n:]


def _send(conn: _Conn, ring: memoryview, size: int, n_ring: int, k: int) -> None:
    """Send the next ``k`` requests of the ring (wrapping around)."""
    conn.inflight += k
    conn.sent += k
    while k:
        chunk = min(k, n_ring - conn.pos)
        _sendall(conn.sock, ring[conn.pos * size : (conn.pos + chunk) * size])
        conn.pos = (conn.pos + chunk) % n_ring
        k -= chunk


def _drive_single_closed(job: LoadJob) -> tuple[int, float, int]:
    """One connection, depth 1: a plain blocking loop, the cheapest client there is."""
    sock = _connect(job.host, job.port)
    try:
        ring = memoryview(job.ring)
        size = job.request_bytes
        rsize = job.response_bytes
        n_ring = len(job.ring) // size
        buf = bytearray(max(rsize, 65536))
        view = memoryview(buf)
        _sleep_until(job.start_at)
        now = time.monotonic
        t0 = now()
        measure_from = t0 + job.warmup
        deadline = measure_from + job.duration
        total = job.count
        done = 0
        base = -1
        t_base = t0
        i = 0
        recv_into = sock.recv_into
        success_at, error_bytes = SUCCESS_AT, ERROR_RESPONSE_BYTES
        spin = job.spin
        if spin:
            sock.setblocking(False)
        while True:
            _sendall(sock, ring[i * size : (i + 1) * size])
            i = i + 1 if i + 1 < n_ring else 0
            got = 0
            while got < rsize:
                try:
                    n = recv_into(view[got:], rsize - got)
                except BlockingIOError:
                    if now() - t0 > STALL_TIMEOUT + job.warmup + job.duration:
                        raise TimeoutError("no answer from the server") from None
                    continue
                if not n:
                    raise ConnectionError("the server closed the connection")
                got += n
                if got >= error_bytes and buf[success_at] != 1:  # an error answer: do not wait for more
                    _check_answer(buf, got, 0, rsize)
            done += 1
            if total is not None:
                if done >= total:
                    return done, now() - t0, done
                continue
            t = now()
            if base < 0 and t >= measure_from:
                base, t_base = done, t
            if t >= deadline:
                return done - base, t - t_base, done
    finally:
        sock.close()


def _drive(job: LoadJob) -> tuple[int, float, int]:
    """Every connection of the job from one process, with a selector."""
    if job.conns == 1 and job.depth == 1:
        return _drive_single_closed(job)
    conns = [_Conn(_connect(job.host, job.port)) for _ in range(job.conns)]
    sel = selectors.DefaultSelector()
    try:
        for c in conns:
            sel.register(c.sock, selectors.EVENT_READ, c)
        ring = memoryview(job.ring)
        size = job.request_bytes
        rsize = job.response_bytes
        n_ring = len(job.ring) // size
        buf = bytearray(1 << 20)
        depth = job.depth
        total = job.count
        _sleep_until(job.start_at)
        now = time.monotonic
        t0 = now()
        measure_from = t0 + job.warmup
        deadline = measure_from + job.duration
        done = 0
        base = -1
        t_base = t0
        t_end = 0.0
        counted = 0
        sending = True
        busy = len(conns)
        for c in conns:
            _send(c, ring, size, n_ring, depth if total is None else min(depth, total))
        timeout = 0.0 if job.spin else STALL_TIMEOUT
        last = t0
        while busy:
            events = sel.select(timeout)
            if not events:
                if now() - last > STALL_TIMEOUT:
                    raise TimeoutError(f"no answer for {STALL_TIMEOUT:.0f} s")
                continue
            last = now()
            for key, _ in events:
                c = key.data
                n = c.sock.recv_into(buf)
                if not n:
                    raise ConnectionError("the server closed the connection")
                _check_answer(buf, n, c.carry, rsize)
                c.carry += n
                k = c.carry // rsize
                if not k:
                    continue
                c.carry -= k * rsize
                c.inflight -= k
                done += k
                free = depth - c.inflight
                if total is not None and free >= total - c.sent:
                    free = total - c.sent  # the last requests go whatever their number
                if sending and free > 0:
                    _send(c, ring, size, n_ring, free)
                elif c.inflight == 0:
                    sel.unregister(c.sock)
                    busy -= 1
                    if c.carry:
                        raise RuntimeError(f"{c.carry} stray response bytes: an answer was not a success")
            if total is not None:
                continue
            t = last
            if base < 0 and t >= measure_from:
                base, t_base = done, t
            if sending and t >= deadline:
                sending = False
                t_end = t
                counted = done - base
                for c in conns:  # connections with nothing in flight end now
                    if c.inflight == 0:
                        sel.unregister(c.sock)
                        busy -= 1
        if total is not None:
            return done, now() - t0, done
        return counted, t_end - t_base, done
    finally:
        sel.close()
        for c in conns:
            c.sock.close()


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def run_job(job: LoadJob) -> tuple[int, float, int]:
    """Run one job in this process: (answers in the window, the window's seconds, all answers)."""
    return _drive(job)


def _worker_main(conn: multiprocessing.connection.Connection) -> None:
    """A worker process: run calls ``(function, args)`` until told to stop (``None``)."""
    while True:
        call = conn.recv()
        if call is None:
            return
        fn, args = call
        try:
            conn.send(("ok", fn(*args)))
        except Exception as exc:  # reported to the parent, which raises
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class LoadPool:
    """Worker processes, spawned once and reused by every scenario."""

    def __init__(self, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._workers: list[tuple[BaseProcess, multiprocessing.connection.Connection]] = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
            proc.start()
            child.close()
            self._workers.append((proc, parent))

    @property
    def size(self) -> int:
        """Worker processes."""
        return len(self._workers)

    def _collect(self, n: int) -> list[Any]:
        values: list[Any] = []
        errors: list[str] = []
        for _, pipe in self._workers[:n]:
            try:
                status, value = pipe.recv()
            except EOFError:
                status, value = "error", "a load worker process died"
            if status == "ok":
                values.append(value)
            else:
                errors.append(str(value))
        if errors:
            raise RuntimeError("load generator failed: " + "; ".join(errors))
        return values

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` in the first worker process and return its result."""
        self._workers[0][1].send((fn, args))
        result: T = self._collect(1)[0]
        return result

    def run(
        self,
        *,
        host: str,
        port: int,
        ring: bytes,
        request_bytes: int,
        response_bytes: int,
        conns: int,
        depth: int,
        warmup: float = 0.3,
        duration: float = 2.0,
        count: int | None = None,
        processes: int | None = None,
        spin: bool = True,
    ) -> LoadResult:
        """Spread ``conns`` connections over up to ``processes`` workers and run them together.

        ``count`` (requests per connection) makes a fixed-size run instead of a
        timed one. A timed run's rate is the sum of the workers' rates over the
        same window.
        """
        nproc = max(1, min(conns, processes or self.size, self.size))
        shares = [conns // nproc + (1 if i < conns % nproc else 0) for i in range(nproc)]
        start_at = time.monotonic() + 0.1
        for (_, pipe), share in zip(self._workers, shares, strict=False):
            job = LoadJob(
                host,
                port,
                ring,
                request_bytes,
                response_bytes,
                share,
                depth,
                warmup,
                duration,
                count,
                start_at,
                spin,
            )
            pipe.send((run_job, (job,)))
        values: list[tuple[int, float, int]] = self._collect(nproc)
        rates = [n / secs if secs > 0 else 0.0 for n, secs, _ in values]
        longest = max(secs for _, secs, _ in values)
        all_responses = sum(a for _, _, a in values)
        if count is None:
            return LoadResult(round(sum(rates) * longest), longest, conns, all_responses, rates)
        return LoadResult(sum(n for n, _, _ in values), longest, conns, all_responses, rates)

    def close(self) -> None:
        """Stop the workers."""
        for _, pipe in self._workers:
            with contextlib.suppress(OSError):
                pipe.send(None)
            pipe.close()
        for proc, _ in self._workers:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._workers = []

    def __enter__(self) -> LoadPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_processes() -> int:
    """Load worker processes: one core is left to the server, at most 4, at least 1."""
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def request_size(ring: bytes, n: int = RING_REQUESTS) -> int:
    """Bytes of one request in a ring of ``n`` equal-length requests."""
    size, rem = divmod(len(ring), n)
    if rem:
        raise ValueError("the ring's requests are not all the same length")
    return size
