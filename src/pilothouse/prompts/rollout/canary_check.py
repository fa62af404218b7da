"""Canary checks: judge a label's candidate version against its baseline, and act on the decision.

A label with two splits is a canary. Its `rollback_rule` (`canary_rule.RollbackRule`) names a metric; the
check takes the traces of that prompt at the two versions since the split was set (`label.updated_at`), one
sample per trace (`collect_samples`: its value, arm, start time and end user), and `canary_rule.decide`
rolls back, recommends promotion or continues, with an always-valid sequential test, so checking every 30 s
does not inflate false rollbacks. Calls that a caller mistake ended (a 4xx such as a 422 for a missing
variable, `outcomes.is_caller_error`) are left out of every metric and counted separately.

What is recorded (docs/prompt-canary.md, "What the audit log holds"): a rollback moves the label
(`labels.set_label`, audited as `prompt.canary.rollback` with the whole decision in `details.decision`); a
change of the canary's state, from collecting samples to watching and on to "may be promoted", is audited
once as `prompt.canary.decision`. A "continue" look is not an audit event: the state is recomputed from the
traces by every look (`canary status`), and only its changes are written.

The server runs every canary's check in the background (`canary_monitor.CanaryMonitor`); with several replicas
each may run it, so the rollback re-reads the label under a row lock and acts only if it is still the split it
evaluated.
Traces record the prompt version, not the label, so calls to the same versions through another label or an
explicit `NAME@VERSION` in that window count too.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from pilothouse.audit.chain import append_event
from pilothouse.errors import NotFound
from pilothouse.prompts.registry.labels import set_label
from pilothouse.prompts.registry.lookup import Label, get_label
from pilothouse.prompts.rollout.canary_rule import (
    PLAIN_METRICS,
    SCORE_PREFIX,
    Decision,
    RollbackRule,
    Samples,
    decide,
    parse_rule,
)
from pilothouse.prompts.rollout.outcomes import caller_error_traces
from pilothouse.store.canaries import target_events
from pilothouse.store.engine import Store
from pilothouse.store.prompt_traces import TraceWindow, numeric_scores, prompt_traces
from pilothouse.store.prompts import get_prompt

__all__ = [
    "PLAIN_METRICS",
    "SCORE_PREFIX",
    "CheckOutcome",
    "RollbackRule",
    "Split",
    "canary_split",
    "canary_status",
    "check_label",
    "collect_samples",
    "evaluate",
    "parse_rule",
]

ROLLBACK_ACTION = "prompt.canary.rollback"
DECISION_ACTION = "prompt.canary.decision"
START_ACTION = "prompt.canary.start"
MONITOR_ACTOR = "system:canary-monitor"
_STATE_RANK = {"collecting": 0, "watching": 1, "promote": 2}

Status = Literal[
    "no_canary",
    "no_rule",
    "invalid_rule",
    "insufficient_samples",
    "continue",
    "promote",
    "worse",
    "rolled_back",
    "changed",
]


@dataclass(frozen=True, slots=True)
class Split:
    """A canary: the baseline version, the candidate and the candidate's share of traffic in percent."""

    baseline: int
    candidate: int
    weight: float


def canary_split(splits: list[dict[str, Any]], rule: RollbackRule | None) -> Split | None:
    """The canary of a label's splits, or None unless it splits between exactly two versions.

    The baseline is the rule's `baseline` when it is one of the two; otherwise the larger weight (a tie: the
    lower version), as `lookup.get_version` resolves a split label."""
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


