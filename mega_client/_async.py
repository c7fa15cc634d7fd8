"""The asyncio client, :class:`AsyncMessageClient`: many requests in flight on one connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable
from types import TracebackType

from ._failures import Ending, ErrorFor, ending_errors, timeout_errors, unsent
from ._operations import (
    CLOSED,
    OPEN,
    ClientSettings,
    Delivery,
    Operation,
    Result,
)
from ._results import Consumed, Produced, TopicCreated
from ._retry import RetryPolicy
from .errors import (
    BrokerError,
    ClientStateError,
    MegaConnectionError,
    MegaError,
    MegaProtocolError,
    MegaTimeoutError,
)
from .protocol import (
    Answer,
    ClientConnection,
    LocalProtocolError,
    Request,
    Response,
    UnsolicitedFrame,
)
from .protocol.limits import DEFAULT_PORT

__all__ = ["AsyncMessageClient"]

log = logging.getLogger("mega_client")

#: Bytes read per ``recv`` when draining a socket whose transport has failed.
RECV_BYTES = 256 * 1024


class _Call:
    """One attempt of an operation, and the future its caller awaits."""

    __slots__ = ("future", "operation")

    def __init__(self, operation: Operation, future: asyncio.Future[Response]) -> None:
        self.operation = operation
        self.future = future


class _Clock:
    """The request timeout's one timer (CLIENT-11), for the oldest request in flight.

    :meth:`restart` runs for every answer, so it only moves the deadline; the
    timer, when it fires before the deadline, sets itself again for it.
    """

    __slots__ = ("_deadline", "_expired", "_loop", "_timeout", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, expired: Callable[[], None]) -> None:
        self._loop = loop
        self._timeout = timeout
        self._expired = expired
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def restart(self) -> None:
        """Start the clock again, from now."""
        self._deadline = self._loop.time() + self._timeout
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._fire)
        else:
            self._expired()


class _Pipeline(asyncio.Protocol):
    """One connection: the transport's bytes in and out of a :class:`ClientConnection`.

    Calls wait in ``_queue`` until the transport takes more bytes (it is not
    paused), then their requests are numbered, written and kept in
    ``_in_flight`` by correlation id until the :class:`ClientConnection` pairs
    an answer with them. Waiting in the queue costs no time against the
    request timeout, and a request still queued when the connection fails was
    never sent (``request_sent=False``).

    The timeout clock (CLIENT-11) runs for the oldest request in flight only:
    it starts when that request becomes the oldest, that is when it is written
    to an idle connection or when the one before it is answered. So a call
    waits at most ``request_timeout`` for the broker to get through its own
    request, however many were pipelined ahead of it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, request_timeout: float, first_correlation_id: int) -> None:
        self.protocol = ClientConnection(first_correlation_id=first_correlation_id)
        self.failure: MegaError | None = None
        self._loop = loop
        self._timeout = request_timeout
        self._queue: deque[_Call] = deque()
        self._in_flight: dict[int, _Call] = {}
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._clock = _Clock(loop, request_timeout, self._timed_out)
        self._closed = loop.create_future()

    @property
    def alive(self) -> bool:
        transport = self._transport
        return self.failure is None and transport is not None and not transport.is_closing()

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._take_events(None)

    def eof_received(self) -> bool:
        self.protocol.receive_data(b"")
        self._take_events(None)
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failure is None:
            # Reset, or a write failed: the transport stopped reading at once, but answers may
            # already be in the socket's receive buffer. They are answers: deliver them.
            self._read_what_is_left()
        self.protocol.receive_data(b"")
        self._take_events(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        # Not from inside this callback: the transport calls it from its own write handler, which
        # mishandles a write of ours failing there (it reports the connection lost twice).
        self._loop.call_soon(self._write_queued)

    # used by the client

    def submit(self, operation: Operation) -> asyncio.Future[Response]:
        """Queue one attempt of ``operation``; the future gets its answer or its failure."""
        if not self.alive:
            raise MegaConnectionError("the connection is closed", request_sent=False)
        call = _Call(operation, self._loop.create_future())
        self._queue.append(call)
        if not self._paused:
            self._write_queued()
        return call.future

    def fail(self, error_for: ErrorFor) -> None:
        """Close the connection at once (RST); every request on it gets ``error_for(request)``."""
        self._shut(self.protocol.close(), error_for)
        self._abort()

    async def close(self, error_for: ErrorFor, timeout: float) -> None:
        """Close gracefully (flush, FIN); requests still waiting get ``error_for(request)``."""
        self._shut(self.protocol.close(), error_for)
        transport = self._transport
        if transport is None:
            return
        if not transport.is_closing():
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        except asyncio.TimeoutError:
            transport.abort()

    # internals

    def _write_queued(self) -> None:
        """Write queued requests while the transport takes them (it pauses us from inside write)."""
        transport, protocol, queue, in_flight = self._transport, self.protocol, self._queue, self._in_flight
        assert transport is not None
        while queue and not self._paused and self.alive:  # alive: a failed write closes the transport
            call = queue.popleft()
            if call.future.done():  # cancelled before it was written: it never will be
                continue
            try:
                request = call.operation.request(protocol.next_correlation_id)
                data = protocol.send(request)
            except LocalProtocolError as exc:  # the operation's checks make this unreachable
                call.future.set_exception(MegaConnectionError(f"cannot send: {exc}", request_sent=False))
                continue
            in_flight[request.correlation_id] = call
            if len(in_flight) == 1:  # the oldest in flight now: its clock starts
                self._clock.restart()
            transport.write(data)

    def _timed_out(self) -> None:
        oldest = self.protocol.oldest_pending
        if oldest is not None and self.failure is None:
            self.fail(timeout_errors(oldest, self._timeout))

    def _take_events(self, lost: Exception | None) -> None:
        """Hand each answer to its caller; when the connection ends, fail the rest."""
        protocol, in_flight = self.protocol, self._in_flight
        answered = False
        while (event := protocol.next_event()) is not None:
            if isinstance(event, Answer):
                future = in_flight.pop(event.request.correlation_id).future
                if not future.done():  # its caller may have been cancelled
                    future.set_result(event.response)
                answered = True
            else:
                self._ended(event, lost)
                return
        if answered and in_flight:
            self._clock.restart()  # the next one's turn

    def _ended(self, event: Ending, lost: Exception | None) -> None:
        """The broker ended the connection with ``event``; ``lost`` is the transport's error, if any."""
        if isinstance(event, UnsolicitedFrame) and not event.unanswered and not self._queue:
            log.info("broker sent an unsolicited frame (code %s) on the idle connection", event.error_code)
        self._shut(event.unanswered, ending_errors(event, lost))
        self._abort()

    def _shut(self, unanswered: tuple[Request, ...], error_for: ErrorFor) -> None:
        """The connection is over: fail the requests written and left ``unanswered``, and every
        call still queued; the first failure is the connection's."""
        if self.failure is None:
            self.failure = error_for(unanswered[0] if unanswered else None)
        self._clock.stop()
        for request in unanswered:
            future = self._in_flight.pop(request.correlation_id).future
            if not future.done():
                future.set_exception(error_for(request))
        queue, self._queue = self._queue, deque()
        for call in queue:
            if not call.future.done():
                call.future.set_exception(error_for(None))

    def _abort(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def _read_what_is_left(self) -> None:
        """Read what the kernel already received, through a duplicate of the socket.

        The transport never reads again once a write has failed, and closes its
        socket right after :meth:`connection_lost`; a duplicate descriptor still
        reads the same receive buffer.
        """
        sock = self._transport.get_extra_info("socket") if self._transport is not None else None
        dup = getattr(sock, "dup", None)
        if dup is None:  # a transport without a socket: nothing to read from
            return
        with contextlib.suppress(OSError), dup() as reader:  # OSError: reset, or nothing more to read
            reader.setblocking(False)
            while self.failure is None and (chunk := reader.recv(RECV_BYTES)):
                self.protocol.receive_data(chunk)
                self._take_events(None)


class AsyncMessageClient(ClientSettings):
    """The asyncio MEGA client: :class:`MessageClient`'s surface, with ``await``.

    ::

        async with AsyncMessageClient("localhost", 8080) as client:
            await client.create_topic("orders")
            results = await asyncio.gather(*(client.produce("orders", f"m{i}") for i in range(100)))

    Concurrent calls share one connection: each request is written as soon as
    the connection takes more bytes (pipelining; while the broker reads slower
    than calls are made, they wait in the client's queue) and each answer goes
    to its caller, matched by order and checked by correlation id. The
    arguments, the retry rules and the exceptions are :class:`MessageClient`'s.

    ``request_timeout`` is how long the broker may take over each request: a
    request's clock starts once it has been written *and* every request
    written before it on the connection has been answered (for a lone
    request, when it is written). Time spent queued in the client, or waiting
    behind other requests in flight, does not count: gathering 100,000 calls
    does not time out the last ones while the broker is still answering the
    first. When it passes, the connection is closed: that request fails with
    :class:`MegaTimeoutError`, the others in flight with
    :class:`MegaConnectionError` (``request_sent=True``), and calls still
    queued with ``request_sent=False`` (never written: retried if the retry
    policy allows); the next call reconnects.

    When the connection fails (reset, EOF, the unsolicited frame, a failed
    write), answers that had already arrived are still delivered; only the
    requests left unanswered fail. Cancelling a call does not close the
    connection: a queued request is never written, a written one's answer is
    read and dropped.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        produce_delivery: Delivery = "at-most-once",
        first_correlation_id: int = 1,
    ) -> None:
        super().__init__(
            host,
            port,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            retry=retry,
            produce_delivery=produce_delivery,
            first_correlation_id=first_correlation_id,
        )
        self._pipeline: _Pipeline | None = None
        self._connect_lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "connected" if self.connected else self._state.value
        return f"<AsyncMessageClient {self.host}:{self.port} {state}>"

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is open."""
        return self._pipeline is not None and self._pipeline.alive

    async def connect(self) -> None:
        """Open the connection, retrying as the retry policy says (see :meth:`MessageClient.connect`)."""
        async with self._connect_lock:
            with self._connecting():
                await self._with_retries(None)

    async def close(self) -> None:
        """Close the connection (FIN). Idempotent. Calls still waiting fail with :class:`ClientStateError`."""
        self._state = CLOSED
        pipeline = self._pipeline  # kept: a reconnect goes on numbering where it stopped
        if pipeline is not None:
            await pipeline.close(
                lambda _request: ClientStateError("client was closed while the request was in flight"),
                self.connect_timeout,
            )

    async def __aenter__(self) -> AsyncMessageClient:
        if self._state is not OPEN:
            await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ operations

    async def create_topic(self, name: str) -> TopicCreated:
        """Create the topic ``name``; see :meth:`MessageClient.create_topic`."""
        result = await self._call(Operation.create_topic(name))
        assert isinstance(result, TopicCreated)
        return result

    async def produce(self, topic: str, payload: str | bytes) -> Produced:
        """Append ``payload`` to ``topic``; see :meth:`MessageClient.produce`."""
        result = await self._call(Operation.produce(topic, payload))
        assert isinstance(result, Produced)
        return result

    async def consume(self, topic: str, offset: int) -> Consumed:
        """Read the message at ``offset`` of ``topic``; see :meth:`MessageClient.consume`."""
        result = await self._call(Operation.consume(topic, offset))
        assert isinstance(result, Consumed)
        return result

    # ------------------------------------------------------------------ internals

    async def _call(self, operation: Operation) -> Result:
        self._require_open()
        result = await self._with_retries(operation)
        assert result is not None
        return result

    async def _with_retries(self, operation: Operation | None) -> Result | None:
        delays = self.retry.delays()
        while True:
            try:
                self._require_open()
                if operation is None:
                    await self._open()
                    return None
                return await self._attempt(operation)
            except (MegaConnectionError, MegaTimeoutError) as exc:
                delay = self._retry_delay(exc, operation, delays)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _open(self) -> _Pipeline:
        """One try at connecting. Raises MegaConnectionError or MegaTimeoutError."""
        where = f"{self.host}:{self.port}"
        loop = asyncio.get_running_loop()
        # A new connection goes on numbering where the last one stopped.
        last = self._pipeline
        first_cid = last.protocol.next_correlation_id if last is not None else self.first_correlation_id
        try:
            _transport, pipeline = await asyncio.wait_for(
                loop.create_connection(lambda: _Pipeline(loop, self.request_timeout, first_cid), self.host, self.port),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise MegaTimeoutError(f"connecting to {where} took over {self.connect_timeout}s") from None
        except OSError as exc:
            raise MegaConnectionError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        except UnicodeError as exc:  # a host name the resolver cannot encode (a label over 63 bytes)
            raise MegaConnectionError(f"cannot connect to {where}: {exc}") from exc
        if self._state is CLOSED:
            await pipeline.close(lambda _request: ClientStateError("client is closed"), self.connect_timeout)
            raise ClientStateError("client was closed while connecting")
        self._pipeline = pipeline
        log.debug("connected to %s", where)
        return pipeline

    async def _connection(self) -> _Pipeline:
        """The live connection, reconnecting (one try) if it was lost; one reconnect for all callers."""
        pipeline = self._pipeline
        if pipeline is not None and pipeline.alive:
            return pipeline
        async with self._connect_lock:
            self._require_open()
            pipeline = self._pipeline
            if pipeline is not None and pipeline.alive:
                return pipeline
            if pipeline is not None:
                log.info("connection was lost (%s); reconnecting", pipeline.failure)
            return await self._open()

    async def _attempt(self, operation: Operation) -> Result:
        """Send ``operation`` once and wait for its answer."""
        pipeline = await self._connection()
        # The pipeline sets the answer on the future, or the failure: the connection's end, or
        # the timeout it keeps for the oldest request in flight.
        response = await pipeline.submit(operation)
        try:
            return operation.result(response)
        except BrokerError:
            raise
        except MegaProtocolError as exc:  # e.g. a wrong topic echo: the stream is not to be trusted
            message, reason = str(exc), exc.reason

            def error_for(request: Request | None) -> MegaError:
                if request is None:
                    return unsent("a protocol error closed the connection")
                return MegaProtocolError(message, reason=reason)

            pipeline.fail(error_for)
            raise
