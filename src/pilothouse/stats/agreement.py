"""Agreement between raters: a judge and people, or a judge with itself over repeated runs.

- `confusion_matrix`: counts of (human label, judge label) over the labels seen.
- `cohen_kappa`: agreement beyond chance of two raters on categories (Cohen 1960); `weights="linear"` or
  `"quadratic"` for ordinal scales (a 4 against a 5 is a smaller miss than a 1 against a 5).
- `spearman`: rank correlation of two numeric raters (ties get average ranks).
- `fleiss_kappa`: agreement of k repeated judgements of each item (Fleiss 1971): how stable a judge is.
Landis and Koch's reading of kappa: < 0.2 slight, 0.2-0.4 fair, 0.4-0.6 moderate, 0.6-0.8 substantial, > 0.8
almost perfect (`kappa_label`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Confusion", "cohen_kappa", "confusion_matrix", "fleiss_kappa", "kappa_label", "spearman"]


@dataclass(frozen=True, slots=True)
class Confusion:
    labels: list[Hashable]
    counts: list[list[int]]
    """counts[i][j]: items the first rater (people) put in labels[i] and the second (the judge) in labels[j]."""

    def to_dict(self) -> dict[str, Any]:
        return {"labels": [str(x) for x in self.labels], "counts": self.counts}


def _pairs(first: Sequence[Hashable], second: Sequence[Hashable]) -> None:
    if len(first) != len(second):
        raise ValueError("the two raters must label the same items")
    if not first:
        raise ValueError("no items")


def _order(labels: set[Hashable], given: Sequence[Hashable] | None) -> list[Hashable]:
    if given is not None:
        missing = labels - set(given)
        if missing:
            raise ValueError(f"labels not in the given scale: {sorted(map(str, missing))}")
        return list(given)
    try:
        return sorted(labels)  # type: ignore[type-var]
    except TypeError:
        return sorted(labels, key=str)


def confusion_matrix(
    first: Sequence[Hashable], second: Sequence[Hashable], *, labels: Sequence[Hashable] | None = None
) -> Confusion:
    _pairs(first, second)
    order = _order(set(first) | set(second), labels)
    index = {label: i for i, label in enumerate(order)}
    counts = [[0] * len(order) for _ in order]
    for a, b in zip(first, second, strict=True):
        counts[index[a]][index[b]] += 1
    return Confusion(order, counts)


def cohen_kappa(
    first: Sequence[Hashable],
    second: Sequence[Hashable],
    *,
    weights: str | None = None,
    labels: Sequence[Hashable] | None = None,
) -> float:
    """Cohen's kappa; for weighted kappa the labels' order is the scale's (sorted, or `labels`)."""
    confusion = confusion_matrix(first, second, labels=labels)
    observed = np.asarray(confusion.counts, dtype=np.float64)
    k = len(confusion.labels)
    if k == 1:
        return 1.0
    total = observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(np.float64)
    elif weights == "linear":
        w = np.abs(i - j) / (k - 1)
    elif weights == "quadratic":
        w = ((i - j) / (k - 1)) ** 2
    else:
        raise ValueError("weights must be None, 'linear' or 'quadratic'")
    disagreement_expected = float((w * expected).sum())
    if disagreement_expected == 0.0:
        return 1.0
    return 1.0 - float((w * observed).sum()) / disagreement_expected


def _ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(first: Sequence[float], second: Sequence[float]) -> float:
    """Spearman's rho (Pearson correlation of average ranks); NaN when either rater gives one value only."""
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("spearman needs two equally long lists of at least two numbers")
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0.0 or rb.std() == 0.0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Fleiss' kappa of items each rated the same number of times (a judge run k times on each item)."""
    if not ratings:
        raise ValueError("no items")
    k = len(ratings[0])
    if k < 2 or any(len(r) != k for r in ratings):
        raise ValueError("every item needs the same number (at least two) of ratings")
    labels = sorted({label for row in ratings for label in row}, key=str)
    counts = np.array([[Counter(row)[label] for label in labels] for row in ratings], dtype=np.float64)
    n = len(ratings)
    per_item = ((counts**2).sum(axis=1) - k) / (k * (k - 1))
    shares = counts.sum(axis=0) / (n * k)
    chance = float((shares**2).sum())
    if chance == 1.0:
        return 1.0
    return (float(per_item.mean()) - chance) / (1.0 - chance)


def kappa_label(kappa: float) -> str:
    """Landis and Koch's words for a kappa."""
    if kappa < 0.0:
        return "poor"
    for bound, word in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if kappa <= bound:
            return word
    return "almost perfect"
