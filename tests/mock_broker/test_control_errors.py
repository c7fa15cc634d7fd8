"""Bad input to every endpoint of the control API: a clear JSON error, the right status, bounded memory,
and nothing changed on the MEGA side."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ._control_support import Api, ControlledBroker, Reply, _reply, start_controlled_broker
from ._raw import RawClient, create_ok, produce_ok, raw_frame

PRODUCE, CREATE = 1, 3


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlledBroker]:
    b = start_controlled_broker("--idle-timeout", "0", stderr=tmp_path_factory.mktemp("control") / "broker.log")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def api(broker: ControlledBroker) -> Iterator[Api]:
    """The module's broker, reset; after the test, its MEGA side still answers and no rule was added."""
    api = broker.api
    api.ok("POST", "/reset", {"close_connections": True})
    api.ok("POST", "/topics", {"name": "exists"})
    yield api
    assert broker.proc.poll() is None, "the broker died"
    assert api.ok("GET", "/faults") == {"faults": []}
    with RawClient(broker.mega) as c:
        c.send_raw(raw_frame(1, CREATE, b"after") + raw_frame(2, PRODUCE, b"after", payload=b"ok"))
        c.expect_bytes(create_ok(1, "after") + produce_ok(2, 0))


def raw_http(broker: ControlledBroker, data: bytes, *, read_timeout: float = 10.0) -> Reply:
    """Send ``data`` as it is on a fresh control connection; the answer, read to the end of its body."""
    ctl = broker.started["control"]
    with socket.create_connection((ctl["host"], ctl["port"]), timeout=read_timeout) as s:
        with contextlib.suppress(OSError):  # the server answered and closed before taking it all
            s.sendall(data)
        return read_reply(s)


def read_reply(s: socket.socket) -> Reply:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before an answer: {buf!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("Content-Length", "0"))
    while len(rest) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed in the middle of the body"
        rest += chunk
    return _reply(status, headers, rest[:length])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# Every endpoint that takes a JSON body, with a body it otherwise accepts.
JSON_ENDPOINTS = [
    ("/faults", {"rule": "any:hold"}),
    ("/topics", {"name": "fresh"}),
    ("/topics/exists/messages", {"payload_text": "x"}),
    ("/wait", {"for": "requests", "at_least": 0}),
    ("/reset", {"close_connections": False}),
]


@pytest.mark.parametrize(("path", "good"), JSON_ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"{", b'{"a": 1,}', b"[1, 2]", b'"text"', b"null", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000, b'{"n": NaN}'],
    ids=["truncated", "trailing-comma", "array", "string", "null", "not-utf8", "deep", "nan"],
)
def test_malformed_json_is_400_invalid_json(api, path, good, body):
    reply = api.post(path, raw=body, content_type="application/json")
    assert reply.status == 400
    assert reply.error_code == "invalid_json"
    del good


@pytest.mark.parametrize(("path", "good"), JSON_ENDPOINTS)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/html", "application/jsonx"])
def test_a_body_that_is_not_json_is_415(api, path, good, content_type):
    reply = api.post(path, raw=json.dumps(good).encode(), content_type=content_type)
    assert reply.status == 415
    assert reply.error_code == "unsupported_media_type"


@pytest.mark.parametrize(("path", "good"), JSON_ENDPOINTS)
def test_a_body_without_a_content_type_is_415(broker, api, path, good):
    body = json.dumps(good).encode()
    head = f"POST /v1{path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    reply = raw_http(broker, head + body)
    assert reply.status == 415
    assert "no Content-Type" in reply.body["error"]["message"]


