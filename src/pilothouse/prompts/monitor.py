"""Canary rollback rules: compare a label's candidate version with its baseline and roll back when worse.

A label with two splits is a canary. Its `rollback_rule` is
`{"metric": "score:NAME" | "error_rate" | "cost_per_request" | "latency_ms", "min_samples": int, "alpha": float,
"baseline": int}`. The check takes the traces of that prompt at the two versions since the split was set
(`label.updated_at`), one value per trace (see `metric_values`), and tests whether the candidate is
significantly worse (`pilothouse.prompts.stats.compare_metric`). When both groups have `min_samples` values and
it is, the label goes back to the baseline alone (`registry.set_label`, audited as `prompt.canary.rollback`
with the statistics as the reason).

The server runs every canary's check in the background (`CanaryMonitor`); with several replicas each may run
it, so the rollback re-reads the label under a row lock and acts only if it is still the split it evaluated.
Traces record the prompt version, not the label, so calls to the same versions through another label or an
explicit `NAME@VERSION` in that window count too.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, select

from pilothouse.errors import NotFound
from pilothouse.prompts import registry
from pilothouse.prompts.refs import MAX_VERSION
from pilothouse.prompts.stats import Comparison, MetricKind, compare_metric
from pilothouse.store.engine import Store
from pilothouse.store.tables import prompt_labels, prompts, scores, traces

if TYPE_CHECKING:
    from pilothouse.server.state import AppState

log = logging.getLogger("pilothouse.prompts.monitor")

ROLLBACK_ACTION = "prompt.canary.rollback"
MONITOR_ACTOR = "system:canary-monitor"
PLAIN_METRICS: tuple[str, ...] = ("error_rate", "cost_per_request", "latency_ms")
SCORE_PREFIX = "score:"
DEFAULT_MIN_SAMPLES = 10
DEFAULT_ALPHA = 0.05

LabelChanged = Callable[[str, str], None]  # (project_id, prompt_name)
Status = Literal[
    "no_canary", "no_rule", "invalid_rule", "insufficient_samples", "not_worse", "worse", "rolled_back", "changed"
]


@dataclass(frozen=True, slots=True)
class RollbackRule:
    metric: str
    min_samples: int = DEFAULT_MIN_SAMPLES
    alpha: float = DEFAULT_ALPHA
    baseline: int | None = None

    @property
    def kind(self) -> MetricKind:
        if self.metric.startswith(SCORE_PREFIX):
            return "score"
        kind: MetricKind = self.metric  # type: ignore[assignment]  # parse_rule admits only these names
        return kind

    @property
    def score_name(self) -> str | None:
        return self.metric[len(SCORE_PREFIX) :] if self.metric.startswith(SCORE_PREFIX) else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric, "min_samples": self.min_samples, "alpha": self.alpha}
        if self.baseline is not None:
            out["baseline"] = self.baseline
        return out


def parse_rule(raw: dict[str, Any]) -> RollbackRule:
    """Validate a rollback rule; ValueError saying what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("a rollback rule is an object with 'metric', 'min_samples' and 'alpha'")
    unknown = set(raw) - {"metric", "min_samples", "alpha", "baseline"}
    if unknown:
        raise ValueError(f"unknown rollback rule field(s): {', '.join(sorted(unknown))}")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not (
        metric in PLAIN_METRICS or (metric.startswith(SCORE_PREFIX) and len(metric) > len(SCORE_PREFIX))
    ):
        raise ValueError(
            f"rollback metric must be 'score:<score name>', 'error_rate', 'cost_per_request' or 'latency_ms', "
            f"got {metric!r}"
        )
    min_samples = raw.get("min_samples", DEFAULT_MIN_SAMPLES)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or not 2 <= min_samples <= 1_000_000:
        raise ValueError(f"min_samples must be a whole number from 2 to 1000000, got {min_samples!r}")
    alpha = raw.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < float(alpha) <= 0.5:
        raise ValueError(f"alpha must be a number in (0, 0.5], got {alpha!r}")
    baseline = raw.get("baseline")
    if baseline is not None and (
        isinstance(baseline, bool) or not isinstance(baseline, int) or not 1 <= baseline <= MAX_VERSION
    ):
        raise ValueError(f"baseline must be a version number, got {baseline!r}")
    return RollbackRule(metric=metric, min_samples=min_samples, alpha=float(alpha), baseline=baseline)


