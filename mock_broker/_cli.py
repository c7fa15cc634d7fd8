"""The ``mega-mock-broker`` command (also ``python -m mock_broker``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from mega_client.protocol.limits import DEFAULT_PORT, IDLE_TIMEOUT_SECONDS, MAX_MESSAGES_PER_TOPIC, MAX_PAYLOAD_BYTES

from ._config import PROFILES, BrokerConfig
from ._control_http import ControlServer, is_loopback
from ._faults import FaultRule, grammar_help
from ._jsonlog import JsonFormatter
from ._records_file import RecordsFile
from ._server import MockBroker

PROG = "mega-mock-broker"

#: Event loops the command runs on: the stdlib's, or uvloop's when installed (pip install 'mega-testkit[uvloop]').
LOOPS = ("asyncio", "uvloop")

T = TypeVar("T")

DESCRIPTION = """\
An asyncio MEGA broker for local development and tests, wire-compatible with
the reference broker. It prints the address it listens on, logs one line per
connection (and one per request with --log-level debug), and stops cleanly on
SIGINT or SIGTERM (exit status 0).

Profiles: "spec" (default) answers as docs/PROTOCOL.md says; "reference"
reproduces what the reference broker sends, byte for byte, as measured on it
(INTERNAL_ERROR for a bad topic name on CREATE_TOPIC and for a full topic,
TOPIC_NOT_FOUND for a bad name on PRODUCE/CONSUME, a silent close on an unknown
message type or a negative length, MESSAGE_TOO_LARGE only after the whole payload,
a long topic waited for then answered as a bad name, a silent close on a length
the JVM cannot allocate). Where the reference broker allocates the bytes it waits
for, the profile skips them as they arrive instead: same wire, no memory. Its
capacity and timing defects are not copied; its pool of 10 threads is
--connection-pool 10.
"""

EPILOG = (
    grammar_help()
    + """

control API (--control-port): HTTP/JSON under /v1 on 127.0.0.1, to add and remove fault rules,
reset, and read topics, messages and every connection's transcript from any language; see
mock_broker/README.md ("From another language"). Recording is on with --control-port or
--records-file (--no-record turns it off).

start-up: stdout gets the line "mega-mock-broker: listening on HOST:PORT (...)", then one JSON
object on one line: {"event": "listening", "pid", "profile", "mega": {"host", "port"},
"control": {"host", "port", "url"} or null}. --ready-file writes that same JSON object to a file
(atomically, once both ports listen) and removes it at exit. Nothing else is written to stdout.

