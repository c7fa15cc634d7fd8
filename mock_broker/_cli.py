"""The ``mega-mock-broker`` command (also ``python -m mock_broker``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

from mega_client.protocol.limits import DEFAULT_PORT, IDLE_TIMEOUT_SECONDS, MAX_MESSAGES_PER_TOPIC, MAX_PAYLOAD_BYTES

from ._config import PROFILES, BrokerConfig
from ._faults import FaultRule, grammar_help
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
        action="store_true",
        help="keep each connection's requests and raw bytes in memory (off by default here)",
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
        record=args.record,
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


async def _serve(config: BrokerConfig) -> int:
    broker = MockBroker(config)
    try:
        await broker.start()
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        why = getattr(exc, "strerror", None) or exc
        print(f"{PROG}: error: cannot listen on {config.host}:{config.port}: {why}", file=sys.stderr)
        return 1
    print(f"{PROG}: listening on {broker.host}:{broker.port} (profile {config.profile})", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    on_signal = SignalHandler(stop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # pragma: no cover - non-Unix
            loop.add_signal_handler(sig, on_signal)
    try:
        await stop.wait()
    finally:
        await broker.stop()
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
    try:
        config = config_from_args(args)
        for rule in config.faults:
            FaultRule.parse(rule)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    problem = loop_problem(args.loop)
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return run_on_loop(_serve(config), args.loop)
    except KeyboardInterrupt:  # pragma: no cover - a second ^C during shutdown
        return 0
