"""Fixtures for the client tests: the mock broker, scripted brokers, short timeouts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from mega_client import MessageClient, RetryPolicy
from mock_broker import ThreadedMockBroker

from .scripted import Script, ScriptedBroker

T = TypeVar("T")

#: Retries without waiting long, so that retry tests stay fast.
FAST_RETRY = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.02)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it is true (AssertionError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        time.sleep(0.005)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` on the event loop until it is true (AssertionError after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        await asyncio.sleep(0.005)


def run(coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
    """Run an asyncio test body, with a safety timeout so that a hang fails instead of blocking."""

    async def guarded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


@pytest.fixture
def broker() -> Iterator[ThreadedMockBroker]:
    """A fresh mock broker (spec profile) on an ephemeral port."""
    with ThreadedMockBroker(port=0) as b:
        yield b


@pytest.fixture
def broker_factory() -> Iterator[Callable[..., ThreadedMockBroker]]:
    """``factory(**BrokerConfig fields)``: mock brokers with custom limits, stopped at teardown."""
    started: list[ThreadedMockBroker] = []

    def factory(**options: Any) -> ThreadedMockBroker:
        b = ThreadedMockBroker(port=0, **options)
        b.start()
        started.append(b)
        return b

    yield factory
    for b in started:
        b.stop()


@pytest.fixture
def client(broker: ThreadedMockBroker) -> Iterator[MessageClient]:
    """A connected MessageClient on ``broker``."""
    with MessageClient(broker.host, broker.port, connect_timeout=2, request_timeout=5, retry=FAST_RETRY) as c:
        yield c


@pytest.fixture
def scripted() -> Iterator[Callable[[Script | list[Script]], ScriptedBroker]]:
    """``scripted(script)`` or ``scripted([script_conn1, script_conn2, ...])``: a scripted broker."""
    started: list[ScriptedBroker] = []

    def start(script: Script | list[Script]) -> ScriptedBroker:
        b = ScriptedBroker(script).__enter__()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()
        if b.errors:
            raise b.errors[0]


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    """A port whose connects hang: a listener with a full accept queue that never accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # takes the only place in the queue
    try:
        yield port
    finally:
        filler.close()
        listener.close()