@pytest.mark.parametrize(("path", "good"), JSON_ENDPOINTS)
def test_an_unknown_field_is_400_and_named(api, path, good):
    reply = api.post(path, {**good, "surprise": 1})
    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert "surprise" in reply.body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"rule": "produce:explode"}, "invalid_rule"),
        ({"rule": "produce:delay"}, "invalid_rule"),
        ({"rule": "nonsense"}, "invalid_rule"),
        ({"rule": ""}, "invalid_rule"),
        ({"rule": 42}, "invalid_request"),
        ({"target": "produce", "action": "error", "arg": "NOPE"}, "invalid_rule"),
        ({"target": "produce:close", "action": "hold"}, "invalid_rule"),  # no smuggling a field in
        ({"target": "produce", "action": "hold", "topic": "a:b"}, "invalid_rule"),
        ({"target": "produce", "action": "hold", "when": "every"}, "invalid_rule"),
        ({"target": "produce", "action": "hold", "n": 3}, "invalid_rule"),
        ({"target": "produce", "action": "hold", "arg": True}, "invalid_rule"),
        ({"target": "produce", "action": "hold", "conn": 0}, "invalid_request"),
        ({"action": "hold"}, "invalid_request"),
        ({"rule": "any:hold", "target": "produce"}, "invalid_request"),
    ],
)
def test_a_bad_rule_is_400_and_adds_nothing(api, body, code):
    reply = api.post("/faults", body)
    assert reply.status == 400
    assert reply.error_code == code


def test_a_bad_rule_as_text_is_400(api):
    reply = api.post("/faults", raw=b"produce:slice=0", content_type="text/plain")
    assert reply.status == 400
    assert reply.error_code == "invalid_rule"
    assert "slice" in reply.body["error"]["message"]
    assert api.post("/faults", raw=b"\xff\xfe", content_type="text/plain").error_code == "invalid_rule"


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("GET", "/topics/missing", None, "unknown_topic"),
        ("GET", "/topics/missing/messages", None, "unknown_topic"),
        ("POST", "/topics/missing/messages", {"payload_text": "x"}, "unknown_topic"),
        ("GET", "/topics/%FF/messages", None, "not_found"),
        ("GET", "/faults/999999", None, "unknown_rule"),
        ("DELETE", "/faults/999999", None, "unknown_rule"),
        ("GET", "/faults/abc", None, "unknown_rule"),
        ("DELETE", "/faults/-1", None, "unknown_rule"),
        ("GET", "/connections/999999", None, "unknown_connection"),
        ("GET", "/connections/1e3", None, "unknown_connection"),
        ("POST", "/wait", {"for": "fault_fired", "fault": 999999, "timeout_ms": 10}, "unknown_rule"),
        ("GET", "/nothing-here", None, "not_found"),
        ("GET", "/v2/health", None, "not_found"),
        ("GET", "/faults/1/extra", None, "not_found"),
    ],
)
def test_what_does_not_exist_is_404(api, method, path, body, code):
    if path.startswith("/v2"):
        reply = Api(api.url.removesuffix("/v1")).call(method, path, body)
    else:
        reply = api.call(method, path, body)
    assert reply.status == 404
    assert reply.error_code == code


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"name": ""}, "empty"),
        ({"name": "bad name"}, "characters"),
        ({"name": "x" * 256}, "over 255"),
        ({"name": 5}, "string"),
        ({}, "required"),
    ],
)
def test_a_bad_topic_name_is_400(api, body, why):
    reply = api.post("/topics", body)
    assert reply.status == 400
    assert reply.error_code in ("invalid_topic", "invalid_request")
    assert why in reply.body["error"]["message"]


def test_an_existing_topic_is_409(api):
    reply = api.post("/topics", {"name": "exists"})
    assert reply.status == 409
    assert reply.error_code == "topic_exists"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"payload_text": "a", "payload_hex": "00"},
        {"payload_hex": "zz"},
        {"payload_base64": "!!!"},
        {"payload_text": "\ud800"},
        {"payload_text": "a", "timestamp": 2**63},
        {"payload_text": "a", "timestamp": "now"},
    ],
)
def test_a_bad_message_is_400_and_stores_nothing(api, body):
    reply = api.post("/topics/exists/messages", body)
    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert api.ok("GET", "/topics/exists") == {"name": "exists", "messages": 0}


