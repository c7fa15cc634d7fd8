"""Edge cases of the clients' lifecycle: close() racing a call in another thread, host names
the resolver refuses to encode, a timeout while the write buffer is full; the sync client's
two ways of waiting for its socket."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
import time

import pytest

from mega_client import (
    NO_RETRY,
    AsyncMessageClient,
    ClientStateError,
    MegaConnectionError,
    MegaError,
    MegaTimeoutError,
    MessageClient,
    _sync,
)
from mock_broker import ThreadedMockBroker

from .conftest import run


def test_close_from_another_thread_fails_the_call_with_client_state_error(broker: ThreadedMockBroker) -> None:
    """close() while another thread waits for an answer: the call fails with ClientStateError.

    The broker never answers (``any:silent``), so the call is always still in progress when
    close() runs; the waits before close() vary so that it lands at every point of the call
    (before it starts, while it connects or sends, while it polls).
    """
    broker.create_topic("t")
    broker.faults.add("any:silent")
    for i in range(30):
        client = MessageClient(broker.host, broker.port, connect_timeout=2, request_timeout=5, retry=NO_RETRY)
        client.connect()
        outcome: list[BaseException] = []

        def call(c: MessageClient = client, out: list[BaseException] = outcome) -> None:
            try:
                c.consume("t", 0)
            except BaseException as exc:
                out.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep((i % 6) * 0.001)
        client.close()
        thread.join(5)
        assert not thread.is_alive(), "close() did not interrupt the call"
        assert len(outcome) == 1
        assert isinstance(outcome[0], ClientStateError), repr(outcome[0])
        assert not client.connected


@pytest.mark.parametrize("host", ["a" * 70, "a..b"], ids=["label-over-63-bytes", "empty-label"])
def test_a_host_name_idna_cannot_encode_is_a_connection_error(host: str) -> None:
    """Python's resolver raises UnicodeError (not an OSError) for these: still a MegaConnectionError."""
    with pytest.raises(MegaConnectionError, match="cannot connect to") as info:
        MessageClient(host, retry=NO_RETRY).connect()
    assert isinstance(info.value.__cause__, UnicodeError)
    assert info.value.request_sent is False

    async def body() -> None:
        with pytest.raises(MegaConnectionError, match="cannot connect to") as ainfo:
            await AsyncMessageClient(host, retry=NO_RETRY).connect()
        assert isinstance(ainfo.value.__cause__, UnicodeError)

    run(body())


def test_timeout_while_the_write_buffer_is_full_leaves_no_unretrieved_future() -> None:
    """Calls time out while waiting for the transport to drain (a peer that never reads):
    every call gets its error, and no answer future is left holding an exception nobody
    retrieves ("Future exception was never retrieved" from the loop's exception handler)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # the kernel completes the connect; nothing ever reads

    async def body() -> list[object]:
        reported: list[object] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: reported.append(context))
        client = AsyncMessageClient("127.0.0.1", listener.getsockname()[1], request_timeout=0.3, retry=NO_RETRY)
        await client.connect()
        # 16 MiB: more than the kernel's buffers take, so the transport pauses writing
        outcomes = await asyncio.gather(
            *(client.produce("t", b"x" * (1 << 20)) for _ in range(16)), return_exceptions=True
        )
        await client.close()
        assert all(isinstance(o, MegaError) for o in outcomes), outcomes
        assert any(isinstance(o, MegaTimeoutError) for o in outcomes), outcomes
        del outcomes
        gc.collect()  # an unretrieved future reports itself when it is collected
        await asyncio.sleep(0)
        return reported

    try:
        assert run(body()) == []
    finally:
        listener.close()


@pytest.mark.parametrize(
    "kind",
    [_sync._Connection, _sync._PolledConnection] if _sync._HAVE_POLL else [_sync._Connection],
    ids=lambda k: k.__name__,
)
def test_sync_connection_waits_for_reading_and_writing(kind: type[_sync._Connection]) -> None:
    """Both ways of waiting (select everywhere, one poll object per connection where poll
    exists) answer the same, including after switching direction (the poll's modify)."""
    readable, writable = _sync._READABLE, _sync._WRITABLE
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        conn = kind(a)
        assert not conn.wait(readable, 0.0)
        assert not conn.wait(readable, -1.0)  # a deadline already past: no syscall, not ready
        b.send(b"x")
        assert conn.wait(readable, 1.0)
        assert conn.wait(writable, 0.0)
        with contextlib.suppress(BlockingIOError):
            while True:  # fill the send buffer: no room left to write
                a.send(b"y" * 65536)
        assert not conn.wait(writable, 0.0)
        assert conn.wait(readable, 0.0)  # back to reading: the unread "x" is still there
        assert a.recv(1) == b"x"
        assert not conn.wait(readable, 0.01)
    finally:
        a.close()
        b.close()
