"""The results as Markdown tables (the terminal, ``summary.md``, docs/PERFORMANCE.md's figures block)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .scenarios import saturation_note, spread_text

#: docs/PERFORMANCE.md's figures live between these two lines; ``--write-docs`` replaces them.
BEGIN = "<!-- bench:figures:begin (python -m bench --write-docs rewrites this block) -->"
END = "<!-- bench:figures:end -->"


def _num(v: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if v is None else format(v, fmt)


def _load(load: dict[str, Any]) -> str:
    la = load.get("loadavg1")
    oc = load.get("others_cores")
    la_s = "n/a" if la is None else f"{la['median']:.2f}"
    oc_s = "n/a" if oc is None else f"{oc['median']:.2f} (≤{oc['high']:.2f})"
    return f"{la_s} / {oc_s}"


def _rate(d: dict[str, Any] | None) -> str:
    if d is None:
        return "n/a"
    return f"{d['median'] / 1000:,.0f}k [{d['low'] / 1000:,.0f}k-{d['high'] / 1000:,.0f}k]"


def _busy(row: dict[str, Any]) -> str:
    parts = []
    for side in ("floor", "broker"):
        b = row[side]["busy"]
        parts.append("n/a" if b is None else f"{b['median']:.0%}")
    return " / ".join(parts)


def header(r: dict[str, Any]) -> list[str]:
    m = r["meta"]
    la0, la1 = m.get("loadavg_start") or [None], m.get("loadavg_end") or [None]
    return [
        f"Command: `{m.get('command', 'python -m bench')}`; {m.get('started', '?')}; "
        f"{m.get('implementation', 'CPython')} {m.get('python', '?')}, {m.get('cpus', '?')} CPUs; "
        f"load generator: {m.get('loadgen', '?')}; {m.get('sizes', {}).get('rounds', '?')} rounds of "
        f"{m.get('sizes', {}).get('duration', '?')} s per figure; load average {_num(la0[0], '.2f')} at the start, "
        f"{_num(la1[0], '.2f')} at the end; {_num(m.get('seconds'), '.0f')} s in all.",
        "",
        "Each figure: median of the rounds [lowest-highest]. *load*: the 1-minute load average / the CPUs' "
        "worth of work other processes did during the runs, median (≤ highest round).",
    ]


def efficiency_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| op | conns x depth | loop | floor CPU µs/req | broker CPU µs/req | **efficiency** (floor ÷ broker) "
        "| floor req/s | broker req/s | server busy (floor / broker) | load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        eff = spread_text(row["efficiency"])
        extra = ""
        if row.get("vs_asyncio_broker"):
            extra = f" (broker {spread_text(row['vs_asyncio_broker'])}x as efficient as on asyncio)"
        lines.append(
            f"| {row['op'].upper()} | {row['conns']} x {row['depth']} | {row['loop']} "
            f"| {spread_text(row['floor']['cpu_us'], '.3f')} | {spread_text(row['broker']['cpu_us'], '.3f')} "
            f"| **{eff}**{extra} | {_rate(row['floor']['rate'])} | {_rate(row['broker']['rate'])} "
            f"| {_busy(row)} | {_load(row['load'])} |"
        )
    return lines


def other_table(r: dict[str, Any]) -> list[str]:
    co = r.get("consume_offset", {})
    mem = r.get("memory", {})
    idle = r.get("idle_connections", {})
    cl = r.get("client", {})
    lines = ["| figure | value | load |", "|---|---:|---|"]
    if co:
        lines += [
            f"| CONSUME, 1 conn x {co['depth']}, broker CPU µs/req at offset 0 "
            f"| {spread_text(co['offset0']['cpu_us'], '.3f')} | {_load(co['load'])} |",
            f"| ... at offset {co['deep_offset']:,} of {co['topic_messages']:,} "
            f"| {spread_text(co['deep']['cpu_us'], '.3f')} | |",
            f"| **CONSUME cost at the deep offset ÷ at offset 0** (CPU per request) "
            f"| **{spread_text(co['cost_ratio'])}** | |",
            f"| ... by rate (offset 0 req/s ÷ deep req/s) | {spread_text(co['rate_ratio'])} | |",
        ]
    if mem:
        fill = mem.get("fill", {})
        lines += [
            f"| broker RSS growth for {mem['messages']:,} stored messages of {mem['payload_bytes']} B (MiB) "
            f"| {(mem['rss_after'] - mem['rss_before']) / 2**20:,.1f} | |",
            f"| bytes per stored message / **overhead beyond the payload** "
            f"| {mem['bytes_per_message']:.0f} / **{mem['overhead_bytes_per_message']:.0f}** | |",
            f"| storing them: PRODUCE, 1 conn x 256 (req/s) | {_num(fill.get('rate'))} | |",
        ]
    if idle:
        per = spread_text(idle["bytes_per_connection"], ",.0f")
        lines.append(
            f"| **memory per idle connection** ({idle['connections']:,} connections, one CONSUME each, "
            f"default options; a fresh broker per round) (bytes) | **{per}** | |"
        )
    if cl:
        lines += [
            f"| raw-socket loop, PRODUCE closed loop (µs per round trip) | {spread_text(cl['raw_us_per_request'])} "
            f"| {_load(cl['closed_loop_load'])} |",
            f"| MessageClient.produce closed loop (µs per round trip) | {spread_text(cl['sync_us_per_request'])} | |",
            f"| **sync client time per request ÷ raw loop's** | **{spread_text(cl['sync_time_ratio'])}** | |",
            f"| client CPU µs per round trip, raw / sync | {spread_text(cl['raw']['self_cpu_us'])} / "
            f"{spread_text(cl['sync']['self_cpu_us'])} | |",
            f"| broker capacity, load generator 1 conn x {cl['async_concurrency']} (req/s) "
            f"| {_rate(cl['capacity']['rate'])} | {_load(cl['pipelined_load'])} |",
            f"| AsyncMessageClient.produce, {cl['async_concurrency']} tasks on 1 conn (req/s) "
            f"| {_rate(cl['async']['rate'])} | |",
            f"| **async client ÷ broker capacity** (rates) | **{spread_text(cl['async_share_of_capacity'])}** | |",
            f"| async client CPU µs per request / broker busy under it "
            f"| {spread_text(cl['async']['self_cpu_us'])} / {spread_text(cl['async']['busy'], '.0%')} | |",
        ]
    return lines


def targets_table(r: dict[str, Any]) -> list[str]:
    lines = ["| target | measured (median) | target | verdict |", "|---|---:|---:|---|"]
    for t in r.get("targets", []):
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else f"**missed** by {_miss(t)}")
        fmt = ".0f" if t["target"] >= 10 else ".2f"
        lines.append(f"| {t['label']} | {_num(t['measured'], fmt)} | {t['cmp']} {t['target']:g} | {verdict} |")
    return lines


def _miss(t: dict[str, Any]) -> str:
    value, target = t["measured"], t["target"]
    return f"{abs(value - target) / target:.0%}"


def notes(r: dict[str, Any]) -> list[str]:
    out = []
    for row in r.get("efficiency", []):
        note = saturation_note(row)
        if note:
            out.append(
                f"- {row['op'].upper()} {row['conns']} x {row['depth']} ({row['loop']}): server busy {note} "
                "of one CPU (under 90%: not saturated; see docs/PERFORMANCE.md)."
            )
    if r["meta"].get("loadgen") != "c":
        out.append(f"- Load generator: {r['meta'].get('loadgen_note')}. It cannot keep a fast server busy.")
    return out


def profile_lines(prof: dict[str, Any], n: int = 12) -> list[str]:
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
        lines += ["", f"py-spy, pipelined PRODUCE ({spy['samples']} samples; top {n} by self time):", ""]
        lines += ["| function | self % |", "|---|---:|"]
        lines += [f"| `{row['function']}` | {row['self_pct']:.1f} |" for row in spy["top_self"][:n]]
    elif prof.get("py_spy_note"):
        lines += ["", f"py-spy: {prof['py_spy_note']}"]
    return lines


def summary_markdown(r: dict[str, Any]) -> str:
    """Every figure of one run as Markdown."""
    lines = [*header(r), "", *efficiency_table(r.get("efficiency", [])), "", *other_table(r), ""]
    lines += targets_table(r)
    extra = notes(r)
    if extra:
        lines += ["", *extra]
    if r.get("profile"):
        lines += ["", *profile_lines(r["profile"])]
    return "\n".join(lines) + "\n"


def write_docs(r: dict[str, Any], performance_md: Path) -> None:
    """Replace the figures block of docs/PERFORMANCE.md with this run's figures."""
    text = performance_md.read_text()
    try:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
    except ValueError:
        raise RuntimeError(f"{performance_md} has no figures block ({BEGIN!r} ... {END!r})") from None
    performance_md.write_text(head + BEGIN + "\n\n" + summary_markdown(r) + "\n" + END + tail)
