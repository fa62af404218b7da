"""Recording guard decisions as `guard` spans: one per rule that ran, with no content.

Attributes: `pilothouse.guard.policy` / `.policy_version` / `.direction` / `.rule` (its index) / `.scanner` /
`.score` / `.threshold` / `.action` (the rule's) / `.decision` (`allow`, `block`, `redact`, `flag`, `shadow`) /
`.would` (in a shadow-mode policy: the action a hit would have taken) / `.kinds` (finding kinds, such as
`CREDIT_CARD`) / `.texts` (how many texts it scanned) and `.latency_ms` (scanner time). A block makes the span
an error span, so the trace shows why the call failed.
"""

from __future__ import annotations

import time

from pilothouse.guards.policy.engine import GuardRun, RuleRecord
from pilothouse.tracing.model import SpanRecord, TraceRecord


def record_span(trace: TraceRecord, record: RuleRecord, *, parent_id: str | None = None) -> SpanRecord:
    rule = record.rule
    span = trace.span("guard", f"guard {rule.direction} {rule.rule.scanner}", parent_id=parent_id)
    span.started_at = time.time() - record.latency_ms / 1000.0
    attrs = span.attributes
    attrs.update(
        {
            "pilothouse.guard.policy": rule.policy,
            "pilothouse.guard.policy_version": rule.version,
            "pilothouse.guard.direction": rule.direction,
            "pilothouse.guard.rule": rule.index,
            "pilothouse.guard.scanner": rule.rule.scanner,
            "pilothouse.guard.score": round(record.score, 4),
            "pilothouse.guard.threshold": rule.rule.threshold,
            "pilothouse.guard.action": rule.rule.action,
            "pilothouse.guard.decision": record.decision,
            "pilothouse.guard.kinds": sorted(record.kinds),
            "pilothouse.guard.texts": record.texts,
            "pilothouse.guard.latency_ms": round(record.latency_ms, 3),
        }
    )
    if record.would is not None:
        attrs["pilothouse.guard.would"] = record.would
    if record.decision == "block":
        span.finish(status="error", error=f"blocked by {rule.label}")
    else:
        span.finish()
    span.latency_ms = round(record.latency_ms, 3)
    return span


def record_run(trace: TraceRecord, run: GuardRun) -> list[SpanRecord]:
    """A guard span for every rule of `run`."""
    return [record_span(trace, record) for record in run.records.values()]
