"""Result objects: attributes, the seed's dict-style access, bytes versus text."""

from __future__ import annotations

import dataclasses

import pytest

from mega_client import Consumed, Produced, TopicCreated


def test_topic_created_prints_the_topic() -> None:
    r = TopicCreated("test-topic", 1700000000000, 1)
    assert str(r) == "test-topic"
    assert f"Topic created: {r}" == "Topic created: test-topic"
    assert repr(r) == "TopicCreated(topic='test-topic', timestamp=1700000000000, correlation_id=1)"
    assert r["topic"] == "test-topic"


def test_produced_mapping_view() -> None:
    r = Produced("t", 7, 1700000000000, 2)
    assert r["offset"] == 7 == r.offset
    assert "offset" in r
    assert "success" not in r
    assert 0 not in r
    assert r.get("missing", "d") == "d"
    assert dict(r) == {"topic": "t", "offset": 7, "timestamp": 1700000000000, "correlation_id": 2}
    assert list(r.keys()) == ["topic", "offset", "timestamp", "correlation_id"]
    with pytest.raises(KeyError):
        r["payload"]


def test_results_are_frozen_and_compare_by_value() -> None:
    r = Produced("t", 7, 1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.offset = 8  # type: ignore[misc]
    assert r == Produced("t", 7, 1, 2)
    assert hash(r) == hash(Produced("t", 7, 1, 2))
    assert not hasattr(r, "__dict__")  # slots: small


def test_consumed_payload_is_bytes_and_text_is_decoded() -> None:
    r = Consumed("t", 0, "Grüße".encode(), 1, 5, 3)
    assert r.payload == b"Gr\xc3\xbc\xc3\x9fe"
    assert r.text == "Grüße"
    # The seed-compatible view gives the text...
    assert r["payload"] == "Grüße"
    assert f"Consumed message: {Consumed('t', 0, b'Hello, MEGA!', 1, 5, 3)['payload']}" == (
        "Consumed message: Hello, MEGA!"
    )
    assert dict(r)["payload"] == "Grüße"


def test_consumed_mapping_view_falls_back_to_bytes() -> None:
    r = Consumed("t", 0, b"\xff\x00", 1, 5, 3)
    assert r["payload"] == b"\xff\x00"
    with pytest.raises(UnicodeDecodeError):
        _ = r.text
    assert r["next_offset"] == 1
    assert r["offset"] == 0


def test_consumed_repr_is_short_for_big_payloads() -> None:
    r = Consumed("t", 0, b"x" * 1_000_000, 1, 5, 3)
    text = repr(r)
    assert len(text) < 300
    assert "1000000 bytes" in text
    assert repr(Consumed("t", 0, b"hi", 1, 5, 3)) == (
        "Consumed(topic='t', offset=0, payload=b'hi', next_offset=1, timestamp=5, correlation_id=3)"
    )
