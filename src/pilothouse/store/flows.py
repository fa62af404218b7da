"""The SQL `CheckpointStore` (flows/protocol.py) on SQLite and PostgreSQL; tables in store/flow_tables.py.

How the durability rules hold here:
- `claim` selects one runnable run and leases it in one transaction. On PostgreSQL it is one statement, an
  update of the row a `FOR UPDATE SKIP LOCKED` subquery picks, so workers on several machines never take the same
  run and never wait on each other;
  on SQLite `Store.begin()` takes the database's write lock up front (BEGIN IMMEDIATE), which serialises claims.
- `commit_step` (store/flow_commit.py, the per-step hot path) updates the run only where the worker holds the
  lease and the seq is the expected one, and writes the checkpoints in the same transaction (one statement on
  PostgreSQL): a checkpoint is never recorded without the state it produced, nor twice, nor by a worker that
  lost the run.
- Effects have a primary key `(run_id, key)`; a second record of the same key is ignored (`ON CONFLICT DO
  NOTHING`), so the first result is the one every retry reuses.
- `decide` appends the approval as a checkpoint of its step and an audit event (`flow.approve` / `flow.reject`)
  in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.expression import Select

from pilothouse.audit.chain import append_event
from pilothouse.flows.protocol import (
    TERMINAL,
    Approval,
    Checkpoint,
    NewRun,
    RunRecord,
    RunStatus,
)
from pilothouse.store.engine import Store
from pilothouse.store.flow_commit import FastCommit
from pilothouse.store.flow_tables import flow_checkpoints, flow_effects, flow_runs, flow_switches
from pilothouse.store.ids import new_id

_TERMINAL = sorted(TERMINAL)


class FlowDisabled(RuntimeError):
    """The workflow's kill switch is on: new runs are refused and its runs are not claimed."""


def _run(row: Any) -> RunRecord:
    return RunRecord(
        id=row.id,
        project_id=row.project_id,
        flow=row.flow,
        flow_name=row.flow_name,
        flow_hash=row.flow_hash,
        status=row.status,
        input=dict(row.input),
        state=dict(row.state),
        next_steps=tuple(row.next_steps),
        seq=row.seq,
        budget=dict(row.budget),
        spent=dict(row.spent),
        error=None if row.error is None else dict(row.error),
        trace_id=row.trace_id,
        parent_run_id=row.parent_run_id,
        created_by=row.created_by,
        replay_of=row.replay_of,
        cancel_requested=bool(row.cancel_requested),
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        run_id=row.run_id,
        seq=row.seq,
        step=row.step,
        attempt=row.attempt,
        status=row.status,
        input=row.input,
        output=row.output,
        state_after=dict(row.state_after),
        decision=None if row.decision is None else dict(row.decision),
        error=None if row.error is None else dict(row.error),
        started_at=row.started_at,
        ended_at=row.ended_at,
        cost_usd=float(row.cost_usd),
        tokens=row.tokens,
        span_id=row.span_id,
        item=row.item,
    )


def _checkpoint_values(cp: Checkpoint) -> dict[str, Any]:
    return {
        "run_id": cp.run_id,
        "seq": cp.seq,
        "step": cp.step,
        "attempt": cp.attempt,
        "status": cp.status,
        "input": cp.input,
        "output": cp.output,
        "state_after": cp.state_after,
        "decision": cp.decision,
        "error": cp.error,
        "started_at": cp.started_at,
        "ended_at": cp.ended_at,
        "cost_usd": Decimal(repr(cp.cost_usd)),
        "tokens": cp.tokens,
        "span_id": cp.span_id,
        "item": cp.item,
    }


