"""``python -m bench``: the mock broker's and the client's efficiency, measured honestly.

Run from a checkout of the repository (its root on ``sys.path``, as
``python -m`` from the root does); only the standard library is needed, and a C
compiler for the load generator (without one, a slower Python generator is
used, and the report says so). See docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import report
from .chart import render_svg
from .loadgen import LoadError, LoadGenerator
from .scenarios import DEFAULT, QUICK, SECTIONS, Bench, Sizes
from .servers import REPO_ROOT

DESCRIPTION = f"""\
Measure the MEGA mock broker against the floor (the fastest honest asyncio
server: frames walked, answers of the right shape, nothing stored) by server
CPU time per request, from /proc, for pipelined PRODUCE and CONSUME (100-byte
payloads, {DEFAULT.depth} in flight per connection, 1 and 8 connections); then CONSUME
at a deep offset against offset 0, memory per stored message and per idle
connection, the sync client against a raw-socket loop and the async client
against the broker's capacity. Servers, load generator and clients are
separate processes; compared runs alternate in rounds; every figure is a
median with its lowest and highest round, printed with the machine's load.

Duration: the default run takes about 100 s on 2 CPUs (measured: 98 s, of
which the efficiency rounds about 55 s and the clients about 28 s); --uvloop
adds about 55 s, --profile about 10 s; --quick takes about 10 s.

Writes results/latest.json (every round of every figure), summary.md (the
tables) and perf-chart.svg into --out; tracked files change only with
--write-docs.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: every figure, meaningless values (the tests)")
    p.add_argument(
        "--rounds", type=int, default=None, help=f"rounds per compared pair (default: {DEFAULT.rounds}; quick: 2)"
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help=f"seconds measured per run (default: {DEFAULT.duration}; quick: {QUICK.duration})",
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help=f"seconds of load before each measured window (default: {DEFAULT.warmup}; quick: {QUICK.warmup})",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        default=None,
        help="run only this part (repeatable; default: all of them)",
    )
    p.add_argument(
        "--uvloop",
        action="store_true",
        help="also measure the floor and the broker on uvloop (extra rows; pip install '.[uvloop]')",
    )
    p.add_argument(
        "--loadgen",
        choices=("auto", "c", "python"),
        default="auto",
        help="auto: bench/loadgen.c built with the C compiler, else the Python one (default: %(default)s)",
    )
    p.add_argument(
        "--spin",
        action="store_true",
        help="the load generator polls for answers instead of sleeping (a whole CPU; default: it sleeps)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for latest.json, summary.md and perf-chart.svg (default: bench/results/, git-ignored)",
    )
    p.add_argument(
        "--write-docs",
        action="store_true",
        help="also rewrite docs/PERFORMANCE.md's figures block and docs/perf-chart.svg (a full run only)",
    )
    p.add_argument("--profile", action="store_true", help="also profile the broker (cProfile; py-spy if installed)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the servers' logs, rings and profiles")
    return p


def _sizes(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Sizes:
    """The run's sizes: the quick or the default ones, with the options that change them checked."""
    sizes = QUICK if args.quick else DEFAULT
    changes: dict[str, Any] = {}
    if args.rounds is not None:
        if args.rounds < 1:
            parser.error("--rounds must be >= 1")
        changes["rounds"] = args.rounds
    for name in ("duration", "warmup"):
        value = getattr(args, name)
        if value is not None:
            if not 0 <= value <= 600:
                parser.error(f"--{name} must be within 0..600 seconds")
            changes[name] = value
    return dataclasses.replace(sizes, **changes) if changes else sizes


def _loops(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, ...]:
    """The event loops the servers run on; uvloop only when asked for and installed."""
    if not args.uvloop:
        return ("asyncio",)
    from mock_broker._cli import loop_problem  # noqa: PLC0415

    problem = loop_problem("uvloop")
    if problem:
        parser.error(problem)
    return ("asyncio", "uvloop")


def _write_outputs(results: dict[str, Any], out_dir: Path, *, write_docs: bool) -> None:
    """The run's files (and, with --write-docs, the tracked ones), then the summary on the terminal."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    summary = report.summary_markdown(results)
    (out_dir / "summary.md").write_text(summary)
    (out_dir / "perf-chart.svg").write_text(render_svg(results))
    print()
    print(summary)
    print(f"results: {out_dir / 'latest.json'}, {out_dir / 'summary.md'}, {out_dir / 'perf-chart.svg'}")
    if write_docs:
        report.write_docs(results, REPO_ROOT / "docs" / "PERFORMANCE.md")
        (REPO_ROOT / "docs" / "perf-chart.svg").write_text(render_svg(results))
        print("docs: docs/PERFORMANCE.md (figures block) and docs/perf-chart.svg rewritten")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.write_docs and (args.quick or args.only):
        parser.error("--write-docs needs a full run (neither --quick nor --only)")
    sizes = _sizes(parser, args)
    loops = _loops(parser, args)
    try:
        loadgen = LoadGenerator.choose(args.loadgen)
    except LoadError as exc:
        parser.error(str(exc))
    print(f"load generator: {loadgen.note}")

    workdir = Path(tempfile.mkdtemp(prefix="mega-bench-"))
    bench = Bench(sizes, workdir=workdir, loadgen=loadgen, loops=loops, spin=args.spin)
    try:
        results = bench.run(set(args.only or SECTIONS), profile=args.profile)
    except (LoadError, RuntimeError, OSError) as exc:
        print(f"python -m bench: error: {exc}", file=sys.stderr)
        print(f"(servers' logs kept in {workdir})", file=sys.stderr)
        return 1
    # The results name the profile files in the workdir (cprofile_file, py_spy_file): a profiled run keeps it.
    keep = args.keep_workdir or args.profile
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["command"] = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    results["meta"]["workdir"] = str(workdir) if keep else None
    out_dir: Path = args.out if args.out is not None else REPO_ROOT / "bench" / "results"
    _write_outputs(results, out_dir, write_docs=args.write_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
