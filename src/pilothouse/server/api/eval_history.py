"""/api/evals/history: one metric of one dataset's finished runs over time, per variant, with a tested change
between consecutive runs (evals/experiments/history.py; docs/evaluation.md#over-time). Viewer role, own project.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from pilothouse.errors import NotFound
from pilothouse.evals.experiments.history import RunPoint, metric_history
from pilothouse.evals.experiments.runner import metric_keys
from pilothouse.evals.experiments.spec import ExperimentSpec, Variant
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.store import datasets as dataset_repo
from pilothouse.store import experiments as repo

router = APIRouter(prefix="/api/evals/history", tags=["experiments"])


def _key(keys: list[str], metric: str) -> str | None:
    """The run's key for `metric`: the exact key, or the one key of that metric name (`contains` for `contains:2`
    when the run measured it once under that name)."""
    if metric in keys:
        return metric
    named = [k for k in keys if k.split(":", 1)[0] == metric]
    return named[0] if len(named) == 1 else None


def _target(variant: Variant) -> str:
    if variant.prompt is not None:
        return f"prompt {variant.prompt}"
    if variant.model is not None:
        return f"model {variant.model}"
    return f"function {variant.function}"


@router.get("")
async def metric_over_time(
    state: StateDep,
    principal: PrincipalDep,
    dataset: Annotated[str, Query(min_length=1, max_length=100, description="The dataset's name.")],
    metric: Annotated[
        str, Query(min_length=1, max_length=110, description="A metric key (`contains`, `llm_judge:2`).")
    ],
    variant: Annotated[str | None, Query(max_length=100, description="Only this variant name's series.")] = None,
    limit: Annotated[int, Query(ge=2, le=200, description="The newest N finished runs of the dataset.")] = 20,
    correction: Literal["holm", "bh", "none"] = "holm",
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
) -> dict[str, Any]:
    """Per variant name, the finished runs of the dataset that measured the metric, oldest first: the mean and pass
    rate with 95% intervals, and for each run the change since the one before (paired by item on the same dataset
    version, p-values corrected across the series), flagged when significant."""
    require_role(principal, "viewer")

    def read() -> dict[str, Any]:
        with state.store.connect() as conn:
            found = dataset_repo.get_dataset(conn, principal.project_id, dataset)
            if found is None:
                raise NotFound(f"no dataset named {dataset!r} in this project", code="dataset_not_found")
            runs = repo.list_experiments(conn, principal.project_id, limit=limit, dataset_id=found.id, status="done")
            points = []
            for run in runs:
                spec = ExperimentSpec.model_validate(run.spec)
                key = _key(metric_keys(spec), metric)
                if key is None:
                    continue
                rows = repo.results(conn, run.id)
                for v in spec.variants:
                    if variant is not None and v.name != variant:
                        continue
                    mine = [r for r in rows if r.variant == v.name]
                    points.append(
                        RunPoint(run.id, run.name, run.created_at, run.dataset_version, v.name, _target(v), key, mine)
                    )
        series = metric_history(points, correction=correction, alpha=alpha)
        return {"dataset": dataset, "metric": metric, "correction": correction, "alpha": alpha, "series": series}

    return await asyncio.to_thread(read)
