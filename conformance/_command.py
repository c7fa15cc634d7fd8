"""What both halves of ``mega-conformance`` (client cases, ``--broker``) share as a command.

One usage error type and the parser that raises it, the checks of output
paths before a run, the one-line error message, ``--list``, the writing of the
three reports, and the option validators. Neither half imports the other's
private helpers: both import this module.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import NoReturn

from ._case import Case
from ._report import write_html, write_json, write_junit
from ._results import RunView
from ._runner import CaseResult, run_failed
from ._text import one_line

PROG = "mega-conformance"

EXIT_OK = 0
#: A run with a failed case.
EXIT_FAILED = 1
#: A usage error: bad option, glob, address or output path; a driver that cannot start.
EXIT_USAGE = 2
#: Interrupted (Ctrl-C).
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line asks for something that cannot be done; the message says what."""


class Parser(argparse.ArgumentParser):
    """argparse whose errors are :class:`UsageError` (one line, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def error(message: object, prog: str = PROG) -> None:
    """Print ``prog: error: message`` as one line on stderr (the message may come from outside)."""
    print(one_line(f"{prog}: error: {message}"), file=sys.stderr)


# -- option values ------------------------------------------------------------------------------


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number of ``what`` from ``lo`` to ``hi``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {what}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} must be {lo}..{hi}")
        return value

    return parse


def exit_status(results: Iterable[CaseResult]) -> int:
    """The command's status after a run: ``EXIT_FAILED`` when a case failed or was not judged, else 0."""
    return EXIT_FAILED if run_failed(results) else EXIT_OK


# -- outputs ------------------------------------------------------------------------------------


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse ``--json``, ``--junit-xml`` and ``--report`` paths that cannot be written, before the run."""
    for option, path in (("--json", args.json), ("--junit-xml", args.junit_xml), ("--report", args.report)):
        check_output(path, option)


def check_output(path: str | None, option: str) -> None:
    """Refuse an output path that cannot be written (UsageError), before the run rather than after it."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option} {path}: is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"{option} {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{option} {path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise UsageError(f"{option} {path}: not writable")


def output_error(exc: OSError) -> str:
    """The one-line message for an output file that could not be written after all."""
    return f"cannot write {exc.filename if exc.filename is not None else 'an output file'}: {exc.strerror or exc}"


def write_outputs(args: argparse.Namespace, view: RunView, *, suite_name: str, prog: str = PROG) -> int | None:
    """Write the reports ``args`` ask for; ``EXIT_USAGE`` (after saying why) if one cannot be written."""
    try:
        if args.json:
            write_json(args.json, view)
        if args.junit_xml:
            write_junit(args.junit_xml, view, suite_name=suite_name)
        if args.report:
            write_html(args.report, view)
    except OSError as exc:
        error(output_error(exc), prog)
        return EXIT_USAGE
    return None


# -- --list -------------------------------------------------------------------------------------


def list_cases(cases: Sequence[Case]) -> None:
    """``--list``: each case's id, area, level and clauses, then its description."""
    for c in cases:
        print(f"{c.id:<52} {c.area:<11} {c.level.value:<6} {' '.join(c.clauses)}")
        print(f"    {c.description}")
    print(f"{len(cases)} cases")
