"""The control API, endpoint by endpoint, through real HTTP against a subprocess broker and real MEGA sockets."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._control_support import Api, ControlledBroker, start_controlled_broker
from ._raw import RawClient, consume_ok, create_ok, error, produce_ok, raw_frame

TS = 1234567890123
PRODUCE, CONSUME, CREATE = 1, 2, 3
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlledBroker]:
    b = start_controlled_broker("--idle-timeout", "0", stderr=tmp_path_factory.mktemp("control") / "broker.log")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def api(broker: ControlledBroker) -> Api:
    """The API of the module's broker, reset (connections too) before each test."""
    api = broker.api
    api.ok("POST", "/reset", {"close_connections": True})
    return api


def client(broker: ControlledBroker) -> RawClient:
    return RawClient(broker.mega)


# -- about ---------------------------------------------------------------------------------


def test_index_lists_every_endpoint_and_the_readme_documents_each(api):
    endpoints = api.ok("GET", "")["endpoints"]
    assert "POST /v1/faults" in endpoints
    assert "POST /v1/wait" in endpoints
    readme = (ROOT / "mock_broker" / "README.md").read_text()
    for endpoint in endpoints:
        assert f"`{endpoint}`" in readme, f"{endpoint} is not in the README's API reference"


def test_health_answers_with_the_broker_totals(api, broker):
    with client(broker) as c:
        c.send_raw(raw_frame(1, CREATE, b"h"))
        c.expect_bytes(create_ok(1, "h"))
        health = api.ok("GET", "/health")
    assert health["status"] == "ok"
    assert health["totals"]["connections_open"] == 1
    assert health["totals"]["requests"] == 1
    assert health["topics"] == 1
    assert health["fault_rules"] == 0
    assert health["internal_errors"] == 0


def test_head_is_get_without_a_body(api):
    reply = api.call("HEAD", "/health")
    assert reply.status == 200
    assert reply.body is None
    assert int(reply.headers["content-length"]) > 0


def test_config_says_where_both_sides_listen_and_how_the_broker_is_set(api, broker):
    cfg = api.ok("GET", "/config")
    assert cfg["api"] == "v1"
    assert cfg["mega"] == broker.started["mega"]
    assert cfg["control"]["port"] == broker.started["control"]["port"]
    assert cfg["config"]["profile"] == "spec"
    assert cfg["config"]["record"] is True  # on by default with --control-port
    assert cfg["config"]["idle_timeout"] is None
    assert cfg["limits"]["max_body_bytes"] == 2 * 1024 * 1024
    assert "TARGET" in cfg["fault_grammar"]


# -- fault rules -----------------------------------------------------------------------------


def test_a_rule_added_as_text_applies_to_the_next_request_and_counts(api, broker):
    reply = api.post("/faults", {"rule": "produce@t:error=RESOURCE_EXHAUSTED:once"})
    assert reply.status == 201
    rule = reply.body
    assert reply.headers["location"] == f"/v1/faults/{rule['id']}"
    assert rule["rule"] == "produce@t:error=RESOURCE_EXHAUSTED:once"
    assert (rule["target"], rule["topic"], rule["action"], rule["arg"], rule["when"]) == (
        "produce",
        "t",
        "error",
        "RESOURCE_EXHAUSTED",
        "once",
    )
    with client(broker) as c:
        c.send_raw(raw_frame(1, CREATE, b"t") + raw_frame(2, PRODUCE, b"t", payload=b"x"))
        c.expect_bytes(create_ok(1, "t") + error(2, 9))
        c.send_raw(raw_frame(3, PRODUCE, b"t", payload=b"y"))
        c.expect_bytes(produce_ok(3, 0))
    after = api.ok("GET", f"/faults/{rule['id']}")
    assert (after["matched"], after["fired"]) == (2, 1)


def test_structured_json_means_the_same_rule_as_its_text(api):
    structured = api.ok(
        "POST",
        "/faults",
        {"target": "produce", "topic": "orders", "action": "error", "arg": 9, "when": "every", "n": 3, "conn": 2},
    )
    assert structured["rule"] == "produce@orders:error=RESOURCE_EXHAUSTED:every=3:conn=2"
    plain = api.ok("POST", "/faults", {"target": "any", "action": "slice", "arg": "1/5"})
    assert plain["rule"] == "any:slice=1/5"
    connect = api.ok("POST", "/faults", {"target": "connect", "action": "close", "when": "once"})
    assert connect["rule"] == "connect:close:once"


