"""The results chart: a hand-written SVG (no plotting library at run time).

Top: requests per second of the floor and the mock broker for each cell
(log scale), with the C load generator's figures as diamonds. Bottom: each
target of the issue against its measured value.
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


def _fmt_rate(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.0f}k" if v >= 1e4 else f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


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


def _diamond(x: float, y: float, r: float = 4.5) -> str:
    pts = f"{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}"
    return f"<polygon points='{pts}' fill='white' stroke='#111' stroke-width='1.3'/>"


def render_svg(results: dict[str, Any]) -> str:
    """The chart for one results dict, as SVG text."""
    cells: list[dict[str, Any]] = results.get("throughput", [])
    targets: list[dict[str, Any]] = results.get("targets", [])
    ml_cells = {(c["op"], c["conns"], c["depth"]): c for c in results.get("megaload", {}).get("cells", []) or []}

    left, right = 230, 150
    plot_w = WIDTH - left - right
    row_h, bar_h = 34, 12
    top_a = 70
    height_a = len(cells) * row_h
    top_b = top_a + height_a + 95
    trow_h = 40
    height = top_b + len(targets) * trow_h + 20
    out: list[str] = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
    ]
    meta = results.get("meta", {})
    title = "MEGA mock broker vs the floor (bare asyncio server): requests per second, 100-byte payloads"
    out.append(_text(20, 26, title, size=15, weight="bold"))
    sub = f"Python {meta.get('python', '?')}, {meta.get('cpus', '?')} CPUs; {meta.get('started', '')}"
    out.append(_text(20, 46, sub, size=11, color="#555"))

    # -- panel A: throughput, log scale --
    values = [v for c in cells for v in (c.get("floor_rps"), c.get("broker_rps")) if v]
    values += [v for c in ml_cells.values() for v in (c.get("floor_rps"), c.get("broker_rps")) if v]
    lo_exp = math.floor(math.log10(min(values))) if values else 3
    hi_exp = math.ceil(math.log10(max(values))) if values else 6
    if hi_exp <= lo_exp:
        hi_exp = lo_exp + 1

    def xa(v: float) -> float:
        v = max(v, 10.0**lo_exp)
        return left + plot_w * (math.log10(v) - lo_exp) / (hi_exp - lo_exp)

    for e in range(lo_exp, hi_exp + 1):
        for m in (1, 2, 5):
            v = m * 10.0**e
            if v > 10.0**hi_exp:
                break
            x = xa(v)
            out.append(
                f"<line x1='{x:.1f}' y1='{top_a - 6}' x2='{x:.1f}' y2='{top_a + height_a}' "
                f"stroke='{GRID_COLOR if m != 1 else '#c8ced4'}' stroke-width='1'/>"
            )
            out.append(_text(x, top_a + height_a + 14, _fmt_rate(v), size=10, anchor="middle", color="#666"))
    for i, c in enumerate(cells):
        y = top_a + i * row_h
        label = f"{c['op'].upper()}  {c['conns']} conn{'s' if c['conns'] > 1 else ''}, depth {c['depth']}"
        out.append(_text(left - 10, y + bar_h + 3, label, size=12, anchor="end"))
        for j, (key, color) in enumerate((("floor_rps", FLOOR_COLOR), ("broker_rps", BROKER_COLOR))):
            v = c.get(key) or 0.0
            by = y + j * (bar_h + 1)
            out.append(_rect(left, by, xa(v) - left if v else 0, bar_h, color))
            ml = ml_cells.get((c["op"], c["conns"], c["depth"]), {}).get(key)
            if ml:
                out.append(_diamond(xa(ml), by + bar_h / 2))
        ratio = c.get("ratio")
        ratio_s = f"{ratio:.2f}x floor" if ratio is not None else "n/a"
        out.append(_text(WIDTH - right + 10, y + 11, f"{_fmt_rate(c.get('broker_rps') or 0)} req/s", size=11))
        out.append(_text(WIDTH - right + 10, y + 24, ratio_s, size=11, weight="bold", color=BROKER_COLOR))
    # legend
    ly = top_a + height_a + 34
    out.append(_rect(left, ly - 9, 14, 10, FLOOR_COLOR))
    out.append(_text(left + 20, ly, "floor (python -m bench.floor)", size=11))
    out.append(_rect(left + 210, ly - 9, 14, 10, BROKER_COLOR))
    out.append(_text(left + 230, ly, "mock broker (python -m mock_broker)", size=11))
    out.append(_diamond(left + 470, ly - 4))
    out.append(_text(left + 480, ly, "same cell driven by megaload (C)", size=11))
    out.append(_text(left, ly + 18, "Python load generator bars; log scale", size=10, color="#666"))

    # -- panel B: targets --
    out.append(_text(20, top_b - 18, "Targets of issue 8 (dashed line: the target)", size=14, weight="bold"))
    t_left = left
    t_w = plot_w
    for i, t in enumerate(targets):
        y = top_b + i * trow_h
        out.append(_text(t_left, y + 8, t["label"], size=11))
        value = t.get("measured")
        target = float(t["target"])
        scale_max = max(target, value or 0.0) * 1.25 or 1.0
        by = y + 13
        out.append(_rect(t_left, by, t_w, 14, "#f4f6f8"))
        if value is not None:
            color = MET_COLOR if t.get("met") else MISSED_COLOR
            out.append(_rect(t_left, by, t_w * max(value, 0.0) / scale_max, 14, color))
        tx = t_left + t_w * target / scale_max
        out.append(
            f"<line x1='{tx:.1f}' y1='{by - 3}' x2='{tx:.1f}' y2='{by + 17}' stroke='#111' "
            "stroke-width='2' stroke-dasharray='4,2'/>"
        )
        verdict = "n/a" if value is None else ("met" if t.get("met") else "missed")
        shown = "n/a" if value is None else _fmt_value(value)
        out.append(_text(WIDTH - right + 10, by + 11, f"{shown} ({t['cmp']} {_fmt_value(target)}: {verdict})", size=11))
    out.append("</svg>")
    return "\n".join(out) + "\n"
