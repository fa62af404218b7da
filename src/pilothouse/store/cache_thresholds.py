"""Per-project similarity thresholds of the semantic cache (the `cache_thresholds` table).

A project without a row uses `cache.semantic.threshold`. Rows are few and change rarely: the gateway reads
them all at once into a dict (gateway/cache/thresholds.py) and never queries them per request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pilothouse.store.tables import cache_thresholds

MIN_THRESHOLD = 0.5
"""The lowest threshold a project may set: below it, unrelated questions score as close as paraphrases."""
MAX_THRESHOLD = 1.0


@dataclass(frozen=True, slots=True)
class ThresholdOverride:
    project_id: str
    threshold: float
    updated_at: float
    updated_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "threshold": self.threshold,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
        }


def _override(row: Any) -> ThresholdOverride:
    return ThresholdOverride(row.project_id, row.threshold, row.updated_at, row.updated_by)


def check_threshold(threshold: float) -> float:
    """`threshold` if it is a number in [MIN_THRESHOLD, MAX_THRESHOLD]; else ValueError saying so."""
    if not (isinstance(threshold, int | float) and math.isfinite(threshold)) or isinstance(threshold, bool):
        raise ValueError(f"a threshold is a number, got {threshold!r}")
    if not MIN_THRESHOLD <= threshold <= MAX_THRESHOLD:
        raise ValueError(f"a threshold is between {MIN_THRESHOLD} and {MAX_THRESHOLD}, got {threshold}")
    return float(threshold)


def get_threshold(conn: Connection, project_id: str) -> ThresholdOverride | None:
    row = conn.execute(select(cache_thresholds).where(cache_thresholds.c.project_id == project_id)).first()
    return None if row is None else _override(row)


def list_thresholds(conn: Connection) -> list[ThresholdOverride]:
    return [_override(r) for r in conn.execute(select(cache_thresholds).order_by(cache_thresholds.c.project_id))]


def set_threshold(
    conn: Connection, *, project_id: str, threshold: float, actor: str | None
) -> tuple[ThresholdOverride, ThresholdOverride | None]:
    """Set the project's threshold; (the new override, the one it replaced)."""
    value = check_threshold(threshold)
    previous = get_threshold(conn, project_id)
    now = time.time()
    if previous is None:
        conn.execute(
            insert(cache_thresholds).values(project_id=project_id, threshold=value, updated_at=now, updated_by=actor)
        )
    else:
        conn.execute(
            update(cache_thresholds)
            .where(cache_thresholds.c.project_id == project_id)
            .values(threshold=value, updated_at=now, updated_by=actor)
        )
    return ThresholdOverride(project_id, value, now, actor), previous


def clear_threshold(conn: Connection, project_id: str) -> ThresholdOverride | None:
    """Remove the project's override; the one removed (None: there was none)."""
    previous = get_threshold(conn, project_id)
    if previous is not None:
        conn.execute(delete(cache_thresholds).where(cache_thresholds.c.project_id == project_id))
    return previous
