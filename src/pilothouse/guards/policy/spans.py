"""Recording guard decisions as `guard` spans: one per direction of a call (`guard input`, `guard output`), with
every rule's decision in it and no content.

A call with both example policies runs five rules; one span per direction instead of one per rule keeps the
trace (and the trace writer's work) small while every decision stays on it:

- `pilothouse.guard.rules`: one entry per rule that ran, in order: `policy`, `policy_version`, `rule` (its
  index), `scanner`, `score`, `threshold`, `action` (the rule's), `decision` (`allow`, `block`, `redact`,
  `flag`, `shadow`), `would` (in a shadow-mode policy: the action a hit would have taken), `kinds` (finding
  kinds, such as `CREDIT_CARD`), `texts` (how many texts it scanned) and `latency_ms` (scanner time);
- the deciding rule's fields at the top level, as `pilothouse.guard.policy` / `.policy_version` / `.rule` /
  `.scanner` / `.score` / `.threshold` / `.action` / `.decision` / `.would`: the rule whose decision weighs
  most (block, then redact, flag, shadow, allow; the first of equals), or, when every rule allowed, the one
  that scored highest. So a reader of one decision (the explain page, the rollups' guard block count, the
  block rate monitor) finds it where it always was;
- `pilothouse.guard.direction`, `pilothouse.guard.kinds` (every rule's, together), `pilothouse.guard.texts`
  and `pilothouse.guard.latency_ms` (all rules' scanner time).

A block makes the span an error span, so the trace shows why the call failed.
"""

from __future__ import annotations

import time
from typing import Any

from pilothouse.guards.policy.engine import DECISION_RANK, GuardRun, RuleRecord
from pilothouse.tracing.model import SpanRecord, TraceRecord


def rule_entry(record: RuleRecord) -> dict[str, Any]:
    """One rule's decision, as `pilothouse.guard.rules` holds it."""
    rule = record.rule
    spec = rule.rule
    entry: dict[str, Any] = {
        "policy": rule.policy,
        "policy_version": rule.version,
        "rule": rule.index,
        "scanner": spec.scanner,
        "score": round(record.score, 4) if record.score else record.score,  # round() is slow; most scores are 0
        "threshold": spec.threshold,
        "action": spec.action,
        "decision": record.decision,
        "kinds": sorted(record.kinds) if record.kinds else [],
        "texts": record.texts,
        "latency_ms": round(record.latency_ms, 3),
    }
    if record.decision == "shadow":
        would = record.would
        if would is not None:
            entry["would"] = would
    return entry


def deciding(records: list[RuleRecord]) -> RuleRecord:
    """The record whose decision weighs most (the first of equals); among allows, the highest score."""
    best, best_rank, best_score = records[0], -1, 0.0
    for record in records:
        rank = DECISION_RANK[record.decision]
        score = record.score if record.decision == "allow" else 0.0
        if rank > best_rank or (rank == best_rank and score > best_score):
            best, best_rank, best_score = record, rank, score
    return best


def record_run(trace: TraceRecord, run: GuardRun, *, parent_id: str | None = None) -> list[SpanRecord]:
    """The `guard` span of `run` (one direction of a call); none when no rule ran."""
    records = list(run.records.values())
    if not records:
        return []
    top = run.blocked if run.blocked is not None else deciding(records)
    rule = top.rule
    latency_ms = 0.0
    texts = 0
    kinds: set[str] = set()
    entries = []
    for record in records:  # one pass: the sums and every rule's entry
        latency_ms += record.latency_ms
        if record.texts > texts:
            texts = record.texts
        if record.kinds:
            kinds |= record.kinds
        entries.append(rule_entry(record))
    span = trace.span("guard", f"guard {rule.direction}", parent_id=parent_id)
    span.started_at = time.time() - latency_ms / 1000.0
    spec = rule.rule
    span.attributes = {
        "pilothouse.guard.policy": rule.policy,
        "pilothouse.guard.policy_version": rule.version,
        "pilothouse.guard.direction": rule.direction,
        "pilothouse.guard.rule": rule.index,
        "pilothouse.guard.scanner": spec.scanner,
        "pilothouse.guard.score": round(top.score, 4) if top.score else top.score,
        "pilothouse.guard.threshold": spec.threshold,
        "pilothouse.guard.action": spec.action,
        "pilothouse.guard.decision": top.decision,
        "pilothouse.guard.kinds": sorted(kinds) if kinds else [],
        "pilothouse.guard.texts": texts,
        "pilothouse.guard.latency_ms": round(latency_ms, 3),
        "pilothouse.guard.rules": entries,
    }
    would = top.would if top.decision == "shadow" else None
    if would is not None:
        span.attributes["pilothouse.guard.would"] = would
    if top.decision == "block":
        span.finish(status="error", error=f"blocked by {rule.label}")
    else:
        span.finish()
    span.latency_ms = round(latency_ms, 3)
    return [span]
