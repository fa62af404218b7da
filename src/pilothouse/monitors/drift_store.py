"""Storage of sampled input embeddings (table `input_embeddings`) and of the drift sampler's cursors.

Vectors are stored int8-quantised with one scale per vector (384 bytes + a float instead of 1,536): on unit
vectors the cosine error is under 1e-3, far below what a drift test resolves. Rows carry the trace's time and
scope columns (prompt, version, model, source, tags), so a window is read with the (project, time) index alone.

A window is read as a **uniform sample**: rows in the window ordered by trace id (random hex: W3C/OpenTelemetry
trace ids) up to a limit. The same window always gives the same sample, so repeated evaluations agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, cast, delete, exists, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB

from pilothouse.monitors.series import Scope
from pilothouse.store.tables import input_drift_cursors, input_embeddings

__all__ = [
    "EMBEDDER",
    "Cursor",
    "Sample",
    "count_rows",
    "dequantise",
    "drop_cursor",
    "embedded_ids",
    "get_cursor",
    "insert_embeddings",
    "move_cursor",
    "projects_with_embeddings",
    "prune",
    "quantise",
    "read_sample",
]

EMBEDDER = "all-MiniLM-L6-v2"
"""The embedding model of stored vectors; vectors of another model are never compared with these."""

Vectors = npt.NDArray[np.float32]


def quantise(vectors: Vectors) -> list[tuple[bytes, float]]:
    """(int8 bytes, scale) per row: x ≈ q * scale."""
    out = []
    for row in np.asarray(vectors, dtype=np.float32):
        peak = float(np.max(np.abs(row))) if row.size else 0.0
        scale = peak / 127.0 if peak > 0 else 1.0
        out.append((np.round(row / scale).astype(np.int8).tobytes(), scale))
    return out


def dequantise(blobs: list[bytes], scales: list[float]) -> Vectors:
    """Unit-length float32 rows back from `quantise`."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    q = np.stack([np.frombuffer(b, dtype=np.int8) for b in blobs]).astype(np.float32)
    x = q * np.asarray(scales, dtype=np.float32)[:, None]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _has_tag(conn: Connection, tag: str) -> Any:
    """Whether the row's tags (a JSON array) hold `tag`. Rows without tags (SQL NULL, JSON null) or with a
    non-array value are simply outside the scope: PostgreSQL's containment never raises on a scalar, where
    `jsonb_array_elements_text` would fail the whole read."""
    tags = input_embeddings.c.tags
    if conn.dialect.name == "postgresql":
        return cast(tags, JSONB).contains([tag])
    values = func.json_each(tags).table_valued("value").alias("etag")
    return and_(
        func.json_type(tags) == "array",
        exists(select(literal(1)).select_from(values).where(values.c.value == tag)),
    )


def _where(conn: Connection, project_id: str, scope: Scope, start: float, end: float) -> list[Any]:
    t = input_embeddings.c
    where: list[Any] = [
        t.project_id == project_id,
        t.started_at >= start,
        t.started_at < end,
        t.embedder == EMBEDDER,
    ]
    for column, value in (
        (t.prompt_name, scope.prompt),
        (t.prompt_version, scope.prompt_version),
        (t.model, scope.model),
        (t.source, scope.source),
    ):
        if value is not None:
            where.append(column == value)
    if scope.tag is not None:
        where.append(_has_tag(conn, scope.tag))
    return where


@dataclass(frozen=True, slots=True)
class Sample:
    """A window's sampled inputs: trace ids, times and unit vectors (same order)."""

    trace_ids: list[str]
    started_at: list[float]
    vectors: Vectors

    def __len__(self) -> int:
        return len(self.trace_ids)


def read_sample(conn: Connection, project_id: str, scope: Scope, start: float, end: float, limit: int) -> Sample:
    """At most `limit` embedded inputs of [start, end) in the scope, a uniform sample (by trace id)."""
    t = input_embeddings.c
    rows = conn.execute(
        select(t.trace_id, t.started_at, t.vector, t.scale)
        .where(*_where(conn, project_id, scope, start, end))
        .order_by(t.trace_id)
        .limit(limit)
    ).all()
    vectors = dequantise([bytes(r.vector) for r in rows], [float(r.scale) for r in rows])
    return Sample([r.trace_id for r in rows], [float(r.started_at) for r in rows], vectors)


