"""The ``--broker`` half of ``mega-conformance``: its options, and a run against a broker at an address."""

from __future__ import annotations

import argparse
import math
import sys

from conformance._case import REGISTRY
from conformance._report import run_printing, summary_table, write_html, write_json, write_junit
from conformance._results import run_view
from conformance._runner import exit_status
from conformance._text import one_line

from ._context import DEFAULT_TIMEOUT, Target, parse_address
from ._runner import BrokerRunner, TargetUnreachable, verdict_lines

#: Options that only make sense with --broker (dest names).
BROKER_ONLY = ("idle_timeout", "topic_capacity", "timeout")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def _capacity(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of messages") from None
    if not 1 <= value <= 2**31 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1..2147483647")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--broker`` and the options of a broker run to ``parser``."""
    group = parser.add_argument_group(
        "checking a broker",
        "With --broker, run the broker cases against a running broker instead of the client cases "
        "(docs/CONFORMANCE.md, 'Checking a broker'). The broker needs nothing but its address: topics are "
        "named uniquely per run.",
    )
    group.add_argument("--broker", metavar="HOST:PORT", help="check the MEGA broker listening at HOST:PORT")
    group.add_argument(
        "--idle-timeout",
        metavar="SECONDS",
        type=_positive_float,
        help="the broker's idle timeout; the idle cases wait for it (skipped without this option)",
    )
    group.add_argument(
        "--topic-capacity",
        metavar="N",
        type=_capacity,
        help="the broker's per-topic capacity; limits.topic-capacity fills a topic that far "
        "(skipped without this option; the spec's default is 1,000,000)",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        help=f"seconds of silence after which a read fails its case (default {DEFAULT_TIMEOUT:g})",
    )


def wants_broker(args: argparse.Namespace) -> bool:
    """True when the command line asks for a broker run (or gives a broker-only option)."""
    return args.broker is not None or any(getattr(args, name, None) is not None for name in BROKER_ONLY)


def main(args: argparse.Namespace, prog: str = "mega-conformance") -> int:
    """Run the broker cases as ``args`` say; the exit status of ``mega-conformance``."""
    from conformance._cli import EXIT_USAGE, _check_output, _list, output_error  # noqa: PLC0415  (imports this one)

    try:
        if args.broker is None:
            given = [f"--{n.replace('_', '-')}" for n in BROKER_ONLY if getattr(args, n, None) is not None]
            raise ValueError(f"{', '.join(given)}: only with --broker HOST:PORT")
        if getattr(args, "driver", None) is not None:
            raise ValueError("--driver and --broker exclude each other: a run checks a client or a broker")
        host, port = parse_address(args.broker)
        target = Target(
            host,
            port,
            timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
            idle_timeout=args.idle_timeout,
            topic_capacity=args.topic_capacity,
        )
        selected = REGISTRY.select("broker", ids=args.case, areas=args.area)
        for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml), ("--report", args.report)):
            _check_output(path, option)
    except Exception as exc:  # a usage error of any kind: bad address, option, glob, output path
        print(one_line(f"{prog}: error: {exc}"), file=sys.stderr)
        return EXIT_USAGE

    if args.list:
        _list(selected)
        return 0

    runner = BrokerRunner(target, strict=args.strict)
    try:
        runner.check_reachable()
    except TargetUnreachable as exc:
        print(one_line(f"{prog}: error: {exc}"), file=sys.stderr)
        return EXIT_USAGE

    settings = [f"run id {target.run_id}", f"read timeout {target.timeout:g} s"]
    settings.append(f"idle timeout {target.idle_timeout:g} s" if target.idle_timeout else "no idle timeout given")
    if target.topic_capacity:
        settings.append(f"topic capacity {target.topic_capacity}")
    strict = " (strict)" if args.strict else ""
    print(
        one_line(f"{prog}: {len(selected)} broker cases, broker: {target.address} ({'; '.join(settings)}){strict}"),
        flush=True,
    )

    ran = run_printing(runner, selected, quiet=args.quiet, prog=prog)
    if ran is None:
        return 130
    results, duration = ran

    verdicts = verdict_lines(results)
    print()
    print(summary_table(results, duration, strict=args.strict))
    for line in verdicts:
        print(one_line(line))
    view = run_view(
        results,
        subject="broker",
        target=f"{target.address} ({'; '.join(settings)})",
        strict=args.strict,
        duration=duration,
        verdicts=verdicts,
        title=f"MEGA broker conformance report: {target.address}",
    )
    try:
        if args.json:
            write_json(args.json, view)
        if args.junit_xml:
            write_junit(args.junit_xml, view, suite_name="mega-conformance-broker")
        if args.report:
            write_html(args.report, view)
    except OSError as exc:
        print(one_line(f"{prog}: error: {output_error(exc)}"), file=sys.stderr)
        return EXIT_USAGE
    return exit_status(results)