def test_a_payload_over_the_brokers_limit_is_400(api):
    big = b"x" * (1024 * 1024 + 1)
    reply = api.post("/topics/exists/messages", raw=big, content_type="application/octet-stream")
    assert reply.status == 400
    assert "max_payload_bytes" in reply.body["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"for": "everything"},
        {"for": "requests"},
        {"for": "requests", "at_least": -1},
        {"for": "requests", "at_least": "3"},
        {"for": "requests", "at_least": True},
        {"for": "requests", "at_least": 1, "timeout_ms": 300_001},
        {"for": "requests", "at_least": 1, "timeout_ms": -5},
        {"for": "connection_closed"},
        {"for": "connections_open"},
        {"for": "messages", "at_least": 1},
        {"for": "messages", "topic": "t", "at_least": 1.5},
    ],
)
def test_a_bad_condition_is_400(api, body):
    reply = api.post("/wait", body)
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


@pytest.mark.parametrize(
    "query",
    [
        "/connections?state=gone",
        "/connections?limit=0",
        "/connections?limit=10001",
        "/connections?after=x",
        "/connections?transcript=maybe",
        "/connections?limit=1&limit=2",
        "/connections?unknown=1",
        "/topics/exists/messages?offset=-1",
        "/topics/exists/messages?limit=" + "9" * 40,
        "/faults?x=1",
        "/health?" + "&".join(f"a{i}=1" for i in range(50)),
    ],
)
def test_a_bad_query_is_400(api, query):
    reply = api.get(query)
    assert reply.status == 400
    assert reply.error_code == "invalid_request"


ROUTES = {
    "": {"GET"},
    "/health": {"GET"},
    "/config": {"GET"},
    "/internal-errors": {"GET"},
    "/reset": {"POST"},
    "/faults": {"GET", "POST", "DELETE"},
    "/faults/1": {"GET", "DELETE"},
    "/topics": {"GET", "POST"},
    "/topics/exists": {"GET"},
    "/topics/exists/messages": {"GET", "POST"},
    "/connections": {"GET"},
    "/connections/1": {"GET"},
    "/wait": {"POST"},
}


@pytest.mark.parametrize("path", sorted(ROUTES))
def test_a_wrong_method_is_405_with_allow(api, path):
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} - ROUTES[path]):
        reply = api.call(method, path, raw=b"{}" if method in ("POST", "PUT", "PATCH") else None)
        assert reply.status == 405, (method, path, reply.body)
        assert reply.error_code == "method_not_allowed"
        allowed = set(reply.headers["allow"].split(", "))
        assert allowed == ROUTES[path] | ({"HEAD"} if "GET" in ROUTES[path] else set())