shutdown: the first SIGINT or SIGTERM stops reading and drops every connection at once (within a
second, whatever the fault rules and the load); a second one exits immediately.
exit status: 0 after SIGINT/SIGTERM, 1 if it cannot listen, 2 for a bad option or fault rule.
"""
)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser."""
    p = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="port to listen on, 0 for any free one (default: %(default)s)"
    )
    p.add_argument("--profile", choices=PROFILES, default="spec", help="answering rules (default: %(default)s)")
    limits = p.add_argument_group("limits")
    limits.add_argument(
        "--max-payload-bytes",
        type=_positive_int,
        default=MAX_PAYLOAD_BYTES,
        metavar="N",
        help="larger payloads get MESSAGE_TOO_LARGE (default: %(default)s)",
    )
    limits.add_argument(
        "--max-messages-per-topic",
        type=_positive_int,
        default=MAX_MESSAGES_PER_TOPIC,
        metavar="N",
        help="PRODUCE to a full topic gets RESOURCE_EXHAUSTED (default: %(default)s)",
    )
    limits.add_argument(
        "--max-topics",
        type=_positive_int,
        default=BrokerConfig.max_topics,
        metavar="N",
        help="CREATE_TOPIC beyond this gets RESOURCE_EXHAUSTED (default: %(default)s)",
    )
    limits.add_argument(
        "--max-connections",
        type=_positive_int,
        default=BrokerConfig.max_connections,
        metavar="N",
        help="connections beyond this are closed at once (default: %(default)s)",
    )
    limits.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=IDLE_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="NETWORK_ERROR and close after this long without a byte received; 0: never (default: %(default)s)",
    )
    limits.add_argument(
        "--connection-pool",
        type=_positive_int,
        default=None,
        metavar="N",
        help="serve at most N connections at once, like the reference broker's pool of 10 threads: a "
        "later one is accepted but not read (no answer, no idle timeout) until one of the N closes "
        "(default: no pool, in both profiles)",
    )
    limits.add_argument(
        "--max-buffered-request-bytes",
        type=_positive_int,
        default=BrokerConfig.max_buffered_request_bytes,
        metavar="BYTES",
        help="request bytes all connections may hold while assembling large frames; past it, those "
        "connections wait, first come first served (default: %(default)s)",
    )
    limits.add_argument(
        "--write-buffer-high-water",
        type=_positive_int,
        default=BrokerConfig.write_buffer_high_water,
        metavar="BYTES",
        help="stop reading a connection whose unread answers exceed this (default: %(default)s)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="RULE",
        help="inject a fault (repeatable; grammar below)",
    )
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default="asyncio",
        help="event loop: the stdlib's, or uvloop (an optional extra: pip install 'mega-testkit[uvloop]') "
        "(default: %(default)s)",
    )
    rec = p.add_argument_group("recording and logging")
    rec.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep each connection's requests and raw bytes in memory (default: on with --control-port or "
        "--records-file, off otherwise)",
    )
    rec.add_argument(
        "--record-bytes-limit",
        type=_positive_int,
        default=BrokerConfig.record_bytes_limit,
        metavar="BYTES",
        help="with --record: bytes kept per direction per connection (default: %(default)s)",
    )
    rec.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="debug logs every request (default: %(default)s)",
    )
    rec.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one JSON object per log line on stderr (time, level, logger, message) (default: %(default)s)",
    )
    rec.add_argument(
        "--records-file",
        type=Path,
        metavar="PATH",
        help="write each connection's record (the JSON of GET /v1/connections/{id}), one per line, as it "
        "closes; every connection is closed, and written, by the time the broker exits",
    )
    ctl = p.add_argument_group("control API (HTTP/JSON; see mock_broker/README.md)")
    ctl.add_argument(
        "--control-port",
        type=_port,
        metavar="PORT",
        help="serve the control API on this port, 0 for any free one (default: no control API)",
    )
    ctl.add_argument(
        "--control-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="address of the control API (default: %(default)s); another than loopback needs --control-allow-remote",
    )
    ctl.add_argument(
        "--control-allow-remote",
        action="store_true",
        help="allow --control-host to be a non-loopback address: anyone who reaches it can reset the broker "
        "and read what its clients sent (a warning is logged)",
    )
    ctl.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="once both ports listen, write the start-up JSON object here (atomically); removed at exit",
    )
    return p


def config_from_args(args: argparse.Namespace) -> BrokerConfig:
    """The BrokerConfig the parsed options describe."""
    return BrokerConfig(
        host=args.host,
        port=args.port,
        profile=args.profile,
        max_payload_bytes=args.max_payload_bytes,
        max_messages_per_topic=args.max_messages_per_topic,
        max_topics=args.max_topics,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout or None,
        write_buffer_high_water=args.write_buffer_high_water,
        max_buffered_request_bytes=args.max_buffered_request_bytes,
        connection_pool=args.connection_pool,
        record=args.record if args.record is not None else (args.control_port is not None or bool(args.records_file)),
        record_bytes_limit=args.record_bytes_limit,
        faults=tuple(args.fault),
    )


class SignalHandler:
    """SIGINT/SIGTERM: the first asks for a clean stop; a second one exits at once, whatever is running."""

    def __init__(self, stop: asyncio.Event, exit_now: Callable[[int], object] = os._exit) -> None:
        self._stop = stop
        self._exit_now = exit_now

    def __call__(self) -> None:
        if self._stop.is_set():
            logging.getLogger("mock_broker").warning("second signal: exiting now")
            self._exit_now(0)
        self._stop.set()


def _error(message: str, json_format: bool) -> None:
    """A one-line error on stderr, in the log's format."""
    if json_format:
        record = logging.makeLogRecord({"name": "mock_broker", "levelno": logging.ERROR, "levelname": "ERROR"})
        record.msg = message
        print(JsonFormatter().format(record), file=sys.stderr)
    else:
        print(f"{PROG}: error: {message}", file=sys.stderr)


def _write_ready_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a reader sees no file or the whole of it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _CannotStart(Exception):
    """A start-up step failed; the message says which (exit status 1)."""


def _open_records(args: argparse.Namespace, config: BrokerConfig) -> RecordsFile | None:
    if args.records_file is None:
        return None
    try:
        return RecordsFile(args.records_file, config.max_payload_bytes)
    except OSError as exc:
        raise _CannotStart(f"cannot write the records file {args.records_file}: {exc.strerror or exc}") from exc


