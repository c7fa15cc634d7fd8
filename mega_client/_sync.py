"""The blocking client, :class:`MessageClient`: one socket, one request at a time."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from types import TracebackType

from ._failures import describe, ending_errors
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
    MegaProtocolError,
    MegaTimeoutError,
)
from .protocol import (
    Answer,
    ClientConnection,
    ProtocolViolation,
    Request,
    Response,
    UnsolicitedFrame,
)
from .protocol.limits import DEFAULT_PORT

__all__ = ["MessageClient"]

log = logging.getLogger("mega_client")

#: Bytes asked of the socket per ``recv``: a 1 MiB payload takes a few calls.
RECV_BYTES = 256 * 1024


class MessageClient(ClientSettings):
    """A blocking MEGA client.

    ::

        with MessageClient("localhost", 8080) as client:
            client.create_topic("orders")
            produced = client.produce("orders", b"...")
            consumed = client.consume("orders", produced.offset)

    Arguments:
        host, port: the broker's address.
        connect_timeout: seconds one TCP connect may take.
        request_timeout: seconds one request may take: its clock starts when
            its first byte is sent (after connecting, which ``connect_timeout``
            bounds) and stops when the last byte of its answer is read (an
            overall deadline, not a per-``recv`` one). A retried request gets
            this again.
        retry: when to try again (:class:`RetryPolicy`; ``NO_RETRY`` never).
            It applies to :meth:`connect`, to reconnecting, and to requests
            that are safe to repeat; see ``produce_delivery``.
        produce_delivery: ``"at-most-once"`` (the default) never resends a
            PRODUCE that may have reached the broker: if the connection fails
            after it was sent, the error is raised (with
            ``request_sent=True``) and the message may or may not be stored.
            ``"at-least-once"`` resends it on a new connection, so the message
            may be stored twice.
        first_correlation_id: the correlation id of the first request (1 by
            default); a test can start near 2**31 - 1 to see the wrap.

    Correlation ids go 1, 2, ... (wrapping back to 1 after 2**31 - 1, never 0)
    and each answer's id is checked. Every call raises a :class:`~mega_client.MegaError`
    subclass on failure; see :mod:`mega_client.errors`. After a connection,
    timeout or protocol error the socket is closed and the next call opens a
    new one. Calls from several threads are serialised by a lock; :meth:`close`
    may be called from any thread and interrupts a call in progress.
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
        self._conn: _Connection | None = None
        # The connection's state, without the socket.
        self._protocol = ClientConnection(first_correlation_id=first_correlation_id)
        self._call_lock = threading.Lock()  # one call at a time
        self._conn_lock = threading.Lock()  # guards _conn against close() from another thread

    def __repr__(self) -> str:
        state = "connected" if self._conn is not None else self._state.value
        return f"<MessageClient {self.host}:{self.port} {state}>"

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True while a connection to the broker is open."""
        return self._conn is not None

    def connect(self) -> None:
        """Open the connection, retrying as the retry policy says.

        Raises :class:`MegaConnectionError` (refused, unreachable) or
        :class:`MegaTimeoutError` when every try failed, and
        :class:`ClientStateError` if the client is already connected. A closed
        client can be connected again.
        """
        with self._call_lock:
            try:
                with self._connecting():
                    self._with_retries(None)
            finally:
                if self._state is CLOSED:  # close() ran meanwhile, and left the socket to us
                    self._drop()

    def close(self) -> None:
        """Close the connection (FIN, then close). Idempotent; safe from any thread.

        A call blocked in another thread fails with :class:`ClientStateError`.
        """
        self._state = CLOSED
        if self._call_lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._call_lock.release()
            return
        # A call in another thread is using the socket: closing it under that call would free
        # its descriptor (a poll on -1, or on a number the OS has already given to another
        # socket). Shut it down instead: that wakes the call's poll, its send or recv fails,
        # and the call drops the socket itself (see _call) and raises ClientStateError.
        with self._conn_lock:
            if self._conn is not None:
                with contextlib.suppress(OSError):  # already reset or closed by the peer
                    self._conn.sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> MessageClient:
        if self._state is not OPEN:
            self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ operations

    def create_topic(self, name: str) -> TopicCreated:
        """Create the topic ``name`` (1 to 255 characters of ``[A-Za-z0-9._-]``).

        Raises :class:`TopicAlreadyExistsError` if it exists.
        """
        result = self._call(Operation.create_topic(name))
        assert isinstance(result, TopicCreated)
        return result

    def produce(self, topic: str, payload: str | bytes) -> Produced:
        """Append ``payload`` (str is encoded as UTF-8; at most 1 MiB) to ``topic``.

        Returns the :class:`Produced` result with the message's ``offset``.
        Raises :class:`TopicNotFoundError` if the topic does not exist.
        """
        result = self._call(Operation.produce(topic, payload))
        assert isinstance(result, Produced)
        return result

    def consume(self, topic: str, offset: int) -> Consumed:
        """Read the message at ``offset`` of ``topic`` (it stays there).

        Returns :class:`Consumed`: ``.payload`` is the exact bytes, ``.text``
        them decoded as UTF-8. Raises :class:`InvalidOffsetError` for an
        offset with no message and :class:`TopicNotFoundError`.
        """
        result = self._call(Operation.consume(topic, offset))
        assert isinstance(result, Consumed)
        return result

    # ------------------------------------------------------------------ internals

    def _call(self, operation: Operation) -> Result:
        # Arguments were checked by building ``operation``: nothing invalid gets here.
        with self._call_lock:
            try:
                self._require_open()
                result = self._with_retries(operation)
            finally:
                if self._state is CLOSED:  # close() ran meanwhile, and left the socket to us
                    self._drop()
            assert result is not None
            return result

    def _with_retries(self, operation: Operation | None) -> Result | None:
        """Run one attempt of ``operation`` (or just connect, for ``None``), retrying as allowed."""
        delays = self.retry.delays()
        while True:
            try:
                self._require_open()
                if operation is None:
                    self._open()
                    return None
                return self._attempt(operation)
            except (MegaConnectionError, MegaTimeoutError) as exc:
                delay = self._retry_delay(exc, operation, delays)
                if delay is None:
                    raise
                time.sleep(delay)

    def _open(self) -> _Connection:
        """One try at connecting. Raises MegaConnectionError or MegaTimeoutError."""
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except TimeoutError:
            raise MegaTimeoutError(f"connecting to {where} took over {self.connect_timeout}s") from None
        except OSError as exc:
            raise MegaConnectionError(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        except UnicodeError as exc:  # a host name the resolver cannot encode (a label over 63 bytes)
            raise MegaConnectionError(f"cannot connect to {where}: {exc}") from exc
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to tune
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Non-blocking from here on: each wait is an explicit poll with what is left of the
        # request's deadline, so a send or a recv that can go through at once costs one syscall
        # (a socket timeout would add a poll before every call, and a syscall per change of it).
        sock.setblocking(False)
        conn = _new_connection(sock)
        with self._conn_lock:
            if self._state is CLOSED:
                sock.close()
                raise ClientStateError("client was closed while connecting")
            self._conn = conn
            # A new connection goes on numbering where the last one stopped.
            self._protocol = ClientConnection(first_correlation_id=self._protocol.next_correlation_id)
        log.debug("connected to %s", where)
        return conn

    def _drop(self) -> None:
        """Close the connection, if any: shutdown (FIN) then close. Only with the call lock held."""
        with self._conn_lock:
            conn, self._conn = self._conn, None
        self._protocol.close()
        if conn is None:
            return
        with contextlib.suppress(OSError):  # already reset or closed by the peer
            conn.sock.shutdown(socket.SHUT_RDWR)
        conn.sock.close()

    def _connection(self) -> _Connection:
        """The open connection, reconnecting (one try) if the last one was lost or closed by the broker."""
        conn = self._conn
        if conn is not None and not self._still_open(conn):
            self._drop()
            conn = None
        if conn is None:
            conn = self._open()
        return conn

    def _still_open(self, conn: _Connection) -> bool:
        """Whether an idle connection is still usable, without blocking.

        No request is pending, so anything received since the last answer
        means the broker closed the connection, or sent its unsolicited frame
        before closing (as the reference broker does after 30 s idle). Either
        way a new connection is needed, and no request was sent on the old one,
        so even a PRODUCE can safely go out on the new one. Other bytes are a
        protocol error (PROTOCOL.md CLIENT-9).
        """
        protocol = self._protocol
        if not protocol.buffered and not conn.wait(_READABLE, 0.0):
            return True
        try:
            data = conn.sock.recv(RECV_BYTES)
        except BlockingIOError:
            data = None
        except OSError as exc:
            log.info("idle connection was lost (%s); reconnecting", exc)
            return False
        if data == b"":
            log.info("broker closed the idle connection; reconnecting")
            return False
        if data:
            protocol.receive_data(data)
        if not protocol.buffered:  # the bytes may also be left over from the last answer's read
            return True
        event = protocol.next_event()  # nothing pending: the unsolicited frame, None, or a violation
        if isinstance(event, ProtocolViolation):
            self._drop()
            raise MegaProtocolError.from_codec(event.error) from event.error
        if isinstance(event, UnsolicitedFrame):
            log.info("broker sent its unsolicited NETWORK_ERROR frame on the idle connection; reconnecting")
        else:  # the start of a frame: too short to judge, and the connection is suspect anyway
            log.warning("broker sent %d bytes on the idle connection; reconnecting", protocol.buffered)
        return False

    def _attempt(self, operation: Operation) -> Result:
        """Send ``operation`` once and read its answer."""
        conn = self._connection()
        request = operation.request(self._protocol.next_correlation_id)
        data = self._protocol.send(request)
        # The request's clock starts as its first byte goes out (README, "Timeouts").
        deadline = time.monotonic() + self.request_timeout
        try:
            self._send(conn, request, data, deadline)
            return operation.result(self._read_answer(conn, request, deadline))
        except BrokerError:
            raise  # a well-formed answer: the connection is fine
        except BaseException:
            # The stream is in an unknown state (or a late answer is on its way): drop it.
            self._drop()
            raise

    def _send(self, conn: _Connection, request: Request, data: bytes, deadline: float) -> None:
        """Write all of ``data`` by ``deadline``: ``sendall`` on a non-blocking socket."""
        sock = conn.sock
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                raise MegaConnectionError(
                    f"connection lost while sending {describe(request)}: {exc.strerror or exc}", request_sent=True
                ) from exc
            if view and not conn.wait(_WRITABLE, deadline - time.monotonic()):
                raise MegaTimeoutError(
                    f"sending {describe(request)} took over {self.request_timeout}s", request_sent=True
                )

    def _read_answer(self, conn: _Connection, request: Request, deadline: float) -> Response:
        """Receive until the answer to ``request`` (the only one pending) is complete."""
        protocol = self._protocol
        while True:
            event = protocol.next_event()
            if isinstance(event, Answer):
                return event.response
            if event is not None:
                raise ending_errors(event)(request)
            if not conn.wait(_READABLE, deadline - time.monotonic()):
                raise MegaTimeoutError(
                    f"no complete answer to {describe(request)} within {self.request_timeout}s", request_sent=True
                )
            try:
                chunk = conn.sock.recv(RECV_BYTES)
            except BlockingIOError:
                continue  # woken without data after all
            except OSError as exc:
                raise MegaConnectionError(
                    f"connection lost while waiting for the answer to {describe(request)}: {exc.strerror or exc}",
                    request_sent=True,
                ) from exc
            protocol.receive_data(chunk)  # b"": the broker closed, and next_event says how


_HAVE_POLL = hasattr(select, "poll")  # every platform but Windows
_READABLE = select.POLLIN if _HAVE_POLL else 1
_WRITABLE = select.POLLOUT if _HAVE_POLL else 4


class _Connection:
    """An open, non-blocking socket and the means to wait for it to be ready.

    This base class waits with ``select.select``; where ``select.poll``
    exists (everywhere but Windows) connections are :class:`_PolledConnection`.
    """

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def wait(self, events: int, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds (0: just look) for ``events``; False on timeout."""
        if timeout < 0:
            return False
        sock = self.sock
        want_read = events == _READABLE
        ready = select.select([sock] if want_read else [], [] if want_read else [sock], [sock], timeout)
        return any(ready)


class _PolledConnection(_Connection):
    """Waits with one ``select.poll`` object, made and registered once per connection.

    It watches POLLIN (waiting for an answer) until a send has to wait for
    room, then POLLOUT until the next wait for an answer: a ``modify`` only
    when the direction changes, never a new poll object per wait.
    """

    __slots__ = ("_events", "_poll")

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self._poll = select.poll()
        self._poll.register(sock, _READABLE)
        self._events = _READABLE

    def wait(self, events: int, timeout: float) -> bool:
        if timeout < 0:
            return False
        if events != self._events:
            self._poll.modify(self.sock, events)
            self._events = events
        return bool(self._poll.poll(timeout * 1000.0))


#: The kind of connection _open makes: the platform's best way of waiting, picked once.
_new_connection: type[_Connection] = _PolledConnection if _HAVE_POLL else _Connection