@dataclass(frozen=True, slots=True)
class Split:
    """A canary: the baseline version, the candidate and the candidate's share of traffic in percent."""

    baseline: int
    candidate: int
    weight: float


def canary_split(splits: list[dict[str, Any]], rule: RollbackRule | None) -> Split | None:
    """The canary of a label's splits, or None unless it splits between exactly two versions.

    The baseline is the rule's `baseline` when it is one of the two; otherwise the larger weight (a tie: the
    lower version), as `registry.get_version` resolves a split label."""
    if len(splits) != 2:
        return None
    by_version = {int(s["version"]): float(s["weight"]) for s in splits}
    if len(by_version) != 2:
        return None
    total = sum(by_version.values())
    if rule is not None and rule.baseline in by_version:
        baseline = rule.baseline
    else:
        baseline = sorted(by_version, key=lambda v: (-by_version[v], v))[0]
    (candidate,) = (v for v in by_version if v != baseline)
    return Split(baseline=baseline, candidate=candidate, weight=round(100.0 * by_version[candidate] / total, 6))


def metric_values(
    conn: Connection,
    *,
    project_id: str,
    prompt_name: str,
    versions: tuple[int, int],
    since: float,
    rule: RollbackRule,
) -> dict[int, list[float]]:
    """One value per trace of `prompt_name` at each of `versions` started since `since`:
    score:NAME → the trace's mean numeric score NAME (unscored traces are left out); error_rate → 1 for an
    error trace, 0 otherwise; cost_per_request → its cost in USD; latency_ms → its duration (ok traces only:
    failures are counted by error_rate and are often fast)."""
    scope = (
        traces.c.project_id == project_id,
        traces.c.prompt_name == prompt_name,
        traces.c.prompt_version.in_(versions),
        traces.c.started_at >= since,
    )
    out: dict[int, list[float]] = {v: [] for v in versions}
    name = rule.score_name
    if name is not None:
        per_trace: dict[str, tuple[int, list[float]]] = {}
        query = (
            select(traces.c.id, traces.c.prompt_version, scores.c.value)
            .join(scores, scores.c.trace_id == traces.c.id)
            .where(*scope, scores.c.project_id == project_id, scores.c.name == name, scores.c.value.is_not(None))
        )
        for scored in conn.execute(query):
            per_trace.setdefault(scored.id, (scored.prompt_version, []))[1].append(float(scored.value))
        for version, values in per_trace.values():
            out[version].append(math.fsum(values) / len(values))
        return out
    query = select(
        traces.c.prompt_version, traces.c.status, traces.c.cost_usd, traces.c.started_at, traces.c.ended_at
    ).where(*scope)
    for row in conn.execute(query):
        if rule.metric == "error_rate":
            out[row.prompt_version].append(1.0 if row.status == "error" else 0.0)
        elif rule.metric == "cost_per_request":
            out[row.prompt_version].append(float(row.cost_usd))
        elif row.status == "ok" and row.ended_at is not None:  # latency_ms
            out[row.prompt_version].append((row.ended_at - row.started_at) * 1000.0)
    return out


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """What a check found (and did)."""

    prompt: str
    label: str
    status: Status
    splits: list[dict[str, Any]]
    message: str
    split: Split | None = None
    rule: RollbackRule | None = None
    since: float | None = None
    samples: dict[str, int] | None = None
    comparison: Comparison | None = None
    reason: str | None = None

    @property
    def rolled_back(self) -> bool:
        return self.status == "rolled_back"

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "label": self.label,
            "status": self.status,
            "rolled_back": self.rolled_back,
            "message": self.message,
            "splits": self.splits,
            "baseline": None if self.split is None else self.split.baseline,
            "candidate": None if self.split is None else self.split.candidate,
            "weight": None if self.split is None else self.split.weight,
            "rollback_rule": None if self.rule is None else self.rule.to_dict(),
            "since": self.since,
            "samples": self.samples,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "reason": self.reason,
        }


