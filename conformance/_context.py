"""What a client case works with: the driver, the case's own mock broker, and the judge's tools."""

from __future__ import annotations

import base64
import binascii
import contextlib
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NoReturn, Protocol

from ._case import Case, CaseFailed, CaseSkipped
from ._driver import BASE_OPS, Driver, DriverError, Reply, reply_from
from ._limits import PIPELINE_REQUESTS
from ._wire import TYPE_NAMES, Split, WireRequest, split_requests

#: The client timeout a case connects with unless it says otherwise.
DEFAULT_TIMEOUT_MS = 2000
#: The slowest a driver may answer: 2 s plus this many times the client's timeout.
DEADLINE_TIMEOUTS = 3
DEADLINE_SLACK_S = 2.0
#: More time the runner gives a pipeline reply, per request in it.
PIPELINE_SLACK_S = 0.005


def deadline_for(timeout_ms: int) -> float:
    """Seconds the runner waits for the reply to one command (docs/CONFORMANCE.md)."""
    return DEADLINE_SLACK_S + DEADLINE_TIMEOUTS * timeout_ms / 1000


class Broker(Protocol):
    """What the judge uses of mock_broker.ThreadedMockBroker."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def faults(self) -> Any: ...

    def records(self) -> list[Any]: ...

    def topics(self) -> Mapping[str, int]: ...

    def messages(self, topic: str) -> list[Any]: ...

    def create_topic(self, name: str) -> None: ...

    def produce(self, topic: str, payload: bytes, timestamp: int = 0) -> int: ...

    def stop(self) -> None: ...


BrokerFactory = Callable[..., Broker]


class ClientContext:
    """Everything a client case needs; see docs/CONFORMANCE.md for how cases judge."""

    def __init__(self, case: Case, driver: Driver, start_broker: BrokerFactory) -> None:
        self.case = case
        self.driver = driver
        self._start_broker = start_broker
        opts = dict(case.options)
        self.timeout_ms: int = int(opts.pop("timeout_ms", DEFAULT_TIMEOUT_MS))
        self.broker_options: dict[str, Any] = opts
        self.brokers: list[Broker] = []
        self.broker: Broker = self._new_broker(0)
        self._connect_timeout_ms = self.timeout_ms
        self._sockets: list[socket.socket] = []
        #: What :meth:`note` recorded, shown with the verdict.
        self.notes: list[str] = []

    # -- broker --------------------------------------------------------------

    def _new_broker(self, port: int) -> Broker:
        broker = self._start_broker(port=port, **self.broker_options)
        self.brokers.append(broker)
        return broker

    def restart_broker(self) -> Broker:
        """Stop the broker and start a fresh, empty one on the same port."""
        port = self.broker.port
        self.broker.stop()
        self.broker = self._new_broker(port)
        return self.broker

    def stop_brokers(self) -> None:
        for broker in self.brokers:
            with contextlib.suppress(Exception):
                broker.stop()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def fault(self, *rules: str) -> None:
        """Add fault rules to the broker (mock_broker's grammar)."""
        for rule in rules:
            self.broker.faults.add(rule)

    def records(self) -> list[Any]:
        """Every connection the current broker has seen, oldest first."""
        return list(self.broker.records())

    def all_records(self) -> list[Any]:
        """Every connection every broker of this case has seen."""
        out: list[Any] = []
        for broker in self.brokers:
            with contextlib.suppress(Exception):
                out.extend(broker.records())
        return out

    def received(self, conn: int = -1) -> bytes:
        """The raw bytes the broker received on connection ``conn`` (index; -1 is the last)."""
        recs = self.records()
        if not recs:
            self.fail("the broker saw no connection at all")
        return bytes(recs[conn].received)

    def split(self, conn: int = -1) -> Split:
        """Connection ``conn``'s received bytes, cut into requests by the spec's layouts."""
        return split_requests(self.received(conn))

    def sent_requests(self) -> list[WireRequest]:
        """Every request every connection sent, connection by connection, up to the first bad bytes."""
        out: list[WireRequest] = []
        for rec in self.all_records():
            out.extend(split_requests(bytes(rec.received)).requests)
        return out

    def the_request(self, message_type: int, *, conn: int = -1, index: int = -1) -> WireRequest:
        """The ``index``-th request of ``message_type`` on ``conn``; fails the case when there is none."""
        split = self.split(conn)
        found = split.of_type(message_type)
        if not found or (index >= 0 and index >= len(found)) or (index < 0 and -index > len(found)):
            why = f" ({split.problem})" if split.problem else ""
            self.fail(
                f"no {TYPE_NAMES.get(message_type, message_type)} request could be read from the "
                f"{len(self.received(conn))} bytes received{why}"
            )
        return found[index]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 1.0, interval: float = 0.01) -> bool:
        """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
        end = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(interval)

    def free_port(self) -> int:
        """A port with nothing listening on it (connections are refused) for the rest of the case.

        A socket stays bound to it without listening, so that no other program can take the port
        meanwhile and start accepting there.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._sockets.append(sock)
        return int(sock.getsockname()[1])

    def blackhole_port(self) -> int:
        """A port whose listener never accepts and whose backlog is full: a connect there hangs."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        self._sockets.append(listener)
        port = int(listener.getsockname()[1])
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                filler.connect(("127.0.0.1", port))
            self._sockets.append(filler)
        time.sleep(0.05)
        return port

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)

    # -- driver commands -----------------------------------------------------

    def send(self, op: str, *, deadline: float | None = None, **fields: Any) -> Reply:
        """Send any command; an ``unsupported`` reply to an op beyond the base set skips the case."""
        reply = self.driver.request(op, fields, deadline if deadline is not None else self.deadline)
        if not reply.ok and reply.error is not None and reply.error.type == "unsupported" and op not in BASE_OPS:
            raise CaseSkipped(f"the driver does not support op {op!r}")
        return reply

    @property
    def deadline(self) -> float:
        return deadline_for(self._connect_timeout_ms)

    def connect(
        self,
        *,
        timeout_ms: int | None = None,
        host: str | None = None,
        port: int | None = None,
        first_correlation_id: int | None = None,
    ) -> Reply:
        """``connect``; ``first_correlation_id`` is the contract's optional hint (a client may ignore it)."""
        ms = self.timeout_ms if timeout_ms is None else timeout_ms
        self._connect_timeout_ms = ms
        extra = {} if first_correlation_id is None else {"first_correlation_id": first_correlation_id}
        return self.send(
            "connect",
            host=self.broker.host if host is None else host,
            port=self.broker.port if port is None else port,
            timeout_ms=ms,
            **extra,
        )

    def create_topic(self, topic: str) -> Reply:
        return self.send("create_topic", topic=topic)

    def produce(self, topic: str, payload: bytes) -> Reply:
        return self.send("produce", topic=topic, payload=base64.b64encode(payload).decode("ascii"))

    def consume(self, topic: str, offset: int) -> Reply:
        return self.send("consume", topic=topic, offset=offset)

    def close(self) -> Reply:
        return self.send("close")

    def pipeline(self, requests: Sequence[Mapping[str, Any]], *, deadline: float | None = None) -> list[Reply]:
        """Put ``requests`` in flight together (the ``pipeline`` op); one reply per request, in order.

        A driver that answers ``unsupported`` skips the case; a reply that is not a
        ``results`` list of the right length fails it ("the driver broke the pipeline contract").
        """
        if not 1 <= len(requests) <= PIPELINE_REQUESTS:
            raise ValueError(f"a pipeline holds 1 to {PIPELINE_REQUESTS} requests, not {len(requests)}")
        wait = deadline if deadline is not None else self.deadline + PIPELINE_SLACK_S * len(requests)
        reply = self.send("pipeline", requests=[dict(r) for r in requests], deadline=wait)
        if not reply.ok:
            self.fail(f"pipeline of {len(requests)} requests: expected their results, got {reply.describe()}")
        results = reply.result.get("results")
        if not isinstance(results, list) or len(results) != len(requests):
            got = f"a list of {len(results)}" if isinstance(results, list) else type(results).__name__
            self.fail(
                f"the driver broke the pipeline contract: {len(requests)} requests answered with {got} "
                "as 'results' (docs/CONFORMANCE.md, Pipelining)"
            )
        return [
            reply_from(str(request.get("op")), entry if isinstance(entry, dict) else {}, reply.elapsed)
            for request, entry in zip(requests, results, strict=True)
        ]

    # -- judging -------------------------------------------------------------

    def note(self, text: str) -> None:
        """Say what was observed, shown with the verdict whatever it is (``note`` in the reports).

        For a case that accepts several behaviours, which one happened ("retried transparently",
        "failed with a connection error"); for a measurement, its value.
        """
        self.notes.append(text)

    def fail(self, reason: str) -> NoReturn:
        raise CaseFailed(reason)

    def check(self, condition: object, reason: str) -> None:
        if not condition:
            self.fail(reason)

    def ok(self, reply: Reply, what: str) -> Mapping[str, Any]:
        """The result of ``reply``; fail the case if it is an error."""
        if not reply.ok:
            self.fail(f"{what}: expected success, got {reply.describe()}")
        return reply.result

    def expect_error(
        self,
        reply: Reply,
        what: str,
        types: Iterable[str],
        code: str | None = None,
    ) -> DriverError:
        """``reply`` must be an error of one of ``types`` (and, for broker errors, ``code``)."""
        allowed = tuple(types)
        want = " or ".join(allowed) + (f" {code}" if code else "")
        if reply.ok:
            self.fail(f"{what}: expected a {want} error, got success {dict(reply.result)}")
        err = reply.error
        assert err is not None
        if err.type not in allowed:
            self.fail(f"{what}: expected a {want} error, got {err}")
        if code is not None and err.type == "broker" and err.code != code:
            self.fail(f"{what}: expected broker error {code}, got code {err.code!r}")
        return err

    def payload_of(self, result: Mapping[str, Any], what: str) -> bytes:
        value = result.get("payload")
        if not isinstance(value, str):
            self.fail(f"{what}: result has no base64 'payload' string: {dict(result)}")
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            self.fail(f"{what}: 'payload' is not valid base64: {value[:60]!r}")

    def int_of(self, result: Mapping[str, Any], key: str, what: str) -> int:
        value = result.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(f"{what}: result has no integer {key!r}: {dict(result)}")
        return value

    def setup(self, topic: str, *payloads: bytes, connect: bool = True) -> None:
        """Connect, create ``topic`` and produce ``payloads``, failing with a 'setup' reason if any step fails."""
        if connect:
            self.ok(self.connect(), "setup: connect")
        self.ok(self.create_topic(topic), f"setup: create_topic {topic!r}")
        for i, payload in enumerate(payloads):
            self.ok(self.produce(topic, payload), f"setup: produce #{i} to {topic!r}")

    def seed(self, topic: str, *payloads: bytes, timestamp: int = 0) -> None:
        """Create ``topic`` and store ``payloads`` on the broker directly, not through the client:
        the client's connection then carries only what the case sends."""
        self.broker.create_topic(topic)
        for payload in payloads:
            self.broker.produce(topic, payload, timestamp)

    def stored(self, topic: str) -> list[bytes]:
        """The payloads the broker holds for ``topic``."""
        try:
            return [bytes(m.payload) for m in self.broker.messages(topic)]
        except KeyError:
            return []

    def connections_opened(self) -> int:
        return len(self.records())