def count_rows(conn: Connection, project_id: str, scope: Scope, start: float, end: float) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(input_embeddings).where(*_where(conn, project_id, scope, start, end))
        ).scalar_one()
    )


def embedded_ids(conn: Connection, trace_ids: list[str]) -> set[str]:
    """Which of `trace_ids` already have a stored embedding."""
    if not trace_ids:
        return set()
    rows = conn.execute(select(input_embeddings.c.trace_id).where(input_embeddings.c.trace_id.in_(trace_ids)))
    return set(rows.scalars())


def insert_embeddings(conn: Connection, rows: list[dict[str, Any]], vectors: Vectors, now: float) -> int:
    """Store one embedding per row (trace columns: id, project_id, started_at, prompt_name, prompt_version,
    model, source, tags); rows whose trace already has one are skipped."""
    if not rows:
        return 0
    taken = embedded_ids(conn, [r["id"] for r in rows])
    values = []
    for row, (blob, scale) in zip(rows, quantise(vectors), strict=True):
        if row["id"] in taken:
            continue
        values.append(
            {
                "trace_id": row["id"],
                "project_id": row["project_id"],
                "started_at": row["started_at"],
                "prompt_name": row["prompt_name"],
                "prompt_version": row["prompt_version"],
                "model": row["model"],
                "source": row["source"],
                "tags": row["tags"],
                "embedder": EMBEDDER,
                "vector": blob,
                "scale": scale,
                "created_at": now,
            }
        )
    if values:
        conn.execute(insert(input_embeddings), values)
    return len(values)


def prune(conn: Connection, project_id: str, keep: list[tuple[float, float]], limit: int = 5000) -> int:
    """Delete up to `limit` of the project's embeddings outside every [start, end) range of `keep` (no ranges:
    all of them). Returns how many were deleted."""
    t = input_embeddings.c
    where: list[Any] = [t.project_id == project_id]
    if keep:
        where.append(~or_(*[(t.started_at >= lo) & (t.started_at < hi) for lo, hi in keep]))
    doomed = select(t.trace_id).where(*where).limit(limit).scalar_subquery()
    done = conn.execute(delete(input_embeddings).where(t.trace_id.in_(doomed)))
    return int(done.rowcount or 0)


def projects_with_embeddings(conn: Connection) -> list[str]:
    return list(conn.execute(select(input_embeddings.c.project_id).distinct()).scalars())


@dataclass(frozen=True, slots=True)
class Cursor:
    """A rule's sampler progress: traces started in [covered_from, cursor_at) were sampled."""

    rule_id: str
    covered_from: float
    cursor_at: float


def get_cursor(conn: Connection, rule_id: str, project_id: str, start_at: float) -> Cursor:
    """The rule's cursor, created empty at `start_at` on first use."""
    c = input_drift_cursors.c
    row = conn.execute(select(c.covered_from, c.cursor_at).where(c.rule_id == rule_id)).first()
    if row is None:
        conn.execute(
            insert(input_drift_cursors).values(
                rule_id=rule_id, project_id=project_id, cursor_at=start_at, covered_from=start_at
            )
        )
        return Cursor(rule_id, start_at, start_at)
    return Cursor(rule_id, float(row.covered_from), float(row.cursor_at))


def move_cursor(conn: Connection, old: Cursor, *, covered_from: float, cursor_at: float) -> bool:
    """Compare-and-set: False when another replica moved it first."""
    c = input_drift_cursors.c
    done = conn.execute(
        update(input_drift_cursors)
        .where(c.rule_id == old.rule_id, c.covered_from == old.covered_from, c.cursor_at == old.cursor_at)
        .values(covered_from=covered_from, cursor_at=cursor_at)
    )
    return done.rowcount == 1


def drop_cursor(conn: Connection, rule_id: str) -> None:
    conn.execute(delete(input_drift_cursors).where(input_drift_cursors.c.rule_id == rule_id))