def evaluate(conn: Connection, project_id: str, prompt_name: str, label: registry.Label) -> CheckOutcome:
    """Compare the label's candidate with its baseline under its rollback rule; changes nothing."""
    common: dict[str, Any] = {"prompt": prompt_name, "label": label.name, "splits": label.splits}
    rule = None
    if label.rollback_rule:
        try:
            rule = parse_rule(label.rollback_rule)
        except ValueError as exc:  # a rule stored around the canary API; nothing is judged by it
            return CheckOutcome(status="invalid_rule", message=f"the rollback rule is invalid: {exc}", **common)
    common["rule"] = rule
    split = canary_split(label.splits, rule)
    if split is None:
        versions = ", ".join(f"v{s['version']}" for s in label.splits)
        return CheckOutcome(status="no_canary", message=f"{label.name} points at {versions} only: no canary", **common)
    common.update(split=split, since=label.updated_at)
    if rule is None:
        message = f"v{split.candidate} gets {split.weight:g}% of {label.name}; no rollback rule is set"
        return CheckOutcome(status="no_rule", message=message, **common)
    values = metric_values(
        conn,
        project_id=project_id,
        prompt_name=prompt_name,
        versions=(split.baseline, split.candidate),
        since=label.updated_at,
        rule=rule,
    )
    base, cand = values[split.baseline], values[split.candidate]
    samples = {"baseline": len(base), "candidate": len(cand)}
    common["samples"] = samples
    if min(len(base), len(cand)) < rule.min_samples:
        message = (
            f"{rule.metric}: {len(base)} baseline and {len(cand)} candidate samples; waiting for "
            f"{rule.min_samples} of each"
        )
        return CheckOutcome(status="insufficient_samples", message=message, **common)
    comparison = compare_metric(rule.kind, base, cand, alpha=rule.alpha)
    who = f"{rule.metric}: candidate v{split.candidate} vs baseline v{split.baseline}: "
    if not comparison.worse:
        return CheckOutcome(status="not_worse", message=who + comparison.explanation, comparison=comparison, **common)
    reason = f"{who}{comparison.explanation}; rolled back to v{split.baseline}"
    return CheckOutcome(
        status="worse", message=who + comparison.explanation, comparison=comparison, reason=reason, **common
    )


def _lock_prompt(conn: Connection, project_id: str, prompt_name: str) -> None:
    """Serialise with every other change to the prompt's labels until the transaction ends: `registry.set_label`
    locks the same prompt row first (PostgreSQL; SQLite's write transaction is exclusive anyway)."""
    conn.execute(
        select(prompts.c.id).where(prompts.c.project_id == project_id, prompts.c.name == prompt_name).with_for_update()
    )


