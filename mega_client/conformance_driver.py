"""The conformance driver for mega_client: the client behind a JSON-lines pipe.

::

    python -m mega_client.conformance_driver            # drives MessageClient
    python -m mega_client.conformance_driver --async    # drives AsyncMessageClient

The conformance runner (``mega-conformance``) writes one JSON command per line
to stdin and reads one JSON reply per line from stdout (docs/CONFORMANCE.md)::

    {"id": 1, "op": "connect", "host": "127.0.0.1", "port": 40123, "timeout_ms": 2000}
    {"id": 1, "ok": true, "result": {}}
    {"id": 2, "op": "consume", "topic": "t", "offset": 0}
    {"id": 2, "ok": false, "error": {"type": "broker", "code": "TOPIC_NOT_FOUND", "message": "..."}}

Ops: ``connect`` (a new client, with ``timeout_ms`` as both its connect and
request timeout, and ``first_correlation_id`` if given; an earlier one is closed
first), ``create_topic``, ``produce`` (payload in base64), ``consume``,
``pipeline`` (``--async`` only: every request in flight at once, each issued as a
task before any is awaited; the sync client answers ``unsupported``), ``close``.
An unknown op is answered with an error of type ``unsupported``. Error types: ``broker`` (with the protocol's
code name), ``connection``, ``timeout``, ``protocol``, ``usage``. The driver
never exits on an error; it exits when stdin ends. Logs go to stderr.

This file is also a template: a driver for a client in another language is the
same loop around that client's calls and exceptions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from ._async import AsyncMessageClient
from ._results import Consumed, Produced, TopicCreated
from ._sync import MessageClient
from .errors import (
    BrokerError,
    ClientStateError,
    MegaConnectionError,
    MegaProtocolError,
    MegaTimeoutError,
    ValidationError,
)

__all__ = ["Driver", "error_object", "main"]

log = logging.getLogger("mega_client.conformance_driver")

T = TypeVar("T")

#: Used when ``connect`` carries no ``timeout_ms``.
DEFAULT_TIMEOUT_MS = 5000
#: The most requests a ``pipeline`` command holds (docs/CONFORMANCE.md).
MAX_PIPELINE = 2000


class CommandError(Exception):
    """A command the driver cannot carry out: ``type`` is the contract's error type."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_


def error_object(exc: BaseException) -> dict[str, Any]:
    """The contract's ``error`` object for an exception raised by the client."""
    if isinstance(exc, CommandError):
        return {"type": exc.type, "message": str(exc)}
    if isinstance(exc, BrokerError):
        return {"type": "broker", "code": exc.code_name, "message": str(exc)}
    if isinstance(exc, MegaTimeoutError):
        kind = "timeout"
    elif isinstance(exc, MegaConnectionError):
        kind = "connection"
    elif isinstance(exc, MegaProtocolError):
        kind = "protocol"
    elif isinstance(exc, (ClientStateError, ValidationError, ValueError, TypeError, KeyError)):
        kind = "usage"
    else:  # a bug in the client: say so, and keep going
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return {"type": "usage", "message": f"unexpected {type(exc).__name__} in the client: {exc}"}
    return {"type": kind, "message": str(exc)}


def _field(command: Mapping[str, Any], name: str, kind: type[T]) -> T:
    value = command.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CommandError("usage", f"field {name!r} must be {kind.__name__}, not {value!r}")
    return value


