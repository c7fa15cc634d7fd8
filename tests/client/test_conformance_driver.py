"""The conformance driver, driven as a subprocess through its JSON-lines contract."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from mega_client.conformance_driver import error_object
from mega_client.errors import (
    ClientStateError,
    ConnectionClosedByBroker,
    InvalidTopicNameError,
    MegaProtocolError,
    MegaTimeoutError,
    TopicNotFoundError,
)
from mock_broker import ThreadedMockBroker
from tests._proc import LineReader, start_module


class DriverProcess:
    """The driver as the conformance runner sees it: a line in, a line out (within 10 s)."""

    def __init__(self, *args: str) -> None:
        self.proc = start_module("mega_client.conformance_driver", *args)
        self.lines = LineReader(self.proc)
        self.next_id = 1

    def send_line(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.lines.readline(10))
        assert isinstance(reply, dict)
        return reply

    def __call__(self, op: str, **fields: Any) -> dict[str, Any]:
        cid = self.next_id
        self.next_id += 1
        reply = self.send_line(json.dumps({"id": cid, "op": op, **fields}))
        assert reply["id"] == cid
        return reply

    def finish(self) -> tuple[int, str]:
        assert self.proc.stdin is not None
        assert self.proc.stderr is not None
        self.proc.stdin.close()
        status = self.proc.wait(10)
        return status, self.proc.stderr.read()


@pytest.fixture(params=[[], ["--async"]], ids=["sync", "async"])
def driver(request: pytest.FixtureRequest) -> Iterator[DriverProcess]:
    d = DriverProcess(*request.param)
    yield d
    if d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()
    for stream in (d.proc.stdin, d.proc.stdout, d.proc.stderr):
        if stream is not None:
            stream.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_a_whole_session(driver: DriverProcess, broker: ThreadedMockBroker) -> None:
    assert driver("create_topic", topic="t")["error"]["type"] == "usage"  # not connected yet
    assert driver("connect", host=broker.host, port=broker.port, timeout_ms=2000) == {"id": 2, "ok": True, "result": {}}
    assert driver("create_topic", topic="t")["result"] == {"topic": "t"}
    payload = bytes(range(256))
    assert driver("produce", topic="t", payload=b64(payload))["result"] == {"offset": 0}
    consumed = driver("consume", topic="t", offset=0)["result"]
    assert base64.b64decode(consumed["payload"]) == payload
    assert consumed["next_offset"] == 1
    assert consumed["timestamp"] == broker.messages("t")[0].timestamp

    missing = driver("consume", topic="nope", offset=0)
    assert missing["ok"] is False
    assert missing["error"]["type"] == "broker"
    assert missing["error"]["code"] == "TOPIC_NOT_FOUND"
    assert driver("consume", topic="t", offset=5)["error"]["code"] == "INVALID_OFFSET"
    assert driver("create_topic", topic="t")["error"]["code"] == "TOPIC_ALREADY_EXISTS"
    bad = driver("create_topic", topic="bad name")
    assert bad["error"]["type"] == "usage"
    assert driver("frobnicate")["error"]["type"] == "unsupported"
    assert driver("produce", topic="t", payload="%%%")["error"]["type"] == "usage"
    assert driver("consume", topic="t")["error"]["type"] == "usage"  # no offset

    assert driver("close") == {"id": 13, "ok": True, "result": {}}
    assert driver("close")["ok"] is True
    assert driver("consume", topic="t", offset=0)["error"]["type"] == "usage"
    # Connect and close again, as many times as the runner likes.
    assert driver("connect", host=broker.host, port=broker.port, timeout_ms=2000)["ok"] is True
    assert driver("consume", topic="t", offset=0)["ok"] is True
    assert driver("connect", host=broker.host, port=broker.port, timeout_ms=2000)["ok"] is True

    garbage = driver.send_line("not json")
    assert garbage["ok"] is False
    assert garbage["error"]["type"] == "usage"
    status, _stderr = driver.finish()
    assert status == 0
    broker.wait_closed_connections(5)
    assert len(broker.records()) == 3  # one connection per connect


def test_refused_connection(driver: DriverProcess) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused, and the port stays ours
        port = s.getsockname()[1]
        reply = driver("connect", host="127.0.0.1", port=port, timeout_ms=500)
    assert reply["error"]["type"] == "connection"
    assert driver("close")["ok"] is True


def test_error_objects() -> None:
    assert error_object(TopicNotFoundError(4, 1)) == {
        "type": "broker",
        "code": "TOPIC_NOT_FOUND",
        "message": "broker answered TOPIC_NOT_FOUND (4) to request 1",
    }
    assert error_object(ConnectionClosedByBroker(8))["type"] == "connection"
    assert error_object(MegaTimeoutError("slow"))["type"] == "timeout"
    assert error_object(MegaProtocolError("bad", reason="bad-success-flag"))["type"] == "protocol"
    assert error_object(ClientStateError("closed"))["type"] == "usage"
    assert error_object(InvalidTopicNameError("bad"))["type"] == "usage"
    assert error_object(RuntimeError("bug"))["type"] == "usage"
