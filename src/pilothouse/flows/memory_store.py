"""An in-memory CheckpointStore: for engine unit tests and one-process experiments (nothing survives the
process). It keeps every rule of the protocol (leases, fenced commits, effects, decisions) so the store
conformance suite runs on it like on the SQL stores."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pilothouse.flows.protocol import (
    TERMINAL,
    Approval,
    Checkpoint,
    LeaseLost,
    NewRun,
    RunRecord,
    RunStatus,
    SeqConflict,
)
from pilothouse.store.ids import new_id


class MemoryCheckpointStore:
    def __init__(self, *, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._order: list[str] = []  # creation order
        self._checkpoints: dict[str, list[Checkpoint]] = {}
        self._effects: dict[tuple[str, str], Any] = {}

    def create_run(self, run: NewRun) -> RunRecord:
        now = self._clock()
        with self._lock:
            record = RunRecord(
                id=new_id("run"),
                project_id=run.project_id,
                flow=run.flow,
                flow_name=run.flow_name,
                flow_hash=run.flow_hash,
                status="queued",
                input=copy.deepcopy(run.input),
                state=copy.deepcopy(run.state),
                next_steps=tuple(run.next_steps),
                seq=0,
                budget=dict(run.budget),
                spent={},
                error=None,
                trace_id=run.trace_id,
                parent_run_id=run.parent_run_id,
                created_by=run.created_by,
                replay_of=run.replay_of,
                cancel_requested=False,
                lease_owner=None,
                lease_expires_at=None,
                created_at=now,
                updated_at=now,
            )
            self._runs[record.id] = record
            self._order.append(record.id)
            self._checkpoints[record.id] = []
            return record

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return self._runs.get(run_id)

    def list_runs(
        self,
        project_id: str,
        *,
        status: str | None = None,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        with self._lock:
            ids = list(reversed(self._order))
            if before is not None:
                ids = ids[ids.index(before) + 1 :] if before in ids else []
            out = []
            for run_id in ids:
                run = self._runs.get(run_id)
                if run is None or run.project_id != project_id:
                    continue
                if status is not None and run.status != status:
                    continue
                if flow_name is not None and run.flow_name != flow_name:
                    continue
                out.append(run)
                if len(out) >= limit:
                    break
            return out

    def claim(
        self, worker: str, *, lease_s: float, run_id: str | None = None, project_id: str | None = None
    ) -> RunRecord | None:
        now = self._clock()
        with self._lock:
            candidates = [run_id] if run_id is not None else list(self._order)
            for rid in candidates:
                run = self._runs.get(rid)
                if run is None or (project_id is not None and run.project_id != project_id):
                    continue
                if not self._claimable(run, now):
                    continue
                claimed = replace(
                    run, status="running", lease_owner=worker, lease_expires_at=now + lease_s, updated_at=now
                )
                self._runs[rid] = claimed
                return claimed
            return None

    @staticmethod
    def _claimable(run: RunRecord, now: float) -> bool:
        if run.status == "queued":
            return True
        return run.status == "running" and (run.lease_expires_at is None or run.lease_expires_at <= now)

    def renew(self, run_id: str, worker: str, *, lease_s: float) -> bool:
        now = self._clock()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or not self._holds(run, worker, now):
                return False
            self._runs[run_id] = replace(run, lease_expires_at=now + lease_s)
            return True

    @staticmethod
    def _holds(run: RunRecord, worker: str, now: float) -> bool:
        return (
            run.status == "running"
            and run.lease_owner == worker
            and run.lease_expires_at is not None
            and run.lease_expires_at > now
        )

    def release(self, run_id: str, worker: str) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None and run.lease_owner == worker:
                self._runs[run_id] = replace(run, lease_owner=None, lease_expires_at=None)

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
        now = self._clock()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise LeaseLost(f"run {run_id} does not exist")
            if not self._holds(run, worker, now):
                raise LeaseLost(f"worker {worker} does not hold the lease on run {run_id}")
            seq = run.seq
            for checkpoint in checkpoints:
                if checkpoint.run_id != run_id or checkpoint.seq != seq + 1:
                    raise SeqConflict(f"run {run_id}: checkpoint seq {checkpoint.seq} is not the next one ({seq + 1})")
                seq += 1
            self._checkpoints[run_id].extend(copy.deepcopy(list(checkpoints)))
            keep = status == "running"
            updated = replace(
                run,
                status=status,
                state=copy.deepcopy(state),
                next_steps=tuple(next_steps),
                seq=seq,
                spent=copy.deepcopy(spent),
                error=copy.deepcopy(error),
                lease_owner=run.lease_owner if keep else None,
                lease_expires_at=run.lease_expires_at if keep else None,
                updated_at=now,
            )
            self._runs[run_id] = updated
            return updated

    def checkpoints(self, run_id: str, *, after_seq: int = 0) -> list[Checkpoint]:
        with self._lock:
            return [c for c in self._checkpoints.get(run_id, []) if c.seq > after_seq]

    def effect(self, run_id: str, key: str) -> Any | None:
        with self._lock:
            return copy.deepcopy(self._effects.get((run_id, key)))

    def record_effect(self, run_id: str, key: str, result: Any) -> None:
        with self._lock:
            self._effects.setdefault((run_id, key), copy.deepcopy(result))

    def decide(self, approval: Approval) -> RunRecord:
        now = self._clock()
        with self._lock:
            run = self._runs.get(approval.run_id)
            if run is None:
                raise ValueError(f"run {approval.run_id} does not exist")
            if run.status != "waiting_for_approval" or not run.next_steps or run.next_steps[0] != approval.step:
                waiting = run.next_steps[0] if run.status == "waiting_for_approval" and run.next_steps else None
                where = f"waiting at step {waiting!r}" if waiting else f"{run.status}"
                raise ValueError(f"run {run.id} is not waiting for approval at step {approval.step!r} (it is {where})")
            state = {**run.state, **dict(approval.state_edits or {})}
            checkpoint = Checkpoint(
                run_id=run.id,
                seq=run.seq + 1,
                step=approval.step,
                attempt=0,
                status=approval.decision,
                input=None,
                output={
                    "actor": approval.actor,
                    "comment": approval.comment,
                    "state_edits": dict(approval.state_edits) if approval.state_edits else None,
                },
                state_after=copy.deepcopy(state),
                decision={"approval": approval.decision, "actor": approval.actor, "comment": approval.comment},
                started_at=now,
                ended_at=now,
            )
            self._checkpoints[run.id].append(checkpoint)
            updated = replace(
                run,
                status="queued",
                state=state,
                seq=run.seq + 1,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
            )
            self._runs[run.id] = updated
            return updated

    def request_cancel(self, run_id: str) -> RunRecord:
        now = self._clock()
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise ValueError(f"run {run_id} does not exist")
            if run.status in TERMINAL:
                return run
            if run.status in ("queued", "waiting_for_approval"):
                updated = replace(
                    run,
                    status="cancelled",
                    cancel_requested=True,
                    next_steps=(),
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            else:
                updated = replace(run, cancel_requested=True, updated_at=now)
            self._runs[run_id] = updated
            return updated

    def prune(self, *, keep_last: int | None = None, older_than_s: float | None = None) -> int:
        now = self._clock()
        deleted = 0
        with self._lock:
            for run_id in list(self._order):
                run = self._runs[run_id]
                if run.status not in TERMINAL:
                    continue
                if older_than_s is not None and run.updated_at <= now - older_than_s:
                    deleted += 1 + len(self._checkpoints.pop(run_id, []))
                    effects = [k for k in self._effects if k[0] == run_id]
                    for key in effects:
                        del self._effects[key]
                    deleted += len(effects)
                    del self._runs[run_id]
                    self._order.remove(run_id)
                    continue
                if keep_last is not None:
                    kept = self._checkpoints[run_id]
                    if len(kept) > keep_last:
                        deleted += len(kept) - keep_last
                        self._checkpoints[run_id] = kept[len(kept) - keep_last :] if keep_last else []
        return deleted