def test_an_unknown_http_method_is_501_in_the_same_shape(api, broker):
    reply = raw_http(broker, b"BREW /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.status == 501
    assert reply.error_code == "not_implemented"


def test_a_garbled_request_line_is_400_in_the_same_shape(broker, api):
    reply = raw_http(broker, b"GET /v1/health HTTP/9\x01\r\n\r\n")
    assert reply.status in (400, 505)
    assert reply.error_code == "invalid_request"


def test_a_request_line_over_64_kib_is_414(broker, api):
    reply = raw_http(broker, b"GET /v1/" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
    assert reply.status == 414
    assert reply.error_code == "uri_too_long"


def test_too_many_headers_is_431(broker, api):
    headers = b"".join(b"X-%d: y\r\n" % i for i in range(150))
    reply = raw_http(broker, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert reply.status == 431
    assert reply.error_code == "headers_too_large"


def test_a_bad_content_length_is_400(broker, api):
    reply = raw_http(broker, b"POST /v1/reset HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert "Content-Length" in reply.body["error"]["message"]


def test_a_chunked_body_is_411(broker, api):
    reply = raw_http(
        broker,
        b"POST /v1/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n0\r\n\r\n',
    )
    assert reply.status == 411
    assert reply.error_code == "length_required"
    assert reply.headers["connection"] == "close"


def test_a_huge_body_is_refused_before_it_is_read_and_memory_stays_flat(broker, api):
    pid = broker.proc.pid
    before = rss_kib(pid)
    ctl = broker.started["control"]
    head = (
        b"POST /v1/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n"
    )
    chunk = b"{" * (1024 * 1024)
    for _ in range(3):
        with socket.create_connection((ctl["host"], ctl["port"]), timeout=10) as s:
            s.sendall(head)
            sent = 0
            try:  # keep pushing the body: the server must answer and close, never buffer it
                while sent < 256 * 1024 * 1024:
                    s.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
            reply = read_reply(s)
        assert reply.status == 413
        assert reply.error_code == "body_too_large"
        assert sent < 256 * 1024 * 1024, "the server kept reading a body it had refused"
    assert rss_kib(pid) - before < 32 * 1024, (before, rss_kib(pid))


def test_a_huge_body_announced_with_expect_100_continue_is_refused_before_it_is_sent(broker, api):
    ctl = broker.started["control"]
    with socket.create_connection((ctl["host"], ctl["port"]), timeout=10) as s:
        s.sendall(
            b"POST /v1/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 3000000\r\nExpect: 100-continue\r\n\r\n"
        )
        reply = read_reply(s)
    assert reply.status == 413


def test_a_body_at_the_limit_is_read_and_judged(api):
    body = b'{"rule": "' + b"a" * (2 * 1024 * 1024 - 20) + b'"}'
    assert len(body) <= 2 * 1024 * 1024
    reply = api.post("/faults", raw=body, content_type="application/json")
    assert reply.status == 400
    assert reply.error_code == "invalid_request"
    assert "'rule' is over" in reply.body["error"]["message"]
    assert len(reply.body["error"]["message"]) < 500  # the bad rule is not echoed whole


def test_a_client_that_stalls_in_its_body_holds_no_one_else_up(broker, api):
    ctl = broker.started["control"]
    with socket.create_connection((ctl["host"], ctl["port"]), timeout=10) as stalled:
        stalled.sendall(
            b"POST /v1/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        assert api.ok("GET", "/health")["status"] == "ok"
        with RawClient(broker.mega) as c:
            c.send_raw(raw_frame(1, CREATE, b"meanwhile"))
            c.expect_bytes(create_ok(1, "meanwhile"))


def test_connections_over_the_cap_wait_to_be_served_then_are(broker, api):
    ctl = broker.started["control"]
    idle = [socket.create_connection((ctl["host"], ctl["port"]), timeout=10) for _ in range(40)]
    try:
        got: list[Reply] = []
        t = threading.Thread(target=lambda: got.append(api.get("/health")))
        t.start()
        with RawClient(broker.mega) as c:  # the MEGA side is served all the while
            c.send_raw(raw_frame(1, CREATE, b"capped"))
            c.expect_bytes(create_ok(1, "capped"))
    finally:
        for s in idle:
            s.close()
    t.join(30)
    assert got
    assert got[0].status == 200


def test_the_answer_to_a_keep_alive_client_keeps_the_connection(broker, api):
    ctl = broker.started["control"]
    with socket.create_connection((ctl["host"], ctl["port"]), timeout=10) as s:
        for _ in range(3):
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_reply(s).status == 200
        s.sendall(b"GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(s).status == 404
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_reply(s).status == 200


def test_an_error_message_quotes_client_text_bounded_and_escaped(broker, api):
    reply = raw_http(broker, b"GET /v1/\x1b[31m" + b"x" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.status == 404
    message = reply.body["error"]["message"]
    assert len(message) < 300
    assert "\x1b" not in message
    assert "\\x1b" in message
