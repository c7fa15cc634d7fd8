"""``mega-conformance`` / ``python -m conformance``: run the client cases against a driver."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import cases as _cases  # noqa: F401  (importing it registers every case)
from ._case import REGISTRY, Case
from ._driver import DriverStartError, default_driver_command, parse_command
from ._report import run_printing, summary_table, write_html, write_json, write_junit
from ._runner import Runner, exit_status
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
    )
    p.add_argument(
        "--driver",
        metavar="CMD",
        help="command line that starts the driver, e.g. 'node driver.js' "
        "(default: the bundled mega_client driver, 'python -m mega_client.conformance_driver')",
    )
    p.add_argument("--case", metavar="ID", action="append", default=[], help="run this case; a glob, repeatable")
    p.add_argument("--area", metavar="AREA", action="append", default=[], help="run this area's cases; repeatable")
    p.add_argument("--strict", action="store_true", help="SHOULD cases that fail count as failures")
    p.add_argument("--json", metavar="PATH", help="write one JSON record per case to PATH")
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


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if _broker_cli.wants_broker(args):
            return _broker_cli.main(args, PROG)
        selected = REGISTRY.select("client", ids=args.case, areas=args.area)
        for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml), ("--report", args.report)):
            _check_output(path, option)
        driver_argv = parse_command(args.driver) if args.driver is not None else default_driver_command()
    except (_UsageError, LookupError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if args.list:
        _list(selected)
        return EXIT_OK

    driver_text = shlex.join(driver_argv)
    runner = Runner(driver_argv, strict=args.strict)
    try:
        runner.start()
    except DriverStartError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    print(f"{PROG}: {len(selected)} cases, driver: {driver_text}{' (strict)' if args.strict else ''}", flush=True)

    try:
        ran = run_printing(runner, selected, quiet=args.quiet, prog=PROG)
    finally:
        runner.close()
    if ran is None:
        return 130
    results, duration = ran

    print()
    print(summary_table(results, duration))
    try:
        if args.json:
            write_json(args.json, results)
        if args.junit_xml:
            write_junit(args.junit_xml, results)
        if args.report:
            write_html(args.report, results, driver=driver_text, strict=args.strict)
    except OSError as exc:
        print(f"{PROG}: error: {output_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return exit_status(results)


def console_main() -> None:
    """Entry point of the ``mega-conformance`` script."""
    sys.exit(main())
