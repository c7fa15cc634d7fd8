"""The asyncio client, :class:`AsyncMessageClient`: many requests in flight on one connection."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections import deque
from collections.abc import Callable
from types import TracebackType

from ._operations import (
    CLOSED,
    OPEN,
    ClientSettings,
    CorrelationIds,
    Delivery,
    Operation,
    Result,
)
from ._results import Consumed, Produced, TopicCreated
from ._retry import RetryPolicy
from .errors import (
    BrokerError,
    ClientStateError,
    ConnectionClosedByBroker,
    MegaConnectionError,
    MegaError,
    MegaProtocolError,
    MegaTimeoutError,
)
from .protocol import (
    MessageType,
    RemoteProtocolError,
    Response,
    ResponseDecoder,
    UnsolicitedError,
    encode_request,
)
from .protocol.limits import DEFAULT_PORT

__all__ = ["AsyncMessageClient"]

log = logging.getLogger("mega_client")

ErrorFactory = Callable[[], MegaError]


class _Pipeline(asyncio.Protocol):
    """One connection: requests written in order, answers matched in order.

    The broker answers a connection's requests in the order it got them, and
    the codec's :class:`ResponseDecoder` checks each answer's correlation id
    against the oldest request still waiting, so the ``waiting`` queue (same
    order) says whose answer each decoded frame is. When the connection fails,
    every request still waiting gets the error.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._decoder = ResponseDecoder()
        self._waiting: deque[tuple[int, asyncio.Future[Response]]] = deque()
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed = loop.create_future()
        self.failure: BaseException | None = None

    @property
    def alive(self) -> bool:
        return self.failure is None and self._transport is not None

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.failure is not None:
            return
        decoder = self._decoder
        decoder.feed(data)
        while True:
            try:
                event = decoder.next_response()
            except RemoteProtocolError as exc:
                self.fail(functools.partial(MegaProtocolError.from_codec, exc))
                return
            if event is None:
                return
            if isinstance(event, UnsolicitedError):
                if not self._waiting:
                    log.info("broker sent an unsolicited frame (code %s) on the idle connection", event.error_code)
                self.fail(functools.partial(ConnectionClosedByBroker, event.error_code))
                return
            _cid, future = self._waiting.popleft()
            if not future.done():  # its caller may have been cancelled
                future.set_result(event)

    def eof_received(self) -> bool:
        buffered = self._decoder.buffered
        where = f"mid-response, after {buffered} bytes of an answer" if buffered else "before answering"
        self.fail(lambda: MegaConnectionError(f"broker closed the connection {where}", request_sent=True))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self.fail(lambda: MegaConnectionError("the connection was closed", request_sent=True))
        else:
            reason = getattr(exc, "strerror", None) or exc
            self.fail(lambda: MegaConnectionError(f"connection lost: {reason}", request_sent=True))
        self._wake_drainers()
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drainers()

    # used by the client

    def send(self, kind: MessageType, cid: int, data: bytes) -> asyncio.Future[Response]:
        """Write one request; the future gets its answer (or the connection's failure)."""
        if not self.alive:
            raise MegaConnectionError("the connection is closed", request_sent=False)
        assert self._transport is not None
        future: asyncio.Future[Response] = self._loop.create_future()
        # No await between these three: the wire order, the decoder's order and ours agree.
        self._decoder.expect(kind, cid)
        self._waiting.append((cid, future))
        self._transport.write(data)
        return future

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark."""
        if self._paused and self.failure is None:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def fail(self, make_error: ErrorFactory) -> None:
        """Mark the connection dead, close it, give every waiting request a fresh error."""
        self._fail_waiting(make_error)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    async def close(self, make_error: ErrorFactory, timeout: float) -> None:
        """Close gracefully (flush, FIN); requests still waiting get ``make_error()``."""
        self._fail_waiting(make_error)
        transport = self._transport
        if transport is None:
            return
        if not transport.is_closing():
            transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        except asyncio.TimeoutError:
            transport.abort()

    def _fail_waiting(self, make_error: ErrorFactory) -> None:
        """Mark the connection dead (the first failure stays), give every waiting request a
        fresh ``make_error()`` and wake the writers waiting for the buffer to drain."""
        if self.failure is None:
            self.failure = make_error()
        waiting, self._waiting = self._waiting, deque()
        for _cid, future in waiting:
            if not future.done():
                future.set_exception(make_error())
        self._wake_drainers()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class AsyncMessageClient(ClientSettings):
    """The asyncio MEGA client: :class:`MessageClient`'s surface, with ``await``.

    ::

        async with AsyncMessageClient("localhost", 8080) as client:
            await client.create_topic("orders")
            results = await asyncio.gather(*(client.produce("orders", f"m{i}") for i in range(100)))

    Concurrent calls share one connection: each request is written as soon as
    it is made (pipelining) and each answer goes to its caller, matched by
    order and checked by correlation id. The arguments, the retry rules and the
    exceptions are :class:`MessageClient`'s. ``request_timeout`` bounds each
    call from writing its request to its answer; when it passes, the
    connection is closed (the requests still waiting on it fail with
    :class:`MegaConnectionError` and are retried if that is safe) and the next
    call reconnects. Cancelling a call does not close the connection: its
    answer is read and dropped.
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
    ) -> None:
        super().__init__(
            host,
            port,
            connect_timeout=connect_timeout,
            request_timeout=request_timeout,
            retry=retry,
            produce_delivery=produce_delivery,
        )
        self._pipeline: _Pipeline | None = None
        self._cids = CorrelationIds()
        self._connect_lock = asyncio.Lock()

    def __repr__(self) -> str:
        state = "connected" if self.connected else self._state
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
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            await pipeline.close(
                lambda: ClientStateError("client was closed while the request was in flight"),
                self.connect_timeout,
            )

    async def __aenter__(self) -> AsyncMessageClient:
        if self._state != OPEN:
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
        try:
            _transport, pipeline = await asyncio.wait_for(
                loop.create_connection(lambda: _Pipeline(loop), self.host, self.port),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise MegaTimeoutError(f"connecting to {where} took over {self.connect_timeout}s") from None
        except OSError as exc:
            raise MegaConnectionError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        except UnicodeError as exc:  # a host name the resolver cannot encode (a label over 63 bytes)
            raise MegaConnectionError(f"cannot connect to {where}: {exc}") from exc
        if self._state == CLOSED:
            await pipeline.close(lambda: ClientStateError("client is closed"), self.connect_timeout)
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
        cid = next(self._cids)
        data = encode_request(operation.request(cid))
        future = pipeline.send(operation.kind, cid, data)
        try:
            event = await asyncio.wait_for(_answer(pipeline, future), self.request_timeout)
        except asyncio.TimeoutError:
            pipeline.fail(
                lambda: MegaConnectionError(
                    f"connection closed after request {cid} timed out", request_sent=True
                )
            )
            raise MegaTimeoutError(
                f"no complete answer to {operation.name} (request {cid}) within {self.request_timeout}s",
                request_sent=True,
            ) from None
        # Anything else _answer raises is the connection's MegaError (its ErrorFactory's), set on
        # the future by the pipeline; drain() itself only ever waits (its futures get None).
        try:
            return operation.result(event)
        except BrokerError:
            raise
        except MegaProtocolError as exc:  # e.g. a wrong topic echo: the stream is not to be trusted
            message, reason = str(exc), exc.reason
            pipeline.fail(lambda: MegaProtocolError(message, reason=reason))
            raise


async def _answer(pipeline: _Pipeline, future: asyncio.Future[Response]) -> Response:
    try:
        await pipeline.drain()
    except BaseException:
        # Cancelled (a timeout) while the write buffer was full: nobody will await the answer's
        # future, so cancel it now; else the pipeline's failure, set on it later, is never retrieved.
        future.cancel()
        raise
    return await future
