"""The seam between the flow engine and where runs are kept: `CheckpointStore`.

The engine (flows/engine.py) executes a run one step at a time and commits each step's checkpoint (its input,
output, the decision taken and the whole state after it) before the next step starts. The SQL store
(store/flows.py, SQLite and PostgreSQL) and the in-memory store used by engine unit tests implement this
protocol and pass one conformance suite (tests/flows/test_store_conformance.py).

Durability rules every implementation keeps:
- Workers hold a run by lease. `claim` takes a run that is `queued`, or `running` with an expired lease
  (its worker died), and sets the lease; on PostgreSQL it uses `SELECT ... FOR UPDATE SKIP LOCKED` so two
  workers never take the same run.
- `commit_step` is one transaction and is fenced: it raises `LeaseLost` unless `worker` still holds an
  unexpired lease on the run, and `SeqConflict` unless `checkpoint.seq` is the run's last seq + 1. So a
  worker that lost its lease can never write over the one that took the run over, and a step is recorded at
  most once.
- Side effects are made idempotent through `effect`/`record_effect`: a tool call has a key derived from the
  run, the step and the call's place in it; before executing, the engine looks the key up and reuses a
  recorded result. The key is also handed to the tool so the tool itself can deduplicate a call that ran but
  whose result was not yet recorded when the worker died.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

RunStatus = Literal["queued", "running", "waiting_for_approval", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

StepStatus = Literal["succeeded", "failed", "waiting", "skipped", "compensated", "approved", "rejected"]


class LeaseLost(RuntimeError):
    """The worker no longer holds the run's lease (it expired and another worker may have taken the run)."""


class SeqConflict(RuntimeError):
    """A checkpoint whose seq is not the run's next one: the step was already recorded."""


@dataclass(frozen=True, slots=True)
class NewRun:
    project_id: str
    flow: str  # the flow's reference, e.g. "examples/flows/approval_demo.py:flow" or "package.module:flow"
    flow_name: str
    flow_hash: str  # digest of the graph's structure, so a resume on a changed graph is detected
    input: dict[str, Any]
    state: dict[str, Any]
    next_steps: tuple[str, ...]
    budget: dict[str, Any] = field(default_factory=dict)  # cost_usd, tokens, model_calls, steps, wall_s
    trace_id: str | None = None
    parent_run_id: str | None = None
    created_by: str | None = None  # key id
    replay_of: str | None = None  # a replay's original run


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    project_id: str
    flow: str
    flow_name: str
    flow_hash: str
    status: RunStatus
    input: dict[str, Any]
    state: dict[str, Any]
    next_steps: tuple[str, ...]  # the frontier: steps to run next (empty when finished)
    seq: int  # the last committed checkpoint's seq (0: none yet)
    budget: dict[str, Any]
    spent: dict[str, Any]  # cost_usd, tokens, model_calls, steps
    error: dict[str, Any] | None  # terminal error: step, cause, message, state
    trace_id: str | None
    parent_run_id: str | None
    created_by: str | None
    replay_of: str | None
    cancel_requested: bool
    lease_owner: str | None
    lease_expires_at: float | None  # epoch seconds
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One step's record, committed before the next step starts."""

    run_id: str
    seq: int
    step: str
    attempt: int
    status: StepStatus
    input: Any
    output: Any
    state_after: dict[str, Any]
    decision: dict[str, Any] | None = None  # branch taken and why: {"condition": ..., "value": ..., "to": ...}
    error: dict[str, Any] | None = None
    started_at: float = 0.0
    ended_at: float = 0.0
    cost_usd: float = 0.0
    tokens: int = 0
    span_id: str | None = None
    item: int | None = None  # the item's index for a step inside a map


@dataclass(frozen=True, slots=True)
class Approval:
    run_id: str
    step: str
    decision: Literal["approved", "rejected"]
    actor: str
    comment: str | None = None
    state_edits: Mapping[str, Any] | None = None


class CheckpointStore(Protocol):
    """Where runs, checkpoints, effect results and approvals are kept (see the module docstring)."""

    def create_run(self, run: NewRun) -> RunRecord: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(
        self,
        project_id: str,
        *,
        status: str | None = None,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,  # a run id: page backwards from it (newest first)
    ) -> list[RunRecord]: ...

    def claim(
        self, worker: str, *, lease_s: float, run_id: str | None = None, project_id: str | None = None
    ) -> RunRecord | None:
        """Take one runnable run (that one, when `run_id` is given) and lease it to `worker`; None if none."""
        ...

    def renew(self, run_id: str, worker: str, *, lease_s: float) -> bool:
        """Extend the lease; False when the worker no longer holds it."""
        ...

    def release(self, run_id: str, worker: str) -> None:
        """Give the lease up (the run stays as it is)."""
        ...

    def commit_step(
        self,
        run_id: str,
        worker: str,
        checkpoints: Sequence[Checkpoint],
        *,
        state: dict[str, Any],
        next_steps: tuple[str, ...],
        status: RunStatus,
        spent: dict[str, Any],
        error: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Record checkpoints (consecutive seqs after the run's last) and the run's new state, status and spend,
        in one transaction; fenced by lease and seq (raises `LeaseLost`, `SeqConflict`).

        `checkpoints` may be empty (a status change only: cancelled, failed without a step). A `status` other
        than `running` also clears the lease (the worker is done with the run); `error` replaces the run's."""
        ...

    def checkpoints(self, run_id: str, *, after_seq: int = 0) -> list[Checkpoint]: ...

    def effect(self, run_id: str, key: str) -> Any | None:
        """The recorded result of the side effect under `key` (None: not recorded)."""
        ...

    def record_effect(self, run_id: str, key: str, result: Any) -> None:
        """Record a side effect's result once; recording the same key again keeps the first result."""
        ...

    def decide(self, approval: Approval) -> RunRecord:
        """Record a person's decision on a run waiting for approval at `approval.step` and make the run runnable
        again (`queued`); raises ValueError when the run is not waiting at that step.

        Waiting at a step means status `waiting_for_approval` with that step first in `next_steps`. The
        decision is recorded as the run's next checkpoint (so the engine finds it as the last one when it
        resumes): step `approval.step`, seq last + 1, attempt 0, status `approval.decision`, input None, output
        `{"actor", "comment", "state_edits"}`, decision `{"approval": decision, "actor", "comment"}`,
        state_after the run's state with `state_edits` applied (the run's state too); `next_steps` unchanged,
        the lease cleared. The SQL store also writes it to the audit log."""
        ...

    def request_cancel(self, run_id: str) -> RunRecord:
        """Ask a run to stop: a queued or waiting run is cancelled at once, a running one at its next step.

        Sets `cancel_requested`; a queued or waiting run also gets status `cancelled`, empty `next_steps` and no
        lease; a finished run is returned unchanged. Raises ValueError for an unknown run."""
        ...

    def prune(self, *, keep_last: int | None = None, older_than_s: float | None = None) -> int:
        """Retention for finished runs: keep each finished run's last `keep_last` checkpoints and/or delete
        finished runs (with their checkpoints and effects) older than `older_than_s`. Returns rows deleted.

        A run's age is counted from its `updated_at` (when it finished); `keep_last` keeps the highest seqs."""
        ...
