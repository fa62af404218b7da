"""Dashboard section 'Evaluations': experiments, datasets, one experiment's comparison, drill-down and judge
calibration, a metric's history per dataset, and (ui/pages/evals_queues.py) the annotation queues.

Every read goes through the function the matching `/api/evals/...` route runs (most pages call the route's own
function with the session's principal, so the role checks, project scoping and errors are the API's); the
only action forms here call those routes from the browser (static/pilothouse.js).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from pilothouse.errors import ApiError, NotFound
from pilothouse.evals.experiments.runner import metric_keys
from pilothouse.evals.experiments.spec import ExperimentSpec
from pilothouse.server.api import datasets as datasets_api
from pilothouse.server.api import eval_history as history_api
from pilothouse.server.api import experiments as experiments_api
from pilothouse.server.auth import require_role
from pilothouse.store import datasets as dataset_repo
from pilothouse.store import experiments as experiment_repo
from pilothouse.store.experiment_progress import progress
from pilothouse.ui.charts import Marker, Series, line_chart
from pilothouse.ui.context import UiContext, UiDep
from pilothouse.ui.pages import evals_queues
from pilothouse.ui.pages.evals_views import clip, metric_tables, page_of, score_cells, target_of
from pilothouse.ui.render import fragment, page

router = APIRouter(include_in_schema=False)
router.include_router(evals_queues.router)  # before /evals/{experiment_id}, which would match /evals/queues

LIST_LIMIT = 50
"""Experiments on the list page (the newest)."""


def _experiments(ctx: UiContext) -> list[dict[str, Any]]:
    """The newest runs with their dataset, variants and progress (the list route's store read, plus progress)."""
    require_role(ctx.principal, "viewer")
    with ctx.state.store.connect() as conn:
        found = experiment_repo.list_experiments(conn, ctx.principal.project_id, limit=LIST_LIMIT)
        done = progress(conn, [e.id for e in found])
    rows = []
    for e in found:
        spec = ExperimentSpec.model_validate(e.spec)
        rows.append(
            {
                "id": e.id,
                "name": e.name,
                "status": e.shown_status(),
                "dataset": spec.dataset,
                "version": e.dataset_version,
                "variants": [v.name for v in spec.variants],
                "done": done[e.id].done,
                "errors": done[e.id].errors,
                "total": e.item_count * len(spec.variants),
                "cost": done[e.id].answers_cost_usd,
                "created_at": e.created_at,
            }
        )
    return rows


@router.get("/evals")
async def experiments_page(ctx: UiDep) -> HTMLResponse:
    experiments = await asyncio.to_thread(_experiments, ctx)
    datasets = await datasets_api.list_datasets(ctx.state, ctx.principal)
    return page(ctx, "evals/list.html", title="Evaluations", experiments=experiments, datasets=datasets)


def _measured(ctx: UiContext, dataset: str) -> list[str]:
    """The metric keys the dataset's newest runs measured (what its history can show)."""
    require_role(ctx.principal, "viewer")
    with ctx.state.store.connect() as conn:
        found = dataset_repo.get_dataset(conn, ctx.principal.project_id, dataset)
        if found is None:
            return []
        latest = experiment_repo.list_experiments(conn, ctx.principal.project_id, limit=20, dataset_id=found.id)
    keys: dict[str, None] = {}
    for run in latest:
        keys.update(dict.fromkeys(metric_keys(ExperimentSpec.model_validate(run.spec))))
    return list(keys)


@router.get("/evals/datasets/{name}")
async def dataset_page(
    ctx: UiDep, name: str, version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None
) -> HTMLResponse:
    shown = await datasets_api.show_dataset(name, ctx.state, ctx.principal, version)
    versions = await datasets_api.dataset_versions(name, ctx.state, ctx.principal)
    items = await datasets_api.dataset_items(name, ctx.state, ctx.principal, version, None, 0, LIST_LIMIT)
    metrics = await asyncio.to_thread(_measured, ctx, name)
    return page(
        ctx,
        "evals/dataset.html",
        title=f"Dataset {name}",
        dataset=shown,
        versions=versions,
        items=items,
        metrics=metrics,
    )


@router.get("/evals/history")
async def history_page(
    ctx: UiDep,
    dataset: Annotated[str | None, Query(max_length=100)] = None,
    metric: Annotated[str | None, Query(max_length=110)] = None,
    variant: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=2, le=200)] = 20,
) -> HTMLResponse:
    """A metric of a dataset over its finished runs; without both, a form to choose them (the dataset's measured
    metrics offered once the dataset is chosen)."""
    datasets = await datasets_api.list_datasets(ctx.state, ctx.principal)
    if not dataset or not metric:
        if dataset and not any(d["name"] == dataset for d in datasets):
            raise NotFound(f"no dataset named {dataset!r} in this project", code="dataset_not_found")
        metrics = await asyncio.to_thread(_measured, ctx, dataset) if dataset else []
        return page(
            ctx,
            "evals/history.html",
            title="Eval history",
            history=None,
            chart=None,
            datasets=datasets,
            chosen=dataset or "",
            metrics=metrics,
            metric=metric or "",
        )
    found = await history_api.metric_over_time(ctx.state, ctx.principal, dataset, metric, variant, limit, "holm", 0.05)
    series, markers = [], []
    for s in found["series"]:
        points = [(p["created_at"], (p.get("mean") or {}).get("estimate")) for p in s["points"]]
        series.append(Series(s["variant"], points))
        for p in s["points"]:
            if p["change"] and p["change"].get("flagged"):
                markers.append(Marker(p["created_at"], f"{s['variant']}: {p['change']['verdict']}"))
    chart = line_chart(f"{metric} on {dataset}: mean per run", series, markers=markers)
    return page(
        ctx,
        "evals/history.html",
        title=f"History: {metric} on {dataset}",
        history=found,
        chart=chart,
        datasets=datasets,
        chosen=dataset,
        metrics=await asyncio.to_thread(_measured, ctx, dataset),
        metric=metric,
    )


