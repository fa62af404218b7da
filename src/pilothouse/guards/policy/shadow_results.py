"""What shadow-mode policies would have done: their hits, read back from the `guard` spans that record them.

A policy in shadow mode (or a rule whose action is `shadow`) is evaluated on every call and never acted on;
each hit is recorded on the call's `guard` span as a rule entry with decision `shadow` and `would` (the action
the rule would have taken: block, redact, flag) in `pilothouse.guard.rules` (guards/policy/spans.py). This
module counts those entries per policy, version and rule, and keeps a few example traces of each, so a person
can decide whether to enforce the policy.

The read is bounded so it stays fast on a large store: the project's newest `max_traces` traces started since
`since` (an index range on traces), then the guard spans of just those traces (by the spans' trace index).
`traces_scanned` and `capped` say how much was looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from pilothouse.store.tables import spans, traces

MAX_TRACES = 2000
"""Traces looked at per report, newest first."""
EXAMPLES = 5
"""Example traces kept per rule."""


@dataclass(slots=True)
class ShadowRule:
    """One rule's shadow hits."""

    policy: str
    policy_version: int | None
    rule: int | None
    scanner: str
    would: str  # the action it would have taken; "shadow" for a rule whose own action is shadow
    direction: str
    hits: int = 0
    kinds: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)  # trace ids, newest first
    last_seen: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_version": self.policy_version,
            "rule": self.rule,
            "scanner": self.scanner,
            "would": self.would,
            "direction": self.direction,
            "hits": self.hits,
            "kinds": sorted(self.kinds),
            "example_traces": self.examples,
            "last_seen": self.last_seen,
        }


@dataclass(slots=True)
class ShadowReport:
    since: float
    traces_scanned: int
    capped: bool  # True: more traces started since `since` than were looked at
    guarded_calls: int  # guard spans looked at (one per direction of a guarded call)
    rules: list[ShadowRule]

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "traces_scanned": self.traces_scanned,
            "capped": self.capped,
            "guarded_calls": self.guarded_calls,
            "hits": sum(r.hits for r in self.rules),
            "rules": [r.to_dict() for r in self.rules],
        }

    def hits_by_policy(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rules:
            out[r.policy] = out.get(r.policy, 0) + r.hits
        return out


def shadow_results(
    conn: Connection,
    project_id: str,
    *,
    since: float,
    policy: str | None = None,
    max_traces: int = MAX_TRACES,
    examples: int = EXAMPLES,
) -> ShadowReport:
    """The shadow hits in the project's traces started at or after `since` (newest `max_traces` of them),
    grouped by policy, version, rule and would-be action; most hits first. `policy`: only that policy's."""
    recent = (
        select(traces.c.id, traces.c.started_at)
        .where(traces.c.project_id == project_id, traces.c.started_at >= since)
        .order_by(traces.c.started_at.desc())
        .limit(max_traces)
    ).subquery()
    scanned = conn.execute(select(recent.c.id)).scalars().all()
    rows = conn.execute(
        select(spans.c.trace_id, spans.c.attributes, recent.c.started_at)
        .join(recent, spans.c.trace_id == recent.c.id)
        .where(spans.c.kind == "guard")
        .order_by(recent.c.started_at.desc())
    ).all()
    found: dict[tuple[Any, ...], ShadowRule] = {}
    for trace_id, attrs, started_at in rows:
        if not isinstance(attrs, dict):
            continue
        direction = str(attrs.get("pilothouse.guard.direction", ""))
        for entry in attrs.get("pilothouse.guard.rules") or ():
            if not isinstance(entry, dict) or entry.get("decision") != "shadow":
                continue
            name = str(entry.get("policy", ""))
            if policy is not None and name != policy:
                continue
            would = str(entry.get("would") or "shadow")
            key = (name, entry.get("policy_version"), entry.get("rule"), direction, would)
            rule = found.get(key)
            if rule is None:
                rule = found[key] = ShadowRule(
                    policy=name,
                    policy_version=_int(entry.get("policy_version")),
                    rule=_int(entry.get("rule")),
                    scanner=str(entry.get("scanner", "")),
                    would=would,
                    direction=direction,
                )
            rule.hits += 1
            rule.kinds.update(str(k) for k in entry.get("kinds") or ())
            rule.last_seen = max(rule.last_seen, float(started_at))
            if len(rule.examples) < examples and trace_id not in rule.examples:
                rule.examples.append(str(trace_id))
    ordered = sorted(found.values(), key=lambda r: (-r.hits, r.policy, r.policy_version or 0, r.rule or 0))
    return ShadowReport(
        since=since,
        traces_scanned=len(scanned),
        capped=len(scanned) >= max_traces,
        guarded_calls=len(rows),
        rules=ordered,
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
