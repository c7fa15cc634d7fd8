"""LoopBridge: work handed to the broker's loop from other threads, with deadlines."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from mock_broker._bridge import LoopBridge, Unavailable


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_a_call_runs_on_the_loop_thread_and_returns_its_result(loop):
    bridge = LoopBridge(loop)
    here = threading.get_ident()
    ran_on = bridge.call(threading.get_ident, 5)
    assert ran_on != here
    assert bridge.call(lambda: 6 * 7, 5) == 42


def test_the_operations_own_exception_is_raised_to_the_caller(loop):
    bridge = LoopBridge(loop)
    with pytest.raises(KeyError):
        bridge.call(lambda: {}["missing"], 5)

    async def boom() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        bridge.run(boom, 5)


def test_an_operation_the_busy_loop_has_not_started_by_the_deadline_is_never_run(loop):
    bridge = LoopBridge(loop)
    release = threading.Event()
    loop.call_soon_threadsafe(release.wait, 10)  # the loop is stuck until released
    ran: list[int] = []
    with pytest.raises(Unavailable, match="did not answer"):
        bridge.call(lambda: ran.append(1), 0.05)
    release.set()
    assert bridge.call(lambda: len(ran), 5) == 0


def test_a_coroutine_past_its_deadline_is_cancelled(loop):
    bridge = LoopBridge(loop)
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(Unavailable):
        bridge.run(forever, 0.05)
    assert cancelled.wait(5)


def test_closing_fails_waiting_calls_and_refuses_new_ones(loop):
    bridge = LoopBridge(loop)
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            bridge.run(lambda: asyncio.sleep(3600), 60)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + 5
    while not bridge._pending:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    bridge.close()
    t.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], Unavailable)
    with pytest.raises(Unavailable, match="stopping"):
        bridge.call(lambda: 1, 5)


def test_a_closed_loop_is_unavailable():
    loop = asyncio.new_event_loop()
    loop.close()
    bridge = LoopBridge(loop)
    with pytest.raises(Unavailable, match="stopped"):
        bridge.call(lambda: 1, 1)
    with pytest.raises(Unavailable, match="stopped"):
        bridge.run(lambda: asyncio.sleep(0), 1)