class SqlCheckpointStore:
    """Runs and checkpoints in the Pilothouse database (SQLite or PostgreSQL)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._pg = store.dialect == "postgresql"
        self._fast = FastCommit(store)  # commit_step, once per step: store/flow_commit.py

    # runs ---------------------------------------------------------------------------------------------------

    def create_run(self, run: NewRun) -> RunRecord:
        now = self.clock()
        values: dict[str, Any] = {
            "id": new_id("run"),
            "project_id": run.project_id,
            "flow": run.flow,
            "flow_name": run.flow_name,
            "flow_hash": run.flow_hash,
            "status": "queued",
            "input": run.input,
            "state": run.state,
            "next_steps": list(run.next_steps),
            "seq": 0,
            "budget": run.budget,
            "spent": {},
            "error": None,
            "trace_id": run.trace_id,
            "parent_run_id": run.parent_run_id,
            "created_by": run.created_by,
            "replay_of": run.replay_of,
            "cancel_requested": False,
            "lease_owner": None,
            "lease_expires_at": None,
            "created_at": now,
            "updated_at": now,
        }
        with self.store.begin() as conn:
            if _disabled(conn, run.project_id, run.flow_name):
                raise FlowDisabled(
                    f"the workflow {run.flow_name!r} is disabled (its kill switch is on); "
                    f"enable it with `pilothouse flow enable {run.flow_name}`"
                )
            conn.execute(insert(flow_runs), [values])
        return _run(_Row(values))

    def get_run(self, run_id: str) -> RunRecord | None:
        with self.store.connect() as conn:
            row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).first()
        return None if row is None else _run(row)

    def list_runs(
        self,
        project_id: str,
        *,
        status: str | None = None,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[RunRecord]:
        query = select(flow_runs).where(flow_runs.c.project_id == project_id)
        if status is not None:
            query = query.where(flow_runs.c.status == status)
        if flow_name is not None:
            query = query.where(flow_runs.c.flow_name == flow_name)
        with self.store.connect() as conn:
            if before is not None:
                anchor = conn.execute(
                    select(flow_runs.c.created_at).where(flow_runs.c.id == before, flow_runs.c.project_id == project_id)
                ).scalar()
                if anchor is None:
                    return []
                query = query.where(
                    or_(
                        flow_runs.c.created_at < anchor,
                        and_(flow_runs.c.created_at == anchor, flow_runs.c.id < before),
                    )
                )
            query = query.order_by(flow_runs.c.created_at.desc(), flow_runs.c.id.desc()).limit(limit)
            return [_run(r) for r in conn.execute(query)]

    # leases -------------------------------------------------------------------------------------------------

    def claim(
        self, worker: str, *, lease_s: float, run_id: str | None = None, project_id: str | None = None
    ) -> RunRecord | None:
        now = self.clock()
        runnable = or_(
            flow_runs.c.status == "queued",
            and_(
                flow_runs.c.status == "running",
                or_(flow_runs.c.lease_expires_at.is_(None), flow_runs.c.lease_expires_at <= now),
            ),
        )
        switched_off = exists().where(
            flow_switches.c.project_id == flow_runs.c.project_id,
            flow_switches.c.flow_name == flow_runs.c.flow_name,
            flow_switches.c.disabled.is_(True),
        )
        query: Select[Any] = select(flow_runs).where(runnable, ~switched_off)
        if run_id is not None:
            query = query.where(flow_runs.c.id == run_id)
        if project_id is not None:
            query = query.where(flow_runs.c.project_id == project_id)
        query = query.order_by(flow_runs.c.created_at, flow_runs.c.id).limit(1)
        changes = {"status": "running", "lease_owner": worker, "lease_expires_at": now + lease_s, "updated_at": now}
        if self._pg:  # one statement: lock the first runnable row nobody else has locked, and lease it
            pick = query.with_only_columns(flow_runs.c.id).with_for_update(skip_locked=True, of=flow_runs)
            take = (
                update(flow_runs).where(flow_runs.c.id == pick.scalar_subquery()).values(changes).returning(flow_runs)
            )
            taken = self._fast.one_statement(take)
            return None if taken is None else _run(taken)
        with self.store.connect() as conn:  # idle workers poll: look before taking SQLite's write lock
            if conn.execute(query.with_only_columns(flow_runs.c.id)).first() is None:
                return None
        with self.store.begin() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            _update_run(conn, row.id, changes)
        return _run(_Row({**row._asdict(), **changes}))

    def renew(self, run_id: str, worker: str, *, lease_s: float) -> bool:
        now = self.clock()
        with self.store.begin() as conn:
            result = conn.execute(
                update(flow_runs)
                .where(
                    flow_runs.c.id == run_id,
                    flow_runs.c.status == "running",
                    flow_runs.c.lease_owner == worker,
                    flow_runs.c.lease_expires_at > now,
                )
                .values(lease_expires_at=now + lease_s)
            )
        return result.rowcount > 0

    def release(self, run_id: str, worker: str) -> None:
        with self.store.begin() as conn:
            conn.execute(
                update(flow_runs)
                .where(flow_runs.c.id == run_id, flow_runs.c.lease_owner == worker)
                .values(lease_owner=None, lease_expires_at=None, updated_at=self.clock())
            )

    # checkpoints --------------------------------------------------------------------------------------------

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
        return self._fast.commit(
            run_id,
            worker,
            checkpoints,
            state=state,
            next_steps=next_steps,
            status=status,
            spent=spent,
            error=error,
            now=self.clock(),
        )

    def checkpoints(self, run_id: str, *, after_seq: int = 0) -> list[Checkpoint]:
        query = (
            select(flow_checkpoints)
            .where(flow_checkpoints.c.run_id == run_id, flow_checkpoints.c.seq > after_seq)
            .order_by(flow_checkpoints.c.seq)
        )
        with self.store.connect() as conn:
            return [_checkpoint(r) for r in conn.execute(query)]

    # effects ------------------------------------------------------------------------------------------------

    def effect(self, run_id: str, key: str) -> Any | None:
        with self.store.connect() as conn:
            return conn.execute(
                select(flow_effects.c.result).where(flow_effects.c.run_id == run_id, flow_effects.c.key == key)
            ).scalar()

    def record_effect(self, run_id: str, key: str, result: Any) -> None:
        values = {"run_id": run_id, "key": key, "result": result, "created_at": self.clock()}
        stmt = (postgresql.insert if self._pg else sqlite.insert)(flow_effects)
        with self.store.begin() as conn:
            conn.execute(
                stmt.on_conflict_do_nothing(index_elements=[flow_effects.c.run_id, flow_effects.c.key]), [values]
            )

    # people -------------------------------------------------------------------------------------------------

    def decide(self, approval: Approval) -> RunRecord:
        now = self.clock()
        with self.store.begin() as conn:
            row = self._locked(conn, approval.run_id)
            if row is None:
                raise ValueError(f"no run {approval.run_id!r}")
            if row.status != "waiting_for_approval" or not row.next_steps or row.next_steps[0] != approval.step:
                waiting = row.next_steps[0] if row.status == "waiting_for_approval" and row.next_steps else None
                where = f"waiting at step {waiting!r}" if waiting else str(row.status)
                raise ValueError(
                    f"run {approval.run_id} is not waiting for approval at step {approval.step!r} (it is {where})"
                )
            edits = dict(approval.state_edits) if approval.state_edits else None
            state = {**row.state, **(edits or {})}
            seq = row.seq + 1
            cp = Checkpoint(
                run_id=approval.run_id,
                seq=seq,
                step=approval.step,
                attempt=0,
                status=approval.decision,
                input=None,
                output={"actor": approval.actor, "comment": approval.comment, "state_edits": edits},
                state_after=state,
                decision={"approval": approval.decision, "actor": approval.actor, "comment": approval.comment},
                started_at=now,
                ended_at=now,
            )
            conn.execute(insert(flow_checkpoints), [_checkpoint_values(cp)])
            changes = {
                "status": "queued",
                "state": state,
                "seq": seq,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
            _update_run(conn, approval.run_id, changes)
            action = "flow.approve" if approval.decision == "approved" else "flow.reject"
            append_event(
                conn,
                actor=approval.actor,
                action=action,
                target=approval.run_id,
                project_id=row.project_id,
                details={
                    "flow": row.flow_name,
                    "step": approval.step,
                    "comment": approval.comment,
                    "state_edits": edits,
                },
            )
        return _run(_Row({**row._asdict(), **changes}))

    def request_cancel(self, run_id: str) -> RunRecord:
        now = self.clock()
        with self.store.begin() as conn:
            row = self._locked(conn, run_id)
            if row is None:
                raise ValueError(f"no run {run_id!r}")
            changes: dict[str, Any] = {}
            if row.status in ("queued", "waiting_for_approval"):
                changes = {"status": "cancelled", "cancel_requested": True, "lease_owner": None, "updated_at": now}
                changes |= {"lease_expires_at": None, "next_steps": []}
            elif row.status == "running":
                changes = {"cancel_requested": True, "updated_at": now}
            if changes:
                _update_run(conn, run_id, changes)
        return _run(_Row({**row._asdict(), **changes}))

    def requeue(self, run_id: str) -> RunRecord:
        """Make a failed run runnable again from its last checkpoint (`flow resume` of a failed run): it keeps
        its state and spend, and runs its frontier again (the step that failed, when the engine left none);
        the error is cleared."""
        now = self.clock()
        with self.store.begin() as conn:
            row = self._locked(conn, run_id)
            if row is None:
                raise ValueError(f"no run {run_id!r}")
            if row.status != "failed":
                raise ValueError(f"run {run_id} is {row.status}; only a failed run is requeued")
            failed_at = (row.error or {}).get("step")
            frontier = list(row.next_steps) or ([failed_at] if isinstance(failed_at, str) and failed_at else [])
            if not frontier:
                raise ValueError(f"run {run_id} failed before any step; start a new run instead")
            changes: dict[str, Any] = {"status": "queued", "error": None, "next_steps": frontier, "updated_at": now}
            _update_run(conn, run_id, changes)
        return _run(_Row({**row._asdict(), **changes}))

    # kill switch --------------------------------------------------------------------------------------------

    def set_flow_enabled(
        self, project_id: str, flow_name: str, enabled: bool, *, reason: str | None = None, actor: str | None = None
    ) -> None:
        """Turn a workflow's kill switch off (`enabled`) or on, recorded in the audit log."""
        now = self.clock()
        values = {"disabled": not enabled, "reason": reason, "updated_at": now, "updated_by": actor}
        with self.store.begin() as conn:
            found = conn.execute(
                select(flow_switches.c.flow_name).where(
                    flow_switches.c.project_id == project_id, flow_switches.c.flow_name == flow_name
                )
            ).first()
            if found is None:
                conn.execute(insert(flow_switches).values(project_id=project_id, flow_name=flow_name, **values))
            else:
                conn.execute(
                    update(flow_switches)
                    .where(flow_switches.c.project_id == project_id, flow_switches.c.flow_name == flow_name)
                    .values(**values)
                )
            append_event(
                conn,
                actor=actor or "system",
                action="flow.enable" if enabled else "flow.disable",
                target=flow_name,
                project_id=project_id,
                details={"reason": reason},
            )

    def flow_disabled(self, project_id: str, flow_name: str) -> bool:
        with self.store.connect() as conn:
            return _disabled(conn, project_id, flow_name)

    # retention ----------------------------------------------------------------------------------------------

    def prune(self, *, keep_last: int | None = None, older_than_s: float | None = None) -> int:
        if keep_last is not None and keep_last < 0:
            raise ValueError("keep_last must be 0 or more")
        deleted = 0
        finished = select(flow_runs.c.id).where(flow_runs.c.status.in_(_TERMINAL))
        with self.store.begin() as conn:
            if older_than_s is not None:
                old = finished.where(flow_runs.c.updated_at <= self.clock() - older_than_s)
                ids = [r[0] for r in conn.execute(old)]
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    for table in (flow_checkpoints, flow_effects):
                        deleted += conn.execute(delete(table).where(table.c.run_id.in_(chunk))).rowcount
                    deleted += conn.execute(delete(flow_runs).where(flow_runs.c.id.in_(chunk))).rowcount
            if keep_last is not None:
                last_seq = select(flow_runs.c.seq).where(flow_runs.c.id == flow_checkpoints.c.run_id).scalar_subquery()
                deleted += conn.execute(
                    delete(flow_checkpoints).where(
                        flow_checkpoints.c.run_id.in_(finished), flow_checkpoints.c.seq <= last_seq - keep_last
                    )
                ).rowcount
        return deleted

    def storage(self) -> dict[str, int]:
        """Row counts of the flow tables (what retention bounds)."""
        with self.store.connect() as conn:
            return {
                table.name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
                for table in (flow_runs, flow_checkpoints, flow_effects)
            }

    def _locked(self, conn: Connection, run_id: str) -> Any:
        query = select(flow_runs).where(flow_runs.c.id == run_id)
        if self._pg:
            query = query.with_for_update()
        return conn.execute(query).first()


_BY_ID = update(flow_runs).where(flow_runs.c.id == bindparam("run_key"))


def _update_run(conn: Connection, run_id: str, changes: dict[str, Any]) -> None:
    """Set `changes` on the run. The values go as execution parameters, not into the statement, so the compiled
    statement is cached per set of columns (putting JSON values into `.values()` costs a cache key each time)."""
    conn.execute(_BY_ID, {**changes, "run_key": run_id})


def _holds(row: Any, worker: str, now: float) -> bool:
    return bool(
        row.status == "running"
        and row.lease_owner == worker
        and row.lease_expires_at is not None
        and row.lease_expires_at > now
    )


def _disabled(conn: Connection, project_id: str, flow_name: str) -> bool:
    found = conn.execute(
        select(flow_switches.c.disabled).where(
            flow_switches.c.project_id == project_id, flow_switches.c.flow_name == flow_name
        )
    ).scalar()
    return bool(found)


class _Row:
    """Attribute access over a dict, so a record is built from a row plus the changes just written."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def _asdict(self) -> dict[str, Any]:
        return dict(self.__dict__)
