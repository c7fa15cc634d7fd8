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
from typing import NoReturn

from . import cases as _cases  # noqa: F401  (importing it registers every case)
from ._case import AREAS, REGISTRY, Case
from ._driver import DriverStartError, default_driver_command, parse_command
from ._html import write_compare
from ._report import run_printing, summary_table, write_html, write_json, write_junit
from ._results import ResultsFileError, RunView, load, run_view
from ._runner import Runner, exit_status
from ._text import one_line
from .broker import _cli as _broker_cli

PROG = "mega-conformance"

EXIT_OK = 0
EXIT_USAGE = 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
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


def _check_output(path: str | None, option: str) -> None:
    """Refuse an output path that cannot be written, before the run rather than after it."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise _UsageError(f"{option} {path}: is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise _UsageError(f"{option} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise _UsageError(f"{option} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise _UsageError(f"{option} {path}: not writable")


def output_error(exc: OSError) -> str:
    """The one-line message for an output file that could not be written after all."""
    return f"cannot write {exc.filename if exc.filename is not None else 'an output file'}: {exc.strerror or exc}"


def _list(cases: Sequence[Case]) -> None:
    for c in cases:
        print(f"{c.id:<52} {c.area:<10} {c.level.value:<6} {' '.join(c.clauses)}")
        print(f"    {c.description}")
    print(f"{len(cases)} cases")


def _error(message: object) -> None:
    print(one_line(f"{PROG}: error: {message}"), file=sys.stderr)


def build_compare_parser() -> argparse.ArgumentParser:
    p = _Parser(
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
            raise _UsageError(f"{len(args.label)} --label for {len(args.results)} files: give one per file or none")
        _check_output(args.output, "--output")
        labels = args.label or [Path(path).stem for path in args.results]
        pairs = zip(labels, args.results, strict=True)
        runs: list[tuple[str, RunView]] = [(label, load(path)) for label, path in pairs]
    except (_UsageError, ResultsFileError) as exc:
        _error(exc)
        return EXIT_USAGE
    try:
        write_compare(args.output, runs)
    except OSError as exc:
        _error(output_error(exc))
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
        for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml), ("--report", args.report)):
            _check_output(path, option)
        driver_argv = parse_command(args.driver) if args.driver is not None else default_driver_command()
    except (_UsageError, LookupError, ValueError) as exc:
        _error(exc)
        return EXIT_USAGE

    if args.list:
        _list(selected)
        return EXIT_OK

    driver_text = shlex.join(driver_argv)
    runner = Runner(driver_argv, strict=args.strict)
    try:
        runner.start()
    except DriverStartError as exc:
        _error(exc)
        return EXIT_USAGE

    strict = " (strict)" if args.strict else ""
    print(one_line(f"{PROG}: {len(selected)} cases, driver: {driver_text}{strict}"), flush=True)

    try:
        ran = run_printing(runner, selected, quiet=args.quiet, prog=PROG)
    finally:
        runner.close()
    if ran is None:
        return 130
    results, duration = ran

    print()
    print(summary_table(results, duration, runner.unusable, strict=args.strict))
    view = run_view(
        results, subject="client", target=driver_text, strict=args.strict, duration=duration, unusable=runner.unusable
    )
    try:
        if args.json:
            write_json(args.json, view)
        if args.junit_xml:
            write_junit(args.junit_xml, view)
        if args.report:
            write_html(args.report, view)
    except OSError as exc:
        _error(output_error(exc))
        return EXIT_USAGE
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