def test_a_rule_can_be_posted_as_plain_text(api):
    reply = api.post("/faults", raw=b"consume:delay=20\n", content_type="text/plain; charset=utf-8")
    assert reply.status == 201
    assert reply.body["rule"] == "consume:delay=20"


def test_rules_are_listed_in_order_removed_one_by_one_and_cleared(api, broker):
    ids = [api.ok("POST", "/faults", {"rule": r})["id"] for r in ("any:wrong-cid", "consume:delay=5", "any:hold")]
    assert ids == sorted(ids)
    listed = api.ok("GET", "/faults")["faults"]
    assert [f["id"] for f in listed] == ids
    assert [f["rule"] for f in listed] == ["any:wrong-cid", "consume:delay=5", "any:hold"]
    removed = api.ok("DELETE", f"/faults/{ids[0]}")["removed"]
    assert removed["rule"] == "any:wrong-cid"
    assert [f["id"] for f in api.ok("GET", "/faults")["faults"]] == ids[1:]
    assert api.get(f"/faults/{ids[0]}").error_code == "unknown_rule"
    assert api.ok("DELETE", "/faults") == {"removed": 2}
    assert api.ok("GET", "/faults") == {"faults": []}
    with client(broker) as c:  # no rule left: a plain answer
        c.send_raw(raw_frame(5, CREATE, b"clean"))
        c.expect_bytes(create_ok(5, "clean"))
    assert api.ok("POST", "/faults", {"rule": "any:hold"})["id"] > ids[-1]  # ids are never reused


def test_a_connect_refuse_rule_added_over_http_refuses_at_once(api, broker):
    api.ok("POST", "/faults", {"rule": "connect:refuse=300:once"})
    with pytest.raises(ConnectionRefusedError):
        RawClient(broker.mega)
    deadline = time.monotonic() + 15
    while True:  # it listens again after the window
        try:
            RawClient(broker.mega).close()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "not listening again 15 s after a 0.3 s refuse window"
            time.sleep(0.05)


# -- topics and messages -------------------------------------------------------------------


def test_topics_are_listed_with_their_message_counts(api, broker):
    with client(broker) as c:
        c.send_raw(
            raw_frame(1, CREATE, b"a")
            + raw_frame(2, CREATE, b"b")
            + raw_frame(3, PRODUCE, b"b", payload=b"1")
            + raw_frame(4, PRODUCE, b"b", payload=b"2")
        )
        c.expect_bytes(create_ok(1, "a") + create_ok(2, "b") + produce_ok(4 - 1, 0) + produce_ok(4, 1))
    assert api.ok("GET", "/topics") == {"topics": [{"name": "a", "messages": 0}, {"name": "b", "messages": 2}]}
    assert api.ok("GET", "/topics/b") == {"name": "b", "messages": 2}


def test_messages_come_with_payloads_in_base64_and_hex(api, broker):
    payloads = [b"\x00\xffbinary", b"", "h\u00e9llo".encode()]
    with client(broker) as c:
        c.send_raw(raw_frame(1, CREATE, b"m"))
        c.expect_bytes(create_ok(1, "m"))
        for i, p in enumerate(payloads):
            c.send_raw(raw_frame(10 + i, PRODUCE, b"m", ts=1000 + i, payload=p))
            c.expect_bytes(produce_ok(10 + i, i, ts=1000 + i))
    got = api.ok("GET", "/topics/m/messages")
    assert got["topic"] == "m"
    assert got["count"] == 3
    assert got["next_offset"] is None
    for i, (message, payload) in enumerate(zip(got["messages"], payloads, strict=True)):
        assert message["offset"] == i
        assert message["timestamp"] == 1000 + i
        assert base64.b64decode(message["payload"]["base64"]) == payload
        assert bytes.fromhex(message["payload"]["hex"]) == payload
        assert message["payload"]["size"] == len(payload)


def test_messages_are_paged_by_offset_and_limit(api):
    api.ok("POST", "/topics", {"name": "p"})
    for i in range(5):
        api.ok("POST", "/topics/p/messages", {"payload_text": str(i)})
    first = api.ok("GET", "/topics/p/messages?limit=2")
    assert [m["offset"] for m in first["messages"]] == [0, 1]
    assert first["next_offset"] == 2
    rest = api.ok("GET", f"/topics/p/messages?offset={first['next_offset']}&limit=10")
    assert [bytes.fromhex(m["payload"]["hex"]) for m in rest["messages"]] == [b"2", b"3", b"4"]
    assert rest["next_offset"] is None
    past = api.ok("GET", "/topics/p/messages?offset=99")
    assert past["messages"] == []
    assert past["next_offset"] is None


