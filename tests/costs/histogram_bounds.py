"""How far a percentile read from the rollups' latency histogram may be from the exact one, for tests that
compare the two."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pilothouse.store.rollups import LATENCY_BOUNDS_MS


def bucket(value: float) -> int:
    """The histogram bucket of a value (upper bounds inclusive, as the rollups count)."""
    return next((i for i, bound in enumerate(LATENCY_BOUNDS_MS) if value <= bound), len(LATENCY_BOUNDS_MS))


def check_estimate(values: Sequence[float], q: float, estimate: float | None) -> None:
    """The exact q-th percentile interpolates between two neighbouring sorted values; the histogram's estimate
    must lie in the bucket of one of them (or between)."""
    if not values:
        assert estimate is None
        return
    ordered = sorted(values)
    position = q / 100.0 * (len(ordered) - 1)
    low, high = ordered[math.floor(position)], ordered[min(math.floor(position) + 1, len(ordered) - 1)]
    assert estimate is not None
    assert bucket(low) <= bucket(estimate) <= bucket(high), (q, low, high, estimate)
