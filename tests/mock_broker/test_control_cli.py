"""The command's control-plane options: start-up lines, --ready-file, --log-format json, --records-file,
--control-host, and stopping with control calls in flight."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from pathlib import Path

from tests._proc import LineReader, kill, run_module, start_mock_broker, start_module, stop

from ._control_support import Api, Reply, start_controlled_broker
from ._raw import RawClient, create_ok, raw_frame

CREATE = 3


def wait_for_file(path: Path, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written within {timeout} s"
        time.sleep(0.02)
    return path.read_text()


def test_help_documents_the_control_options():
    res = run_module("mock_broker", "--help")
    assert res.returncode == 0
    for option in (
        "--control-port",
        "--control-host",
        "--control-allow-remote",
        "--ready-file",
        "--log-format",
        "--records-file",
        "--no-record",
    ):
        assert option in res.stdout, option
    assert '"event": "listening"' in res.stdout


def test_start_up_prints_the_human_line_then_one_json_object_and_nothing_else(tmp_path):
    b = start_controlled_broker(stderr=tmp_path / "err.log")
    try:
        m = re.fullmatch(
            r"mega-mock-broker: listening on 127\.0\.0\.1:(\d+) \(profile spec\), control API (http://\S+)\n",
            b.human_line,
        )
        assert m is not None, b.human_line
        started = b.started
        assert set(started) == {"event", "pid", "profile", "mega", "control"}
        assert started["event"] == "listening"
        assert started["pid"] == b.proc.pid
        assert started["mega"] == {"host": "127.0.0.1", "port": int(m.group(1))}
        control = started["control"]
        assert control["url"] == m.group(2) == f"http://127.0.0.1:{control['port']}/v1"
        assert control["port"] != started["mega"]["port"]
        assert Api(control["url"]).ok("GET", "/health")["status"] == "ok"
        with RawClient(b.mega) as c:
            c.send_raw(raw_frame(1, CREATE, b"up"))
            c.expect_bytes(create_ok(1, "up"))
        status, out, _ = stop(b.proc)
    finally:
        b.stop()
    assert status == 0
    assert out == ""  # both lines were read already: nothing else came


def test_the_test_helper_that_reads_the_human_line_still_works():
    proc, host, port = start_mock_broker("--control-port", "0")
    try:
        with RawClient((host, port)) as c:
            c.send_raw(raw_frame(1, CREATE, b"h"))
            c.expect_bytes(create_ok(1, "h"))
    finally:
        kill(proc)


def test_without_a_control_port_the_json_line_says_control_null():
    proc = start_module("mock_broker", "--port", "0")
    try:
        status, out, _ = stop_after_lines(proc, 2)
    finally:
        kill(proc)
    human, line = out.splitlines()
    assert "listening on" in human
    started = json.loads(line)
    assert started["control"] is None
    assert started["mega"]["port"] > 0
    assert status == 0


def stop_after_lines(proc, n: int) -> tuple[int, str, str]:
    reader = LineReader(proc)
    lines = "".join(reader.readline(15) for _ in range(n))
    status, out, err = stop(proc)
    return status, lines + out, err


def test_ready_file_is_written_whole_once_both_listen_and_removed_at_exit(tmp_path):
    ready = tmp_path / "ready.json"
    b = start_controlled_broker("--ready-file", str(ready), stderr=tmp_path / "err.log")
    try:
        text = wait_for_file(ready)
        assert text.endswith("\n")
        assert json.loads(text) == b.started
        assert sorted(p.name for p in tmp_path.iterdir()) == ["err.log", "ready.json"]  # no temporary left
        status, _, _ = stop(b.proc)
    finally:
        b.stop()
    assert status == 0
    assert not ready.exists()


def test_a_ready_file_that_cannot_be_written_is_one_line_and_exit_1(tmp_path):
    res = run_module(
        "mock_broker", "--port", "0", "--control-port", "0", "--ready-file", str(tmp_path / "no" / "such" / "dir")
    )
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "ready file" in res.stderr
    assert "Traceback" not in res.stderr


def test_log_format_json_gives_one_object_per_line(tmp_path):
    log = tmp_path / "err.log"
    b = start_controlled_broker("--log-format", "json", "--log-level", "debug", stderr=log)
    try:
        with RawClient(b.mega) as c:
            c.send_raw(raw_frame(1, CREATE, b"line\nbreak"))  # a bad name with a newline, logged at debug
            c.recv_exact(6)
        b.api.ok("GET", "/health")
        status, _, _ = stop(b.proc)
    finally:
        b.stop()
    assert status == 0
    lines = log.read_text().splitlines()
    assert len(lines) > 3
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert set(entry) >= {"time", "level", "logger", "message"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    messages = [e["message"] for e in entries]
    assert any(re.search(r"conn 1 .*closed", m) for m in messages), messages
    assert any(m.startswith("control: GET /v1/health -> 200") for m in messages), messages
    assert entries[-1]["message"] == "stopped"


def test_json_log_format_makes_start_up_errors_json_too():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_module("mock_broker", "--port", "0", "--control-port", str(port), "--log-format", "json")
    assert res.returncode == 1
    (line,) = res.stderr.strip().splitlines()
    entry = json.loads(line)
    assert set(entry) == {"time", "level", "logger", "message"}
    assert entry["level"] == "error"
    assert f"127.0.0.1:{port} (control API)" in entry["message"]


def test_records_file_gets_each_connection_as_it_closes_with_its_exact_bytes(tmp_path):
    records = tmp_path / "records.jsonl"
    b = start_controlled_broker("--records-file", str(records), stderr=tmp_path / "err.log")
    try:
        frame = raw_frame(7, CREATE, b"rec")
        with RawClient(b.mega) as c:
            c.send_raw(frame)
            c.expect_bytes(create_ok(7, "rec"))
        first = wait_for_file(records)
        deadline = time.monotonic() + 15
        while not first.endswith("\n"):  # written as the connection closed, not at exit
            assert time.monotonic() < deadline
            time.sleep(0.02)
            first = records.read_text()
        open_client = RawClient(b.mega)
        b.api.wait(**{"for": "connections_open", "count": 1})
        status, _, _ = stop(b.proc)  # the open connection is closed, and written, at exit
        open_client.close()
    finally:
        b.stop()
    assert status == 0
    lines = records.read_text().splitlines()
    assert len(lines) == 2
    one, two = (json.loads(line) for line in lines)
    assert one["received"]["hex"] == frame.hex()
    assert one["requests"][0]["answer"]["kind"] == "create_topic"
    assert one["close_reason"] == "peer closed"
    assert two["state"] == "closed"
    assert two["close_reason"] == "broker stopped"


def test_a_non_loopback_control_host_needs_an_explicit_option():
    res = run_module("mock_broker", "--port", "0", "--control-port", "0", "--control-host", "0.0.0.0")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "--control-allow-remote" in res.stderr


def test_with_the_option_it_binds_elsewhere_and_warns(tmp_path):
    log = tmp_path / "err.log"
    b = start_controlled_broker("--control-host", "0.0.0.0", "--control-allow-remote", stderr=log)
    try:
        assert b.started["control"]["host"] == "0.0.0.0"
        assert Api(f"http://127.0.0.1:{b.started['control']['port']}/v1").ok("GET", "/health")["status"] == "ok"
        stop(b.proc)
    finally:
        b.stop()
    assert re.search(r"WARNING .*control API listens on 0\.0\.0\.0:\d+, not on loopback", log.read_text())


def test_a_control_port_in_use_is_one_line_and_exit_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_module("mock_broker", "--port", "0", "--control-port", str(port))
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "control API" in res.stderr
    assert "Traceback" not in res.stderr


def test_rules_given_at_start_are_listed_with_ids(tmp_path):
    b = start_controlled_broker(
        "--fault", "produce:delay=5", "--fault", "connect:close:nth=3", stderr=tmp_path / "err.log"
    )
    try:
        faults = b.api.ok("GET", "/faults")["faults"]
    finally:
        b.stop()
    assert [(f["id"], f["rule"]) for f in faults] == [(1, "produce:delay=5"), (2, "connect:close:nth=3")]


def test_no_record_keeps_counts_and_no_transcript(tmp_path):
    b = start_controlled_broker("--no-record", stderr=tmp_path / "err.log")
    try:
        with RawClient(b.mega) as c:
            c.send_raw(raw_frame(1, CREATE, b"q"))
            c.expect_bytes(create_ok(1, "q"))
        b.api.wait(**{"for": "connections_closed", "at_least": 1})
        (conn,) = b.api.ok("GET", "/connections?transcript=1")["connections"]
        assert b.api.ok("GET", "/config")["config"]["record"] is False
    finally:
        b.stop()
    assert conn["request_count"] == 1
    assert conn["requests"] == []
    assert conn["received"] == {"size": 0, "hex": ""}


def test_stopping_with_a_long_wait_in_flight_answers_it_and_exits_at_once(tmp_path):
    b = start_controlled_broker(stderr=tmp_path / "err.log")
    got: list[Reply | BaseException] = []

    def waiter() -> None:
        try:
            got.append(b.api.post("/wait", {"for": "requests", "at_least": 1, "timeout_ms": 120_000}))
        except BaseException as exc:  # the connection may be closed instead of answered
            got.append(exc)

    try:
        t = threading.Thread(target=waiter)
        t.start()
        deadline = time.monotonic() + 15
        while b.api.ok("GET", "/health")["waits"] != 1:  # the wait is running on the broker's loop
            assert time.monotonic() < deadline, "the wait never started"
            time.sleep(0.02)
        started = time.monotonic()
        status, _, _ = stop(b.proc, signal.SIGTERM, timeout=15)
        took = time.monotonic() - started
        t.join(15)
    finally:
        b.stop()
    assert status == 0
    assert took < 10, took
    assert not t.is_alive()
    (answer,) = got
    assert isinstance(answer, Reply), answer
    assert answer.status == 503
    assert answer.error_code == "unavailable"
