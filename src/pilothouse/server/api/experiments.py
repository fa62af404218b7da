"""/api/evals/experiments: run a dataset version against variants through the gateway in process, scored by
metrics (docs/evaluation.md).

Starting, and resuming, needs the developer role; reading the viewer role; all in the key's project. A start
validates everything before any call: the dataset version, the metrics' options, that every item fits every
variant, and the cost estimate against `max_cost_usd` (refused when above it, or unknown). The run goes on in
the server's background; `GET /{id}` shows its progress, spend and summary; a run whose server stopped shows as
`interrupted` and `POST /{id}/resume` continues it without repeating the items already scored.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pilothouse.audit.chain import append_event
from pilothouse.costs.estimate import ModelSource
from pilothouse.errors import Conflict, InvalidRequest, NotFound
from pilothouse.evals.experiments.calibration import calibrate, item_labels
from pilothouse.evals.experiments.calls import Answer, ItemMismatch, call_body
from pilothouse.evals.experiments.estimate import estimate_experiment
from pilothouse.evals.experiments.runner import (
    ExperimentRunner,
    build_metrics,
    eval_cost,
    in_scoring_thread,
    metric_keys,
)
from pilothouse.evals.experiments.spec import ExperimentSpec
from pilothouse.evals.experiments.summary import compare, summarise
from pilothouse.evals.judges.transport import PipelineTransport, current_transport
from pilothouse.evals.metrics.base import MetricSpecError
from pilothouse.principal import Principal
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import annotations as annotation_repo
from pilothouse.store import datasets as dataset_repo
from pilothouse.store import experiments as repo

router = APIRouter(prefix="/api/evals/experiments", tags=["experiments"])

_RUNNING: set[asyncio.Task[str]] = set()
"""Runs in progress in this process (kept referenced until they end)."""


def _start(state: AppState, principal: Principal, experiment: repo.ExperimentRow, items: list[dict[str, Any]]) -> None:
    runner = ExperimentRunner(state.store, state.pipeline, principal)
    task = asyncio.get_running_loop().create_task(runner.run(experiment, items))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)


def _items(
    conn: Any, experiment: repo.ExperimentRow | None, spec: ExperimentSpec, project_id: str
) -> tuple[Any, Any, list[dict[str, Any]]]:
    dataset = dataset_repo.get_dataset(conn, project_id, spec.dataset)
    latest = None if dataset is None else dataset_repo.latest_version(conn, dataset.id)
    if dataset is None or latest is None:
        raise NotFound(f"no dataset named {spec.dataset!r} in this project", code="dataset_not_found")
    wanted = experiment.dataset_version if experiment else spec.dataset_version
    version = latest if wanted is None else dataset_repo.get_version(conn, dataset.id, wanted)
    if version is None:
        raise NotFound(f"dataset {spec.dataset!r} has no version {wanted}", code="dataset_version_not_found")
    items = dataset_repo.version_items(conn, version.id, split=spec.split, limit=spec.limit)
    return dataset, version, items


def _view(experiment: repo.ExperimentRow, rows: list[repo.ResultRow], *, summary: bool = True) -> dict[str, Any]:
    spec = ExperimentSpec.model_validate(experiment.spec)
    variants = [v.name for v in spec.variants]
    total = experiment.item_count * len(variants)
    answers = sum((r.cost_usd for r in rows if r.cost_usd is not None), start=Decimal(0))
    judging = sum((eval_cost(r.scores) for r in rows), start=Decimal(0))
    return {
        "id": experiment.id,
        "name": experiment.name,
        "status": experiment.shown_status(),
        "dataset": {"name": spec.dataset, "version": experiment.dataset_version, "split": spec.split},
        "variants": [v.model_dump(exclude_none=True) for v in spec.variants],
        "metrics": metric_keys(spec),
        "progress": {
            "done": sum(1 for r in rows if r.status == "ok"),
            "errors": sum(1 for r in rows if r.status == "error"),
            "total": total,
        },
        "estimate_usd": experiment.estimate_usd,
        "max_cost_usd": None if experiment.max_cost_usd is None else format(experiment.max_cost_usd, "f"),
        "spent_usd": format(answers + judging, "f"),
        "spent_on_metrics_usd": format(judging, "f"),
        "error": experiment.error,
        "created_at": experiment.created_at,
        "finished_at": experiment.finished_at,
        "summary": summarise(rows, variants, metric_keys(spec)) if summary else None,
    }


def prepare_experiment(
    state: AppState, principal: Principal, body: ExperimentSpec
) -> tuple[repo.ExperimentRow, list[dict[str, Any]]]:
    """Validate everything and create the run (not started): the metrics' options, the dataset version, that
    every item fits every variant, and the estimate against the cap. Blocking: call it in a worker thread."""
    try:
        built = [metric for _, metric in build_metrics(body)]
    except MetricSpecError as exc:
        raise InvalidRequest(str(exc), code="invalid_metric", param="metrics") from None
    gateway = state.gateway
    source = ModelSource(catalog=gateway.catalog, prices=gateway.prices, provider_for=gateway.pool.get)
    with state.store.connect() as conn:
        dataset, version, items = _items(conn, None, body, principal.project_id)
        if not items:
            raise InvalidRequest(
                f"dataset {body.dataset!r} version {version.version} has no items to run (split {body.split!r})",
                code="no_items",
            )
        for item in items:
            for variant in (v for v in body.variants if v.on_server):
                try:
                    call_body(variant, item)
                except ItemMismatch as exc:
                    raise InvalidRequest(
                        f"item {item['id']!r}: {exc}", code="item_does_not_fit", param="variants"
                    ) from None
        found = estimate_experiment(conn, principal.project_id, body.variants, items, source, built)
    if body.max_cost_usd is not None:
        if found.total_usd is None:
            raise InvalidRequest(
                f"the price of variant(s) {', '.join(found.unpriced)} is unknown, so the cap of "
                f"${body.max_cost_usd} cannot be held; set the model's price or drop max_cost_usd",
                code="cost_unknown",
                param="max_cost_usd",
            )
        if found.total_usd > body.max_cost_usd:
            raise InvalidRequest(
                f"the estimate (up to ${found.total_usd} for {len(items)} items x {len(body.variants)} variants: "
                f"{found.per_variant}) is above the cap of ${body.max_cost_usd}",
                code="cost_cap_below_estimate",
                param="max_cost_usd",
            )
    with state.store.begin() as conn:
        experiment = repo.create_experiment(
            conn,
            project_id=principal.project_id,
            name=body.name,
            dataset_id=dataset.id,
            dataset_version=version.version,
            spec=body.model_dump(mode="json"),
            item_count=len(items),
            estimate_usd=None if found.total_usd is None else format(found.total_usd, "f"),
            max_cost_usd=body.max_cost_usd,
            actor=principal.key_id,
        )
        append_event(
            conn,
            actor=principal.key_id,
            action="experiment.start",
            target=experiment.id,
            project_id=principal.project_id,
            details={"name": body.name, "dataset": body.dataset, "version": version.version, "items": len(items)},
        )
    return experiment, items


@router.post("", status_code=202)
async def start_experiment(body: ExperimentSpec, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Validate, estimate and start a run (202: it goes on in the background; poll `GET /{id}`)."""
    require_role(principal, "developer")
    experiment, items = await asyncio.to_thread(prepare_experiment, state, principal, body)
    _start(state, principal, experiment, items)
    return _view(experiment, [])


