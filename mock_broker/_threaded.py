"""ThreadedMockBroker: a MockBroker on its own loop in a background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

from ._config import BrokerConfig, make_config
from ._faults import FaultRegistry
from ._record import ConnectionRecord
from ._server import MockBroker
from ._storage import StoredMessage

T = TypeVar("T")

_START_TIMEOUT = 10.0


class ThreadedMockBroker:
    """A blocking front to :class:`MockBroker` for synchronous code and tests.

    ::

        with ThreadedMockBroker(port=0, profile="reference") as broker:
            sock = socket.create_connection(broker.address)
            ...
            assert broker.topics() == {"orders": 1}

    The broker's loop runs in a daemon thread. Every inspection method runs on
    that loop and returns a snapshot, so it is safe from any thread.
    """

    def __init__(self, config: BrokerConfig | None = None, **options: Any) -> None:
        self.config = make_config(config, options)
        self._broker = MockBroker(self.config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> ThreadedMockBroker:
        """Start the loop thread and the broker; return once it listens."""
        if self._thread is not None:
            raise RuntimeError("broker already started")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name=f"mock-broker-{id(self):x}", daemon=True
        )
        self._thread.start()
        try:
            started.result(_START_TIMEOUT)
        except BaseException:
            started.cancel()  # a broker that starts after all sees this and stops itself
            self._thread.join(_START_TIMEOUT)
            self._thread = None
            raise
        return self

    def _run(self, started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(started))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self, started: concurrent.futures.Future[None]) -> None:
        self._stop_event = asyncio.Event()
        try:
            await self._broker.start()
        except BaseException as exc:
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                started.set_exception(exc)
            return
        try:
            started.set_result(None)
        except concurrent.futures.InvalidStateError:  # start() gave up waiting: nobody would stop it
            await self._broker.stop()
            return
        try:
            await self._stop_event.wait()
        finally:
            await self._broker.stop()

    def stop(self) -> None:
        """Stop the broker and join its thread (idempotent)."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None or loop is None or event is None:
            return
        if not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closed meanwhile
                loop.call_soon_threadsafe(event.set)
        thread.join(_START_TIMEOUT)
        self._thread = None

    def __enter__(self) -> ThreadedMockBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- running things on the loop ---------------------------------------------------

    def call(self, fn: Callable[[], T], timeout: float = _START_TIMEOUT) -> T:
        """Run ``fn()`` on the broker's loop and return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("broker not started")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run a coroutine on the broker's loop and wait for it."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("broker not started")

        async def wrap() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrap(), loop).result(timeout)

    # -- inspection (snapshots) -------------------------------------------------------

    @property
    def broker(self) -> MockBroker:
        """The underlying MockBroker (touch it only through :meth:`call`)."""
        return self._broker

    @property
    def host(self) -> str:
        return self._broker.host

    @property
    def port(self) -> int:
        return self._broker.port

    @property
    def address(self) -> tuple[str, int]:
        return self._broker.address

    @property
    def profile(self) -> str:
        return self.config.profile

    @property
    def faults(self) -> FaultRegistry:
        """The fault rules; the registry is safe to use from any thread."""
        return self._broker.faults

    @property
    def internal_errors(self) -> list[str]:
        return self.call(lambda: self._broker.internal_errors)

    def topics(self) -> dict[str, int]:
        return self.call(self._broker.topics)

    def messages(self, topic: str) -> list[StoredMessage]:
        return self.call(lambda: self._broker.messages(topic))

    def connections(self) -> list[ConnectionRecord]:
        return self.call(lambda: [r.snapshot() for r in self._broker.connections()])

    def records(self) -> list[ConnectionRecord]:
        return self.call(lambda: [r.snapshot() for r in self._broker.records()])

    def record(self, conn_id: int) -> ConnectionRecord:
        return self.call(lambda: self._broker.record(conn_id).snapshot())

    def connection_stats(self, conn_id: int) -> dict[str, int]:
        return self.call(lambda: self._broker.connection_stats(conn_id))

    def reset(self) -> None:
        self.call(self._broker.reset)

    def create_topic(self, name: str) -> None:
        self.call(lambda: self._broker.create_topic(name))

    def produce(self, topic: str, payload: bytes, timestamp: int = 0) -> int:
        return self.call(lambda: self._broker.produce(topic, payload, timestamp))

    def wait_closed_connections(self, timeout: float | None = 5.0) -> None:
        """Block until no connection is open (TimeoutError after ``timeout`` s)."""
        try:
            self.run(self._broker.wait_closed_connections(timeout))
        except asyncio.TimeoutError:
            raise TimeoutError(f"connections still open after {timeout}s") from None