def test_a_topic_created_and_filled_over_http_is_served_over_mega(api, broker):
    created = api.post("/topics", {"name": "seeded"})
    assert created.status == 201
    assert created.headers["location"] == "/v1/topics/seeded"
    assert api.post("/topics", {"name": "seeded"}).error_code == "topic_exists"
    one = api.ok(
        "POST", "/topics/seeded/messages", {"payload_base64": base64.b64encode(b"\x01\x02").decode(), "timestamp": 7}
    )
    assert one == {"topic": "seeded", "offset": 0, "timestamp": 7, "size": 2}
    two = api.ok("POST", "/topics/seeded/messages", {"payload_hex": "0a0b0c"})
    assert two["offset"] == 1
    three = api.ok(
        "POST", "/topics/seeded/messages?timestamp=99", raw=b"\x00raw", content_type="application/octet-stream"
    )
    assert three == {"topic": "seeded", "offset": 2, "timestamp": 99, "size": 4}
    with client(broker) as c:
        c.send_raw(raw_frame(1, CONSUME, b"seeded", offset=0) + raw_frame(2, CONSUME, b"seeded", offset=2))
        c.expect_bytes(consume_ok(1, 7, 1, b"\x01\x02") + consume_ok(2, 99, 3, b"\x00raw"))


# -- connections ---------------------------------------------------------------------------


def test_a_closed_connection_has_its_exact_bytes_both_ways_and_each_request_with_its_answer(api, broker):
    api.ok("POST", "/faults", {"rule": "produce:error=RESOURCE_EXHAUSTED:nth=2"})
    sent = (
        raw_frame(1, CREATE, b"t")
        + raw_frame(2, PRODUCE, b"t", payload=b"ab")
        + raw_frame(3, PRODUCE, b"t", payload=b"cd")
        + raw_frame(4, CONSUME, b"t", offset=0)
    )
    answers = create_ok(1, "t") + produce_ok(2, 0) + error(3, 9) + consume_ok(4, TS, 1, b"ab")
    with client(broker) as c:
        c.send_raw(sent[:10])  # two segments in: the split is kept
        api.wait(**{"for": "bytes_received", "at_least": 10})
        c.send_raw(sent[10:])
        c.expect_bytes(answers)
    conn = api.wait(**{"for": "connections_closed", "at_least": 1})
    assert conn["observed"] == 1
    (summary,) = api.ok("GET", "/connections")["connections"]
    detail = api.ok("GET", f"/connections/{summary['id']}")
    assert detail["state"] == "closed"
    assert detail["close_reason"] == "peer closed"
    assert detail["closed_at"] >= detail["opened_at"]
    assert detail["peer"]["host"] == "127.0.0.1"
    assert detail["received"] == {"size": len(sent), "hex": sent.hex()}
    assert detail["sent"] == {"size": len(answers), "hex": answers.hex()}
    assert (detail["request_count"], detail["bytes_received"], detail["bytes_sent"]) == (4, len(sent), len(answers))
    inbound = [s for s in detail["segments"] if s["direction"] == "in"]
    assert bytes.fromhex(inbound[0]["hex"]) == sent[:10]
    assert [s["offset"] for s in inbound][:2] == [0, 10]
    assert b"".join(bytes.fromhex(s["hex"]) for s in inbound) == sent
    times = [s["at"] for s in detail["segments"]]
    assert times == sorted(times)
    requests = detail["requests"]
    assert [(r["index"], r["type"], r["correlation_id"]) for r in requests] == [
        (1, "CREATE_TOPIC", 1),
        (2, "PRODUCE", 2),
        (3, "PRODUCE", 3),
        (4, "CONSUME", 4),
    ]
    assert requests[1]["payload"] == {"size": 2, "base64": "YWI=", "hex": "6162"}
    assert requests[3]["offset"] == 0
    assert [r["answer"]["kind"] for r in requests] == ["create_topic", "produce", "error", "consume"]
    assert requests[2]["answer"]["error"] == "RESOURCE_EXHAUSTED"
    assert requests[2]["answer"]["error_code"] == 9
    assert requests[3]["answer"]["payload"]["hex"] == "6162"
    assert [r["answer"]["position"] for r in requests] == [0, 16, 33, 39]
    assert detail["other_answers"] == []
    assert detail["sent_undecoded"] is None
    (fault,) = detail["faults"]
    assert fault["rule"] == "produce:error=RESOURCE_EXHAUSTED:nth=2"
    assert (fault["action"], fault["request_index"], fault["correlation_id"]) == ("error", 3, 3)


