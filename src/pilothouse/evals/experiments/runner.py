"""Running an experiment in the server process: every (variant, item) through the gateway, scored by the
metrics, its result committed before the next is counted, so an interrupted run resumes without paying again.

The runner beats a heartbeat every `BEAT_S`; a run whose heartbeat stops (the process died) shows as
`interrupted` and `resume` picks it up (store/experiments.py `claim`). Before each call the hard cap is checked
against what the results have cost so far plus the per-call estimate: a run that would pass its cap stops
(`capped`) before the call, never after. What the metrics' own model calls cost (judges, the variant re-run by
`counterfactual_bias`) is counted with the item's call: in the estimate per call and in what has been spent.
A metric that raises gives an unjudged score naming the error, never a silent zero; an item that does not fit a
variant (variables for a model variant) is an item error.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pilothouse.evals.experiments.calls import (
    Answer,
    ItemMismatch,
    PipelineVariantCaller,
    call_body,
    example_for,
    run_call,
)
from pilothouse.evals.experiments.spec import ExperimentSpec
from pilothouse.evals.judges.spend import metered
from pilothouse.evals.judges.transport import PipelineTransport, current_transport
from pilothouse.evals.metrics.base import Metric, Score, unjudged
from pilothouse.evals.metrics.registry import build_metric
from pilothouse.evals.metrics.variant_call import current_variant
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.principal import Principal
from pilothouse.store import experiments as repo
from pilothouse.store.engine import Store

__all__ = ["BEAT_S", "ExperimentRunner", "build_metrics", "eval_cost", "in_scoring_thread", "metric_keys"]

log = logging.getLogger("pilothouse.evals")
BEAT_S = 5.0
SCORING_THREADS = 64

_SCORING = ThreadPoolExecutor(max_workers=SCORING_THREADS, thread_name_prefix="pilothouse-eval-score")
"""Metrics run here, not in the loop's default executor: a judge blocks its thread until its model call, which
the pipeline runs on the loop and which itself needs the default executor (store writes, trace records), returns.
Judges filling the default executor would wait for threads only they hold (and starve the run's heartbeat)."""

T = TypeVar("T")


async def in_scoring_thread(fn: Callable[[], T]) -> T:
    """`fn()` on a scoring thread, in a copy of the caller's context (the judge and variant transports)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_SCORING, functools.partial(context.run, fn))


def metric_keys(spec: ExperimentSpec) -> list[str]:
    """Each metric's key in results: its name, or `name:N` (1-based) when a name is used more than once."""
    names = [m.name for m in spec.metrics]
    return [m if names.count(m) == 1 else f"{m}:{i}" for i, m in enumerate(names, start=1)]


def build_metrics(spec: ExperimentSpec) -> list[tuple[str, Metric]]:
    """Built once per run; MetricSpecError names the bad one."""
    return [(key, build_metric(m.name, m.options)) for key, m in zip(metric_keys(spec), spec.metrics, strict=True)]


def _score(metric: Metric, key: str, answer: Answer, item: dict[str, Any]) -> dict[str, Any]:
    """One metric's score as stored; what the metric's own model calls cost (judges, re-runs of the variant) is
    in `eval_cost_usd` (and `eval_calls`), which the run's cost cap counts."""
    with metered() as spend:
        try:
            found: Score = metric.score(example_for(item, answer))
        except Exception as exc:  # a plugin's bug: recorded as unjudged with the error, the run goes on
            log.warning("metric %s failed on item %s: %s", key, item["id"], exc)
            found = unjudged(key, f"metric failed: {type(exc).__name__}: {exc}")
    stored = {**found.to_dict(), "higher_is_better": metric.higher_is_better}
    if spend.calls:
        stored.update(eval_cost_usd=format(spend.cost_usd, "f"), eval_calls=spend.calls)
    return stored


def eval_cost(scores: dict[str, Any]) -> Decimal:
    """What the metrics' own model calls cost for one result (`_score`'s `eval_cost_usd`)."""
    return sum((Decimal(s.get("eval_cost_usd") or 0) for s in scores.values() if isinstance(s, dict)), Decimal(0))


@dataclass
class _Cap:
    limit: Decimal | None
    per_call: Decimal
    spent: Decimal
    reserved: Decimal = Decimal(0)

    def admit(self) -> bool:
        if self.limit is None:
            return True
        if self.spent + self.reserved + self.per_call > self.limit:
            return False
        self.reserved += self.per_call
        return True

    def settle(self, cost: Decimal | None) -> None:
        if self.limit is not None:
            self.reserved -= self.per_call
        self.spent += cost or Decimal(0)


class ExperimentRunner:
    """Runs one claimed experiment to its end (done, capped or failed)."""

    def __init__(self, store: Store, pipeline: Pipeline, principal: Principal) -> None:
        self.store = store
        self.pipeline = pipeline
        self.principal = principal

    async def run(self, experiment: repo.ExperimentRow, items: Sequence[dict[str, Any]]) -> str:
        spec = ExperimentSpec.model_validate(experiment.spec)
        beat = asyncio.create_task(self._beat(experiment.id))
        try:
            status, error = await self._run(experiment, spec, items)
        except Exception as exc:
            log.exception("experiment %s failed", experiment.id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            beat.cancel()
        if status != "running":
            await asyncio.to_thread(self._finish, experiment.id, status, error)
        return status

    def _finish(self, experiment_id: str, status: str, error: str | None) -> None:
        with self.store.begin() as conn:
            repo.finish(conn, experiment_id, status, error)

    async def _beat(self, experiment_id: str) -> None:
        while True:
            await asyncio.sleep(BEAT_S)

            def beat() -> None:
                with self.store.begin() as conn:
                    repo.heartbeat(conn, experiment_id)

            await asyncio.to_thread(beat)

    def _done(self, experiment_id: str) -> tuple[set[tuple[str, str]], Decimal]:
        with self.store.connect() as conn:
            rows = repo.results(conn, experiment_id)
            finished = {(r.variant, r.item_id) for r in rows if r.status == "ok"}
            return finished, repo.spent(conn, experiment_id) + sum((eval_cost(r.scores) for r in rows), Decimal(0))

    async def _run(
        self, experiment: repo.ExperimentRow, spec: ExperimentSpec, items: Sequence[dict[str, Any]]
    ) -> tuple[str, str | None]:
        metrics = await asyncio.to_thread(build_metrics, spec)
        finished, spent = await asyncio.to_thread(self._done, experiment.id)
        calls = len(items) * len(spec.variants)
        estimate = Decimal(experiment.estimate_usd or "0")
        cap = _Cap(experiment.max_cost_usd, estimate / calls if calls else Decimal(0), spent)
        loop = asyncio.get_running_loop()
        judge = PipelineTransport(self.pipeline, self.principal, loop, f"eval-{experiment.id}")
        current_transport.set(judge)  # judges (llm_judge) call models through the pipeline, in this task's context
        gate = asyncio.Semaphore(spec.concurrency)
        capped = asyncio.Event()
        session = f"eval-{experiment.id}"

        async def one(position: int, variant_index: int, item: dict[str, Any]) -> None:
            variant = spec.variants[variant_index]
            async with gate:
                if capped.is_set():
                    return
                if not cap.admit():
                    capped.set()
                    return
                try:
                    body = call_body(variant, item)
                except ItemMismatch as exc:
                    cap.settle(None)
                    await self._save(experiment.id, variant.name, item, position, None, str(exc), [])
                    return
                answer = await run_call(self.pipeline, self.principal, body, session_id=session)
                # metrics that need the variant again (counterfactual_bias) call it for this item
                current_variant.set(PipelineVariantCaller(self.pipeline, self.principal, loop, variant, item, session))
                extra = await self._save(experiment.id, variant.name, item, position, answer, answer.error, metrics)
                cap.settle((answer.cost_usd or Decimal(0)) + extra)

        pending = [
            one(position, v, item)
            for position, item in enumerate(items)
            for v, variant in enumerate(spec.variants)
            if variant.on_server and (variant.name, item["id"]) not in finished
        ]
        await asyncio.gather(*pending)
        if capped.is_set():
            return "capped", (
                f"stopped before passing the cost cap of ${experiment.max_cost_usd} "
                f"(spent ${cap.spent}; about ${cap.per_call} per call)"
            )
        if any(not v.on_server for v in spec.variants):
            return "running", None  # the client's function variants finish it (POST .../finish)
        return "done", None

    def score_upload(
        self,
        experiment_id: str,
        spec: ExperimentSpec,
        variant: str,
        uploads: Sequence[tuple[int, dict[str, Any], Answer]],
    ) -> None:
        """Score outputs a client's function produced (`pilothouse.evaluate`) and store them like the server's."""
        metrics = build_metrics(spec)
        with self.store.begin() as conn:
            for position, item, answer in uploads:
                scores = {} if answer.error else {key: _score(m, key, answer, item) for key, m in metrics}
                repo.save_result(
                    conn,
                    experiment_id,
                    repo.ResultRow(
                        variant=variant,
                        item_id=str(item["id"]),
                        position=position,
                        status="error" if answer.error else "ok",
                        output=answer.output,
                        error=answer.error,
                        trace_id=answer.trace_id,
                        latency_ms=answer.latency_ms,
                        input_tokens=answer.input_tokens,
                        output_tokens=answer.output_tokens,
                        cost_usd=answer.cost_usd,
                        scores=scores,
                    ),
                )
            repo.heartbeat(conn, experiment_id)

    async def _save(
        self,
        experiment_id: str,
        variant: str,
        item: dict[str, Any],
        position: int,
        answer: Answer | None,
        error: str | None,
        metrics: list[tuple[str, Metric]],
    ) -> Decimal:
        """Scores and stores one result; returns what the metrics' own model calls cost."""

        def write() -> Decimal:
            scores = {} if answer is None or error else {key: _score(m, key, answer, item) for key, m in metrics}
            result = repo.ResultRow(
                variant=variant,
                item_id=str(item["id"]),
                position=position,
                status="error" if error else "ok",
                output=None if answer is None else answer.output,
                error=error,
                trace_id=None if answer is None else answer.trace_id,
                latency_ms=None if answer is None else answer.latency_ms,
                input_tokens=None if answer is None else answer.input_tokens,
                output_tokens=None if answer is None else answer.output_tokens,
                cost_usd=None if answer is None else answer.cost_usd,
                scores=scores,
            )
            with self.store.begin() as conn:
                repo.save_result(conn, experiment_id, result)
            return eval_cost(scores)

        return await in_scoring_thread(write)