Correction = Literal["holm", "bh", "none"]


async def _compare(
    ctx: UiContext,
    experiment_id: str,
    variants: list[str],
    baseline: str | None,
    candidate: str | None,
    correction: Correction,
) -> tuple[dict[str, Any] | None, str | None]:
    """The paired comparison the API gives, for the two variants chosen (the first two by default)."""
    if len(variants) < 2:
        return None, None
    base = baseline or variants[0]
    cand = candidate or next(v for v in variants if v != base)
    try:
        found = await experiments_api.compare_variants(
            experiment_id, ctx.state, ctx.principal, base, cand, correction, 0.05
        )
    except ApiError as exc:
        return None, exc.message
    return found, None


async def _calibration(
    ctx: UiContext, experiment_id: str, metric: str | None, label: str | None, variant: str | None
) -> tuple[dict[str, Any] | None, str | None]:
    if not metric or not label:
        return None, None
    try:
        return await experiments_api.judge_calibration(
            experiment_id, ctx.state, ctx.principal, metric, label, variant
        ), None
    except ApiError as exc:
        return None, exc.message


@router.get("/evals/{experiment_id}")
async def experiment_page(
    ctx: UiDep,
    experiment_id: str,
    baseline: Annotated[str | None, Query(max_length=100)] = None,
    candidate: Annotated[str | None, Query(max_length=100)] = None,
    correction: Correction = "holm",
    variant: Annotated[str | None, Query(max_length=100)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    cal_metric: Annotated[str | None, Query(max_length=120)] = None,
    cal_label: Annotated[str | None, Query(max_length=120)] = None,
) -> HTMLResponse:
    shown = await experiments_api.show_experiment(experiment_id, ctx.state, ctx.principal, True)
    names = [v["name"] for v in shown["variants"]]
    if variant is not None and variant not in names:
        variant = None
    comparison, compare_error = await _compare(ctx, experiment_id, names, baseline, candidate, correction)
    results = (await experiments_api.experiment_results(experiment_id, ctx.state, ctx.principal, variant))["data"]
    rows, after, before = page_of(results, offset)
    calibration, calibration_error = await _calibration(ctx, experiment_id, cal_metric, cal_label, variant)
    return page(
        ctx,
        "evals/experiment.html",
        title=f"Experiment {shown['name']}",
        exp=shown,
        variant_names=names,
        targets={v["name"]: target_of(v) for v in shown["variants"]},
        tables=metric_tables(shown["summary"], shown["metrics"]),
        comparison=comparison,
        compare_error=compare_error,
        correction=correction,
        chosen_variant=variant,
        results=[{**r, "cells": score_cells(r["scores"]), "short": clip(r["output"])} for r in rows],
        results_total=len(results),
        offset=offset,
        next_offset=after,
        prev_offset=before,
        calibration=calibration,
        calibration_error=calibration_error,
        cal_metric=cal_metric,
        cal_label=cal_label,
    )


@router.get("/evals/{experiment_id}/progress")
async def experiment_progress(ctx: UiDep, experiment_id: str) -> HTMLResponse:
    """The live part of a run's page: status, progress and spend (no intervals: cheap to poll every 3 s)."""
    shown = await experiments_api.show_experiment(experiment_id, ctx.state, ctx.principal, False)
    return fragment(ctx, "evals/_progress.html", exp=shown)
