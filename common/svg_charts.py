"""Static charts as inline SVG for the HTML reports: horizontal bars with intervals, and line charts. No
JavaScript, no fonts or scripts from the network: a page that embeds them reads the same offline.

    interval_bars(["push-v3", "reach-v3"], [BarSeries("sum", [0.8, 0.6], [(0.7, 0.9), (0.5, 0.7)])], "success")
    line_chart([LineSeries("sum, seed 0", steps, losses)], "train/loss", log_y=True)

Each bar is a `rect.bar` and each line a `polyline.line`, with a <title> tooltip, so tests and readers can
find them; every chart is an `svg.chart` with `data-chart` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito colours (distinguishable with colour blindness), without the yellow that vanishes on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999999")
FONT = 'font-family="system-ui, sans-serif"'
CHAR_WIDTH = 6.2  # px per character at 11px, for sizing label columns
LABEL_WIDTH = 260.0  # px, the widest label column of a bar chart; longer labels are shortened (`fit_label`)


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass
class BarSeries:
    name: str
    values: Sequence[float | None]  # one per category; None: no data (drawn as "n/a")
    intervals: Sequence[tuple[float, float] | None]  # (low, high) per category
    color: str | None = None
    bar_colors: Sequence[str] | None = None  # one per category, instead of `color`


@dataclass
class LineSeries:
    name: str
    x: Sequence[float]
    y: Sequence[float]
    color: str = PALETTE[0]
    width: float = 1.5


def _f(value: float) -> str:
    return f"{value:.1f}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def _log_ticks(low: float, high: float) -> list[float]:
    """log10 positions of round values between 10**low and 10**high: powers of ten over a wide range, else
    round values of the linear range (0.02, 0.04, ...)."""
    if high - low >= 1.5:
        return [float(t) for t in range(math.floor(low), math.ceil(high) + 1)]
    for count in (4, 8, 16):
        ticks = [math.log10(t) for t in nice_ticks(10 ** low, 10 ** high, count) if t > 0]
        if len(ticks) >= 2:
            return ticks
    return [low, high]


def _tick_label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.0e}"


def _legend(entries: Sequence[tuple[str, str]], x: float, y: float, width: float) -> tuple[str, float]:
    """Legend items flowing left to right, wrapping at `width`; returns the SVG and the height used."""
    parts, cx, cy = [], x, y
    for name, fill in entries:
        item = 18 + CHAR_WIDTH * len(name) + 14
        if cx + item > x + width and cx > x:
            cx, cy = x, cy + 16
        parts.append(f'<rect x="{_f(cx)}" y="{_f(cy - 9)}" width="12" height="10" fill="{fill}"/>'
                     f'<text x="{_f(cx + 16)}" y="{_f(cy)}" font-size="11">{escape(name)}</text>')
        cx += item
    return "".join(parts), cy - y + 16


def _svg(name: str, width: float, height: float, body: str, title: str) -> str:
    return (f'<svg class="chart" data-chart="{escape(name)}" xmlns="http://www.w3.org/2000/svg" role="img" '
            f'width="{_f(width)}" height="{_f(height)}" viewBox="0 0 {_f(width)} {_f(height)}" {FONT}>'
            f'<title>{escape(title)}</title>{body}</svg>')


def fit_label(text: str, max_chars: int = int((LABEL_WIDTH - 12) / CHAR_WIDTH)) -> str:
    """`text` shortened in the middle to `max_chars` (its start and end kept: a LIBERO task's scene and
    object), so that a long task name fits the label column; the full name stays in the label's tooltip."""
    if len(text) <= max_chars:
        return text
    head = (max_chars - 1) * 2 // 5
    return f"{text[:head]}\u2026{text[len(text) - (max_chars - 1 - head):]}"


