"""The hot path of the SQL checkpoint store: `commit_step` in as few database round trips as the backend allows.

A flow commits once per step, so this is the store call that sets a workflow's per-step overhead. Its statements
are driver SQL written once per backend (building and caching SQLAlchemy Core statements on every call cost more
than the database work itself), and it keeps the durability rules of store/flows.py:

- PostgreSQL: ONE statement (one round trip: a run's back-to-back commits reuse a warm connection, see
  `_WarmConnections`), in autocommit: a fenced `UPDATE flow_runs ... WHERE lease held AND seq = expected
  RETURNING ...` with the checkpoints' `INSERT` in a data-modifying CTE that only inserts when the update matched.
  The update takes the run's row lock, so the fence and the write are atomic (a concurrent commit waits for it and
  then sees the new seq); the statement is its own transaction, so the checkpoint and the run's new state are
  recorded together or not at all. psycopg prepares it server-side after a few executions.
- SQLite: `BEGIN IMMEDIATE`, the same fenced `UPDATE ... RETURNING`, the checkpoints' `INSERT`, `COMMIT`, on the
  driver's connection (see `_sqlite`).

When the fenced update matches no row, nothing is written and the run is read to say why: `LeaseLost` (no such
run, or the worker no longer holds its lease) or `SeqConflict` (the step was already recorded).
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.expression import Executable

from pilothouse.flows.protocol import Checkpoint, LeaseLost, RunRecord, RunStatus, SeqConflict
from pilothouse.money import to_pico
from pilothouse.store.engine import Store

# The run's columns a commit does not set: read back from the updated row to build the record.
_KEPT = (
    "id",
    "project_id",
    "flow",
    "flow_name",
    "flow_hash",
    "input",
    "budget",
    "trace_id",
    "parent_run_id",
    "created_by",
    "replay_of",
    "cancel_requested",
    "lease_owner",
    "lease_expires_at",
    "created_at",
    "seq",
)
_CP_COLUMNS = (
    "run_id",
    "seq",
    "step",
    "attempt",
    "status",
    "input",
    "output",
    "state_after",
    "decision",
    "error",
    "started_at",
    "ended_at",
    "cost_usd",
    "tokens",
    "span_id",
    "item",
)
_CP_JSON = frozenset({"input", "output", "state_after", "decision", "error"})


def _slot(name: str, pg: bool, cast: str = "") -> str:
    """A named placeholder: `%(x)s` for psycopg (with a cast), `:x` for sqlite3."""
    return f"%({name})s{cast}" if pg else f":{name}"


def _update_sql(pg: bool) -> str:
    """The fenced update. `fence` is the seq expected before this commit (NULL for a status-only commit);
    `clear` (a status other than running) gives the lease up."""

    def p(name: str, cast: str = "") -> str:
        return _slot(name, pg, cast)

    j = "::jsonb"
    return (
        f"UPDATE flow_runs SET state = {p('state', j)}, next_steps = {p('next_steps', j)}, "
        f"status = {p('status')}, spent = {p('spent', j)}, error = {p('error', j)}, seq = seq + {p('n', '::integer')}, "
        f"updated_at = {p('now', '::float8')}, "
        f"lease_owner = CASE WHEN {p('clear', '::boolean')} THEN NULL ELSE lease_owner END, "
        f"lease_expires_at = CASE WHEN {p('clear', '::boolean')} THEN NULL ELSE lease_expires_at END "
        f"WHERE id = {p('run_id')} AND status = 'running' AND lease_owner = {p('worker')} "
        f"AND lease_expires_at > {p('now', '::float8')} "
        f"AND ({p('fence', '::integer')} IS NULL OR seq = {p('fence', '::integer')}) "
        f"RETURNING {', '.join(_KEPT)}"
    )


_PG_CASTS = {"seq": "::integer", "attempt": "::integer", "tokens": "::integer", "item": "::integer"}
_PG_CASTS |= {"started_at": "::float8", "ended_at": "::float8", "cost_usd": "::bigint"}
_PG_CASTS |= {c: "::jsonb" for c in _CP_JSON}


def _cp_slots(index: int) -> str:
    return "(" + ", ".join(_slot(f"c{index}_{c}", True, _PG_CASTS.get(c, "")) for c in _CP_COLUMNS) + ")"


def _cp_params(cp: Checkpoint, prefix: str) -> dict[str, Any]:
    values = {
        "run_id": cp.run_id,
        "seq": cp.seq,
        "step": cp.step,
        "attempt": cp.attempt,
        "status": cp.status,
        "input": json.dumps(cp.input),
        "output": json.dumps(cp.output),
        "state_after": json.dumps(cp.state_after),
        "decision": json.dumps(cp.decision),
        "error": json.dumps(cp.error),
        "started_at": cp.started_at,
        "ended_at": cp.ended_at,
        "cost_usd": to_pico(Decimal(repr(cp.cost_usd))),
        "tokens": cp.tokens,
        "span_id": cp.span_id,
        "item": cp.item,
    }
    return {prefix + k: v for k, v in values.items()} if prefix else values


def _fetch(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """One row of `sql` run on the driver's cursor of `conn` (inside the transaction `conn` began: its commit and
    rollback, and their events, stay SQLAlchemy's; only the per-statement result handling is skipped)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchone()
    finally:
        cursor.close()