class Driver:
    """Runs commands against one client at a time; sync or asyncio."""

    def __init__(self, use_async: bool = False) -> None:
        self.use_async = use_async
        self._client: MessageClient | AsyncMessageClient | None = None
        self._loop = asyncio.new_event_loop() if use_async else None

    def _run(self, step: Any) -> Any:
        """The result of a client call: for the async client, ``step`` is awaited on the driver's loop."""
        if self._loop is not None:
            return self._loop.run_until_complete(_await(step))
        return step

    def _require_client(self) -> MessageClient | AsyncMessageClient:
        if self._client is None:
            raise ClientStateError("not connected: send connect first")
        return self._client

    def handle(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """The result object for ``command``; raises for an error reply."""
        op = command.get("op")
        handler = self._ops().get(op if isinstance(op, str) else "")
        if handler is None:
            raise CommandError("unsupported", f"unknown op {op!r}")
        return handler(command)

    def _ops(self) -> dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]]:
        return {
            "connect": self._connect,
            "create_topic": self._single,
            "produce": self._single,
            "consume": self._single,
            "pipeline": self._pipeline,
            "close": self._close,
        }

    def _connect(self, command: Mapping[str, Any]) -> dict[str, Any]:
        host = command.get("host", "127.0.0.1")
        port = _field(command, "port", int)
        timeout_ms = command.get("timeout_ms", DEFAULT_TIMEOUT_MS)
        if not isinstance(host, str) or not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
            raise CommandError("usage", "connect needs a string host and a positive timeout_ms")
        first_cid = command.get("first_correlation_id", 1)  # optional: where the correlation ids start
        if not isinstance(first_cid, int) or isinstance(first_cid, bool):
            raise CommandError("usage", "first_correlation_id must be an integer")
        self._close({})
        timeout = timeout_ms / 1000
        cls = AsyncMessageClient if self.use_async else MessageClient
        self._client = cls(host, port, connect_timeout=timeout, request_timeout=timeout, first_correlation_id=first_cid)
        self._run(self._client.connect())
        return {}

    def _request(self, command: Mapping[str, Any]) -> tuple[Any, Callable[[Any], dict[str, Any]]]:
        """The client call a request makes (for the async client a coroutine, not yet running) and
        how its result is written. A bad field raises CommandError before anything is called."""
        op = command.get("op")
        client = self._require_client()
        if op == "create_topic":
            topic = _field(command, "topic", str)
            return client.create_topic(topic), _topic_created
        if op == "produce":
            topic = _field(command, "topic", str)
            try:
                payload = base64.b64decode(_field(command, "payload", str), validate=True)
            except binascii.Error as exc:
                raise CommandError("usage", f"payload is not base64: {exc}") from exc
            return client.produce(topic, payload), _produced
        if op == "consume":
            topic = _field(command, "topic", str)
            offset = _field(command, "offset", int)
            return client.consume(topic, offset), _consumed
        raise CommandError("usage", f"a request is create_topic, produce or consume, not {op!r}")

    def _single(self, command: Mapping[str, Any]) -> dict[str, Any]:
        call, written = self._request(command)
        return written(self._run(call))

    def _pipeline(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """Every request in flight at once: each call issued (as a task, in order) before any is awaited."""
        if self._loop is None:
            raise CommandError("unsupported", "MessageClient has one request in flight at a time (use --async)")
        requests = command.get("requests")
        if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_PIPELINE:
            raise CommandError("usage", f"requests must be a list of 1 to {MAX_PIPELINE} request objects")
        self._require_client()
        results: list[dict[str, Any]] = self._loop.run_until_complete(self._in_flight(requests))
        return {"results": results}

    async def _in_flight(self, requests: list[Any]) -> list[dict[str, Any]]:
        issued: list[tuple[asyncio.Future[Any], Callable[[Any], dict[str, Any]]] | BaseException] = []
        for request in requests:
            try:
                if not isinstance(request, dict):
                    raise CommandError("usage", "a request is a JSON object")
                call, written = self._request(request)
            except Exception as exc:  # a bad request fails alone; the others still go out
                issued.append(exc)
                continue
            issued.append((asyncio.ensure_future(call), written))
        results: list[dict[str, Any]] = []
        for item in issued:
            if isinstance(item, BaseException):
                results.append({"ok": False, "error": error_object(item)})
                continue
            task, written = item
            try:
                value = await task
            except Exception as exc:
                results.append({"ok": False, "error": error_object(exc)})
            else:
                results.append({"ok": True, "result": written(value)})
        return results

    def _close(self, command: Mapping[str, Any]) -> dict[str, Any]:
        if self._client is not None:
            self._run(self._client.close())
        return {}

    def shutdown(self) -> None:
        """Close the client and the loop (at the end of stdin)."""
        try:
            self._close({})
        finally:
            if self._loop is not None:
                self._loop.close()

    def reply(self, line: str) -> dict[str, Any]:
        """The reply object to one input line."""
        try:
            command = json.loads(line)
        except ValueError as exc:
            return {"id": None, "ok": False, "error": {"type": "usage", "message": f"not JSON: {exc}"}}
        if not isinstance(command, dict):
            return {"id": None, "ok": False, "error": {"type": "usage", "message": "a command is a JSON object"}}
        try:
            result = self.handle(command)
        except Exception as exc:
            log.info("op %r failed: %s: %s", command.get("op"), type(exc).__name__, exc)
            return {"id": command.get("id"), "ok": False, "error": error_object(exc)}
        return {"id": command.get("id"), "ok": True, "result": result}


def _topic_created(result: TopicCreated) -> dict[str, Any]:
    return {"topic": result.topic}


def _produced(result: Produced) -> dict[str, Any]:
    return {"offset": result.offset}


def _consumed(result: Consumed) -> dict[str, Any]:
    return {
        "payload": base64.b64encode(result.payload).decode("ascii"),
        "next_offset": result.next_offset,
        "timestamp": result.timestamp,
    }


async def _await(step: Awaitable[T]) -> T:
    return await step


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mega_client.conformance_driver",
        description="Drive mega_client over the conformance suite's JSON-lines contract (stdin/stdout).",
    )
    parser.add_argument("--async", dest="use_async", action="store_true", help="drive AsyncMessageClient")
    parser.add_argument("-v", "--verbose", action="store_true", help="log the client's debug messages to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    driver = Driver(use_async=args.use_async)
    try:
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            reply = driver.reply(line)
            sys.stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    finally:
        driver.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