def collect_samples(
    conn: Connection,
    *,
    project_id: str,
    prompt_name: str,
    split: Split,
    since: float,
    rule: RollbackRule,
) -> Samples:
    """One sample per trace of `prompt_name` at the split's versions started since `since`:
    score:NAME → the trace's mean numeric score NAME (unscored traces are left out); error_rate → 1 for an
    error trace, 0 otherwise; cost_per_request → its cost in USD; latency_ms → its duration (ok traces only:
    failures are counted by error_rate and are often fast). Traces a caller mistake ended are left out and
    counted per arm in `caller_errors`. A sample's cluster is its end user (`user`), else the trace itself."""
    window = TraceWindow(project_id, prompt_name, since, versions=(split.baseline, split.candidate))
    caller = caller_error_traces(conn, window)
    arm_of = {split.baseline: "baseline", split.candidate: "candidate"}
    caller_errors = {"baseline": 0, "candidate": 0}
    rows: list[tuple[float, bool, float, str]] = []
    name = rule.score_name
    per_trace: dict[str, list[float]] = {}
    if name is not None:
        for score in numeric_scores(conn, window, name):
            per_trace.setdefault(score.trace_id, []).append(score.value)
    for row in prompt_traces(conn, window):
        if row.id in caller:
            caller_errors[arm_of[row.version]] += 1
            continue
        value: float | None = None
        if name is not None:
            values = per_trace.get(row.id)
            value = None if not values else math.fsum(values) / len(values)
        elif rule.metric == "error_rate":
            value = 1.0 if row.status == "error" else 0.0
        elif rule.metric == "cost_per_request":
            value = float(row.cost_usd)
        elif row.status == "ok" and row.ended_at is not None:  # latency_ms
            value = (row.ended_at - row.started_at) * 1000.0
        if value is not None:
            cluster = f"user:{row.user_id}" if row.user_id else f"trace:{row.id}"
            rows.append((value, row.version == split.candidate, float(row.started_at), cluster))
    return Samples.build(rows, caller_errors)


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
    decision: Decision | None = None
    reason: str | None = None

    @property
    def rolled_back(self) -> bool:
        return self.status == "rolled_back"

    def decision_details(self) -> dict[str, Any] | None:
        """The decision with the canary it was about: what the audit log records."""
        if self.decision is None or self.split is None:
            return None
        return {
            "baseline_version": self.split.baseline,
            "candidate_version": self.split.candidate,
            "weight": self.split.weight,
            "since": self.since,
            "rule": self.decision.rule.effective(),
            **self.decision.to_dict(),
        }

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
            "decision": self.decision_details(),
            "reason": self.reason,
        }


_STATUS_OF = {"collecting": "insufficient_samples", "watching": "continue", "promote": "promote", "rollback": "worse"}


def evaluate(conn: Connection, project_id: str, prompt_name: str, label: Label) -> CheckOutcome:
    """Decide on the label's canary under its rollback rule; changes nothing."""
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
    samples = collect_samples(
        conn, project_id=project_id, prompt_name=prompt_name, split=split, since=label.updated_at, rule=rule
    )
    now = time.time()
    window = {"since": label.updated_at, "until": now}
    if samples.times.size:
        window.update(first_sample=float(samples.times.min()), last_sample=float(samples.times.max()))
    decision = decide(rule, samples, window=window)
    who = f"{rule.metric}: candidate v{split.candidate} vs baseline v{split.baseline}: "
    reason = None
    if decision.decision == "rollback":
        reason = f"{who}{decision.why}; rolled back to v{split.baseline}"
    return CheckOutcome(
        status=_STATUS_OF[decision.state],  # type: ignore[arg-type]  # the values are Status literals
        message=who + decision.why,
        samples=decision.samples,
        decision=decision,
        reason=reason,
        **common,
    )


def _lock_prompt(conn: Connection, project_id: str, prompt_name: str) -> None:
    """Serialise with every other change to the prompt's labels until the transaction ends: `labels.set_label`
    locks the same prompt row first (PostgreSQL; SQLite's write transaction is exclusive anyway)."""
    get_prompt(conn, project_id, prompt_name, for_update=True)


def _target(prompt_name: str, label: str) -> str:
    return f"prompt:{prompt_name}@{label}"


def canary_events(conn: Connection, project_id: str, prompt_name: str, label: Label) -> list[dict[str, Any]]:
    """The audit events of the label's current canary (since its split was set), oldest first."""
    return target_events(
        conn,
        project_id,
        _target(prompt_name, label.name),
        actions=(DECISION_ACTION, ROLLBACK_ACTION),
        since=label.updated_at,
        start_action=START_ACTION,
        start_since=label.updated_at - 1.0,  # the start event is written just before the rule is attached
    )


