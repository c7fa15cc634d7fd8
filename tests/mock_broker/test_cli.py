"""The mega-mock-broker command, as a subprocess."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
from importlib.metadata import entry_points

import pytest

from mock_broker._cli import SignalHandler
from tests._proc import kill, run_module, start_mock_broker, stop

from ._raw import RawClient, create, create_ok, pipelined, produce, produce_ok


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return run_module("mock_broker", *args, timeout=timeout)


def start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    proc, _, port = start_mock_broker(*args)
    return proc, port


def test_help_documents_the_options():
    res = run_cli("--help")
    assert res.returncode == 0
    for option in (
        "--host",
        "--port",
        "--profile",
        "--max-payload-bytes",
        "--max-messages-per-topic",
        "--max-topics",
        "--max-connections",
        "--idle-timeout",
        "--log-level",
        "--record",
    ):
        assert option in res.stdout
    assert "8080" in res.stdout
    assert "127.0.0.1" in res.stdout


@pytest.mark.parametrize(
    "args", [["--no-such-option"], ["--port", "eighty"], ["--profile", "nope"], ["--idle-timeout", "-3"]]
)
def test_bad_option_is_one_line_and_exit_2(args):
    res = run_cli(*args)
    assert res.returncode == 2
    assert res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr


def test_a_host_name_that_cannot_be_encoded_is_one_line_and_nonzero():
    res = run_cli("--host", "a" * 70, "--port", "0")  # an IDNA label is at most 63 characters
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr


def test_port_in_use_is_one_line_and_nonzero():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = run_cli("--port", str(port))
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert f"127.0.0.1:{port}" in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_logs_and_stops_cleanly_on_signal(sig):
    proc, port = start_cli("--profile", "reference", "--max-topics", "1")
    try:
        with RawClient(("127.0.0.1", port)) as c:
            c.send(create(1, "t"), produce(2, "t", b"x"), create(3, "u"))
            c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0) + bytes.fromhex("00 00 00 03 00 09"))
            c.send_raw(b"\x00\x00\x00\x04\x09rest")  # reference profile: silent close
            assert c.read_to_eof() == b""
        status, _, err = stop(proc, sig)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert status == 0, err
    assert "Traceback" not in err
    assert re.search(r"conn 1 .*closed", err), err


def test_debug_logs_each_request():
    proc, port = start_cli("--log-level", "debug", "--record")
    try:
        with RawClient(("127.0.0.1", port)) as c:
            c.send(create(77, "dbg"))
            c.expect_bytes(create_ok(77, "dbg"))
        status, _, err = stop(proc)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert status == 0
    assert "CreateTopicRequest(correlation_id=77" in err


def test_console_script_is_installed():
    # Judged on the installed distribution (tox installs the wheel), not on pyproject's text.
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("mega-mock-broker") == "mock_broker._cli:main"


def test_fault_option_applies_rules():
    proc, port = start_cli("--fault", "produce:error=RESOURCE_EXHAUSTED:every=2", "--fault", "create_topic:wrong-cid")
    try:
        with RawClient(("127.0.0.1", port)) as c:
            c.send_raw(pipelined([create(1, "t"), produce(2, "t", b"x"), produce(3, "t", b"y")]))
            c.expect_bytes(create_ok(2, "t") + produce_ok(2, 0) + bytes.fromhex("00 00 00 03 00 09"))
        status, _, err = stop(proc)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert status == 0
    # At the default level applied faults are summarised (one line per rule at stop, a count per
    # connection), never logged one line per request: a flood of faulted requests must not flood the log.
    assert "applied to request" not in err
    assert "fault produce:error=RESOURCE_EXHAUSTED:every=2: applied 1 times (2 matches)" in err
    assert "3 requests, 68 B in, 39 B out, 2 faults applied" in err


def test_debug_logs_each_applied_fault():
    proc, port = start_cli("--log-level", "debug", "--fault", "produce:error=RESOURCE_EXHAUSTED:every=2")
    try:
        with RawClient(("127.0.0.1", port)) as c:
            c.send_raw(pipelined([create(1, "t"), produce(2, "t", b"x"), produce(3, "t", b"y")]))
            c.expect_bytes(create_ok(1, "t") + produce_ok(2, 0) + bytes.fromhex("00 00 00 03 00 09"))
        status, _, err = stop(proc)
    finally:
        if proc.poll() is None:
            kill(proc)
    assert status == 0
    assert "fault produce:error=RESOURCE_EXHAUSTED:every=2 applied to request #3 (cid 3)" in err


@pytest.mark.parametrize("rule", ["produce:explode", "produce:delay", "nope"])
def test_bad_fault_rule_is_one_line_and_exit_2(rule):
    res = run_cli("--fault", rule)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "bad fault rule" in lines[0]


def test_help_documents_the_fault_grammar():
    out = run_cli("--help").stdout
    assert "TARGET[@TOPIC]:ACTION[=ARG][:WHEN][:conn=N]" in out
    for word in ("close-after=K", "slow-read", "refuse=MS", "every=N", "unsolicited=CODE", "trailing=HEX", "hold"):
        assert word in out


def test_a_second_signal_exits_at_once_whatever_is_running():
    stop_requested = asyncio.Event()
    exits: list[int] = []
    handler = SignalHandler(stop_requested, exits.append)
    handler()
    assert stop_requested.is_set()
    assert exits == []
    handler()  # the clean stop is still under way
    assert exits == [0]
