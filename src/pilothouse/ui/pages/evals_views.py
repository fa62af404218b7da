"""Shaping evaluation data for the Evaluations pages: intervals drawn as small SVG plots, score cells, pages of
per-item results. Pure functions over what the API's functions return (no store access here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

from pilothouse.ui.charts import PALETTE

RESULTS_PAGE = 50
"""Per-item results shown per page of an experiment's drill-down."""
_W, _ROW, _PAD, _LABEL = 480, 22, 8, 120


@dataclass(frozen=True, slots=True)
class Interval:
    label: str
    estimate: float
    low: float
    high: float


def _finite(*values: Any) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(float(v)) for v in values)


def interval_plot(title: str, intervals: Sequence[Interval]) -> Markup:
    """A horizontal interval plot: one row per label, a line from low to high with a dot at the estimate, on a
    shared scale. An `img` with a title and a description listing the numbers (the table beside it has them too)."""
    shown = [i for i in intervals if _finite(i.estimate, i.low, i.high)]
    if not shown:
        return Markup("")
    lo = min(i.low for i in shown)
    hi = max(i.high for i in shown)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    plot = _W - _LABEL - 2 * _PAD
    height = _ROW * len(shown) + 2 * _PAD + 14

    def x(v: float) -> float:
        return _LABEL + _PAD + (v - lo) / span * plot

    summary = "; ".join(f"{i.label}: {i.estimate:.3g} ({i.low:.3g} to {i.high:.3g})" for i in shown)
    parts = [
        f'<svg class="interval-plot" role="img" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'aria-label="{escape(title)}: {escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for n, i in enumerate(shown):
        y = _PAD + n * _ROW + _ROW / 2
        colour = PALETTE[n % len(PALETTE)]
        parts.append(
            f'<text x="{_LABEL - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="#1f2937">'
            f"{escape(i.label[:18])}</text>"
            f'<line x1="{x(i.low):.1f}" x2="{x(i.high):.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="3"/><circle cx="{x(i.estimate):.1f}" cy="{y:.1f}" r="5" fill="{colour}"/>'
        )
    axis = height - 6
    parts.append(
        f'<text x="{_LABEL + _PAD}" y="{axis}" font-size="11" fill="#374151">{lo:.3g}</text>'
        f'<text x="{_W - _PAD}" y="{axis}" font-size="11" text-anchor="end" fill="#374151">{hi:.3g}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def metric_tables(summary: dict[str, Any] | None, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Per metric: a row per variant (judged, mean with its interval, pass rate) and the interval plot."""
    if not summary:
        return []
    tables = []
    for metric in metrics:
        rows = []
        plotted = []
        for variant, found in summary.items():
            m = found["metrics"].get(metric) or {}
            mean = m.get("mean")
            rows.append(
                {
                    "variant": variant,
                    "judged": m.get("judged", 0),
                    "unjudged": m.get("unjudged", 0),
                    "mean": mean,
                    "pass_rate": m.get("pass_rate"),
                    "categories": m.get("categories"),
                }
            )
            if mean and _finite(mean.get("estimate"), mean.get("low"), mean.get("high")):
                plotted.append(Interval(variant, mean["estimate"], mean["low"], mean["high"]))
        higher = next((f["metrics"].get(metric, {}).get("higher_is_better", True) for f in summary.values()), True)
        plot = interval_plot(f"{metric}: mean and 95% interval per variant", plotted)
        tables.append({"metric": metric, "rows": rows, "plot": plot, "higher_is_better": higher})
    return tables


def score_cells(scores: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """A result's scores as (metric, shown value, passed) for the drill-down table."""
    cells = []
    for metric, score in sorted(scores.items()):
        if not isinstance(score, dict):
            continue
        value = score.get("value")
        if isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, int | float):
            shown = f"{value:.3g}"
        elif value is None:
            shown = "not judged"
        else:
            shown = str(value)
        passed = score.get("passed")
        cells.append((metric, shown, passed if isinstance(passed, bool) else None))
    return cells


def page_of(rows: Sequence[dict[str, Any]], offset: int) -> tuple[list[dict[str, Any]], int | None, int | None]:
    """One page of results from `offset`; the next and previous offsets (None at the ends)."""
    chosen = list(rows[offset : offset + RESULTS_PAGE])
    after = offset + RESULTS_PAGE if offset + RESULTS_PAGE < len(rows) else None
    before = max(0, offset - RESULTS_PAGE) if offset > 0 else None
    return chosen, after, before


def clip(text: str | None, limit: int = 300) -> str:
    """Long outputs cut for a table cell (the trace page has all of it)."""
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def target_of(variant: dict[str, Any]) -> str:
    """What a variant runs: `prompt NAME@REF`, `model NAME` or `function LABEL`."""
    for kind in ("prompt", "model", "function"):
        if variant.get(kind):
            return f"{kind} {variant[kind]}"
    return ""
