"""``mega-conformance`` / ``python -m conformance``: run the client cases against a driver.

``mega-conformance compare A.json B.json ...`` writes one page comparing the ``--json``
results of several runs (:func:`compare_main`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from . import cases as _cases  # noqa: F401  (importing it registers every case)
from ._case import AREAS, REGISTRY
from ._command import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    Parser,
    UsageError,
    check_output,
    check_outputs,
    error,
    exit_status,
    list_cases,
    output_error,
    write_outputs,
)
from ._driver import DriverStartError, default_driver_command, parse_command
from ._html import write_compare
from ._report import run_printing, summary_table
from ._results import ResultsFileError, RunView, load, run_view
from ._runner import Runner
from ._text import one_line
from .broker import _cli as _broker_cli


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description=(
            "Check a MEGA client implementation against docs/PROTOCOL.md. The client is driven through a "
            "driver program speaking JSON lines (docs/CONFORMANCE.md); each case runs against its own "
            "in-process mock broker. Exit status 0 exactly when every MUST case passes."
        ),
        epilog=(
            "To compare the --json results of several runs (clients, releases) on one page: "
            f"{PROG} compare A.json B.json ... [-o compare.html] (see '{PROG} compare --help')."
        ),
    )
    p.add_argument(
        "--driver",
        metavar="CMD",
        help="command line that starts the driver, e.g. 'node driver.js' "
        "(default: the bundled mega_client driver, 'python -m mega_client.conformance_driver')",
    )
    p.add_argument(
        "--case",
        metavar="ID",
        action="append",
        default=[],
        help="run this case; a glob, repeatable; with --area, the cases of both (a union)",
    )
    p.add_argument(
        "--area",
        metavar="AREA",
        action="append",
        default=[],
        help=f"run this area's cases; repeatable; client areas: {', '.join(AREAS['client'])}; "
        f"broker areas (with --broker): {', '.join(AREAS['broker'])}",
    )
    p.add_argument("--strict", action="store_true", help="SHOULD cases that fail count as failures")
    p.add_argument(
        "--json",
        metavar="PATH",
        help="write the run to PATH as one JSON document (an object: the run's settings and a record per case; "
        "docs/CONFORMANCE.md section 3 has its schema)",
    )
    p.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report to PATH")
    p.add_argument("--report", metavar="PATH.html", help="write a self-contained HTML report to PATH")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")
    _broker_cli.add_arguments(p)
    return p


def build_compare_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=f"{PROG} compare",
        description=(
            "Write one self-contained HTML page comparing the --json results of several runs: a summary "
            "row per client, a matrix of cases by client with a coloured cell per verdict linking to its "
            "details (reason, note and, for every verdict but pass, the dissected wire transcript)."
        ),
    )
    p.add_argument("results", nargs="+", metavar="RESULTS.json", help="a file written by --json; one per client")
    p.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME",
        help="the name of each client, in the order of the files (default: each file's name)",
    )
    p.add_argument("-o", "--output", metavar="PATH.html", default="compare.html", help="default: %(default)s")
    return p


def compare_main(argv: Sequence[str]) -> int:
    """``mega-conformance compare``: 0 when the page was written, 2 for a usage or file error."""
    try:
        args = build_compare_parser().parse_args(argv)
        if args.label and len(args.label) != len(args.results):
            raise UsageError(f"{len(args.label)} --label for {len(args.results)} files: give one per file or none")
        check_output(args.output, "--output")
        labels = args.label or [Path(path).stem for path in args.results]
        pairs = zip(labels, args.results, strict=True)
        runs: list[tuple[str, RunView]] = [(label, load(path)) for label, path in pairs]
    except (UsageError, ResultsFileError) as exc:
        error(exc)
        return EXIT_USAGE
    try:
        write_compare(args.output, runs)
    except OSError as exc:
        error(output_error(exc))
        return EXIT_USAGE
    print(one_line(f"{PROG}: compared {len(runs)} runs: {args.output}"))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if _broker_cli.wants_broker(args):
            return _broker_cli.main(args, PROG)
        selected = REGISTRY.select("client", ids=args.case, areas=args.area)
        check_outputs(args)
        driver_argv = parse_command(args.driver) if args.driver is not None else default_driver_command()
    except (UsageError, LookupError, ValueError) as exc:
        error(exc)
        return EXIT_USAGE

    if args.list:
        list_cases(selected)
        return EXIT_OK

    driver_text = shlex.join(driver_argv)
    runner = Runner(driver_argv, strict=args.strict)
    try:
        runner.start()
    except DriverStartError as exc:
        error(exc)
        return EXIT_USAGE

    strict = " (strict)" if args.strict else ""
    print(one_line(f"{PROG}: {len(selected)} cases, driver: {driver_text}{strict}"), flush=True)

    try:
        ran = run_printing(runner, selected, quiet=args.quiet, prog=PROG)
    finally:
        runner.close()
    if ran is None:
        return EXIT_INTERRUPTED
    results, duration = ran

    print()
    print(summary_table(results, duration, runner.unusable, strict=args.strict))
    view = run_view(
        results, subject="client", target=driver_text, strict=args.strict, duration=duration, unusable=runner.unusable
    )
    failed_output = write_outputs(args, view, suite_name="mega-conformance")
    if failed_output is not None:
        return failed_output
    return exit_status(results)


def console_main() -> None:
    """Entry point of the ``mega-conformance`` script."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): say nothing more, and let no flush at exit complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 1
    sys.exit(status)