def interval_bars(categories: Sequence[str], series: Sequence[BarSeries], name: str, *,
                  domain: tuple[float, float] = (0.0, 1.0), axis_label: str = "success rate",
                  reference: tuple[str, float, float, float] | None = None, width: int = 760) -> str:
    """Horizontal grouped bars: one row per category, one bar per series, each with its interval as a
    whisker. Bars start at 0 (or the domain's edge), so negative values (differences) point left.

    Args:
        reference: (label, value, low, high) drawn as a dashed line with a shaded band, e.g. a suite mean.
    """
    label_width = min(LABEL_WIDTH, 12 + CHAR_WIDTH * max((len(c) for c in categories), default=4))
    plot_x, plot_w = label_width + 8, width - label_width - 8 - 70
    bar_h, gap = (12.0 if len(series) > 1 else 14.0), 8.0
    legend, legend_h = _legend([(s.name, s.color or color(i)) for i, s in enumerate(series)], plot_x, 14, plot_w)
    if len(series) < 2:
        legend, legend_h = "", 0.0
    top = legend_h + 10 + (16 if reference else 0)
    row_h = bar_h * len(series) + gap
    height = top + row_h * len(categories) + 34

    def sx(value: float) -> float:
        value = min(max(value, domain[0]), domain[1])
        return plot_x + (value - domain[0]) / (domain[1] - domain[0]) * plot_w

    parts = [legend]
    for tick in nice_ticks(*domain):
        parts.append(f'<line x1="{_f(sx(tick))}" x2="{_f(sx(tick))}" y1="{_f(top - 4)}" y2="{_f(height - 30)}" '
                     f'stroke="{"#888" if tick == 0 else "#e3e3e3"}"/>'
                     f'<text x="{_f(sx(tick))}" y="{_f(height - 16)}" font-size="11" text-anchor="middle">'
                     f'{_tick_label(tick)}</text>')
    parts.append(f'<text x="{_f(plot_x + plot_w / 2)}" y="{_f(height - 3)}" font-size="11" '
                 f'text-anchor="middle" fill="#444">{escape(axis_label)}</text>')
    if reference:
        label, value, low, high = reference
        parts.append(f'<rect class="reference-band" x="{_f(sx(low))}" y="{_f(top - 4)}" '
                     f'width="{_f(max(sx(high) - sx(low), 1))}" height="{_f(height - 26 - top)}" fill="#0072B2" '
                     f'fill-opacity="0.10"/><line x1="{_f(sx(value))}" x2="{_f(sx(value))}" y1="{_f(top - 4)}" '
                     f'y2="{_f(height - 30)}" stroke="#0072B2" stroke-dasharray="4 3"/>'
                     f'<text x="{_f(sx(value))}" y="{_f(top - 8)}" font-size="11" text-anchor="middle" '
                     f'fill="#0072B2">{escape(label)}</text>')
    origin = sx(max(domain[0], min(0.0, domain[1])))
    for row, category in enumerate(categories):
        y0 = top + row * row_h
        parts.append(f'<text x="{_f(label_width)}" y="{_f(y0 + row_h / 2 - gap / 2 + 4)}" font-size="11" '
                     f'text-anchor="end"><title>{escape(category)}</title>{escape(fit_label(category))}</text>')
        for i, s in enumerate(series):
            parts.append(_bar(s, i, row, category, y0 + i * bar_h, bar_h, origin, sx))
    return _svg(name, width, height, "".join(parts), name)


def _bar(s: BarSeries, index: int, row: int, category: str, y: float, bar_h: float, origin: float, sx) -> str:
    value, interval = s.values[row], s.intervals[row]
    if value is None:
        return f'<text x="{_f(origin + 3)}" y="{_f(y + bar_h - 3)}" font-size="10" fill="#777">n/a</text>'
    fill = s.bar_colors[row] if s.bar_colors else s.color or color(index)
    x = min(origin, sx(value))
    low, high = interval if interval else (value, value)
    tip = f"{s.name}, {category}: {value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if interval else "")
    mid = y + bar_h / 2
    whisker = (f'<line class="interval" x1="{_f(sx(low))}" x2="{_f(sx(high))}" y1="{_f(mid)}" y2="{_f(mid)}" '
               f'stroke="#222"/><line x1="{_f(sx(low))}" x2="{_f(sx(low))}" y1="{_f(mid - 3)}" y2="{_f(mid + 3)}" '
               f'stroke="#222"/><line x1="{_f(sx(high))}" x2="{_f(sx(high))}" y1="{_f(mid - 3)}" '
               f'y2="{_f(mid + 3)}" stroke="#222"/>') if interval else ""
    return (f'<g><title>{escape(tip)}</title><rect class="bar" x="{_f(x)}" y="{_f(y + 1)}" '
            f'width="{_f(abs(sx(value) - origin))}" height="{_f(bar_h - 2)}" fill="{fill}" '
            f'data-value="{value:.6g}"/>{whisker}<text x="{_f(max(sx(high), sx(value)) + 4)}" y="{_f(mid + 4)}" '
            f'font-size="10" fill="#333">{value:.2f}</text></g>')