async def _start_broker(broker: MockBroker, config: BrokerConfig) -> None:
    try:
        await broker.start()
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        why = getattr(exc, "strerror", None) or exc
        raise _CannotStart(f"cannot listen on {config.host}:{config.port}: {why}") from exc


async def _start_control(broker: MockBroker, args: argparse.Namespace) -> ControlServer | None:
    if args.control_port is None:
        return None
    try:
        control = await ControlServer(broker, args.control_host, args.control_port).start()
    except (OSError, UnicodeError, OverflowError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise _CannotStart(f"cannot listen on {args.control_host}:{args.control_port} (control API): {why}") from exc
    if not is_loopback(control.host):
        logging.getLogger("mock_broker").warning(
            "the control API listens on %s:%d, not on loopback: anyone who can reach it can reset "
            "the broker and read what its clients sent",
            control.host,
            control.port,
        )
    return control


def _announce(broker: MockBroker, control: ControlServer | None, args: argparse.Namespace) -> Path | None:
    """Say where the broker listens: the ready file (if asked), a line for people and one JSON line."""
    started: dict[str, Any] = {
        "event": "listening",
        "pid": os.getpid(),
        "profile": broker.profile,
        "mega": {"host": broker.host, "port": broker.port},
        "control": None if control is None else {"host": control.host, "port": control.port, "url": control.url},
    }
    line = json.dumps(started)
    if args.ready_file is not None:
        try:
            _write_ready_file(args.ready_file, line + "\n")
        except OSError as exc:
            raise _CannotStart(f"cannot write the ready file {args.ready_file}: {exc.strerror or exc}") from exc
    human = f"{PROG}: listening on {broker.host}:{broker.port} (profile {broker.profile})"
    if control is not None:
        human += f", control API {control.url}"
    print(human, flush=True)
    print(line, flush=True)
    return args.ready_file  # type: ignore[no-any-return]


async def _serve(config: BrokerConfig, args: argparse.Namespace) -> int:
    broker = MockBroker(config)
    records: RecordsFile | None = None
    control: ControlServer | None = None
    ready: Path | None = None
    # Handle signals before saying where it listens: whoever reads that may stop it at once.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    on_signal = SignalHandler(stop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # pragma: no cover - non-Unix
            loop.add_signal_handler(sig, on_signal)
    try:
        records = _open_records(args, config)
        await _start_broker(broker, config)
        if records is not None:
            broker.on_connection_closed(records.connection_closed)
        control = await _start_control(broker, args)
        ready = _announce(broker, control, args)
        await stop.wait()
    except _CannotStart as exc:
        _error(str(exc), args.log_format == "json")
        return 1
    finally:
        if control is not None:
            control.close_api()  # control calls in flight get 503 now, not after the broker stopped
        await broker.stop()
        if control is not None:
            await control.stop()
        if records is not None:
            records.close()
        if ready is not None:
            with contextlib.suppress(OSError):
                ready.unlink()
    logging.getLogger("mock_broker").info("stopped")
    return 0


def loop_problem(loop: str) -> str | None:
    """Why ``loop`` cannot be used here, or None if it can."""
    if loop == "uvloop":
        try:
            importlib.import_module("uvloop")
        except ImportError:
            return "--loop uvloop needs uvloop, an optional extra: pip install 'mega-testkit[uvloop]'"
    return None


def run_on_loop(main: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """Run ``main`` to completion on a new event loop of the kind ``loop`` names (see :data:`LOOPS`)."""
    if loop == "uvloop":
        uvloop = importlib.import_module("uvloop")
        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status."""
    args = build_parser().parse_args(argv)
    json_format = args.log_format == "json"
    try:
        config = config_from_args(args)
        for rule in config.faults:
            FaultRule.parse(rule)
    except ValueError as exc:
        _error(str(exc), json_format)
        return 2
    if args.control_port is not None and not is_loopback(args.control_host) and not args.control_allow_remote:
        _error(
            f"--control-host {args.control_host} is not a loopback address: the control API can reset the "
            "broker; add --control-allow-remote to allow it",
            json_format,
        )
        return 2
    problem = loop_problem(args.loop)
    if problem is not None:
        _error(problem, json_format)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), handlers=[handler])
    try:
        return run_on_loop(_serve(config, args), args.loop)
    except KeyboardInterrupt:  # pragma: no cover - a second ^C during shutdown
        return 0
