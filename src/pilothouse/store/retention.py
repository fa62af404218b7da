"""Trace retention: delete the content of old traces and keep their numbers.

Content is what a person wrote or a model answered: the spans' `input` (messages, embedding inputs, tool
arguments) and `output` (answers, tool results). Everything else stays, so cost reports, budgets, latency
percentiles, evaluation scores and the audit log are unchanged: trace and span ids, times, status, errors,
model, provider, tokens, cost, attributes (guard spans record scanner, score and action, never content) and
scores. A purged trace gets `content_purged_at`, so each trace is purged once and the API can say why its
content is gone.

Runs per project, in batches of traces, each batch its own short transaction (writers are never blocked
for long). `record` is called inside each batch's transaction, so the caller can append the audit event
(`trace.content.purge`, `audit.chain.recorder`) atomically with the deletion it records; the store package
sits below the audit package and does not import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, null, select, update

from pilothouse.store.engine import Store
from pilothouse.store.tables import projects, spans, traces

__all__ = ["PurgeResult", "purge_content"]

log = logging.getLogger("pilothouse.store.retention")

DAY_S = 86_400.0

Record = Callable[[Connection, str, dict[str, Any]], None]
"""Called as record(conn, project_id, details) in the transaction of each purged batch."""


@dataclass(slots=True)
class PurgeResult:
    """What a purge did (or, with `dry_run`, would do)."""

    cutoff: float
    """Traces started before this (epoch seconds) lose their content."""
    dry_run: bool
    traces: int = 0
    spans: int = 0
    by_project: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cutoff": self.cutoff,
            "dry_run": self.dry_run,
            "traces": self.traces,
            "spans": self.spans,
            "by_project": self.by_project,
        }


def _due(project_id: str, cutoff: float) -> Any:
    return (traces.c.project_id == project_id) & (traces.c.started_at < cutoff) & (traces.c.content_purged_at.is_(None))


def _count(conn: Connection, project_id: str, cutoff: float) -> tuple[int, int]:
    n_traces = conn.execute(select(func.count()).select_from(traces).where(_due(project_id, cutoff))).scalar_one()
    n_spans = conn.execute(
        select(func.count())
        .select_from(spans.join(traces, spans.c.trace_id == traces.c.id))
        .where(_due(project_id, cutoff))
    ).scalar_one()
    return int(n_traces), int(n_spans)


def _purge_batch(
    store: Store, project_id: str, cutoff: float, batch: int, now: float, record: Record | None
) -> tuple[int, int]:
    with store.begin() as conn:
        ids = list(
            conn.execute(
                select(traces.c.id)
                .where(_due(project_id, cutoff))
                .order_by(traces.c.started_at)
                .limit(batch)
                .with_for_update(skip_locked=True)  # PostgreSQL: replicas purging at once take different rows
            ).scalars()
        )
        if not ids:
            return 0, 0
        cleared = conn.execute(
            update(spans).where(spans.c.trace_id.in_(ids)).values(input=null(), output=null())
        ).rowcount
        conn.execute(update(traces).where(traces.c.id.in_(ids)).values(content_purged_at=now))
        if record is not None:
            record(conn, project_id, {"cutoff": cutoff, "traces": len(ids), "spans": int(cleared)})
    return len(ids), int(cleared)


def purge_content(
    store: Store,
    *,
    older_than_s: float,
    dry_run: bool = False,
    record: Record | None = None,
    now: float | None = None,
    batch: int = 1000,
) -> PurgeResult:
    """Delete the content of every trace started more than `older_than_s` seconds ago (see the module)."""
    if older_than_s <= 0:
        raise ValueError(f"older_than_s must be > 0, not {older_than_s}")
    now = time.time() if now is None else now
    result = PurgeResult(cutoff=now - older_than_s, dry_run=dry_run)
    with store.connect() as conn:
        project_ids = list(conn.execute(select(projects.c.id).order_by(projects.c.id)).scalars())
    for project_id in project_ids:
        if dry_run:
            with store.connect() as conn:
                n_traces, n_spans = _count(conn, project_id, result.cutoff)
        else:
            n_traces = n_spans = 0
            while True:
                done, cleared = _purge_batch(store, project_id, result.cutoff, batch, now, record)
                n_traces, n_spans = n_traces + done, n_spans + cleared
                if done < batch:
                    break
            if n_traces:
                log.info("retention: deleted the content of %d traces of project %s", n_traces, project_id)
        if n_traces:
            result.by_project[project_id] = n_traces
        result.traces += n_traces
        result.spans += n_spans
    return result