def check_label(
    store: Store, project_id: str, prompt_name: str, label_name: str, *, actor: str = MONITOR_ACTOR
) -> CheckOutcome:
    """Run the label's rollback rule now and roll back when the candidate is significantly worse.

    Raises pilothouse.errors.NotFound when the prompt or the label does not exist."""
    with store.connect() as conn:
        label = registry.get_label(conn, project_id, prompt_name, label_name)
        if label is None:
            raise NotFound(f"prompt {prompt_name!r} has no label {label_name!r}")
        outcome = evaluate(conn, project_id, prompt_name, label)
    if outcome.status != "worse" or outcome.split is None:
        return outcome
    baseline_only = [{"version": outcome.split.baseline, "weight": 100}]
    with store.begin() as conn:
        _lock_prompt(conn, project_id, prompt_name)
        current = registry.get_label(conn, project_id, prompt_name, label_name)
        if current is None or current.splits != label.splits or current.updated_at != label.updated_at:
            message = "the label changed while it was being checked (another replica or a person moved it)"
            return CheckOutcome(
                prompt=prompt_name,
                label=label_name,
                status="changed",
                splits=[] if current is None else current.splits,
                message=message,
                rule=outcome.rule,
            )
        moved = registry.set_label(
            conn,
            project_id=project_id,
            prompt_name=prompt_name,
            label=label_name,
            splits=baseline_only,
            actor=actor,
            role="admin",  # the rollback was authorised when the canary and its rule were set
            reason=outcome.reason,
            action=ROLLBACK_ACTION,
        )
    return CheckOutcome(
        prompt=prompt_name,
        label=label_name,
        status="rolled_back",
        splits=moved.splits,
        message=outcome.reason or outcome.message,
        split=outcome.split,
        rule=outcome.rule,
        since=outcome.since,
        samples=outcome.samples,
        comparison=outcome.comparison,
        reason=outcome.reason,
    )


@dataclass(frozen=True, slots=True)
class WatchedLabel:
    project_id: str
    prompt_name: str
    label: str


def watched_labels(conn: Connection) -> list[WatchedLabel]:
    """Every label, in every project, that splits between two versions and has a rollback rule."""
    query = select(
        prompts.c.project_id,
        prompts.c.name,
        prompt_labels.c.name.label("label"),
        prompt_labels.c.splits,
        prompt_labels.c.rollback_rule,
    ).join(prompts, prompts.c.id == prompt_labels.c.prompt_id)
    return [
        WatchedLabel(row.project_id, row.name, row.label)
        for row in conn.execute(query)
        if row.rollback_rule and isinstance(row.splits, list) and len(row.splits) == 2
    ]


def check_all(store: Store, on_rollback: LabelChanged | None = None) -> list[CheckOutcome]:
    """One pass of the monitor over every watched label; a failing label is logged and skipped.
    `on_rollback(project_id, prompt_name)` runs after each committed rollback (to drop cached labels)."""
    with store.connect() as conn:
        watched = watched_labels(conn)
    outcomes: list[CheckOutcome] = []
    for item in watched:
        try:
            outcome = check_label(store, item.project_id, item.prompt_name, item.label)
        except Exception:
            log.exception("canary check of %s@%s failed", item.prompt_name, item.label)
            continue
        outcomes.append(outcome)
        if outcome.rolled_back and on_rollback is not None:
            on_rollback(item.project_id, item.prompt_name)
    return outcomes


class CanaryMonitor:
    """Runs `check_all` every `interval_s` seconds in a worker thread, so the event loop never blocks on it.
    An interval of 0 disables it (checks then run only on demand)."""

    def __init__(self, store: Store, interval_s: float, on_rollback: LabelChanged | None = None) -> None:
        self.store = store
        self.interval_s = interval_s
        self.on_rollback = on_rollback
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="pilothouse-canary-monitor")

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
                return
            except TimeoutError:
                pass
            try:
                outcomes = await asyncio.to_thread(check_all, self.store, self.on_rollback)
            except Exception:
                log.exception("the canary monitor pass failed; retrying in %ss", self.interval_s)
                continue
            for outcome in outcomes:
                if outcome.rolled_back:
                    log.warning("rolled back %s@%s: %s", outcome.prompt, outcome.label, outcome.reason)

    async def stop(self) -> None:
        """Stop after the pass in progress (if any) ends."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None


def start_canary_monitor(state: AppState) -> CanaryMonitor:
    """Start the server's background canary checks (every `settings.canary_check_interval_s`); stop it with
    `await monitor.stop()` before the store closes."""
    resolver = state.gateway.prompts
    monitor = CanaryMonitor(
        state.store,
        state.settings.canary_check_interval_s,
        on_rollback=None if resolver is None else resolver.invalidate,
    )
    monitor.start()
    return monitor
