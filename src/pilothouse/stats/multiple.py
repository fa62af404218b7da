"""Corrections for comparing many metrics at once: with 10 metrics at alpha 0.05 the chance that at least one
shows a "significant" difference by luck alone is about 40%.

- `holm`: Holm's step-down adjustment; controls the family-wise error rate (the chance of any false finding)
  and is never less powerful than Bonferroni. Use it for gates, where one false failure blocks a release.
- `benjamini_hochberg`: controls the false discovery rate (the expected share of false findings among those
  reported). Use it for exploratory comparisons of many metrics.
Both return adjusted p-values in the input order; compare them with alpha as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["adjust", "benjamini_hochberg", "holm"]


def _checked(p_values: Sequence[float]) -> list[float]:
    values = [float(p) for p in p_values]
    if any(not 0.0 <= p <= 1.0 for p in values):
        raise ValueError("p-values must be between 0 and 1")
    return values


def holm(p_values: Sequence[float]) -> list[float]:
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    values = _checked(p_values)
    m = len(values)
    order = sorted(range(m), key=lambda i: values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def adjust(p_values: Sequence[float], method: str) -> list[float]:
    """`holm`, `bh` (Benjamini-Hochberg) or `none`."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    if method == "none":
        return _checked(p_values)
    raise ValueError(f"unknown correction {method!r}: use holm, bh or none")
