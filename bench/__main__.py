"""``python -m bench``: measure the mock broker and the client against the floor.

Writes the results JSON, a Markdown summary and the chart (SVG). See
docs/PERFORMANCE.md for what each figure means.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from .chart import render_svg
from .scenarios import DEFAULT, QUICK, REPO_ROOT, Bench, make_workdir, merge_runs

DESCRIPTION = """\
Benchmark the MEGA mock broker and client. Starts the floor (a bare asyncio
server with canned answers) and the mock broker as separate processes, drives
them from separate load processes with prebuilt requests, and reports
requests/s side by side, broker/floor ratios, CONSUME cost at a deep offset,
memory per stored message, the sync client against a raw-socket loop, the
async client pipelined, and a cross-check with the C load generator megaload.
The default sizes take about 3 minutes on 2 cores; --quick takes seconds.
"""


def _md_num(v: Any, fmt: str = ",.0f") -> str:
    if v is None:
        return "n/a"
    return format(v, fmt)


def summary_markdown(r: dict[str, Any]) -> str:
    """The figures of one run as Markdown tables (pasted into docs/PERFORMANCE.md)."""
    lines: list[str] = []
    ml = {(c["op"], c["conns"], c["depth"]): c for c in r.get("megaload", {}).get("cells", []) or []}
    lines += [
        "| op | conns | depth | floor req/s | broker req/s | broker/floor | floor CPU µs/req | broker CPU µs/req "
        "| megaload floor | megaload broker | megaload broker/floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in r.get("throughput", []):
        m = ml.get((c["op"], c["conns"], c["depth"]), {})
        lines.append(
            f"| {c['op'].upper()} | {c['conns']} | {c['depth']} | {_md_num(c['floor_rps'])} | "
            f"{_md_num(c['broker_rps'])} | {_md_num(c['ratio'], '.2f')} | {_md_num(c['floor_cpu_us'], '.1f')} | "
            f"{_md_num(c['broker_cpu_us'], '.1f')} | {_md_num(m.get('floor_rps'))} | {_md_num(m.get('broker_rps'))} "
            f"| {_md_num(m.get('ratio'), '.2f')} |"
        )
    co = r.get("consume_offset", {})
    mem = r.get("memory", {})
    cl = r.get("client", {})
    mld = r.get("megaload", {}).get("deep", {}) or {}
    lines += [
        "",
        "| figure | value |",
        "|---|---:|",
        f"| fill of the deep topic, PRODUCE depth 256 (req/s) | {_md_num(co.get('fill_rps'))} |",
        f"| CONSUME at offset 0, 1 conn depth 64 (req/s) | {_md_num(co.get('offset0_rps'))} |",
        f"| CONSUME at offset {_md_num(co.get('deep_offset'))} of {_md_num(co.get('topic_messages'))}, "
        f"1 conn depth 64 (req/s) | {_md_num(co.get('deep_rps'))} |",
        f"| CONSUME cost ratio, deep / offset 0 (rates) | {_md_num(co.get('cost_ratio'), '.2f')} |",
        f"| CONSUME broker CPU µs/req, offset 0 / deep | {_md_num(co.get('offset0_cpu_us'), '.1f')} / "
        f"{_md_num(co.get('deep_cpu_us'), '.1f')} |",
        f"| megaload: CONSUME cost ratio, deep / offset 0 | {_md_num(mld.get('cost_ratio'), '.2f')} |",
        f"| broker RSS growth for {_md_num(mem.get('messages'))} messages of {mem.get('payload_bytes')} B (MiB) | "
        f"{_md_num((mem.get('rss_after', 0) - mem.get('rss_before', 0)) / 2**20, ',.1f')} |",
        f"| bytes per stored message / overhead beyond the payload | {_md_num(mem.get('bytes_per_message'), '.0f')}"
        f" / {_md_num(mem.get('overhead_bytes_per_message'), '.0f')} |",
        f"| raw-socket loop, PRODUCE closed loop (round trips/s) | {_md_num(cl.get('raw_rps'))} |",
        f"| MessageClient.produce closed loop (round trips/s) | {_md_num(cl.get('sync_rps'))} |",
        f"| raw loop / sync client (slowdown) | {_md_num(cl.get('slowdown'), '.2f')} |",
        f"| client CPU µs per round trip, raw / sync | {_md_num(cl.get('raw_cpu_us'), '.1f')} / "
        f"{_md_num(cl.get('sync_cpu_us'), '.1f')} |",
        f"| AsyncMessageClient.produce, {cl.get('async_concurrency')} concurrent (req/s) | "
        f"{_md_num(cl.get('async_rps'))} |",
        f"| AsyncMessageClient client CPU µs per request | {_md_num(cl.get('async_cpu_us'), '.1f')} |",
        "",
        "| target | measured | target | verdict |",
        "|---|---:|---:|---|",
    ]
    for t in r.get("targets", []):
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "**missed**")
        lines.append(f"| {t['label']} | {_md_num(t['measured'], '.2f')} | {t['cmp']} {t['target']:g} | {verdict} |")
    prof = r.get("profile")
    if prof:
        lines += ["", *profile_markdown(prof)]
    return "\n".join(lines) + "\n"


def profile_markdown(prof: dict[str, Any], n: int = 12) -> list[str]:
    """The broker profile's top functions by self time."""
    lines: list[str] = []
    cp = prof.get("cprofile")
    if cp:
        lines += [
            f"cProfile, pipelined PRODUCE (top {n} by self time, % of the profiled process's time):",
            "",
            "| function | calls | self % | cumulative % |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| `{row['function']}` | {row['calls']:,} | {row['self_pct']:.1f} | {row['cum_pct']:.1f} |"
            for row in cp["top_self"][:n]
        ]
    spy = prof.get("py_spy")
    if spy:
        lines += [
            "",
            f"py-spy, pipelined PRODUCE ({spy['samples']} samples; top {n} by self time, % of busy samples):",
            "",
            "| function | self % |",
            "|---|---:|",
        ]
        lines += [f"| `{row['function']}` | {row['self_pct']:.1f} |" for row in spy["top_self"][:n]]
    elif prof.get("py_spy_note"):
        lines += ["", f"py-spy: {prof['py_spy_note']}"]
    if prof.get("kernel_share_pct") is not None:
        lines += [
            "",
            f"Kernel (system) share of the broker's CPU time under this load: {prof['kernel_share_pct']:.0f}%",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds; what the tests run)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for latest.json, summary.md and perf-chart.svg "
        "(default: bench/results/ for the JSON and summary, docs/perf-chart.svg for the chart)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run everything N times (fresh servers each time) and report the median of each figure",
    )
    parser.add_argument("--reps", type=int, default=None, help="runs per compared figure within a run (median kept)")
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per run")
    parser.add_argument("--load-processes", type=int, default=None, help="load generator processes (default: cores-1)")
    parser.add_argument(
        "--spin",
        choices=("auto", "always", "never"),
        default="auto",
        help="load workers busy-poll for answers instead of sleeping in the kernel: "
        "auto (default) in closed loops (depth 1) only",
    )
    parser.add_argument("--no-megaload", action="store_true", help="skip the megaload cross-check")
    parser.add_argument("--megaload-src", type=Path, default=None, help="megaload.c (default: ../shared/tools/)")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the broker (cProfile, and py-spy if installed)"
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep the logs and profiles folder")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else DEFAULT
    changes: dict[str, Any] = {}
    if args.reps is not None:
        changes["reps"] = max(1, args.reps)
    if args.duration is not None:
        changes["duration"] = args.duration
        changes["client_duration"] = args.duration
    if changes:
        sizes = dataclasses.replace(sizes, **changes)

    if args.out is not None:
        json_path = args.out / "latest.json"
        summary_path = args.out / "summary.md"
        chart_path = args.out / "perf-chart.svg"
    else:
        json_path = REPO_ROOT / "bench" / "results" / "latest.json"
        summary_path = REPO_ROOT / "bench" / "results" / "summary.md"
        chart_path = REPO_ROOT / "docs" / "perf-chart.svg"

    workdir = make_workdir()
    runs: list[dict[str, Any]] = []
    try:
        for i in range(max(1, args.repeat)):
            if args.repeat > 1:
                print(f"== run {i + 1} of {args.repeat}")
            bench = Bench(
                sizes,
                workdir=workdir,
                load_processes=args.load_processes,
                spin=args.spin,
                megaload=not args.no_megaload,
                megaload_src=args.megaload_src,
                profile=args.profile and i == args.repeat - 1,
            )
            runs.append(bench.run())
    finally:
        if not args.keep_workdir and not args.profile:
            shutil.rmtree(workdir, ignore_errors=True)
    results = runs[0] if len(runs) == 1 else merge_runs(runs)
    if len(runs) > 1:
        results["runs"] = runs
    results["meta"]["command"] = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    results["meta"]["workdir"] = str(workdir) if (args.keep_workdir or args.profile) else None

    for p in (json_path, summary_path, chart_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    summary = summary_markdown(results)
    summary_path.write_text(summary)
    chart_path.write_text(render_svg(results))
    print()
    print(summary)
    print(f"results: {json_path}\nsummary: {summary_path}\nchart:   {chart_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
