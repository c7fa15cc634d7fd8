"""Control calls from many threads while MEGA clients run: every answer right on both sides, no deadlock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._control_support import ControlledBroker, start_controlled_broker
from ._raw import RawClient, consume_ok, create_ok, produce_ok, raw_frame

PRODUCE, CONSUME, CREATE = 1, 2, 3
CLIENTS = 4
ROUNDS = 150
DEADLINE = 120.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ControlledBroker]:
    b = start_controlled_broker("--idle-timeout", "0", stderr=tmp_path / "broker.log")
    try:
        yield b
    finally:
        b.stop()


def mega_client(broker: ControlledBroker, n: int, errors: list[str]) -> None:
    """Create a topic of its own, then produce and consume ROUNDS messages, checking every byte."""
    topic = f"c{n}".encode()
    try:
        with RawClient(broker.mega, timeout=30) as c:
            c.send_raw(raw_frame(1, CREATE, topic))
            c.expect_bytes(create_ok(1, topic.decode()))
            for i in range(ROUNDS):
                payload = b"%d-%d" % (n, i)
                cid = 2 + 2 * i
                c.send_raw(
                    raw_frame(cid, PRODUCE, topic, ts=i, payload=payload)
                    + raw_frame(cid + 1, CONSUME, topic, ts=i, offset=i)
                )
                c.expect_bytes(produce_ok(cid, i, ts=i) + consume_ok(cid + 1, i, i + 1, payload))
    except BaseException as exc:  # reported by the test, with the client's number
        errors.append(f"client {n}: {exc!r}")


def control_loop(broker: ControlledBroker, stop: threading.Event, errors: list[str], calls: list[int]) -> None:
    """Read everything and add and remove rules that match no client's requests, until told to stop."""
    api = broker.api
    try:
        while not stop.is_set():
            rule = api.ok("POST", "/faults", {"rule": "consume@nobody:delay=50"})
            api.ok("GET", "/faults")
            api.ok("GET", "/connections?transcript=true&limit=3")
            for conn in api.ok("GET", "/connections?state=open")["connections"][:2]:
                api.ok("GET", f"/connections/{conn['id']}")
            api.ok("GET", "/topics")
            api.ok("GET", "/health")
            api.ok("POST", "/wait", {"for": "requests", "at_least": 1, "timeout_ms": 1000})
            api.ok("DELETE", f"/faults/{rule['id']}")
            calls.append(8)
    except BaseException as exc:
        errors.append(f"control: {exc!r}")


def test_control_calls_while_clients_run_change_nothing_they_see(broker):
    errors: list[str] = []
    calls: list[int] = []
    stop = threading.Event()
    controllers = [threading.Thread(target=control_loop, args=(broker, stop, errors, calls)) for _ in range(3)]
    clients = [threading.Thread(target=mega_client, args=(broker, n, errors)) for n in range(CLIENTS)]
    for t in controllers + clients:
        t.start()
    deadline = time.monotonic() + DEADLINE
    for t in clients:
        t.join(max(deadline - time.monotonic(), 0))
    stop.set()
    for t in controllers:
        t.join(max(deadline - time.monotonic(), 0))
    stuck = [t.name for t in controllers + clients if t.is_alive()]
    assert not stuck, f"still running after {DEADLINE} s (deadlock?): {stuck}"
    assert errors == []
    assert sum(calls) > 0
    api = broker.api
    api.wait(**{"for": "connections_open", "count": 0})
    totals = api.ok("GET", "/health")["totals"]
    assert totals["requests"] == CLIENTS * (1 + 2 * ROUNDS)
    assert totals["connections_closed"] == CLIENTS
    topics = {t["name"]: t["messages"] for t in api.ok("GET", "/topics")["topics"]}
    assert topics == {f"c{n}": ROUNDS for n in range(CLIENTS)}
    assert api.ok("GET", "/faults") == {"faults": []}
    assert api.ok("GET", "/internal-errors") == {"internal_errors": []}


def test_resets_and_waits_from_many_threads_at_once_all_answer(broker):
    api = broker.api
    errors: list[str] = []

    def hammer(n: int) -> None:
        try:
            for i in range(30):
                if i % 3 == 0:
                    api.ok("POST", "/reset")
                api.ok("POST", "/topics", {"name": f"h{n}-{i}"})
                # A reset from another thread may drop the topic in between: then it is unknown, nothing else.
                stored = api.post(f"/topics/h{n}-{i}/messages", {"payload_text": "x"})
                assert stored.status == 201 or stored.error_code == "unknown_topic", stored
                got = api.ok(
                    "POST", "/wait", {"for": "messages", "topic": f"h{n}-{i}", "at_least": 1, "timeout_ms": 50}
                )
                assert got["observed"] in (0, 1)  # a reset from another thread may have dropped it
        except BaseException as exc:
            errors.append(f"{n}: {exc!r}")

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    with RawClient(broker.mega) as c:
        c.send_raw(raw_frame(1, CREATE, b"still"))
        c.expect_bytes(create_ok(1, "still"))
