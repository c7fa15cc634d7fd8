"""The results chart: a hand-written SVG (no plotting library at run time).

Top: the server CPU time per request of the floor and of the mock broker for
each cell (median bars, lowest-to-highest whiskers), with the efficiency
(floor ÷ broker) beside. Bottom: each target of the issue against its
measured value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

WIDTH = 960
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
FLOOR_COLOR = "#9aa5b1"
BROKER_COLOR = "#2f6fb3"
MET_COLOR = "#2e8b57"
MISSED_COLOR = "#c0392b"
GRID_COLOR = "#e3e7eb"


def _fmt_value(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.2f}"


def _text(x: float, y: float, s: str, *, size: int = 12, anchor: str = "start", weight: str = "normal",
          color: str = "#222") -> str:  # fmt: skip
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
        f"font-weight='{weight}' fill='{color}' {FONT}>{escape(s)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, color: str) -> str:
    return f"<rect x='{x:.1f}' y='{y:.1f}' width='{max(w, 0.5):.1f}' height='{h:.1f}' fill='{color}'/>"


def _whisker(x0: float, x1: float, y: float) -> str:
    return (
        f"<line x1='{x0:.1f}' y1='{y:.1f}' x2='{x1:.1f}' y2='{y:.1f}' stroke='#111' stroke-width='1.2'/>"
        f"<line x1='{x0:.1f}' y1='{y - 4:.1f}' x2='{x0:.1f}' y2='{y + 4:.1f}' stroke='#111' stroke-width='1.2'/>"
        f"<line x1='{x1:.1f}' y1='{y - 4:.1f}' x2='{x1:.1f}' y2='{y + 4:.1f}' stroke='#111' stroke-width='1.2'/>"
    )


#: The layout: a label column on the left, the values' column on the right, the bars between.
LEFT, RIGHT = 250, 190
PLOT_W = WIDTH - LEFT - RIGHT
#: Panel A: a row of two bars (floor, broker) per cell.
TOP_A, ROW_H, BAR_H = 80, 38, 13
#: Panel B: a row per target, below panel A's axis and legend.
GAP_B, TROW_H = 95, 40


def render_svg(results: dict[str, Any]) -> str:
    """The chart for one results dict, as SVG text."""
    rows: list[dict[str, Any]] = results.get("efficiency", [])
    targets: list[dict[str, Any]] = results.get("targets", [])
    top_b = TOP_A + len(rows) * ROW_H + GAP_B
    height = top_b + len(targets) * TROW_H + 20
    out: list[str] = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
        *_heading(results.get("meta", {})),
        *_cpu_panel(rows),
        *_targets_panel(targets, top_b),
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def _heading(meta: dict[str, Any]) -> list[str]:
    """The title, and the run's conditions under it: a figure means little without the machine's load."""
    title = "MEGA mock broker vs the floor: server CPU time per request (lower is better)"
    la = (meta.get("loadavg_start") or ["?"])[0]
    sub = (
        f"Python {meta.get('python', '?')}, {meta.get('cpus', '?')} CPUs, {meta.get('started', '')}; "
        f"median of {meta.get('sizes', {}).get('rounds', '?')} rounds, whiskers lowest to highest; load average {la}"
    )
    return [_text(20, 26, title, size=15, weight="bold"), _text(20, 46, sub, size=11, color="#555")]


def _cpu_panel(rows: list[dict[str, Any]]) -> list[str]:
    """Panel A: CPU µs per request of the floor and the broker for each cell, on one linear scale from 0."""
    highs = [
        row[side]["cpu_us"]["high"] for row in rows for side in ("floor", "broker") if row[side]["cpu_us"] is not None
    ]
    top_v = max(highs) * 1.1 if highs else 1.0

    def xa(v: float) -> float:
        return LEFT + PLOT_W * v / top_v

    bottom = TOP_A + len(rows) * ROW_H
    out = _cpu_axis(xa, top_v, bottom)
    for i, row in enumerate(rows):
        out += _cpu_row(row, TOP_A + i * ROW_H, xa)
    ly = bottom + 52
    out.append(_rect(LEFT, ly - 9, 14, 10, FLOOR_COLOR))
    out.append(_text(LEFT + 20, ly, "floor (python -m bench.floor)", size=11))
    out.append(_rect(LEFT + 230, ly - 9, 14, 10, BROKER_COLOR))
    out.append(_text(LEFT + 250, ly, "mock broker (python -m mock_broker)", size=11))
    return out


def _cpu_axis(xa: Callable[[float], float], top_v: float, bottom: int) -> list[str]:
    """Panel A's grid lines with their values, and the axis' title."""
    out: list[str] = []
    step = _nice_step(top_v / 5)
    v = 0.0
    while v <= top_v:
        x = xa(v)
        out.append(
            f"<line x1='{x:.1f}' y1='{TOP_A - 6}' x2='{x:.1f}' y2='{bottom}' stroke='{GRID_COLOR}' stroke-width='1'/>"
        )
        out.append(_text(x, bottom + 14, f"{v:g}", size=10, anchor="middle", color="#666"))
        v += step
    out.append(_text(LEFT + PLOT_W / 2, bottom + 30, "µs of server CPU per request", size=11,
                     anchor="middle", color="#444"))  # fmt: skip
    return out


def _cpu_row(row: dict[str, Any], y: int, xa: Callable[[float], float]) -> list[str]:
    """One cell of panel A: its label, a bar (median) and a whisker (lowest to highest) per side, its figures."""
    label = f"{row['op'].upper()} {row['conns']} x {row['depth']}" + (
        f" ({row['loop']})" if row["loop"] != "asyncio" else ""
    )
    out = [_text(LEFT - 10, y + BAR_H + 3, label, size=12, anchor="end")]
    for j, (side, color) in enumerate((("floor", FLOOR_COLOR), ("broker", BROKER_COLOR))):
        sp = row[side]["cpu_us"]
        by = y + j * (BAR_H + 1)
        if sp is None:
            continue
        out.append(_rect(LEFT, by, xa(sp["median"]) - LEFT, BAR_H, color))
        # One round has no spread to show.
        if sp["n"] > 1:
            out.append(_whisker(xa(sp["low"]), xa(sp["high"]), by + BAR_H / 2))
    eff = row.get("efficiency")
    eff_s = "n/a" if eff is None else f"efficiency {eff['median']:.2f}"
    cpu = row["broker"]["cpu_us"]
    out.append(_text(WIDTH - RIGHT + 10, y + 11, f"broker {cpu['median']:.2f} µs" if cpu else "", size=11))
    out.append(_text(WIDTH - RIGHT + 10, y + 25, eff_s, size=11, weight="bold", color=BROKER_COLOR))
    return out


def _targets_panel(targets: list[dict[str, Any]], top: int) -> list[str]:
    """Panel B: each target's measured value as a bar, on a scale of its own, against a dashed line at the target."""
    out = [_text(20, top - 18, "Targets of issue 15 (dashed line: the target)", size=14, weight="bold")]
    for i, t in enumerate(targets):
        y = top + i * TROW_H
        out.append(_text(LEFT, y + 8, t["label"], size=11))
        value = t.get("measured")
        target = float(t["target"])
        # Targets differ in unit and size: each gets the scale that shows both its value and its target.
        scale_max = max(target, value or 0.0) * 1.25 or 1.0
        by = y + 13
        out.append(_rect(LEFT, by, PLOT_W, 14, "#f4f6f8"))
        if value is not None:
            color = MET_COLOR if t.get("met") else MISSED_COLOR
            out.append(_rect(LEFT, by, PLOT_W * max(value, 0.0) / scale_max, 14, color))
        tx = LEFT + PLOT_W * target / scale_max
        out.append(
            f"<line x1='{tx:.1f}' y1='{by - 3}' x2='{tx:.1f}' y2='{by + 17}' stroke='#111' "
            "stroke-width='2' stroke-dasharray='4,2'/>"
        )
        verdict = "n/a" if value is None else ("met" if t.get("met") else "missed")
        shown = "n/a" if value is None else _fmt_value(value)
        out.append(_text(WIDTH - RIGHT + 10, by + 11, f"{shown} ({t['cmp']} {_fmt_value(target)}: {verdict})", size=11))
    return out


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * 10.0**exp >= raw:
            return m * 10.0**exp
    return 10.0 ** (exp + 1)
