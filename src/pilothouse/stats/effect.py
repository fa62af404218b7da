"""Minimum effect sizes: a difference too small to matter never triggers an action, however certain it is.

A rule states an absolute minimum (in the metric's unit: 10 ms, 0.01 of error rate) and a relative one (a
fraction of the baseline's mean: 0.05 = 5%); the minimum effect is the larger of the two, so a difference
must clear both. The test then asks whether the effect exceeds that minimum (a shifted null), not merely
whether it is above zero. With a large sample a 1 ms latency difference is significant; it is not a reason
to roll back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class MinimumEffect:
    absolute: float = 0.0
    relative: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("absolute", self.absolute), ("relative", self.relative)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"the {name} minimum effect must be a finite number >= 0, got {value}")

    def threshold(self, baseline_mean: float) -> float:
        """The smallest difference that matters next to a baseline with this mean."""
        return max(self.absolute, self.relative * abs(baseline_mean))

    def to_dict(self) -> dict[str, Any]:
        return {"absolute": self.absolute, "relative": self.relative}
