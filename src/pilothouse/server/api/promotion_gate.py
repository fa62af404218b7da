"""The evaluation gate of a prompt promotion (`POST /api/prompts/{name}/promote` with `gate`).

Before the label moves, the candidate version and the version the label points at now run the gate's dataset as
one experiment (variants `baseline` and `candidate`, through the gateway in process, its cost cap held), are
compared paired by item (Holm across the gated metrics) and judged by the regression gate
(evals/experiments/gate.py): a significant regression refuses the promotion with 409 `promotion_gate_failed`
and the gate's report, unless `force` is given (then the audit reason records the failed gate and its run). The
run is an ordinary experiment: `pilothouse eval status RUN` shows it. A label that points at nothing yet has no
baseline: the gate is skipped and says so.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pilothouse.errors import Conflict
from pilothouse.evals.experiments.gate import decide, markdown_report
from pilothouse.evals.experiments.runner import ExperimentRunner, metric_keys
from pilothouse.evals.experiments.spec import ExperimentSpec, MetricSpec, Variant
from pilothouse.evals.experiments.summary import compare
from pilothouse.principal import Principal
from pilothouse.prompts.registry.lookup import baseline_version, get_label
from pilothouse.server.api.experiments import prepare_experiment
from pilothouse.server.state import AppState
from pilothouse.store import experiments as repo

__all__ = ["GateSpec", "PromotionGateFailed", "current_version", "run_gate"]


class GateSpec(BaseModel):
    """The regression gate a promotion must pass: a dataset whose items are the prompt's variables, and the
    metrics on which the candidate must not be significantly worse."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=100)
    dataset_version: int | None = Field(default=None, ge=1, description="Default: the latest version.")
    split: str | None = Field(default=None, max_length=40)
    metrics: list[MetricSpec] = Field(min_length=1, max_length=30)
    alpha: float = Field(default=0.05, gt=0, le=0.5, description="Significance level across the gated metrics.")
    min_effect: float = Field(default=0.0, ge=0, le=1_000_000, description="Ignore smaller regressions.")
    max_cost_usd: Decimal | None = Field(default=None, ge=0, le=1_000_000, description="Hard cap of the gate run.")
    concurrency: int = Field(default=4, ge=1, le=32)
    limit: int | None = Field(default=None, ge=1, le=100_000)


class PromotionGateFailed(Conflict):
    def __init__(self, message: str, gate: dict[str, Any], *, code: str = "promotion_gate_failed") -> None:
        super().__init__(message, code=code)
        self.gate = gate

    def body(self) -> dict[str, Any]:
        return {**super().body(), "gate": self.gate}


def current_version(state: AppState, principal: Principal, name: str, label: str) -> int | None:
    with state.store.connect() as conn:
        found = get_label(conn, principal.project_id, name, label)
    return None if found is None else baseline_version(found.splits)


async def run_gate(
    state: AppState, principal: Principal, name: str, candidate: int, baseline: int, gate: GateSpec
) -> dict[str, Any]:
    """Run the gate experiment to its end and judge it; raises PromotionGateFailed (code
    `promotion_gate_incomplete`) when the run did not finish, since nothing can be decided then."""
    spec = ExperimentSpec(
        name=f"promotion gate: {name}@{candidate} vs {name}@{baseline}",
        dataset=gate.dataset,
        dataset_version=gate.dataset_version,
        split=gate.split,
        variants=[
            Variant(name="baseline", prompt=f"{name}@{baseline}"),
            Variant(name="candidate", prompt=f"{name}@{candidate}"),
        ],
        metrics=gate.metrics,
        concurrency=gate.concurrency,
        max_cost_usd=gate.max_cost_usd,
        limit=gate.limit,
    )
    experiment, items = await asyncio.to_thread(prepare_experiment, state, principal, spec)
    status = await ExperimentRunner(state.store, state.pipeline, principal).run(experiment, items)

    def read() -> tuple[repo.ExperimentRow | None, list[repo.ResultRow]]:
        with state.store.connect() as conn:
            return repo.get_experiment(conn, principal.project_id, experiment.id), repo.results(conn, experiment.id)

    finished, rows = await asyncio.to_thread(read)
    if status != "done":
        error = finished.error if finished is not None else None
        found = {"run": experiment.id, "status": status, "error": error}
        raise PromotionGateFailed(
            f"the gate run {experiment.id} ended {status} ({error or 'no error recorded'}): nothing was decided, "
            "so the label did not move; raise the gate's max_cost_usd or fix the run and promote again",
            found,
            code="promotion_gate_incomplete",
        )
    keys = metric_keys(spec)
    comparison = compare(rows, "baseline", "candidate", keys, alpha=gate.alpha)
    comparison["baseline"], comparison["candidate"] = f"{name}@{baseline}", f"{name}@{candidate}"
    result = decide(comparison, keys, min_effect=gate.min_effect)
    return {
        "run": experiment.id,
        "passed": result.passed,
        "failures": result.failures,
        "report": markdown_report(result, comparison, run_id=experiment.id, dataset=gate.dataset),
        "comparison": comparison,
    }
