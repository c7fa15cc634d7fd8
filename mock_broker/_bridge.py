"""LoopBridge: run work on the broker's event loop from another thread, and wait for it with a deadline.

The broker's state (topics, records, rules' counters) belongs to its loop and
is touched only there. The control plane's HTTP threads hand every operation
to the loop through this bridge and wait for the answer; an operation the loop
has not started when the deadline passes is cancelled, never run late.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Unavailable(Exception):
    """The broker's loop did not run the operation: it is stopping, or busy past the deadline."""


class LoopBridge:
    """Runs callables and coroutines on ``loop`` for other threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._closed = False

    def call(self, fn: Callable[[], T], timeout: float) -> T:
        """``fn()`` run on the loop; its exception is raised here. Unavailable past ``timeout`` s."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():  # the caller gave up waiting
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        self._track(fut)
        try:
            self._loop.call_soon_threadsafe(run)
        except RuntimeError:  # the loop is closed
            self._untrack(fut)
            raise Unavailable("the broker is stopped") from None
        return self._wait(fut, timeout)

    def run(self, make: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
        """The coroutine ``make()`` run on the loop (cancelled past ``timeout`` s: Unavailable)."""
        coro = make()
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:
            coro.close()
            raise Unavailable("the broker is stopped") from None
        self._track(fut)
        return self._wait(fut, timeout)

    def close(self) -> None:
        """Refuse new work, and fail what is waiting (the broker is stopping)."""
        with self._lock:
            self._closed = True
            pending, self._pending = self._pending, set()
        for fut in pending:
            fut.cancel()

    def _track(self, fut: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self._pending.add(fut)
        if closed:
            fut.cancel()
            raise Unavailable("the broker is stopping")

    def _untrack(self, fut: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def _wait(self, fut: concurrent.futures.Future[T], timeout: float) -> T:
        try:
            done, _ = concurrent.futures.wait([fut], timeout)
            if not done and fut.cancel():
                raise Unavailable(f"the broker's loop did not answer within {timeout:g} s")
            if fut.cancelled():
                raise Unavailable("the broker is stopping")
            return fut.result(timeout)  # or the operation's own exception
        finally:
            self._untrack(fut)
