"""The experiment methods of the `Pilothouse` client (a mixin).

ph = Pilothouse()
run = ph.start_experiment(
    "greeting v1 vs v2",
    dataset="greetings",
    variants=[{"name": "v1", "prompt": "greet@1"}, {"name": "v2", "prompt": "greet@2"}],
    metrics=[{"name": "contains"}, {"name": "max_latency_ms", "options": {"limit": 2000}}],
    max_cost_usd="0.50",
)
done = ph.wait_experiment(run["id"])                      # polls until done, capped or failed
print(ph.compare_experiment(run["id"], baseline="v1", candidate="v2")["metrics"])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

FINAL = frozenset({"done", "capped", "failed", "interrupted"})


class ExperimentsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def start_experiment(
        self,
        name: str,
        *,
        dataset: str,
        variants: Sequence[Mapping[str, Any]],
        metrics: Sequence[Mapping[str, Any]],
        dataset_version: int | None = None,
        split: str | None = None,
        concurrency: int = 4,
        max_cost_usd: str | Decimal | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Validate, estimate and start a run on the server; returns it with `id` and `status` running."""
        body = {
            "name": name,
            "dataset": dataset,
            "dataset_version": dataset_version,
            "split": split,
            "variants": [dict(v) for v in variants],
            "metrics": [dict(m) for m in metrics],
            "concurrency": concurrency,
            "max_cost_usd": None if max_cost_usd is None else str(max_cost_usd),
            "limit": limit,
        }
        result: dict[str, Any] = self.request("POST", "/api/evals/experiments", json=body)
        return result

    def get_experiment(self, experiment_id: str, *, summary: bool = True) -> dict[str, Any]:
        """The run: status, progress, spend and (unless `summary=False`) each variant's metrics with intervals."""
        params = {} if summary else {"summary": "false"}
        result: dict[str, Any] = self.request("GET", f"/api/evals/experiments/{experiment_id}", params=params)
        return result

    def list_experiments(self, *, limit: int = 50) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/evals/experiments", params={"limit": limit})
        return result

    def experiment_results(self, experiment_id: str, *, variant: str | None = None) -> list[dict[str, Any]]:
        params = {"variant": variant} if variant else {}
        found = self.request("GET", f"/api/evals/experiments/{experiment_id}/results", params=params)
        rows: list[dict[str, Any]] = found["data"]
        return rows

    def compare_experiment(
        self, experiment_id: str, *, baseline: str, candidate: str, correction: str = "holm"
    ) -> dict[str, Any]:
        params = {"baseline": baseline, "candidate": candidate, "correction": correction}
        result: dict[str, Any] = self.request("GET", f"/api/evals/experiments/{experiment_id}/compare", params=params)
        return result

    def judge_calibration(
        self, experiment_id: str, *, metric: str, label: str, variant: str | None = None
    ) -> dict[str, Any]:
        """A judge's agreement with people's labels (the items' `metadata[label]`): kappa and confusion matrix,
        or Spearman's rho for numeric labels."""
        params = {"metric": metric, "label": label, **({"variant": variant} if variant else {})}
        result: dict[str, Any] = self.request(
            "GET", f"/api/evals/experiments/{experiment_id}/calibration", params=params
        )
        return result

    def eval_history(
        self,
        dataset: str,
        metric: str,
        *,
        variant: str | None = None,
        limit: int = 20,
        correction: str = "holm",
    ) -> dict[str, Any]:
        """A metric over time: per variant name, the dataset's finished runs that measured it, oldest first, each
        with its mean and interval and the change since the run before (`change.flagged` when significant)."""
        params: dict[str, Any] = {"dataset": dataset, "metric": metric, "limit": limit, "correction": correction}
        if variant is not None:
            params["variant"] = variant
        result: dict[str, Any] = self.request("GET", "/api/evals/history", params=params)
        return result

    def resume_experiment(self, experiment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/api/evals/experiments/{experiment_id}/resume")
        return result

    def wait_experiment(
        self,
        experiment_id: str,
        *,
        timeout_s: float = 3600.0,
        poll_s: float = 1.0,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the run is done, capped, failed or interrupted; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.get_experiment(experiment_id, summary=False)  # polls skip the intervals' CPU
            if on_progress is not None:
                on_progress(found)
            if found["status"] in FINAL:
                return self.get_experiment(experiment_id)
            if time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} still {found['status']} after {timeout_s:g} s")
            time.sleep(poll_s)
