"""The client against the mock broker's fault injection: the same failures as the scripted
brokers of test_sync/test_async, produced the way the conformance suite produces them."""

from __future__ import annotations

import asyncio
import time

import pytest

from mega_client import (
    NO_RETRY,
    AsyncMessageClient,
    BrokerError,
    ConnectionClosedByBroker,
    ErrorCode,
    MegaConnectionError,
    MegaError,
    MegaProtocolError,
    MegaTimeoutError,
    MessageClient,
)
from mock_broker import ThreadedMockBroker

from .conftest import FAST_RETRY, run, wait_until


def client_for(broker: ThreadedMockBroker, **options: object) -> MessageClient:
    settings: dict[str, object] = {"connect_timeout": 1.0, "request_timeout": 1.0, "retry": FAST_RETRY}
    settings.update(options)
    return MessageClient(broker.host, broker.port, **settings)  # type: ignore[arg-type]


@pytest.fixture
def ready(broker: ThreadedMockBroker) -> ThreadedMockBroker:
    """The broker with topic ``t`` holding one message, ``b"m"``."""
    broker.create_topic("t")
    broker.produce("t", b"m", timestamp=7)
    return broker


@pytest.mark.parametrize("code", list(ErrorCode), ids=[c.name for c in ErrorCode])
def test_error_fault_raises_the_code_s_exception(ready: ThreadedMockBroker, code: ErrorCode) -> None:
    ready.faults.add(f"consume:error={code.name}:once")
    with client_for(ready) as client:
        with pytest.raises(BrokerError) as info:
            client.consume("t", 0)
        assert type(info.value) is type(BrokerError.for_code(code))
        assert info.value.code == code
        assert info.value.correlation_id == 1
        assert client.consume("t", 0).payload == b"m"  # same connection, next answer is fine
    assert len(ready.records()) == 1


@pytest.mark.parametrize("rule", ["consume:slice=1/1", "consume:slice=7", "consume:delay=50"])
def test_sliced_and_late_answers(ready: ThreadedMockBroker, rule: str) -> None:
    ready.faults.add(rule)
    with client_for(ready) as client:
        consumed = client.consume("t", 0)
    assert (consumed.payload, consumed.timestamp, consumed.next_offset) == (b"m", 7, 1)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("produce:wrong-cid", "correlation-mismatch"),
        ("produce:bad-flag=2", "bad-success-flag"),
        ("consume:bad-length=-1", "negative-length"),
        ("consume:bad-length=1048577", "length-over-limit"),
        ("create_topic:bad-length=256", "length-over-limit"),
    ],
)
def test_protocol_error_faults(ready: ThreadedMockBroker, rule: str, reason: str) -> None:
    ready.faults.add(f"{rule}:once")
    target = rule.split(":", maxsplit=1)[0]
    with client_for(ready) as client:
        call = {
            "produce": lambda: client.produce("t", b"x"),
            "consume": lambda: client.consume("t", 0),
            "create_topic": lambda: client.create_topic("new"),
        }[target]
        with pytest.raises(MegaProtocolError) as info:
            call()
        assert info.value.reason == reason
        assert not client.connected
        assert client.consume("t", 0).payload == b"m"  # reconnected
    assert len(ready.records()) == 2


@pytest.mark.parametrize("rule", ["produce:close:once", "produce:reset:once", "produce:unsolicited=8:once"])
def test_produce_that_may_have_been_stored_is_not_resent(ready: ThreadedMockBroker, rule: str) -> None:
    ready.faults.add(rule)
    with client_for(ready) as client:
        with pytest.raises(MegaConnectionError) as info:
            client.produce("t", b"once")
        assert info.value.request_sent
        if "unsolicited" in rule:
            assert isinstance(info.value, ConnectionClosedByBroker)
        assert client.produce("t", b"next").offset >= 1
    stored = [m.payload for m in ready.messages("t")]
    assert stored.count(b"once") <= 1
    assert stored[-1] == b"next"


def test_at_least_once_resends(ready: ThreadedMockBroker) -> None:
    ready.faults.add("produce:close:once")
    with client_for(ready, produce_delivery="at-least-once") as client:
        produced = client.produce("t", b"again")
    # "close" lets the broker store the message, then drops the connection without answering:
    # the resend stores it again, with the same timestamp, so that consumers can tell.
    first, second = ready.messages("t")[1:]
    assert first.payload == second.payload == b"again"
    assert first.timestamp == second.timestamp == produced.timestamp
    assert produced.offset == 2
    assert len(ready.records()) == 2


@pytest.mark.parametrize("rule", ["consume:close:once", "consume:reset:once", "consume:unsolicited=8:once"])
def test_consume_is_retried(ready: ThreadedMockBroker, rule: str) -> None:
    ready.faults.add(rule)
    with client_for(ready) as client:
        assert client.consume("t", 0).payload == b"m"
    assert len(ready.records()) == 2


def test_silent_broker_times_out(ready: ThreadedMockBroker) -> None:
    ready.faults.add("consume:silent:once")
    # The connect timeout is far from the request timeout, so that a generous bound still tells them apart.
    with client_for(ready, connect_timeout=5.0, request_timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(MegaTimeoutError):
            client.consume("t", 0)
        assert time.monotonic() - started < 1.5  # the 0.2 s request timeout, not the 5 s connect timeout
        assert client.consume("t", 0).payload == b"m"


def test_idle_close_then_next_call(broker_factory: object) -> None:
    assert callable(broker_factory)
    broker: ThreadedMockBroker = broker_factory(idle_timeout=0.1)
    with client_for(broker, retry=NO_RETRY) as client:
        client.create_topic("t")
        # The broker sends 00 00 00 00 00 08 and its FIN in one step, as it records why it closes.
        wait_until(lambda: broker.records()[0].close_reason == "idle timeout", what="the idle close")
        assert client.produce("t", b"x").offset == 0
    assert [m.payload for m in broker.messages("t")] == [b"x"]


def test_async_pipeline_with_held_and_sliced_answers(ready: ThreadedMockBroker) -> None:
    ready.faults.add("consume:hold:every=2")
    ready.faults.add("consume:slice=3:every=3")

    async def main() -> None:
        async with AsyncMessageClient(ready.host, ready.port, request_timeout=2) as client:
            for i in range(1, 20):
                await client.produce("t", f"m{i}")
            # An odd count: every second answer is held back and sent with the next one.
            results = await asyncio.gather(*(client.consume("t", i) for i in range(19)))
            assert [r.payload for r in results] == [b"m", *(f"m{i}".encode() for i in range(1, 19))]

    run(main())


def test_async_wrong_cid_fails_the_pending_requests(ready: ThreadedMockBroker) -> None:
    ready.faults.add("consume:wrong-cid:nth=3")

    async def main() -> None:
        async with AsyncMessageClient(ready.host, ready.port, request_timeout=2, retry=NO_RETRY) as client:
            outcomes = await asyncio.gather(*(client.consume("t", 0) for _ in range(6)), return_exceptions=True)
            assert [isinstance(o, MegaError) for o in outcomes] == [False, False, True, True, True, True]
            assert all(isinstance(o, MegaProtocolError) for o in outcomes[2:])
            assert (await client.consume("t", 0)).payload == b"m"

    run(main())
