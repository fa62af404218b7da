"""How far each of several experiments has got, in one grouped query (table `experiment_results`).

A list of runs (the dashboard's experiments table) needs per run only the items done, the errors and what the
answers cost so far; reading every result row of every run for that (as `GET /api/evals/experiments/{id}` does
for one run, to summarise its scores) would grow with the runs' sizes. What the metrics' own model calls cost
sits inside each result's scores, so it is not part of this sum: the run's own page shows the full spend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import BigInteger, Connection, case, func, select

from pilothouse.money import from_pico
from pilothouse.store.tables import experiment_results

__all__ = ["Progress", "progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    """Results scored without error."""
    errors: int
    answers_cost_usd: Decimal
    """What the variants' answers cost (not the metrics' judge calls)."""


def progress(conn: Connection, experiment_ids: Sequence[str]) -> dict[str, Progress]:
    """Per experiment id: its results done and in error, and its answers' cost; a run without results yet has
    zeros (every id asked for is in the answer)."""
    found = {eid: Progress(0, 0, Decimal(0)) for eid in experiment_ids}
    if not found:
        return found
    c = experiment_results.c
    rows = conn.execute(
        select(
            c.experiment_id,
            func.sum(case((c.status == "ok", 1), else_=0)),
            func.sum(case((c.status == "error", 1), else_=0)),
            func.coalesce(func.sum(c.cost_usd, type_=BigInteger), 0),  # pico-dollars, not Money's Decimal
        )
        .where(c.experiment_id.in_(list(found)))
        .group_by(c.experiment_id)
    )
    for eid, done, errors, cost in rows:
        found[eid] = Progress(int(done or 0), int(errors or 0), from_pico(int(cost or 0)))
    return found
