"""Edge cases of the clients' lifecycle: close() racing a call in another thread."""

from __future__ import annotations

import threading
import time

from mega_client import NO_RETRY, ClientStateError, MessageClient
from mock_broker import ThreadedMockBroker


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
