"""A subprocess broker with its control API, and a small HTTP client (urllib) that returns every answer."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests._proc import LineReader, kill, start_module


@dataclass
class Reply:
    """One HTTP answer: status, headers (lower-case names) and the body parsed as JSON (None if empty)."""

    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str:
        assert isinstance(self.body, dict), self.body
        assert set(self.body) == {"error"}, self.body
        error = self.body["error"]
        assert set(error) == {"code", "message"}, error
        assert isinstance(error["message"], str), error
        assert error["message"], error
        assert "\n" not in error["message"], error
        return str(error["code"])


class Api:
    """Calls on one control API; never raises for an HTTP error status."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        data = raw
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return _reply(res.status, dict(res.headers), res.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _reply(exc.code, dict(exc.headers), exc.read())

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """The body of a 2xx answer (AssertionError with the answer otherwise)."""
        reply = self.call(method, path, body, **kw)
        assert 200 <= reply.status < 300, (reply.status, reply.body)
        return reply.body

    def wait(self, timeout_ms: int = 10_000, **condition: Any) -> Any:
        """POST /wait, asserting the condition was met."""
        got = self.ok("POST", "/wait", {**condition, "timeout_ms": timeout_ms})
        assert got["met"], got
        return got


def _reply(status: int, headers: dict[str, str], data: bytes) -> Reply:
    lower = {k.lower(): v for k, v in headers.items()}
    body = json.loads(data) if data else None
    if data:
        assert lower.get("content-type") == "application/json", lower
    return Reply(status, lower, body)


@dataclass
class ControlledBroker:
    """A ``python -m mock_broker --control-port 0`` subprocess, started."""

    proc: subprocess.Popen[str]
    started: dict[str, Any]
    human_line: str

    @property
    def mega(self) -> tuple[str, int]:
        return (self.started["mega"]["host"], self.started["mega"]["port"])

    @property
    def api(self) -> Api:
        return Api(self.started["control"]["url"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            kill(self.proc)


def start_controlled_broker(*args: str, stderr: Path | None = None, timeout: float = 15.0) -> ControlledBroker:
    """Start the broker with ``--port 0 --control-port 0 ARGS``; return once both listen (start-up lines read)."""
    proc = start_module("mock_broker", "--port", "0", "--control-port", "0", *args, stderr=stderr)
    reader = LineReader(proc)
    human = reader.readline(timeout)
    line = reader.readline(timeout)
    try:
        started = json.loads(line)
    except ValueError:
        _, err = kill(proc)
        raise AssertionError(f"no JSON start-up line: {human!r} {line!r}; stderr: {err}") from None
    return ControlledBroker(proc, started, human)
