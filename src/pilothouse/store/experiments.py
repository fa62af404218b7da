"""Experiments and their per-item results (tables `experiments`, `experiment_results`).

Plain reads and writes on a Connection. A result row is written once per (experiment, variant, item) when the
item is scored; a later attempt of an item that failed replaces its row. `claim` starts or resumes a run only
when no live runner holds it (its heartbeat is older than `STALE_S`), so two resumes never run it twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, delete, func, insert, or_, select, update

from pilothouse.money import from_pico
from pilothouse.store.ids import new_id
from pilothouse.store.tables import experiment_results, experiments

__all__ = [
    "STALE_S",
    "ExperimentRow",
    "ResultRow",
    "claim",
    "create_experiment",
    "finish",
    "get_experiment",
    "heartbeat",
    "list_experiments",
    "results",
    "save_result",
    "spent",
]

STALE_S = 30.0
"""A running experiment whose runner has not beaten for this long is interrupted (its process died)."""


@dataclass(frozen=True, slots=True)
class ExperimentRow:
    id: str
    project_id: str
    name: str
    dataset_id: str
    dataset_version: int
    spec: dict[str, Any]
    status: str
    item_count: int
    estimate_usd: str | None
    max_cost_usd: Decimal | None
    error: str | None
    created_at: float
    created_by: str | None
    heartbeat_at: float | None
    finished_at: float | None

    def shown_status(self, now: float | None = None) -> str:
        """`running` becomes `interrupted` when its runner stopped beating (a crash, a restart)."""
        if self.status == "running" and (self.heartbeat_at or 0.0) < (now or time.time()) - STALE_S:
            return "interrupted"
        return self.status


@dataclass(frozen=True, slots=True)
class ResultRow:
    variant: str
    item_id: str
    position: int
    status: str
    output: str | None
    error: str | None
    trace_id: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    scores: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "item_id": self.item_id,
            "position": self.position,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "trace_id": self.trace_id,
            "latency_ms": self.latency_ms,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": None if self.cost_usd is None else format(self.cost_usd, "f"),
            "scores": self.scores,
        }


def _experiment(row: Any) -> ExperimentRow:
    return ExperimentRow(
        row.id,
        row.project_id,
        row.name,
        row.dataset_id,
        int(row.dataset_version),
        dict(row.spec),
        row.status,
        int(row.item_count),
        row.estimate_usd,
        row.max_cost_usd,
        row.error,
        row.created_at,
        row.created_by,
        row.heartbeat_at,
        row.finished_at,
    )


def create_experiment(
    conn: Connection,
    *,
    project_id: str,
    name: str,
    dataset_id: str,
    dataset_version: int,
    spec: dict[str, Any],
    item_count: int,
    estimate_usd: str | None,
    max_cost_usd: Decimal | None,
    actor: str | None,
) -> ExperimentRow:
    now = time.time()
    row: dict[str, Any] = {
        "id": new_id("exp"),
        "project_id": project_id,
        "name": name,
        "dataset_id": dataset_id,
        "dataset_version": dataset_version,
        "spec": spec,
        "status": "running",
        "item_count": item_count,
        "estimate_usd": estimate_usd,
        "max_cost_usd": max_cost_usd,
        "error": None,
        "created_at": now,
        "created_by": actor,
        "heartbeat_at": now,
        "finished_at": None,
    }
    conn.execute(insert(experiments).values(**row))
    return ExperimentRow(**row)


def get_experiment(conn: Connection, project_id: str, experiment_id: str) -> ExperimentRow | None:
    row = conn.execute(
        select(experiments).where(experiments.c.id == experiment_id, experiments.c.project_id == project_id)
    ).first()
    return None if row is None else _experiment(row)


def list_experiments(
    conn: Connection, project_id: str, *, limit: int = 50, dataset_id: str | None = None, status: str | None = None
) -> list[ExperimentRow]:
    """The newest first; only one dataset's (`dataset_id`) or runs in one `status` when given."""
    query = select(experiments).where(experiments.c.project_id == project_id)
    if dataset_id is not None:
        query = query.where(experiments.c.dataset_id == dataset_id)
    if status is not None:
        query = query.where(experiments.c.status == status)
    rows = conn.execute(query.order_by(experiments.c.created_at.desc()).limit(limit)).all()
    return [_experiment(r) for r in rows]


def claim(conn: Connection, experiment_id: str, *, now: float | None = None) -> bool:
    """Mark the experiment running under a fresh heartbeat if no live runner holds it; True if claimed."""
    at = now or time.time()
    claimed = conn.execute(
        update(experiments)
        .where(
            experiments.c.id == experiment_id,
            or_(
                experiments.c.status.in_(("capped", "failed")),
                and_(
                    experiments.c.status == "running",
                    or_(experiments.c.heartbeat_at.is_(None), experiments.c.heartbeat_at < at - STALE_S),
                ),
            ),
        )
        .values(status="running", heartbeat_at=at, error=None, finished_at=None)
    )
    return claimed.rowcount == 1


def heartbeat(conn: Connection, experiment_id: str) -> None:
    conn.execute(update(experiments).where(experiments.c.id == experiment_id).values(heartbeat_at=time.time()))


def finish(conn: Connection, experiment_id: str, status: str, error: str | None = None) -> None:
    conn.execute(
        update(experiments)
        .where(experiments.c.id == experiment_id)
        .values(status=status, error=error, finished_at=time.time(), heartbeat_at=None)
    )


def save_result(conn: Connection, experiment_id: str, result: ResultRow) -> None:
    conn.execute(
        delete(experiment_results).where(
            experiment_results.c.experiment_id == experiment_id,
            experiment_results.c.variant == result.variant,
            experiment_results.c.item_id == result.item_id,
        )
    )
    conn.execute(
        insert(experiment_results).values(
            experiment_id=experiment_id,
            variant=result.variant,
            item_id=result.item_id,
            position=result.position,
            status=result.status,
            output=result.output,
            error=result.error,
            trace_id=result.trace_id,
            latency_ms=result.latency_ms,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=result.cost_usd,
            scores=result.scores,
            finished_at=time.time(),
        )
    )


def results(conn: Connection, experiment_id: str, *, variant: str | None = None) -> list[ResultRow]:
    query = select(experiment_results).where(experiment_results.c.experiment_id == experiment_id)
    if variant is not None:
        query = query.where(experiment_results.c.variant == variant)
    rows = conn.execute(query.order_by(experiment_results.c.variant, experiment_results.c.position)).all()
    return [
        ResultRow(
            r.variant,
            r.item_id,
            int(r.position),
            r.status,
            r.output,
            r.error,
            r.trace_id,
            r.latency_ms,
            r.input_tokens,
            r.output_tokens,
            r.cost_usd,
            dict(r.scores),
        )
        for r in rows
    ]


def spent(conn: Connection, experiment_id: str) -> Decimal:
    """What the experiment's results have cost so far."""
    total = conn.execute(
        # typed as the stored pico-dollar integer: summed as Money, the total came back in dollars and int() cut it
        select(func.coalesce(func.sum(experiment_results.c.cost_usd, type_=BigInteger), 0)).where(
            experiment_results.c.experiment_id == experiment_id
        )
    ).scalar_one()
    return from_pico(int(total or 0))
