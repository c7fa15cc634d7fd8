"""The results chart: a hand-written SVG (no plotting library at run time).

Top: the server CPU time per request of the floor and of the mock broker for
each cell (median bars, lowest-to-highest whiskers), with the efficiency
(floor ÷ broker) beside. Bottom: each target of the issue against its
measured value.
"""

from __future__ import annotations

import math
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


def render_svg(results: dict[str, Any]) -> str:
    """The chart for one results dict, as SVG text."""
    rows: list[dict[str, Any]] = results.get("efficiency", [])
    targets: list[dict[str, Any]] = results.get("targets", [])

    left, right = 250, 190
    plot_w = WIDTH - left - right
    row_h, bar_h = 38, 13
    top_a = 80
    height_a = len(rows) * row_h
    top_b = top_a + height_a + 95
    trow_h = 40
    height = top_b + len(targets) * trow_h + 20
    out: list[str] = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
    ]
    meta = results.get("meta", {})
    title = "MEGA mock broker vs the floor: server CPU time per request (lower is better)"
    out.append(_text(20, 26, title, size=15, weight="bold"))
    la = (meta.get("loadavg_start") or ["?"])[0]
    sub = (
        f"Python {meta.get('python', '?')}, {meta.get('cpus', '?')} CPUs, {meta.get('started', '')}; "
        f"median of {meta.get('sizes', {}).get('rounds', '?')} rounds, whiskers lowest to highest; load average {la}"
    )
    out.append(_text(20, 46, sub, size=11, color="#555"))

    # -- panel A: CPU µs per request, linear scale from 0 --
    highs = [
        row[side]["cpu_us"]["high"] for row in rows for side in ("floor", "broker") if row[side]["cpu_us"] is not None
    ]
    top_v = max(highs) * 1.1 if highs else 1.0

    def xa(v: float) -> float:
        return left + plot_w * v / top_v

    step = _nice_step(top_v / 5)
    v = 0.0
    while v <= top_v:
        x = xa(v)
        out.append(
            f"<line x1='{x:.1f}' y1='{top_a - 6}' x2='{x:.1f}' y2='{top_a + height_a}' "
            f"stroke='{GRID_COLOR}' stroke-width='1'/>"
        )
        out.append(_text(x, top_a + height_a + 14, f"{v:g}", size=10, anchor="middle", color="#666"))
        v += step
    out.append(_text(left + plot_w / 2, top_a + height_a + 30, "µs of server CPU per request", size=11,
                     anchor="middle", color="#444"))  # fmt: skip
    for i, row in enumerate(rows):
        y = top_a + i * row_h
        label = f"{row['op'].upper()} {row['conns']} x {row['depth']}" + (
            f" ({row['loop']})" if row["loop"] != "asyncio" else ""
        )
        out.append(_text(left - 10, y + bar_h + 3, label, size=12, anchor="end"))
        for j, (side, color) in enumerate((("floor", FLOOR_COLOR), ("broker", BROKER_COLOR))):
            sp = row[side]["cpu_us"]
            by = y + j * (bar_h + 1)
            if sp is None:
                continue
            out.append(_rect(left, by, xa(sp["median"]) - left, bar_h, color))
            if sp["n"] > 1:
                out.append(_whisker(xa(sp["low"]), xa(sp["high"]), by + bar_h / 2))
        eff = row.get("efficiency")
        eff_s = "n/a" if eff is None else f"efficiency {eff['median']:.2f}"
        cpu = row["broker"]["cpu_us"]
        out.append(_text(WIDTH - right + 10, y + 11, f"broker {cpu['median']:.2f} µs" if cpu else "", size=11))
        out.append(_text(WIDTH - right + 10, y + 25, eff_s, size=11, weight="bold", color=BROKER_COLOR))
    ly = top_a + height_a + 52
    out.append(_rect(left, ly - 9, 14, 10, FLOOR_COLOR))
    out.append(_text(left + 20, ly, "floor (python -m bench.floor)", size=11))
    out.append(_rect(left + 230, ly - 9, 14, 10, BROKER_COLOR))
    out.append(_text(left + 250, ly, "mock broker (python -m mock_broker)", size=11))

    # -- panel B: targets --
    out.append(_text(20, top_b - 18, "Targets of issue 15 (dashed line: the target)", size=14, weight="bold"))
    for i, t in enumerate(targets):
        y = top_b + i * trow_h
        out.append(_text(left, y + 8, t["label"], size=11))
        value = t.get("measured")
        target = float(t["target"])
        scale_max = max(target, value or 0.0) * 1.25 or 1.0
        by = y + 13
        out.append(_rect(left, by, plot_w, 14, "#f4f6f8"))
        if value is not None:
            color = MET_COLOR if t.get("met") else MISSED_COLOR
            out.append(_rect(left, by, plot_w * max(value, 0.0) / scale_max, 14, color))
        tx = left + plot_w * target / scale_max
        out.append(
            f"<line x1='{tx:.1f}' y1='{by - 3}' x2='{tx:.1f}' y2='{by + 17}' stroke='#111' "
            "stroke-width='2' stroke-dasharray='4,2'/>"
        )
        verdict = "n/a" if value is None else ("met" if t.get("met") else "missed")
        shown = "n/a" if value is None else _fmt_value(value)
        out.append(_text(WIDTH - right + 10, by + 11, f"{shown} ({t['cmp']} {_fmt_value(target)}: {verdict})", size=11))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * 10.0**exp >= raw:
            return m * 10.0**exp
    return 10.0 ** (exp + 1)
