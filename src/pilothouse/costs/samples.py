"""Numeric samples kept compactly for exact percentiles (8 bytes a value, not a Python float object each)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np


class Samples:
    """Values appended one at a time; percentiles by linear interpolation between closest ranks (numpy's
    default, the same as `statistics.quantiles(method="inclusive")`)."""

    __slots__ = ("_values",)

    def __init__(self, values: Iterable[float] = ()) -> None:
        self._values = array("d", values)

    def add(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def percentiles(self, *qs: float) -> list[float | None]:
        """The `qs` percentiles (0-100), rounded to 3 decimals; all None when there are no values."""
        values = np.frombuffer(self._values, dtype=np.float64)
        values = values[np.isfinite(values)]  # a stored inf or NaN (an odd row) must not poison every percentile
        if not values.size:
            return [None for _ in qs]
        found = np.percentile(values, list(qs))
        return [round(float(v), 3) for v in found]