@router.get("")
async def list_experiments(
    state: StateDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    """The project's experiments, newest first (without per-item results)."""
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        with state.store.connect() as conn:
            found = repo.list_experiments(conn, principal.project_id, limit=limit)
        return [
            {
                "id": e.id,
                "name": e.name,
                "status": e.shown_status(),
                "dataset_version": e.dataset_version,
                "items": e.item_count,
                "created_at": e.created_at,
                "finished_at": e.finished_at,
            }
            for e in found
        ]

    return await asyncio.to_thread(read)


def _found(
    state: AppState, principal: Principal, experiment_id: str
) -> tuple[repo.ExperimentRow, list[repo.ResultRow]]:
    with state.store.connect() as conn:
        experiment = repo.get_experiment(conn, principal.project_id, experiment_id)
        if experiment is None:
            raise NotFound(f"no experiment {experiment_id!r} in this project", code="experiment_not_found")
        return experiment, repo.results(conn, experiment.id)


@router.get("/{experiment_id}")
async def show_experiment(
    experiment_id: str,
    state: StateDep,
    principal: PrincipalDep,
    summary: Annotated[
        bool, Query(description="false: status, progress and spend only (for polling; the intervals cost CPU).")
    ] = True,
) -> dict[str, Any]:
    """Status, progress, spend, and per variant and metric the mean and pass rate with 95% intervals."""
    require_role(principal, "viewer")
    experiment, rows = await asyncio.to_thread(_found, state, principal, experiment_id)
    return await asyncio.to_thread(_view, experiment, rows, summary=summary)


@router.get("/{experiment_id}/results")
async def experiment_results(
    experiment_id: str, state: StateDep, principal: PrincipalDep, variant: str | None = None
) -> dict[str, Any]:
    """Every scored item: output, trace id, tokens, cost, and each metric's score with its explanation."""
    require_role(principal, "viewer")
    _, rows = await asyncio.to_thread(_found, state, principal, experiment_id)
    return {"data": [r.to_dict() for r in rows if variant is None or r.variant == variant]}


@router.get("/{experiment_id}/compare")
async def compare_variants(
    experiment_id: str,
    state: StateDep,
    principal: PrincipalDep,
    baseline: str,
    candidate: str,
    correction: Literal["holm", "bh", "none"] = "holm",
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
) -> dict[str, Any]:
    """The candidate against the baseline, paired by item, per metric: the difference with its interval, the
    p-value adjusted for the number of metrics, and a verdict (better, worse, no significant difference)."""
    require_role(principal, "viewer")
    experiment, rows = await asyncio.to_thread(_found, state, principal, experiment_id)
    spec = ExperimentSpec.model_validate(experiment.spec)
    names = {v.name for v in spec.variants}
    for name, param in ((baseline, "baseline"), (candidate, "candidate")):
        if name not in names:
            raise InvalidRequest(f"no variant {name!r} in this experiment ({', '.join(sorted(names))})", param=param)
    return compare(rows, baseline, candidate, metric_keys(spec), correction=correction, alpha=alpha)


@router.get("/{experiment_id}/calibration")
async def judge_calibration(
    experiment_id: str,
    state: StateDep,
    principal: PrincipalDep,
    metric: Annotated[str, Query(max_length=120, description="The judge's metric key in this run (e.g. llm_judge).")],
    label: Annotated[
        str,
        Query(
            max_length=120,
            description="Where people's labels are: an item metadata key (`human`), or `queue:NAME`, an annotation "
            "queue in which people scored this run's results.",
        ),
    ],
    variant: Annotated[str | None, Query(max_length=100, description="Only this variant's answers.")] = None,
) -> dict[str, Any]:
    """The judge's agreement with people's labels on the same items: accuracy, Cohen's kappa and the confusion
    matrix (boolean or categorical labels), or Spearman's rho (numeric labels)."""
    require_role(principal, "viewer")

    def read() -> dict[str, Any]:
        experiment, rows = _found(state, principal, experiment_id)
        spec = ExperimentSpec.model_validate(experiment.spec)
        keys = metric_keys(spec)
        if metric not in keys:
            raise InvalidRequest(f"no metric {metric!r} in this run ({', '.join(keys)})", param="metric")
        chosen = [r for r in rows if variant is None or r.variant == variant]
        with state.store.connect() as conn:
            if label.startswith("queue:"):
                queue = annotation_repo.get_queue(conn, principal.project_id, label[6:])
                if queue is None:
                    raise NotFound(f"no annotation queue named {label[6:]!r} in this project", code="queue_not_found")
                found = annotation_repo.queue_labels(conn, queue.id, experiment.id)
                return calibrate(chosen, lambda row: found.get((row.variant, row.item_id)), metric, label)
            _, _, items = _items(conn, experiment, spec, principal.project_id)
        by_id = {str(i["id"]): i for i in items}
        return calibrate(chosen, item_labels(by_id, label), metric, f"metadata.{label}")

    return await asyncio.to_thread(read)


class UploadedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    item_id: str = Field(min_length=1, max_length=200)
    output: str | None = Field(default=None, max_length=1_000_000)
    error: str | None = Field(default=None, max_length=10_000, description="The function raised: its message.")
    latency_ms: float | None = Field(default=None, ge=0)
    context: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Passages the function retrieved for this answer, in rank order (context_precision/recall).",
    )

    @model_validator(mode="after")
    def _one(self) -> UploadedOutput:
        if (self.output is None) == (self.error is None):
            raise ValueError("give either `output` or `error`")
        return self


class UploadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: str = Field(min_length=1, max_length=100)
    results: list[UploadedOutput] = Field(min_length=1, max_length=1000)


@router.post("/{experiment_id}/results")
async def upload_results(
    experiment_id: str, body: UploadBody, state: StateDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Outputs of a client-side function variant (`pilothouse.evaluate`), scored here by the run's metrics and
    stored like the server's own; an item uploaded again replaces its result."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        experiment, _ = _found(state, principal, experiment_id)
        spec = ExperimentSpec.model_validate(experiment.spec)
        variant = next((v for v in spec.variants if v.name == body.variant), None)
        if variant is None or variant.on_server:
            functions = ", ".join(v.name for v in spec.variants if not v.on_server) or "none"
            raise InvalidRequest(
                f"{body.variant!r} is not a function variant of this run (function variants: {functions})",
                param="variant",
            )
        if experiment.status != "running":
            raise Conflict(
                f"experiment {experiment_id} is {experiment.status}; start a new one", code="experiment_closed"
            )
        with state.store.connect() as conn:
            _, _, items = _items(conn, experiment, spec, principal.project_id)
        positions = {str(item["id"]): (n, item) for n, item in enumerate(items)}
        uploads = []
        for result in body.results:
            if result.item_id not in positions:
                raise InvalidRequest(f"item {result.item_id!r} is not in this run's dataset items", param="results")
            position, item = positions[result.item_id]
            answer = Answer(
                result.output, result.error, None, result.latency_ms, None, None, None, tuple(result.context)
            )
            uploads.append((position, item, answer))
        ExperimentRunner(state.store, state.pipeline, principal).score_upload(
            experiment.id, spec, body.variant, uploads
        )
        return {"stored": len(uploads)}

    loop = asyncio.get_running_loop()
    current_transport.set(PipelineTransport(state.pipeline, principal, loop, f"eval-{experiment_id}"))
    return await in_scoring_thread(write)


@router.post("/{experiment_id}/finish")
async def finish_experiment(experiment_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Close a run with function variants once every variant has a result for every item (409 naming what is
    missing otherwise)."""
    require_role(principal, "developer")

    def close() -> dict[str, Any]:
        experiment, rows = _found(state, principal, experiment_id)
        spec = ExperimentSpec.model_validate(experiment.spec)
        if experiment.status != "running":
            raise Conflict(f"experiment {experiment_id} is {experiment.status}", code="experiment_closed")
        have: dict[str, int] = {v.name: 0 for v in spec.variants}
        for row in rows:
            have[row.variant] = have.get(row.variant, 0) + 1
        missing = {name: experiment.item_count - n for name, n in have.items() if n < experiment.item_count}
        if missing:
            raise Conflict(f"results are missing: {missing} (variant: items)", code="experiment_incomplete")
        with state.store.begin() as conn:
            repo.finish(conn, experiment.id, "done")
        done, rows = _found(state, principal, experiment_id)
        return _view(done, rows)

    return await asyncio.to_thread(close)


@router.post("/{experiment_id}/resume", status_code=202)
async def resume_experiment(experiment_id: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Continue an interrupted, capped or failed run; items already scored are not run again."""
    require_role(principal, "developer")

    def claim() -> tuple[repo.ExperimentRow, list[dict[str, Any]]]:
        experiment, _ = _found(state, principal, experiment_id)
        spec = ExperimentSpec.model_validate(experiment.spec)
        with state.store.begin() as conn:
            if not repo.claim(conn, experiment.id):
                shown = experiment.shown_status()
                raise Conflict(
                    f"experiment {experiment_id} is {shown}: only an interrupted, capped or failed run resumes",
                    code="experiment_not_resumable",
                )
            _, _, items = _items(conn, experiment, spec, principal.project_id)
            claimed = repo.get_experiment(conn, principal.project_id, experiment.id)
        assert claimed is not None
        return claimed, items

    experiment, items = await asyncio.to_thread(claim)
    _start(state, principal, experiment, items)
    return _view(experiment, await asyncio.to_thread(lambda: _found(state, principal, experiment_id)[1]))