def line_chart(series: Sequence[LineSeries], name: str, *, x_label: str = "step", y_label: str = "",
               log_y: bool = False, legend: Sequence[tuple[str, str]] | None = None, width: int = 460,
               height: int = 260, max_points: int = 1000) -> str:
    """Lines of (x, y) points on shared axes; `log_y` drops points <= 0. `legend` defaults to one entry per
    distinct (name, colour)."""
    points = [[(x, y) for x, y in zip(s.x, s.y) if math.isfinite(y) and (y > 0 or not log_y)] for s in series]
    points = [p[::max(1, math.ceil(len(p) / max_points))] for p in points]
    xs = [x for p in points for x, _ in p]
    ys = [math.log10(y) if log_y else y for p in points for _, y in p]
    entries = legend if legend is not None else list(dict.fromkeys((s.name, s.color) for s in series))
    legend_svg, legend_h = _legend(entries, 52, 36, width - 60)
    plot_x, plot_y, plot_w = 52.0, 36.0 + legend_h, width - 64.0
    plot_h = height - plot_y - 40
    if not xs:
        return _svg(name, width, height, f'<text x="10" y="16" font-size="12" font-weight="600">{escape(name)}'
                    '</text><text x="10" y="40" font-size="11" fill="#777">no data</text>', name)
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    y_ticks = _log_ticks(y_lo, y_hi) if log_y else nice_ticks(y_lo, y_hi)
    y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])

    def sx(x: float) -> float:
        return plot_x + (x - x_lo) / (x_hi - x_lo) * plot_w

    def sy(y: float) -> float:
        return plot_y + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h

    heading = name + (" (log scale)" if log_y else "")
    parts = [f'<text x="10" y="16" font-size="12" font-weight="600">{escape(heading)}</text>', legend_svg]
    for tick in y_ticks:
        label = f"{10 ** tick:.2g}" if log_y else _tick_label(tick)
        parts.append(f'<line x1="{_f(plot_x)}" x2="{_f(plot_x + plot_w)}" y1="{_f(sy(tick))}" y2="{_f(sy(tick))}" '
                     f'stroke="#e3e3e3"/><text x="{_f(plot_x - 4)}" y="{_f(sy(tick) + 4)}" font-size="10" '
                     f'text-anchor="end">{label}</text>')
    for tick in nice_ticks(x_lo, x_hi, 4):
        parts.append(f'<text x="{_f(sx(tick))}" y="{_f(plot_y + plot_h + 14)}" font-size="10" '
                     f'text-anchor="middle">{_tick_label(tick)}</text>')
    parts.append(f'<rect x="{_f(plot_x)}" y="{_f(plot_y)}" width="{_f(plot_w)}" height="{_f(plot_h)}" '
                 f'fill="none" stroke="#bbb"/><text x="{_f(plot_x + plot_w / 2)}" y="{_f(height - 8)}" '
                 f'font-size="11" text-anchor="middle" fill="#444">{escape(x_label)}</text>')
    if y_label:
        parts.append(f'<text transform="translate(12,{_f(plot_y + plot_h / 2)}) rotate(-90)" font-size="11" '
                     f'text-anchor="middle" fill="#444">{escape(y_label)}</text>')
    for s, p in zip(series, points):
        coords = " ".join(f"{_f(sx(x))},{_f(sy(math.log10(y) if log_y else y))}" for x, y in p)
        marker = ("".join(f'<circle cx="{_f(sx(x))}" cy="{_f(sy(math.log10(y) if log_y else y))}" r="2.5" '
                          f'fill="{s.color}"/>' for x, y in p) if len(p) <= 12 else "")
        parts.append(f'<g><title>{escape(s.name)}</title><polyline class="line" points="{coords}" fill="none" '
                     f'stroke="{s.color}" stroke-width="{s.width}" stroke-linejoin="round"/>{marker}</g>')
    return _svg(name, width, height, "".join(parts), name)
