"""The settings of an `input_drift` alert rule (stored in the rule's `detector` column), validated here.

Durations and times are seconds (epoch seconds for the pinned reference). Unknown settings, wrong types and a
reference window that ends in the future are a ValueError naming the field.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["INPUT_DRIFT", "DriftSettings"]

INPUT_DRIFT = "input_drift"
"""The metric name alert rules and series use for input drift."""
CLOCK_SKEW_S = 60.0
"""A pinned reference may end this far after the server's clock (replicas' clocks differ a little)."""


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """When an input-drift rule fires: p < `alpha` (MMD permutation test) AND AUC >= `min_auc`."""

    bucket_s: float = 3600.0
    """Windows end on bucket boundaries: the rule is judged once per bucket, and series have one value per bucket."""
    window_s: float = 86_400.0
    """The recent window: its inputs are compared with the reference's."""
    baseline_s: float = 7 * 86_400.0
    """The trailing reference: this long, just before the recent window (unless a reference is pinned)."""
    reference_start: float | None = None
    """A pinned reference window (epoch seconds); both or neither of start and end."""
    reference_end: float | None = None
    alpha: float = 0.01
    """The test's significance level, per evaluation (one per bucket)."""
    min_auc: float = 0.6
    """The minimum effect: a nearest-neighbour classifier tells recent from reference inputs with this AUC."""
    min_samples: int = 50
    """Embedded inputs each side needs before anything is decided."""
    max_samples: int = 400
    """Each side is a uniform sample of at most this many inputs."""
    permutations: int = 500
    samples_per_hour: int = 120
    """How many of each hour's traces (in the rule's scope) the sampler embeds, at most."""

    def __post_init__(self) -> None:
        if not (self.bucket_s > 0 and self.window_s >= self.bucket_s and self.baseline_s >= self.bucket_s):
            raise ValueError("bucket_s must be positive and window_s and baseline_s at least one bucket")
        if self.window_s / self.bucket_s > 2000 or self.baseline_s / self.bucket_s > 10_000:
            raise ValueError("too many buckets: at most 2000 in the window and 10000 in the baseline")
        if any(v is not None and not math.isfinite(v) for v in (self.reference_start, self.reference_end)):
            raise ValueError("reference_start and reference_end must be finite epoch seconds")
        if (self.reference_start is None) != (self.reference_end is None):
            raise ValueError("a pinned reference needs both reference_start and reference_end")
        if (
            self.reference_start is not None
            and self.reference_end is not None
            and self.reference_start >= self.reference_end
        ):
            raise ValueError("reference_start must be before reference_end")
        if not 0.0 < self.alpha <= 0.5:
            raise ValueError("alpha must be in (0, 0.5]")
        if not 0.5 < self.min_auc < 1.0:
            raise ValueError("min_auc must be between 0.5 (no effect) and 1.0 (fully separable), exclusive")
        if not 5 <= self.min_samples <= self.max_samples <= 2000:
            raise ValueError("need 5 <= min_samples <= max_samples <= 2000")
        if not 100 <= self.permutations <= 5000:
            raise ValueError("permutations must be between 100 and 5000")
        if not 1 <= self.samples_per_hour <= 100_000:
            raise ValueError("samples_per_hour must be between 1 and 100000")

    @property
    def pinned(self) -> bool:
        return self.reference_start is not None

    def reference(self, window_start: float) -> tuple[float, float]:
        """The reference window for a recent window starting at `window_start`."""
        if self.reference_start is not None and self.reference_end is not None:
            return self.reference_start, self.reference_end
        return window_start - self.baseline_s, window_start

    def check_not_future(self, now: float | None = None) -> DriftSettings:
        """ValueError when the pinned reference ends in the future (it would never be complete)."""
        now = time.time() if now is None else now
        if self.reference_end is not None and self.reference_end > now + CLOCK_SKEW_S:
            raise ValueError(
                "the reference window ends in the future; pin a window that has already happened "
                "(reference_end at most now)"
            )
        return self

    def pin(self, start: float | None, end: float | None, now: float | None = None) -> DriftSettings:
        """These settings with the reference pinned to [start, end) (None, None: back to trailing)."""
        return replace(self, reference_start=start, reference_end=end).check_not_future(now)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DriftSettings:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(
                f"unknown detector settings for {INPUT_DRIFT}: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        for key, value in data.items():
            if value is None and key in ("reference_start", "reference_end"):
                continue
            integral = key in ("min_samples", "max_samples", "permutations", "samples_per_hour")
            expected: tuple[type, ...] = (int,) if integral else (int, float)
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ValueError(f"detector.{key} must be {'an integer' if integral else 'a number'}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"detector.{key} must be finite")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
