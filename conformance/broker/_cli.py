"""The ``--broker`` half of ``mega-conformance``: its options, and a run against a broker at an address."""

from __future__ import annotations

import argparse

from conformance._case import REGISTRY
from conformance._command import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    UsageError,
    check_outputs,
    error,
    exit_status,
    int_in,
    list_cases,
    positive_seconds,
    write_outputs,
)
from conformance._report import run_printing, summary_table
from conformance._results import run_view
from conformance._text import one_line

from ._context import DEFAULT_TIMEOUT, Target, parse_address
from ._runner import BrokerRunner, TargetUnreachable, verdict_lines

#: Options that only make sense with --broker (dest names).
BROKER_ONLY = ("idle_timeout", "topic_capacity", "timeout")


#: A topic capacity: at least one message, at most the wire's int32 offsets.
_capacity = int_in(1, 2**31 - 1, "messages")


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
        type=positive_seconds,
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
        type=positive_seconds,
        help=f"seconds of silence after which a read fails its case (default {DEFAULT_TIMEOUT:g})",
    )


def wants_broker(args: argparse.Namespace) -> bool:
    """True when the command line asks for a broker run (or gives a broker-only option)."""
    return args.broker is not None or any(getattr(args, name, None) is not None for name in BROKER_ONLY)


def main(args: argparse.Namespace, prog: str = PROG) -> int:
    """Run the broker cases as ``args`` say; the exit status of ``mega-conformance``."""
    try:
        if args.broker is None:
            given = [f"--{n.replace('_', '-')}" for n in BROKER_ONLY if getattr(args, n, None) is not None]
            raise UsageError(f"{', '.join(given)}: only with --broker HOST:PORT")
        if getattr(args, "driver", None) is not None:
            raise UsageError("--driver and --broker exclude each other: a run checks a client or a broker")
        host, port = parse_address(args.broker)
        target = Target(
            host,
            port,
            timeout=args.timeout if args.timeout is not None else DEFAULT_TIMEOUT,
            idle_timeout=args.idle_timeout,
            topic_capacity=args.topic_capacity,
        )
        selected = REGISTRY.select("broker", ids=args.case, areas=args.area)
        check_outputs(args)
    except (UsageError, LookupError, ValueError) as exc:  # a bad option, address, glob or output path
        error(exc, prog)
        return EXIT_USAGE

    if args.list:
        list_cases(selected)
        return EXIT_OK

    runner = BrokerRunner(target, strict=args.strict)
    try:
        runner.check_reachable()
    except TargetUnreachable as exc:
        error(exc, prog)
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
        return EXIT_INTERRUPTED
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
    failed_output = write_outputs(args, view, suite_name="mega-conformance-broker", prog=prog)
    if failed_output is not None:
        return failed_output
    return exit_status(results)