def test_what_a_fault_sends_on_purpose_is_shown_as_it_went(api, broker):
    api.ok("POST", "/faults", {"rule": "create_topic:unsolicited=TOPIC_NOT_FOUND"})
    api.ok("POST", "/faults", {"rule": "produce:trailing=deadbeef"})
    with client(broker) as c:
        c.send_raw(raw_frame(1, CREATE, b"t"))
        c.expect_bytes(error(0, 4) + create_ok(1, "t"))
        c.send_raw(raw_frame(2, PRODUCE, b"t", payload=b"x"))
        c.expect_bytes(produce_ok(2, 0) + bytes.fromhex("deadbeef"))
        api.wait(**{"for": "requests", "at_least": 2})
        detail = api.ok("GET", "/connections/" + str(api.ok("GET", "/connections")["connections"][0]["id"]))
    assert detail["state"] == "open"
    assert detail["close_reason"] is None
    (unsolicited,) = detail["other_answers"]
    assert (unsolicited["kind"], unsolicited["correlation_id"], unsolicited["error"]) == ("error", 0, "TOPIC_NOT_FOUND")
    assert [r["answer"]["kind"] for r in detail["requests"]] == ["create_topic", "produce"]
    assert detail["sent_undecoded"]["offset"] == 6 + 16 + 17
    assert detail["sent"]["hex"].endswith("deadbeef")
    assert [f["action"] for f in detail["faults"]] == ["unsolicited", "trailing"]


def test_connections_are_listed_open_and_closed_and_paged(api, broker):
    with client(broker) as first:
        first.send_raw(raw_frame(1, CREATE, b"c1"))
        first.expect_bytes(create_ok(1, "c1"))
    api.wait(**{"for": "connections_closed", "at_least": 1})
    with client(broker) as second, client(broker) as third:
        api.wait(**{"for": "connections_open", "count": 2})
        listing = api.ok("GET", "/connections")["connections"]
        assert [c["state"] for c in listing] == ["closed", "open", "open"]
        ids = [c["id"] for c in listing]
        assert ids == sorted(ids)
        assert [c["id"] for c in api.ok("GET", "/connections?state=open")["connections"]] == ids[1:]
        assert [c["id"] for c in api.ok("GET", "/connections?state=closed")["connections"]] == ids[:1]
        page = api.ok("GET", "/connections?limit=2")
        assert [c["id"] for c in page["connections"]] == ids[:2]
        assert page["next_after"] == ids[1]
        rest = api.ok("GET", f"/connections?after={page['next_after']}")
        assert [c["id"] for c in rest["connections"]] == ids[2:]
        assert rest["next_after"] is None
        full = api.ok("GET", "/connections?state=closed&transcript=true")["connections"]
        assert full[0]["received"]["hex"] == raw_frame(1, CREATE, b"c1").hex()
        assert "received" not in listing[0]
        del second, third


# -- reset ---------------------------------------------------------------------------------


def test_reset_drops_topics_rules_and_closed_records_and_keeps_numbering(api, broker):
    api.ok("POST", "/faults", {"rule": "any:delay=1"})
    with client(broker) as c:
        c.send_raw(raw_frame(1, CREATE, b"r"))
        c.expect_bytes(create_ok(1, "r"))
    api.wait(**{"for": "connections_open", "count": 0})
    old_id = api.ok("GET", "/connections")["connections"][0]["id"]
    got = api.ok("POST", "/reset")
    assert got == {"dropped": {"topics": 1, "fault_rules": 1, "closed_connections": 1, "connections_closed_now": 0}}
    assert api.ok("GET", "/topics") == {"topics": []}
    assert api.ok("GET", "/faults") == {"faults": []}
    assert api.ok("GET", "/connections") == {"connections": [], "next_after": None}
    assert api.ok("GET", "/health")["totals"] == {
        "connections_open": 0,
        "connections_closed": 0,
        "requests": 0,
        "bytes_received": 0,
        "bytes_sent": 0,
    }
    with client(broker) as c:
        c.send_raw(raw_frame(1, CREATE, b"r"))  # the topic is gone: created again
        c.expect_bytes(create_ok(1, "r"))
        api.wait(**{"for": "connections_open", "count": 1})
        assert api.ok("GET", "/connections")["connections"][0]["id"] > old_id


