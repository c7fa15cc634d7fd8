"""MockBroker: the asyncio broker, as an async context manager."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from mega_client.protocol.limits import topic_name_problem

from ._config import BrokerConfig, make_config
from ._faults import FaultRegistry, FaultRule
from ._protocol import BrokerProtocol
from ._record import ConnectionRecord
from ._state import BrokerState, Totals
from ._storage import StoredMessage

log = logging.getLogger("mock_broker")


class MockBroker:
    """An in-process MEGA broker on the running asyncio loop.

    ``MockBroker(port=0, profile="reference", ...)`` takes :class:`BrokerConfig`
    fields as keywords, or ``MockBroker(config=BrokerConfig(...))`` (keywords
    then override the config's fields)::

        async with MockBroker(port=0) as broker:
            reader, writer = await asyncio.open_connection(*broker.address)
            ...
            assert broker.topics() == {"orders": 3}

    The inspection methods return the broker's live objects; call them from the
    loop's thread (use :class:`ThreadedMockBroker` from other threads).
    """

    def __init__(self, config: BrokerConfig | None = None, **options: Any) -> None:
        self.config = make_config(config, options)
        self._state = BrokerState(self.config)
        self._state.refuse_connections = self._refuse_for
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        for rule in self.config.faults:
            self._state.faults.add(rule)
        self._state.faults.on_add = self._fault_added
        self._server: asyncio.Server | None = None
        self._host = self.config.host
        self._port = self.config.port
        self._relisten: asyncio.TimerHandle | None = None
        self._refuse_again = 0.0
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> MockBroker:
        """Start listening (on an ephemeral port when ``port`` is 0)."""
        if self._server is not None:
            raise RuntimeError("broker already started")
        self._server = await self._listen(self.config.port)
        self._host, self._port = self._server.sockets[0].getsockname()[:2]
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        log.debug("listening on %s:%d (profile %s)", self._host, self._port, self.config.profile)
        for rule in self._state.faults:
            if rule.refuses_at_add:
                self._refuse_for(rule.refuse_seconds)
        return self

    async def _listen(self, port: int) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: BrokerProtocol(self._state),
            self.config.host,
            port,
            backlog=self.config.backlog,
            reuse_address=True,
        )

    async def stop(self) -> None:
        """Stop listening and drop every connection at once, whatever is planned or pending."""
        if self._stopping:
            return
        self._stopping = True
        if self._relisten is not None:
            self._relisten.cancel()
        server, self._server = self._server, None
        if server is not None:
            await close_server(server)
        self._abort_all()
        # A connection accepted just before the close gets its protocol a loop step or two
        # later; let that happen so it is aborted too, not left for the garbage collector
        # to find after the loop has closed.
        for _ in range(3):
            await asyncio.sleep(0)
            self._abort_all()
        if self._state.live:
            try:
                await asyncio.wait_for(self._state.wait_no_connections(), 5.0)
            except asyncio.TimeoutError:  # pragma: no cover - the loop is wedged
                log.warning("%d connections still open at stop", len(self._state.live))
        if server is not None:
            await server.wait_closed()
        self._log_fault_summary()
        self._stopping = False

    def _abort_all(self, reason: str = "broker stopped") -> None:
        for proto in list(self._state.live.values()):
            proto.abort(reason)

    def _log_fault_summary(self) -> None:
        for rule in self._state.faults:
            if rule.fired:
                log.info("fault %s: applied %d times (%d matches)", rule, rule.fired, rule.matched)

    async def __aenter__(self) -> MockBroker:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _fault_added(self, rule: FaultRule) -> None:
        """A ``connect:refuse`` rule takes the listener down as soon as it is added.

        From another thread this waits until the listener is down, so that a
        connection attempted right after ``faults.add`` is refused.
        """
        if not rule.refuses_at_add or self._loop is None or self._stopping:
            return
        seconds = rule.refuse_seconds
        if threading.get_ident() == self._loop_thread:
            self._refuse_for(seconds)
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def refuse() -> None:
            try:
                self._refuse_for(seconds)
            finally:
                done.set_result(None)

        with contextlib.suppress(RuntimeError, concurrent.futures.TimeoutError):  # loop closed or wedged
            self._loop.call_soon_threadsafe(refuse)
            done.result(5.0)

    def _refuse_for(self, seconds: float) -> None:
        """Stop listening for ``seconds``: new connections are refused, then listen again."""
        loop = asyncio.get_running_loop()
        server, self._server = self._server, None
        if server is None:
            # Already refusing: make the window last at least ``seconds`` from now.
            if self._relisten is None:  # listening again right now: refuse once it is up
                self._refuse_again = max(self._refuse_again, seconds)
            elif self._relisten.when() < loop.time() + seconds:
                self._relisten.cancel()
                self._relisten = loop.call_later(seconds, self._relisten_callback)
            return
        server.close()
        log.info("not listening for %.3fs (refuse fault)", seconds)
        if self._relisten is not None:
            self._relisten.cancel()
        self._relisten = loop.call_later(seconds, self._relisten_callback)

    def _relisten_callback(self) -> None:
        self._relisten = None
        if self._stopping:
            return
        task = asyncio.get_running_loop().create_task(self._relisten_now())
        task.add_done_callback(_log_relisten_failure)

    async def _relisten_now(self) -> None:
        server = await self._listen(self._port)
        if self._stopping or self._server is not None:
            server.close()
        else:
            self._server = server
            log.info("listening again on %s:%d", self._host, self._port)
            again, self._refuse_again = self._refuse_again, 0.0
            if again:
                self._refuse_for(again)

    # -- inspection -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port it listens on (the real one once started with ``port=0``)."""
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``, ready for ``socket.create_connection``."""
        return (self._host, self._port)

    @property
    def profile(self) -> str:
        """``"spec"`` or ``"reference"``."""
        return self.config.profile

    @property
    def faults(self) -> FaultRegistry:
        """The fault rules (see :class:`FaultRule`)."""
        return self._state.faults

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of handler failures (each answered INTERNAL_ERROR); empty if all went well."""
        return list(self._state.internal_errors)

    def topics(self) -> dict[str, int]:
        """Topic name -> number of messages, in creation order."""
        return self._state.store.counts()

    def messages(self, topic: str, offset: int = 0, limit: int | None = None) -> list[StoredMessage]:
        """The messages stored in ``topic`` from ``offset``, at most ``limit`` (KeyError if no such topic)."""
        return self._state.store.messages(topic, offset, limit)

    def message_count(self, topic: str) -> int | None:
        """How many messages ``topic`` holds (``None`` if there is no such topic); O(1)."""
        entries = self._state.store.logs.get(topic)
        return None if entries is None else len(entries)

    def connections(self) -> list[ConnectionRecord]:
        """Records of the connections open now."""
        return [r for r in self._state.records if not r.closed]

    def records(self) -> list[ConnectionRecord]:
        """Records of every connection since start (or since :meth:`reset`), open and closed."""
        return list(self._state.records)

    def record(self, conn_id: int) -> ConnectionRecord:
        """The record of connection ``conn_id`` (KeyError if unknown)."""
        proto = self._state.live.get(conn_id)
        if proto is not None:
            return proto.core.record
        for r in self._state.records:
            if r.id == conn_id:
                return r
        raise KeyError(conn_id)

    def totals(self) -> Totals:
        """Counts over the open connections and those closed since the last :meth:`reset`.

        ``connections_open``, ``connections_closed``, ``requests``, ``bytes_received``,
        ``bytes_sent``; it costs O(open connections), whatever the number of records.
        """
        return self._state.totals()

    def connection_stats(self, conn_id: int) -> dict[str, int]:
        """Buffer sizes of a live connection: ``write_buffer`` (answers waiting) and ``read_buffer``."""
        proto = self._state.live[conn_id]
        return {"write_buffer": proto.write_buffer_size, "read_buffer": proto.read_buffer_size}

    # -- control ----------------------------------------------------------------------

    def on_connection_closed(self, listener: Callable[[ConnectionRecord], None]) -> None:
        """Call ``listener(record)`` on the loop as each connection closes (it must not block)."""
        self._state.on_closed.append(listener)

    def reset(self) -> None:
        """Drop every topic, the records of closed connections, and every fault rule."""
        self._state.reset()

    def create_topic(self, name: str) -> None:
        """Create ``name`` directly (test setup); ValueError for a bad or existing name."""
        problem = topic_name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        if not self._state.store.create(name):
            raise ValueError(f"topic {name!r} exists")

    def produce(self, topic: str, payload: bytes, timestamp: int = 0) -> int:
        """Append a message directly (test setup); return its offset (KeyError if no topic)."""
        return self._state.store.append(topic, timestamp, bytes(payload))

    async def drop_connections(self, timeout: float | None = 5.0) -> int:
        """Abort every open connection (RST) and wait until each is closed; return how many there were."""
        count = len(self._state.live)
        self._abort_all("dropped by the broker")
        await self.wait_closed_connections(timeout)
        return count

    async def wait_closed_connections(self, timeout: float | None = 5.0) -> None:
        """Wait until no connection is open (asyncio.TimeoutError after ``timeout`` s)."""
        await asyncio.wait_for(self._state.wait_no_connections(), timeout)


async def close_server(server: asyncio.Server) -> None:
    """Close ``server`` once the connections it has already taken are built.

    asyncio builds an accepted connection's transport a loop step after the accept; a
    server closed in between cannot take it, and its socket is left to the garbage
    collector, on 3.13.0 with an unraisable TypeError (CPython gh-109564; most py313
    runs of the kit's tests printed one). So a selector loop first stops accepting (the
    reader on each listening socket) and runs the steps that build what it took; other
    loops (uvloop) manage their listening sockets themselves.
    """
    loop = server.get_loop()
    if isinstance(loop, asyncio.SelectorEventLoop):
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
        for _ in range(2):  # an accept's build runs in the next step
            await asyncio.sleep(0)
    server.close()


def _log_relisten_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not listen again after a refuse fault: %s", task.exception())
