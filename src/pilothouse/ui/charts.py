"""Charts drawn on the server as inline SVG: no JavaScript charting library, nothing to download, readable by
screen readers (each chart is an `img` with a title and a summary, and offers its numbers as a table).

- `line_chart(series, ...)`: time series (one or more lines over shared epoch-second x values), with optional
  horizontal reference lines (a baseline, a threshold) and vertical markers (change points, deploys).
- `bar_chart(bars, ...)`: labelled bars (a latency histogram, cost per model).

Both return `Chart`: the SVG markup and the rows of the fallback table; templates render them with the
`chart` macro in templates/_macros.html.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

PALETTE = ("#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0f766e")
"""Line colours, each at least 4.5:1 against white (WCAG AA for text-sized marks)."""
WIDTH, HEIGHT = 720, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 28


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (epoch seconds, value); None: a gap


@dataclass(frozen=True, slots=True)
class Marker:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    svg: Markup
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    empty: bool = False


def _nice_max(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{100 * value:.1f}%"
    if unit == "$":
        return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def _time_label(ts: float, span_s: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.strftime("%H:%M" if span_s <= 2 * 86_400 else "%m-%d")


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    unit: str = "",
    references: Sequence[tuple[str, float]] = (),
    markers: Sequence[Marker] = (),
) -> Chart:
    """Lines over time; `unit` is "", "%" (values are shares 0..1), "$", or a suffix such as " ms"."""
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y for s in series for _, y in s.points if y is not None] + [v for _, v in references]
    headers = ("time", *(s.label for s in series))
    if not xs:
        return Chart(title, Markup(""), headers, [], empty=True)
    x0, x1 = min(xs), max(xs)
    span = max(x1 - x0, 1.0)
    y_max = _nice_max(max(ys) if ys else 1.0)
    y_min = min(0.0, min(ys))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + (x - x0) / span * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - (y - y_min) / (y_max - y_min or 1.0) * plot_h

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{escape(title)}" '
        f'class="chart" preserveAspectRatio="none"><title>{escape(title)}</title>'
    ]
    for i in range(5):  # gridlines and y labels
        value = y_min + (y_max - y_min) * i / 4
        y = py(value)
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(value, unit))}</text>')
    for i in range(5):  # x labels, the outer two kept inside the chart
        x = x0 + span * i / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text x="{px(x):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">{_time_label(x, span)}</text>')
    for label, value in references:
        y = py(value)
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="reference"/>'
            f'<text x="{WIDTH - _RIGHT}" y="{y - 4:.1f}" text-anchor="end" class="reference-label">'
            f"{escape(label)}</text>"
        )
    for marker in markers:
        if x0 <= marker.x <= x1:
            x = px(marker.x)
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" class="marker">'
                f"<title>{escape(marker.label)}</title></line>"
            )
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        path: list[str] = []
        pen_up = True
        for when, point in sorted(s.points, key=lambda p: p[0]):
            if point is None:
                pen_up = True
                continue
            path.append(f"{'M' if pen_up else 'L'}{px(when):.1f},{py(point):.1f}")
            pen_up = False
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        present = [(when, point) for when, point in s.points if point is not None]
        if len(present) == 1:
            parts.append(f'<circle cx="{px(present[0][0]):.1f}" cy="{py(present[0][1]):.1f}" r="3" fill="{colour}"/>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{escape(s.label)}</li>'
        for i, s in enumerate(series)
    )
    svg = Markup("".join(parts) + (f'<ul class="legend">{legend}</ul>' if len(series) > 1 else ""))
    times = sorted({x for s in series for x, _ in s.points})
    values = [dict(s.points) for s in series]
    rows = [
        (
            dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M"),
            *("" if v.get(t) is None else _fmt(float(v[t] or 0.0), unit) for v in values),
        )
        for t in times
    ]
    return Chart(title, svg, headers, rows)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, unit: str = "") -> Chart:
    """Vertical bars, one per (label, value), in the order given."""
    headers = ("", title)
    if not bars:
        return Chart(title, Markup(""), headers, [], empty=True)
    y_max = _nice_max(max(v for _, v in bars))
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    slot = plot_w / len(bars)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{escape(title)}" '
        f'class="chart" preserveAspectRatio="none"><title>{escape(title)}</title>'
    ]
    for i in range(5):
        value = y_max * i / 4
        y = _TOP + plot_h - value / y_max * plot_h
        parts.append(f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(value, unit))}</text>')
    every = max(1, math.ceil(len(bars) / 12))  # at most ~12 x labels
    for i, (label, value) in enumerate(bars):
        h = max(0.0, value) / y_max * plot_h
        x = _LEFT + i * slot + slot * 0.1
        parts.append(
            f'<rect x="{x:.1f}" y="{_TOP + plot_h - h:.1f}" width="{slot * 0.8:.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {escape(_fmt(value, unit))}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + slot * 0.4:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label[:14])}</text>'
            )
    parts.append("</svg>")
    rows: list[tuple[str, ...]] = [(label, _fmt(value, unit)) for label, value in bars]
    return Chart(title, Markup("".join(parts)), headers, rows)
