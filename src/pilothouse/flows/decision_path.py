"""The path a run took, for `pilothouse flow show RUN` and the explain page: each step in order with its status,
attempts, the branch taken and why (the condition's value), approvals (who, with what comment), map items
folded into one line, and the terminal error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from pilothouse.flows.protocol import Checkpoint, RunRecord


@dataclass(frozen=True, slots=True)
class PathEntry:
    seq: int  # the first checkpoint of the entry
    step: str
    status: str
    attempt: int
    items: int | None  # a map's finished items (folded), None otherwise
    decision: dict[str, Any] | None
    error: dict[str, Any] | None
    started_at: float
    ended_at: float
    why: str  # one line for people: where it went and why

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def path(checkpoints: Sequence[Checkpoint]) -> list[PathEntry]:
    """Checkpoints as path entries; consecutive item checkpoints of one map fold into one entry."""
    entries: list[PathEntry] = []
    for cp in checkpoints:
        last = entries[-1] if entries else None
        if cp.item is not None and last is not None and last.step == cp.step and last.items is not None:
            error = last.error or cp.error
            items = last.items + 1
            why = f"{items} items" + (f"; {error.get('cause')}: {error.get('message')}" if error else "")
            entries[-1] = replace(
                last,
                status="failed" if "failed" in (last.status, cp.status) else last.status,
                attempt=max(last.attempt, cp.attempt),
                items=items,
                error=error,
                ended_at=cp.ended_at,
                why=why,
            )
            continue
        entries.append(
            PathEntry(
                seq=cp.seq,
                step=cp.step,
                status=cp.status,
                attempt=cp.attempt,
                items=1 if cp.item is not None else None,
                decision=cp.decision,
                error=cp.error,
                started_at=cp.started_at,
                ended_at=cp.ended_at,
                why=_why(cp, 1 if cp.item is not None else None),
            )
        )
    return entries


def _why(cp: Checkpoint, items: int | None) -> str:
    decision = cp.decision or {}
    parts: list[str] = []
    if items is not None:
        parts.append(f"{items} items")
    if "to" in decision:
        parts.append(f"-> {decision['to']} ({decision.get('condition', 'condition')} = {decision.get('value')!r})")
    if cp.status in ("approved", "rejected"):
        comment = f": {decision.get('comment')}" if decision.get("comment") else ""
        parts.append(f"{cp.status} by {decision.get('actor')}{comment}")
    if cp.status == "waiting" and isinstance(cp.output, dict) and cp.output.get("message"):
        parts.append(f"waiting for approval: {cp.output['message']}")
    if isinstance(cp.input, dict) and "for_step" in cp.input:
        parts.append(f"compensates {cp.input['for_step']}")
    if cp.attempt > 1:
        parts.append(f"{cp.attempt} attempts")
    if cp.error:
        parts.append(f"{cp.error.get('cause')}: {cp.error.get('message')}")
    return "; ".join(parts)


def render(run: RunRecord, checkpoints: Sequence[Checkpoint]) -> str:
    """The path as text: a header line, one line per entry, and the error when the run failed."""
    spent = run.spent or {}
    lines = [
        f"run {run.id}  flow {run.flow_name}  {run.status}  "
        f"(steps {spent.get('steps', 0)}, model calls {spent.get('model_calls', 0)}, "
        f"tokens {spent.get('tokens', 0)}, cost ${spent.get('cost_usd', '0')})"
    ]
    if run.replay_of:
        lines.append(f"replay of {run.replay_of}")
    entries = path(checkpoints)
    if entries and entries[0].seq > 1:
        lines.append(f"  (checkpoints before {entries[0].seq} were pruned)")
    width = max((len(e.step) for e in entries), default=4)
    for e in entries:
        lines.append(f"  {e.seq:>4}  {e.step:<{width}}  {e.status:<11}  {e.why}".rstrip())
    if run.status == "waiting_for_approval" and run.next_steps:
        lines.append(f"waiting for approval at step {run.next_steps[0]}")
    elif run.status in ("queued", "running") and run.next_steps:
        lines.append(f"next: {', '.join(run.next_steps)}")
    if run.error:
        err = run.error
        lines.append(f"error at step {err.get('step')}: {err.get('cause')}: {err.get('message')}")
        for problem in err.get("compensation_errors") or []:
            lines.append(f"  compensation failed: {problem}")
    return "\n".join(lines)


def as_json(run: RunRecord, checkpoints: Sequence[Checkpoint]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in path(checkpoints)]