class _RecordedStates:
    """The highest state each canary has recorded in the audit log, remembered so that a look whose state did
    not change costs no query. Keyed by the split's identity (label and when it was set)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._ranks: dict[tuple[str, str, str, float], int] = {}
        self._limit = limit

    def get(self, key: tuple[str, str, str, float]) -> int | None:
        with self._lock:
            return self._ranks.get(key)

    def put(self, key: tuple[str, str, str, float], rank: int) -> None:
        with self._lock:
            if len(self._ranks) >= self._limit:
                self._ranks.clear()
            self._ranks[key] = max(rank, self._ranks.get(key, -1))


_recorded = _RecordedStates()


def _recorded_rank(conn: Connection, project_id: str, prompt_name: str, label: Label) -> int:
    ranks = [
        _STATE_RANK.get(str((e["details"] or {}).get("state")), 0)
        for e in canary_events(conn, project_id, prompt_name, label)
        if e["action"] == DECISION_ACTION
    ]
    return max(ranks, default=0)


def _record_state(store: Store, project_id: str, label: Label, outcome: CheckOutcome, actor: str) -> bool:
    """Audit the canary's move to a higher state (watching, then may-be-promoted) once; True when written.
    Under the prompt's row lock, so replicas checking at once write it once."""
    if outcome.decision is None:
        return False
    rank = _STATE_RANK.get(outcome.decision.state, 0)
    key = (project_id, outcome.prompt, label.name, label.updated_at)
    known = _recorded.get(key)
    if rank == 0 or (known is not None and known >= rank):
        return False
    with store.begin() as conn:
        _lock_prompt(conn, project_id, outcome.prompt)
        current = get_label(conn, project_id, outcome.prompt, label.name)
        if current is None or current.splits != label.splits or current.updated_at != label.updated_at:
            return False
        recorded = _recorded_rank(conn, project_id, outcome.prompt, label)
        if recorded < rank:
            append_event(
                conn,
                actor=actor,
                action=DECISION_ACTION,
                target=_target(outcome.prompt, label.name),
                project_id=project_id,
                details={"prompt": outcome.prompt, "label": label.name, "decision": outcome.decision_details()},
            )
    _recorded.put(key, max(rank, recorded))
    return recorded < rank


def check_label(
    store: Store, project_id: str, prompt_name: str, label_name: str, *, actor: str = MONITOR_ACTOR
) -> CheckOutcome:
    """Decide on the label's canary now: roll back when the candidate is worse by more than the rule's minimum
    effect (sequentially significant), audit a change of state, otherwise change nothing.

    Raises pilothouse.errors.NotFound when the prompt or the label does not exist."""
    with store.connect() as conn:
        label = get_label(conn, project_id, prompt_name, label_name)
        if label is None:
            raise NotFound(f"prompt {prompt_name!r} has no label {label_name!r}")
        outcome = evaluate(conn, project_id, prompt_name, label)
    if outcome.status != "worse" or outcome.split is None:
        _record_state(store, project_id, label, outcome, actor)
        return outcome
    baseline_only = [{"version": outcome.split.baseline, "weight": 100}]
    with store.begin() as conn:
        _lock_prompt(conn, project_id, prompt_name)
        current = get_label(conn, project_id, prompt_name, label_name)
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
        moved = set_label(
            conn,
            project_id=project_id,
            prompt_name=prompt_name,
            label=label_name,
            splits=baseline_only,
            actor=actor,
            role="admin",  # the rollback was authorised when the canary and its rule were set
            reason=outcome.reason,
            action=ROLLBACK_ACTION,
            details={"decision": outcome.decision_details()},
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
        decision=outcome.decision,
        reason=outcome.reason,
    )


def canary_status(conn: Connection, project_id: str, prompt_name: str, label_name: str) -> dict[str, Any]:
    """The canary's state for `canary status`: the live decision (recomputed from the traces now) and the
    audit events of this canary so far. Raises NotFound for an unknown prompt or label."""
    label = get_label(conn, project_id, prompt_name, label_name)
    if label is None:
        raise NotFound(f"prompt {prompt_name!r} has no label {label_name!r}")
    outcome = evaluate(conn, project_id, prompt_name, label)
    events = canary_events(conn, project_id, prompt_name, label) if outcome.split is not None else []
    return {**outcome.to_dict(), "checked_at": time.time(), "events": events}