def test_reset_can_close_the_open_connections_too(api, broker):
    with client(broker) as c:
        api.wait(**{"for": "connections_open", "count": 1})
        got = api.ok("POST", "/reset", {"close_connections": True})
        assert got["dropped"]["connections_closed_now"] == 1
        assert c.read_to_eof() == b""
    assert api.ok("GET", "/connections")["connections"] == []


# -- waiting -------------------------------------------------------------------------------


def test_a_wait_returns_as_soon_as_the_client_has_sent_what_it_waits_for(api, broker):
    result: dict[str, object] = {}

    def waiter() -> None:
        result["reply"] = api.ok("POST", "/wait", {"for": "requests", "at_least": 3, "timeout_ms": 20_000})

    t = threading.Thread(target=waiter)
    t.start()
    with client(broker) as c:
        for cid in (1, 2, 3):
            c.send_raw(raw_frame(cid, CREATE, f"w{cid}".encode()))
            c.expect_bytes(create_ok(cid, f"w{cid}"))
        t.join(30)
    assert not t.is_alive()
    reply = result["reply"]
    assert isinstance(reply, dict)
    assert reply["met"] is True
    assert reply["observed"] >= 3
    assert reply["condition"] == {"for": "requests", "at_least": 3}


@pytest.mark.parametrize(
    ("condition", "observed"),
    [
        ({"for": "requests", "at_least": 1}, 0),
        ({"for": "requests", "at_least": 1, "connection": 999_999}, 0),
        ({"for": "bytes_received", "at_least": 1}, 0),
        ({"for": "connections_open", "count": 3}, 0),
        ({"for": "connections_closed", "at_least": 1}, 0),
        ({"for": "connection_closed", "connection": 999_999}, "not seen"),
        ({"for": "messages", "topic": "none", "at_least": 1}, 0),
    ],
)
def test_a_wait_that_is_not_met_says_so_after_its_timeout(api, condition, observed):
    got = api.ok("POST", "/wait", {**condition, "timeout_ms": 50})
    assert got["met"] is False
    assert got["observed"] == observed
    assert got["waited_ms"] >= 50


def test_waits_for_each_kind_of_condition(api, broker):
    rule = api.ok("POST", "/faults", {"rule": "produce:delay=1"})
    with client(broker) as c:
        api.wait(**{"for": "connections_open", "count": 1})
        conn_id = api.ok("GET", "/connections")["connections"][0]["id"]
        c.send_raw(raw_frame(1, CREATE, b"k") + raw_frame(2, PRODUCE, b"k", payload=b"v"))
        c.expect_bytes(create_ok(1, "k") + produce_ok(2, 0))
        assert api.wait(**{"for": "requests", "at_least": 2, "connection": conn_id})["observed"] == 2
        assert api.wait(**{"for": "messages", "topic": "k", "at_least": 1})["observed"] == 1
        assert api.wait(**{"for": "fault_fired", "fault": rule["id"]})["observed"] == 1
        assert api.wait(**{"for": "bytes_received", "at_least": 10, "connection": conn_id})["met"]
    assert api.wait(**{"for": "connection_closed", "connection": conn_id})["observed"] == "closed"
    assert api.wait(**{"for": "connections_open", "count": 0})["observed"] == 0


def test_internal_errors_are_listed(api):
    assert api.ok("GET", "/internal-errors") == {"internal_errors": []}


def test_the_mega_side_answers_the_same_with_the_control_api_in_use(api, broker):
    # Every request type, byte for byte, while the API is read between each.
    with client(broker) as c:
        for frame, answer in (
            (raw_frame(1, CREATE, b"same"), create_ok(1, "same")),
            (raw_frame(2, PRODUCE, b"same", payload=b"p"), produce_ok(2, 0)),
            (raw_frame(3, CONSUME, b"same", offset=0), consume_ok(3, TS, 1, b"p")),
            (raw_frame(4, CONSUME, b"same", offset=1), error(4, 6)),
        ):
            api.ok("GET", "/connections?transcript=1")
            c.send_raw(frame)
            c.expect_bytes(answer)
    assert api.ok("GET", "/health")["totals"]["requests"] == 4