class _WarmConnections:
    """Autocommit connections of the store's pool kept between a run's back-to-back commits, so a step's commit is
    one round trip: a connection checked out of the pool is pinged first (pool_pre_ping, one more round trip),
    one used less than `fresh_s` ago is not. An idle one is handed back to the pool (and pinged when next taken);
    a connection whose statement failed is closed, never reused."""

    def __init__(self, store: Store, *, keep: int = 8, fresh_s: float = 1.0) -> None:
        self.store = store
        self.keep = keep
        self.fresh_s = fresh_s
        self._idle: list[tuple[Connection, float]] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._idle)  # returned to the pool when the store object goes

    def take(self) -> Connection:
        now = time.monotonic()
        with self._lock:
            fresh = [(c, used) for c, used in self._idle if now - used < self.fresh_s]
            stale = [c for c, used in self._idle if now - used >= self.fresh_s]
            conn = fresh.pop()[0] if fresh else None
            self._idle[:] = fresh
        for old in stale:
            old.close()
        if conn is None:
            conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def give(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)


def _close_all(idle: list[tuple[Connection, float]]) -> None:
    while idle:
        idle.pop()[0].close()


class FastCommit:
    """`commit_step` for SqlCheckpointStore (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pg = store.dialect == "postgresql"
        self._update = _update_sql(self.pg)
        self._pg_sql: dict[int, str] = {}
        self._warm = _WarmConnections(store) if self.pg else None
        insert_columns = ", ".join(_CP_COLUMNS)
        self._sqlite_insert = (
            f"INSERT INTO flow_checkpoints ({insert_columns}) VALUES ({', '.join(':' + c for c in _CP_COLUMNS)})"
        )

    def one_statement(self, statement: Executable) -> Any:
        """The first row of one statement run as its own transaction on a warm autocommit connection (PostgreSQL:
        one round trip; `claim` uses it)."""
        assert self._warm is not None
        conn = self._warm.take()
        try:
            with conn.begin():
                row = conn.execute(statement).first()
        except BaseException:
            conn.close()
            raise
        self._warm.give(conn)
        return row

    def _pg_statement(self, count: int) -> str:
        sql = self._pg_sql.get(count)
        if sql is None:
            if count == 0:
                sql = self._update
            else:
                rows = ", ".join(_cp_slots(i) for i in range(count))
                columns = ", ".join(_CP_COLUMNS)
                sql = (
                    f"WITH r AS ({self._update}), c AS (INSERT INTO flow_checkpoints ({columns}) "
                    f"SELECT v.* FROM (VALUES {rows}) AS v({columns}) WHERE EXISTS (SELECT 1 FROM r)) "
                    f"SELECT {', '.join(_KEPT)} FROM r"
                )
            self._pg_sql[count] = sql
        return sql

    def commit(
        self,
        run_id: str,
        worker: str,
        checkpoints: Sequence[Checkpoint],
        *,
        state: dict[str, Any],
        next_steps: tuple[str, ...],
        status: RunStatus,
        spent: dict[str, Any],
        error: dict[str, Any] | None,
        now: float,
    ) -> RunRecord:
        fence = None
        if checkpoints:
            fence = checkpoints[0].seq - 1
            for offset, cp in enumerate(checkpoints):
                if cp.seq != fence + 1 + offset or cp.run_id != run_id:
                    raise SeqConflict(f"checkpoints of run {run_id} must have consecutive seqs of that run")
        params: dict[str, Any] = {
            "state": json.dumps(state),
            "next_steps": json.dumps(list(next_steps)),
            "status": status,
            "spent": json.dumps(spent),
            "error": json.dumps(error),
            "n": len(checkpoints),
            "now": now,
            "clear": status != "running",
            "run_id": run_id,
            "worker": worker,
            "fence": fence,
        }
        row = self._pg(params, checkpoints) if self.pg else self._sqlite(params, checkpoints)
        if row is None:
            raise self._why(run_id, worker, now, fence)
        kept = dict(zip(_KEPT, row, strict=True))
        for name in ("input", "budget"):
            if isinstance(kept[name], str):
                kept[name] = json.loads(kept[name])
        kept["cancel_requested"] = bool(kept["cancel_requested"])
        return RunRecord(
            **kept,
            status=status,
            state=state,
            next_steps=tuple(next_steps),
            spent=spent,
            error=error,
            updated_at=now,
        )

    def _pg(self, params: dict[str, Any], checkpoints: Sequence[Checkpoint]) -> Any:
        for index, cp in enumerate(checkpoints):
            params.update(_cp_params(cp, f"c{index}_"))
        assert self._warm is not None
        conn = self._warm.take()
        try:
            with conn.begin():  # autocommit: the statement is the transaction (the commit events still fire)
                row = _fetch(conn, self._pg_statement(len(checkpoints)), params)
        except BaseException:
            conn.close()
            raise
        if params["clear"]:  # the run is done with for now (paused or finished): its connection goes back
            conn.close()
        else:
            self._warm.give(conn)
        return row

    def _sqlite(self, params: dict[str, Any], checkpoints: Sequence[Checkpoint]) -> Any:
        """The transaction on the driver's connection: SQLAlchemy's begin (its `begin` listener issuing BEGIN
        IMMEDIATE through a full statement execution) and commit doubled the cost of a step's commit. The engine's
        `commit` listeners are still called just before COMMIT, as for any other transaction (the durability
        tests kill a worker there, inside a checkpoint write)."""
        params["clear"] = int(params["clear"])
        with self.store.engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    row = cursor.execute(self._update, params).fetchone()
                    if row is not None:
                        for cp in checkpoints:
                            cursor.execute(self._sqlite_insert, _cp_params(cp, ""))
                        conn.dispatch.commit(conn)
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT" if row is not None else "ROLLBACK")
                return row
            finally:
                cursor.close()

    def _why(self, run_id: str, worker: str, now: float, fence: int | None) -> Exception:
        with self.store.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT status, lease_owner, lease_expires_at, seq FROM flow_runs WHERE id = "
                + ("%(id)s" if self.pg else ":id"),
                {"id": run_id},
            ).first()
        if row is None:
            return LeaseLost(f"run {run_id} does not exist")
        status, owner, expires, seq = row
        if status != "running" or owner != worker or expires is None or expires <= now:
            return LeaseLost(f"worker {worker!r} no longer holds the lease on run {run_id}")
        return SeqConflict(
            f"checkpoint seq {(fence or 0) + 1} of run {run_id} is not the next one ({seq + 1}): "
            "the step was already recorded"
        )
