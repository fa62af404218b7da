"""What the faces do with runs: start, get, list, show, resume, approve, reject, cancel, prune, switch a flow
off. The API (server/api/flows.py) calls this layer, and the CLI and SDK call the API, so every face behaves
the same. Errors are `pilothouse.errors` API errors with an actionable message.

Execution is not here: a start or a resume makes the run runnable and calls `wake`, and a worker
(flows/worker.py) claims it from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Literal

from pydantic import ValidationError

from pilothouse.errors import Conflict, InvalidRequest, NotFound
from pilothouse.flows.engine import Engine
from pilothouse.flows.errors import FlowDefinitionError, FlowError, FlowInputError
from pilothouse.flows.graph import Flow
from pilothouse.flows.loading import FlowLoadError, load_flow, normalise_ref, root_ref
from pilothouse.flows.protocol import TERMINAL, Approval, Checkpoint, RunRecord
from pilothouse.flows.subflows import resolve_child
from pilothouse.store.flows import FlowDisabled, SqlCheckpointStore

DAY_S = 86_400.0


def run_view(run: RunRecord) -> dict[str, Any]:
    """A run as the API answers it."""
    out = asdict(run)
    out["next_steps"] = list(run.next_steps)
    return out


def checkpoint_view(cp: Checkpoint) -> dict[str, Any]:
    return asdict(cp)


def path_of(checkpoints: list[Checkpoint]) -> list[dict[str, Any]]:
    """The decision path: each recorded step in order, with the branch it took and why, its approvals and
    errors (what `pilothouse flow show` prints)."""
    path = []
    for cp in checkpoints:
        entry: dict[str, Any] = {
            "seq": cp.seq,
            "step": cp.step,
            "status": cp.status,
            "attempt": cp.attempt,
            "duration_ms": round(max(cp.ended_at - cp.started_at, 0.0) * 1000, 1),
            "cost_usd": cp.cost_usd,
        }
        if cp.item is not None:
            entry["item"] = cp.item
        if cp.decision:
            entry["decision"] = cp.decision
        if cp.error:
            entry["error"] = cp.error
        path.append(entry)
    return path


class FlowService:
    """Runs of one store, as the faces see them (always within the caller's project)."""

    def __init__(self, store: SqlCheckpointStore, *, wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.wake = wake or (lambda: None)

    def start_run(
        self,
        project_id: str,
        ref: str,
        input: Mapping[str, Any],
        *,
        budget: Mapping[str, Any] | None = None,
        created_by: str | None = None,
    ) -> RunRecord:
        """Validate the flow and its input, record the run as queued and wake a worker."""
        flow, ref = self.load(ref)
        try:
            new = Engine(self.store).new_run(
                flow, input, project_id=project_id, ref=ref, budget=budget, created_by=created_by
            )
        except FlowInputError as exc:
            raise InvalidRequest(str(exc), param="input") from None
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="budget") from None
        try:
            run = self.store.create_run(new)
        except FlowDisabled as exc:
            raise Conflict(str(exc), code="flow_disabled") from None
        self.wake()
        return run

    def load(self, ref: str) -> tuple[Flow, str]:
        """The flow of a reference, built (validated), and the reference made absolute."""
        try:
            ref = normalise_ref(ref)
            flow = load_flow(ref).build()
        except FlowLoadError as exc:
            raise InvalidRequest(str(exc), param="flow") from None
        except FlowDefinitionError as exc:
            raise InvalidRequest(f"{ref}: {exc}", param="flow") from None
        return flow, ref

    def get(self, project_id: str, run_id: str) -> RunRecord:
        run = self.store.get_run(run_id)
        if run is None or run.project_id != project_id:
            raise NotFound(f"no flow run {run_id!r} in this project (list them with `pilothouse flow list`)")
        return run

    def list(
        self,
        project_id: str,
        *,
        status: str | None = None,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        return self.store.list_runs(project_id, status=status, flow_name=flow_name, limit=limit, before=before)

    def show(self, project_id: str, run_id: str) -> dict[str, Any]:
        """The run, its checkpoints and its decision path."""
        run = self.get(project_id, run_id)
        checkpoints = self.store.checkpoints(run_id)
        return {
            "run": run_view(run),
            "path": path_of(checkpoints),
            "checkpoints": [checkpoint_view(cp) for cp in checkpoints],
        }

    def decide(
        self,
        project_id: str,
        run_id: str,
        *,
        step: str,
        decision: Literal["approved", "rejected"],
        actor: str,
        comment: str | None = None,
        state_edits: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Approve or reject the run waiting at `step` (approval edits of the state are validated against the
        flow's state model); the decision goes to the audit log and the run back to the workers."""
        run = self.get(project_id, run_id)
        if state_edits:
            root, _ = self.load(root_ref(run.flow))
            try:
                flow = resolve_child(root, run.flow)
            except FlowError as exc:
                raise Conflict(str(exc), code="flow_changed") from None
            try:
                flow.state.model_validate({**run.state, **dict(state_edits)})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "state"
                raise InvalidRequest(f"the edited state is not valid: {where}: {first['msg']}", param="state") from None
        try:
            decided = self.store.decide(Approval(run_id, step, decision, actor, comment, state_edits))
        except ValueError as exc:
            raise Conflict(str(exc), code="not_waiting") from None
        self.wake()
        return decided

    def cancel(self, project_id: str, run_id: str) -> RunRecord:
        self.get(project_id, run_id)
        return self.store.request_cancel(run_id)

    def resume(self, project_id: str, run_id: str) -> RunRecord:
        """Make a run go on from its last checkpoint: a failed one is requeued; a running one whose worker
        died is taken by the next worker once its lease expires; a queued one is simply woken up."""
        run = self.get(project_id, run_id)
        if run.status == "failed":
            try:
                run = self.store.requeue(run_id)
            except ValueError as exc:
                raise Conflict(str(exc), code="not_resumable") from None
        elif run.status in TERMINAL:
            raise Conflict(f"run {run_id} is {run.status}; nothing to resume", code="not_resumable")
        elif run.status == "waiting_for_approval":
            step = run.next_steps[0] if run.next_steps else "?"
            raise Conflict(
                f"run {run_id} waits for approval at step {step!r}: "
                f"`pilothouse flow approve {run_id} --step {step}` (or reject)",
                code="waiting_for_approval",
            )
        self.wake()
        return run

    def prune(self, *, keep_last: int | None, older_than_days: float | None) -> int:
        if keep_last is None and older_than_days is None:
            raise InvalidRequest("say what to prune: keep_last, older_than_days or both", param="keep_last")
        older = None if older_than_days is None else older_than_days * DAY_S
        return self.store.prune(keep_last=keep_last, older_than_s=older)

    def set_enabled(
        self, project_id: str, flow_name: str, enabled: bool, *, reason: str | None, actor: str | None
    ) -> dict[str, Any]:
        self.store.set_flow_enabled(project_id, flow_name, enabled, reason=reason, actor=actor)
        if enabled:
            self.wake()
        return {"flow": flow_name, "enabled": enabled, "reason": reason}
