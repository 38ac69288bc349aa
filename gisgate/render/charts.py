"""Inline SVG charts for the HTML report: plain strings, no JavaScript, no external assets.

Pure functions of their arguments (numbers and labels in, markup out), so the same data always
gives the same bytes. Labels are escaped here, because the report template does not autoescape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" font-size="11"'


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: list[float | None]  # one per x; None breaks the line (no data)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k that is ≥ value (an axis top that reads well)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:,.1f}"


def line_chart(xs: list[float], series: list[Series], ticks: list[tuple[float, str]], *,
               bands: list[tuple[float, float]] = (), guides: list[tuple[float, str]] = (),
               width: int = 960, height: int = 220, unit: str = "", css_class: str = "chart",
               data: dict[str, str] | None = None, title: str = "") -> str:
    """Lines over time. `xs` are positions (e.g. epoch seconds) shared by every series; `ticks`
    label the x axis; `bands` shade x ranges (missing intervals); `guides` draw dashed y lines."""
    left, right, top, bottom = 56, 12, 26, 34
    pw, ph = width - left - right, height - top - bottom
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (hi - lo) or 1.0
    values = [v for s in series for v in s.values if v is not None]
    ymax = 4 * nice_max(max(values + [g for g, _ in guides], default=0.0) / 4)  # four even steps

    def x(v: float) -> float:
        return left + (v - lo) / span * pw

    def y(v: float) -> float:
        return top + ph - v / ymax * ph

    attrs = "".join(f' data-{escape(k)}="{escape(v)}"' for k, v in (data or {}).items())
    out = [f'<svg class="{css_class}"{attrs} viewBox="0 0 {width} {height}" width="100%" '
           f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg" {FONT}>']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    for b0, b1 in bands:
        out.append(f'<rect class="gap" x="{x(b0):.1f}" y="{top}" width="{max(x(b1) - x(b0), 2):.1f}" '
                   f'height="{ph}" fill="#fde2e1"/>')
    for i in range(5):
        v = ymax * i / 4
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#6b7280">'
                   f'{_num(v)}{escape(unit)}</text>')
    for tx, label in ticks:
        out.append(f'<line x1="{x(tx):.1f}" x2="{x(tx):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#9ca3af"/>')
        out.append(f'<text x="{x(tx):.1f}" y="{top + ph + 16}" text-anchor="middle" fill="#6b7280">'
                   f'{escape(label)}</text>')
    for g, label in guides:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(g):.1f}" y2="{y(g):.1f}" stroke="#9ca3af" '
                   f'stroke-dasharray="4 3"/><text x="{left + pw - 4}" y="{y(g) - 3:.1f}" text-anchor="end" '
                   f'fill="#6b7280">{escape(label)}</text>')
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" stroke="#9ca3af"/>')
    for s in series:
        for run in _runs(xs, s.values):
            points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in run)
            if len(run) == 1:
                out.append(f'<circle cx="{x(run[0][0]):.1f}" cy="{y(run[0][1]):.1f}" r="1.8" fill="{s.color}"/>')
            else:
                out.append(f'<polyline class="series" data-series="{escape(s.name)}" points="{points}" fill="none" '
                           f'stroke="{s.color}" stroke-width="1.6" stroke-linejoin="round"/>')
    lx = left + 8
    for s in series:  # legend
        out.append(f'<rect x="{lx}" y="4" width="10" height="10" rx="2" fill="{s.color}"/>'
                   f'<text x="{lx + 14}" y="13" fill="#374151">{escape(s.name)}</text>')
        lx += 24 + 7 * len(s.name)
    out.append("</svg>")
    return "".join(out)


def _runs(xs: list[float], values: list[float | None]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for a, b in zip(xs, values, strict=True):
        if b is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((a, b))
    return [r for r in runs if r]


def share_bars(rows: list[tuple[str, list[float]]], parts: list[tuple[str, str]], *, width: int = 960,
               css_class: str = "bars") -> str:
    """One 100 % stacked horizontal bar per row (e.g. an agent's ready / not-ready / handling shares).

    `rows`: (label, values in the order of `parts`); `parts`: (name, colour)."""
    label_w, bar_h, gap, top = 130, 16, 6, 24
    pw = width - label_w - 120
    height = top + len(rows) * (bar_h + gap) + 4
    out = [f'<svg class="{css_class}" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="time shares per agent" xmlns="http://www.w3.org/2000/svg" {FONT}>']
    lx = label_w
    for name, color in parts:
        out.append(f'<rect x="{lx}" y="4" width="10" height="10" rx="2" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="13" fill="#374151">{escape(name)}</text>')
        lx += 30 + 7 * len(name)
    for i, (label, values) in enumerate(rows):
        yy = top + i * (bar_h + gap)
        total = sum(values) or 1.0
        out.append(f'<g class="bar" data-label="{escape(label)}"><text x="{label_w - 8}" y="{yy + 12}" '
                   f'text-anchor="end" fill="#374151">{escape(label)}</text>')
        xx = float(label_w)
        for (name, color), v in zip(parts, values, strict=True):
            w = v / total * pw
            if w > 0:
                out.append(f'<rect x="{xx:.1f}" y="{yy}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                           f'<title>{escape(label)}: {escape(name)} {v / total * 100:.1f} %</title></rect>')
            xx += w
        out.append(f'<text x="{label_w + pw + 6}" y="{yy + 12}" fill="#6b7280">'
                   f'{values[0] / total * 100 if values else 0:.0f} % {escape(parts[0][0])}</text></g>')
    out.append("</svg>")
    return "".join(out)
