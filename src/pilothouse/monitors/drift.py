"""Input drift: has the distribution of a project's inputs moved away from a reference?

The sampler (monitors/drift_sampler.py) embeds a uniform sample of finished traces' input text with MiniLM, off
the request path. An `input_drift` rule compares the **recent window** (`window_s`, ending at the last complete
bucket) with a **reference**: by default the `baseline_s` just before the recent window (trailing), or a window
the operator pinned (`pilothouse monitors rules pin-reference`, `PUT /api/monitors/rules/{name}/reference`).

It fires when both hold (monitors/drift_stats.py):
- the MMD permutation test rejects "same distribution": p < `alpha`;
- the effect is at least the minimum: the nearest-neighbour classifier AUC >= `min_auc`.

The evidence names the windows, the sample sizes, the statistic, p-value and effect, and the trace ids of the
recent inputs farthest from the reference. An episode resolves when the AUC of the current recent window against
the current reference falls below half the minimum effect (`(0.5 + min_auc) / 2`): with a trailing reference
that also happens once the reference has caught up with a shift that stayed (the new normal), with a pinned one
only when inputs return (or the operator pins a new reference).

Evaluations are deterministic for a window (sampling by trace id, a fixed permutation seed), and one evaluation
per rule, window and data is cached, so the loop's every-minute pass costs a count query between buckets.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from pilothouse.monitors import drift_store
from pilothouse.monitors.drift_settings import INPUT_DRIFT, DriftSettings
from pilothouse.monitors.drift_stats import DriftStats, two_sample
from pilothouse.monitors.series import Bucket, Scope, Series

__all__ = ["DriftCheck", "check_drift", "drift_series", "resolve_level"]

EXAMPLES = 5
SERIES_MIN_INPUTS = 5
"""A series bucket with fewer embedded inputs has no value."""
_CACHE_SIZE = 256
_cache: OrderedDict[tuple[Any, ...], DriftCheck] = OrderedDict()


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One comparison of a recent window with its reference."""

    fired: bool
    reason: str
    window: tuple[float, float]
    reference: tuple[float, float]
    pinned: bool
    settings: DriftSettings
    stats: DriftStats | None = None
    example_trace_ids: tuple[str, ...] = ()

    @property
    def auc(self) -> float | None:
        return None if self.stats is None else self.stats.auc

    def evidence(self) -> dict[str, Any]:
        s = self.settings
        stats = self.stats.to_dict() if self.stats is not None else {}
        return {
            "fired": self.fired,
            "reason": self.reason,
            "window": {"start": self.window[0], "end": self.window[1], "bucket_s": s.bucket_s},
            "baseline_window": {"start": self.reference[0], "end": self.reference[1], "pinned": self.pinned},
            **stats,
            "alpha": s.alpha,
            "min_effect": s.min_auc,
            "effect": None if self.stats is None else round(self.stats.auc, 4),
            "effect_name": "auc",
            "level": None if self.stats is None else round(self.stats.auc, 4),
            "baseline": {"auc": 0.5},
            "direction": "up",
            "example_trace_ids": list(self.example_trace_ids),
        }


def _seed(*parts: Any) -> int:
    return zlib.crc32(repr(parts).encode())


def check_drift(
    conn: Connection,
    project_id: str,
    scope: Scope,
    settings: DriftSettings,
    now: float,
    *,
    not_before: float | None = None,
    cache_key: str | None = None,
) -> DriftCheck:
    """Compare the recent window ending at the last complete bucket before `now` with the reference.
    `not_before` cuts the recent window's start (the next episode is judged on data after the last one)."""
    s = settings
    end = math.floor(now / s.bucket_s) * s.bucket_s
    nominal = end - math.ceil(s.window_s / s.bucket_s) * s.bucket_s
    start = nominal if not_before is None else max(nominal, math.ceil(not_before / s.bucket_s) * s.bucket_s)
    reference = s.reference(nominal)
    start = max(start, reference[1]) if s.pinned else start  # never compare inputs with themselves
    if start >= end:
        reason = "no recent window after the last episode or the pinned reference"
        return DriftCheck(False, reason, (start, end), reference, s.pinned, s)
    counts = (
        drift_store.count_rows(conn, project_id, scope, start, end),
        drift_store.count_rows(conn, project_id, scope, *reference),
    )
    key = (cache_key, project_id, repr(scope), repr(s), start, end, reference, counts) if cache_key else None
    if key is not None and key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    found = _compare(conn, project_id, scope, s, (start, end), reference, counts)
    if key is not None:
        _cache[key] = found
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _compare(
    conn: Connection,
    project_id: str,
    scope: Scope,
    s: DriftSettings,
    window: tuple[float, float],
    reference: tuple[float, float],
    counts: tuple[int, int],
) -> DriftCheck:
    if min(counts) < s.min_samples:
        reason = f"not enough embedded inputs (recent {counts[0]}, reference {counts[1]}; need {s.min_samples} each)"
        return DriftCheck(False, reason, window, reference, s.pinned, s)
    recent = drift_store.read_sample(conn, project_id, scope, *window, s.max_samples)
    base = drift_store.read_sample(conn, project_id, scope, *reference, s.max_samples)
    stats = two_sample(
        recent.vectors,
        base.vectors,
        permutations=s.permutations,
        seed=_seed(project_id, window, reference),
        alpha=s.alpha,
    )
    significant = stats.p_value < s.alpha
    big = stats.auc >= s.min_auc
    fired = significant and big
    if fired:
        reason = "the inputs moved"
    elif significant:
        reason = f"a significant but small difference (AUC {stats.auc:.3f} < {s.min_auc})"
    else:
        reason = f"no significant difference (p = {stats.p_value:.3g} >= {s.alpha})"
    examples = tuple(recent.trace_ids[i] for i in stats.farthest[:EXAMPLES])
    return DriftCheck(fired, reason, window, reference, s.pinned, s, stats, examples)


def resolve_level(settings: DriftSettings) -> float:
    """An episode resolves when the AUC is under this: half the minimum effect above 0.5."""
    return 0.5 + (settings.min_auc - 0.5) / 2.0


def drift_series(
    conn: Connection,
    project_id: str,
    *,
    start: float,
    end: float,
    bucket_s: float,
    scope: Scope,
    reference: tuple[float, float] | None = None,
    max_samples: int = 400,
) -> Series:
    """Per bucket of [start, end): the embedded inputs `n` and, as `value`, the classifier AUC of the bucket's
    inputs against the reference (default: the same length of time just before `start`)."""
    ref = reference or (start - (end - start), start)
    base = drift_store.read_sample(conn, project_id, scope, *ref, max_samples)
    buckets = []
    for i in range(math.ceil((end - start) / bucket_s)):
        lo = start + i * bucket_s
        recent = drift_store.read_sample(conn, project_id, scope, lo, min(lo + bucket_s, end), max_samples)
        value = None
        if len(recent) >= SERIES_MIN_INPUTS and len(base) >= SERIES_MIN_INPUTS:
            value = round(two_sample(recent.vectors, base.vectors, permutations=0).auc, 4)
        total = (value or 0.0) * len(recent)
        buckets.append(Bucket(lo, len(recent), total, total * (value or 0.0), value))
    return Series(INPUT_DRIFT, None, bucket_s, buckets)
