"""The conformance suite every CheckpointStore passes (flows/protocol.py): the in-memory store, and the SQL store
on SQLite and PostgreSQL. Leases, fenced commits, effects, decisions, cancellation, retention and racing
claimers, checked against the protocol's rules rather than any one backend's internals."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.flows.protocol import Approval, Checkpoint, CheckpointStore, LeaseLost, NewRun, SeqConflict
from pilothouse.store.engine import Store, open_store

SHORT = 0.3  # seconds: a lease that expires within a test


def new_run(project: str, *, name: str = "refund", steps: tuple[str, ...] = ("check",), **kw: Any) -> NewRun:
    return NewRun(
        project_id=project,
        flow="pkg.mod:flow",
        flow_name=name,
        flow_hash="0123456789abcdef",
        input={"amount": 120},
        state={"amount": 120, "note": ""},
        next_steps=steps,
        budget={"steps": 50, "cost_usd": "0.05"},
        trace_id="t" * 32,
        **kw,
    )


def cp(run_id: str, seq: int, step: str = "check", **kw: Any) -> Checkpoint:
    fields: dict[str, Any] = {
        "attempt": 1,
        "status": "succeeded",
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "output": {"text": f"out {seq}", "n": [1, 2.5, None, True]},
        "state_after": {"amount": 120, "note": f"after {seq}"},
        "started_at": 1000.0 + seq,
        "ended_at": 1000.5 + seq,
    }
    fields.update(kw)
    return Checkpoint(run_id=run_id, seq=seq, step=step, **fields)


def commit(s: CheckpointStore, run_id: str, worker: str, cps: list[Checkpoint], **kw: Any) -> Any:
    args: dict[str, Any] = {
        "state": cps[-1].state_after if cps else {"amount": 120},
        "next_steps": ("next",),
        "status": "running",
        "spent": {"steps": len(cps)},
    }
    args.update(kw)
    return s.commit_step(run_id, worker, cps, **args)


class Conformance:
    """Subclasses provide the fixture `backend`: (store, project id)."""

    def test_create_get_and_list(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        first = s.create_run(new_run(project))
        assert first.status == "queued" and first.seq == 0 and first.next_steps == ("check",)
        assert first.input == {"amount": 120} and first.state == {"amount": 120, "note": ""}
        assert first.budget == {"steps": 50, "cost_usd": "0.05"} and first.trace_id == "t" * 32
        assert first.lease_owner is None and not first.cancel_requested and first.error is None
        got = s.get_run(first.id)
        assert got is not None and got.id == first.id and got.flow_hash == "0123456789abcdef"
        assert s.get_run("run_doesnotexist") is None
        second = s.create_run(new_run(project, name="other", parent_run_id=first.id, replay_of=first.id))
        assert second.parent_run_id == first.id and second.replay_of == first.id
        third = s.create_run(new_run(project))
        assert [r.id for r in s.list_runs(project)] == [third.id, second.id, first.id]  # newest first
        assert [r.id for r in s.list_runs(project, flow_name="other")] == [second.id]
        assert [r.id for r in s.list_runs(project, limit=2)] == [third.id, second.id]
        assert [r.id for r in s.list_runs(project, before=second.id)] == [first.id]
        assert s.list_runs(project, status="succeeded") == []

    def test_claim_leases_one_run_to_one_worker(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        claimed = s.claim("w1", lease_s=30, project_id=project)
        assert claimed is not None and claimed.id == run.id and claimed.status == "running"
        assert claimed.lease_owner == "w1" and claimed.lease_expires_at is not None
        assert claimed.lease_expires_at > time.time() + 20
        assert s.claim("w2", lease_s=30, project_id=project) is None  # held and unexpired
        assert s.claim("w2", lease_s=30, run_id=run.id) is None
        assert s.renew(run.id, "w1", lease_s=30) is True
        assert s.renew(run.id, "w2", lease_s=30) is False
        s.release(run.id, "w1")
        again = s.claim("w2", lease_s=30, run_id=run.id)  # released: anyone may take it
        assert again is not None and again.lease_owner == "w2"

    def test_claim_filters_by_run_and_project(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        a = s.create_run(new_run(project))
        b = s.create_run(new_run(project))
        claimed = s.claim("w1", lease_s=30, run_id=b.id)
        assert claimed is not None and claimed.id == b.id
        assert s.claim("w1", lease_s=30, project_id="no-such-project") is None
        other = s.claim("w1", lease_s=30, project_id=project)
        assert other is not None and other.id == a.id
        assert s.claim("w1", lease_s=30, project_id=project) is None

    def test_an_expired_lease_is_taken_over_and_fences_the_old_worker(
        self, backend: tuple[CheckpointStore, str]
    ) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=SHORT, project_id=project) is not None
        time.sleep(SHORT + 0.1)
        taken = s.claim("w2", lease_s=30, project_id=project)
        assert taken is not None and taken.id == run.id and taken.lease_owner == "w2"
        assert s.renew(run.id, "w1", lease_s=30) is False
        with pytest.raises(LeaseLost):
            commit(s, run.id, "w1", [cp(run.id, 1)])
        after = commit(s, run.id, "w2", [cp(run.id, 1)])
        assert after.seq == 1

    def test_an_expired_lease_fences_commits_even_before_a_takeover(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=SHORT, project_id=project) is not None
        time.sleep(SHORT + 0.1)
        with pytest.raises(LeaseLost):
            commit(s, run.id, "w1", [cp(run.id, 1)])

    def test_commit_is_fenced_by_seq_and_records_everything(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=30, project_id=project) is not None
        with pytest.raises(LeaseLost):
            commit(s, run.id, "w2", [cp(run.id, 1)])
        with pytest.raises(SeqConflict):
            commit(s, run.id, "w1", [cp(run.id, 2)])
        decided = cp(
            run.id, 1, decision={"condition": "size", "value": "big", "to": "approve"}, cost_usd=0.00125, tokens=42
        )
        after = commit(s, run.id, "w1", [decided], next_steps=("approve",), spent={"steps": 1, "cost_usd": "0.00125"})
        assert after.seq == 1 and after.next_steps == ("approve",) and after.status == "running"
        assert after.state == {"amount": 120, "note": "after 1"} and after.spent == {"steps": 1, "cost_usd": "0.00125"}
        assert after.lease_owner == "w1"  # still running: the worker keeps its lease
        with pytest.raises(SeqConflict):  # the same step again: recorded at most once
            commit(s, run.id, "w1", [cp(run.id, 1)])
        items = [cp(run.id, 2, "each", item=0, output=10), cp(run.id, 3, "each", item=1, output=20)]
        after = commit(s, run.id, "w1", items)
        assert after.seq == 3
        got = s.checkpoints(run.id)
        assert [c.seq for c in got] == [1, 2, 3]
        first = got[0]
        assert first.decision == {"condition": "size", "value": "big", "to": "approve"}
        assert first.output == {"text": "out 1", "n": [1, 2.5, None, True]}
        assert first.input == {"messages": [{"role": "user", "content": "hi"}]}
        assert first.cost_usd == pytest.approx(0.00125) and first.tokens == 42 and first.attempt == 1
        assert first.started_at == pytest.approx(1001.0) and first.ended_at == pytest.approx(1001.5)
        assert [c.item for c in got] == [None, 0, 1] and got[2].output == 20
        assert [c.seq for c in s.checkpoints(run.id, after_seq=2)] == [3]

    def test_a_status_change_without_checkpoints_and_a_terminal_status_ends_the_lease(
        self, backend: tuple[CheckpointStore, str]
    ) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=30, project_id=project) is not None
        failed = cp(run.id, 1, status="failed", error={"step": "check", "cause": "ValueError", "message": "bad"})
        error = {"step": "check", "cause": "ValueError", "message": "bad", "state": {"amount": 120}}
        mid = commit(s, run.id, "w1", [failed], error=error)  # compensating: failed, still running
        assert mid.status == "running" and mid.error == error and mid.lease_owner == "w1"
        end = commit(s, run.id, "w1", [], next_steps=(), status="failed", error=error)
        assert end.status == "failed" and end.seq == 1 and end.next_steps == ()
        assert end.lease_owner is None and end.error == error
        assert s.checkpoints(run.id)[0].error == {"step": "check", "cause": "ValueError", "message": "bad"}
        assert s.claim("w2", lease_s=30, project_id=project) is None  # a finished run is never claimed
        with pytest.raises(LeaseLost):
            commit(s, run.id, "w1", [cp(run.id, 2)])

    def test_effects_keep_the_first_result(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        key = f"{run.id}/pay#0/refund_payment"
        assert s.effect(run.id, key) is None
        s.record_effect(run.id, key, {"receipt": "r-1", "amount": 120.5})
        s.record_effect(run.id, key, {"receipt": "r-2"})
        assert s.effect(run.id, key) == {"receipt": "r-1", "amount": 120.5}
        s.record_effect(run.id, key + "x", "plain")
        assert s.effect(run.id, key + "x") == "plain"
        other = s.create_run(new_run(project))
        assert s.effect(other.id, key) is None  # effects belong to their run

    def test_decide_records_the_approval_as_the_next_checkpoint_and_queues_the_run(
        self, backend: tuple[CheckpointStore, str]
    ) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        with pytest.raises(ValueError):
            s.decide(Approval(run.id, "approve", "approved", "alice"))  # queued, not waiting
        assert s.claim("w1", lease_s=30, project_id=project) is not None
        waiting = cp(run.id, 1, "approve", status="waiting", output={"message": "Refund 120?"})
        after = commit(s, run.id, "w1", [waiting], next_steps=("approve",), status="waiting_for_approval")
        assert after.status == "waiting_for_approval" and after.lease_owner is None
        assert s.claim("w2", lease_s=30, project_id=project) is None  # a waiting run is not runnable
        with pytest.raises(ValueError):
            s.decide(Approval(run.id, "other", "approved", "alice"))
        decided = s.decide(Approval(run.id, "approve", "approved", "alice", comment="ok", state_edits={"amount": 99}))
        assert decided.status == "queued" and decided.seq == 2 and decided.next_steps == ("approve",)
        assert decided.state == {"amount": 99, "note": "after 1"}
        last = s.checkpoints(run.id, after_seq=1)
        assert len(last) == 1
        c = last[0]
        assert (c.seq, c.step, c.status, c.attempt, c.input) == (2, "approve", "approved", 0, None)
        assert c.output == {"actor": "alice", "comment": "ok", "state_edits": {"amount": 99}}
        assert c.decision == {"approval": "approved", "actor": "alice", "comment": "ok"}
        assert c.state_after == {"amount": 99, "note": "after 1"}
        with pytest.raises(ValueError):
            s.decide(Approval(run.id, "approve", "rejected", "bob"))  # decided already
        again = s.claim("w2", lease_s=30, project_id=project)
        assert again is not None and again.id == run.id

    def test_a_rejection_is_recorded_too(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        run = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=30, project_id=project) is not None
        commit(s, run.id, "w1", [cp(run.id, 1, "approve", status="waiting")], next_steps=("approve",),
               status="waiting_for_approval")  # fmt: skip
        decided = s.decide(Approval(run.id, "approve", "rejected", "bob", comment="too much"))
        assert decided.status == "queued" and decided.state == {"amount": 120, "note": "after 1"}
        c = s.checkpoints(run.id)[-1]
        assert c.status == "rejected" and c.decision == {"approval": "rejected", "actor": "bob", "comment": "too much"}

    def test_cancel_stops_a_queued_run_at_once_and_a_running_one_at_its_next_commit(
        self, backend: tuple[CheckpointStore, str]
    ) -> None:
        s, project = backend
        queued = s.create_run(new_run(project))
        cancelled = s.request_cancel(queued.id)
        assert cancelled.status == "cancelled" and cancelled.cancel_requested and cancelled.next_steps == ()
        assert s.claim("w1", lease_s=30, project_id=project) is None
        running = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=30, project_id=project) is not None
        asked = s.request_cancel(running.id)
        assert asked.status == "running" and asked.cancel_requested
        after = commit(s, running.id, "w1", [cp(running.id, 1)])
        assert after.cancel_requested  # the worker learns it from its commit
        end = commit(s, running.id, "w1", [], next_steps=(), status="cancelled")
        assert end.status == "cancelled" and end.lease_owner is None
        assert s.request_cancel(running.id).status == "cancelled"  # finished: unchanged
        with pytest.raises(ValueError):
            s.request_cancel("run_doesnotexist")

    def test_prune_keeps_the_last_checkpoints_of_finished_runs_and_deletes_old_runs(
        self, fresh_backend: tuple[CheckpointStore, str]
    ) -> None:
        s, project = fresh_backend  # prune is store-wide: a store of its own
        done = s.create_run(new_run(project))
        live = s.create_run(new_run(project))
        assert s.claim("w1", lease_s=30, run_id=done.id) is not None
        assert s.claim("w1", lease_s=30, run_id=live.id) is not None
        commit(s, done.id, "w1", [cp(done.id, i) for i in range(1, 6)], next_steps=(), status="succeeded")
        s.record_effect(done.id, "k", 1)
        commit(s, live.id, "w1", [cp(live.id, i) for i in range(1, 6)])
        assert s.prune(keep_last=2) == 3
        assert [c.seq for c in s.checkpoints(done.id)] == [4, 5]
        assert len(s.checkpoints(live.id)) == 5  # an unfinished run is never pruned
        assert s.prune(keep_last=2) == 0  # bounded: nothing more to delete
        assert s.prune(older_than_s=3600) == 0  # finished just now
        time.sleep(0.05)
        assert s.prune(older_than_s=0.01) >= 3  # the run, its 2 checkpoints and its effect
        assert s.get_run(done.id) is None and s.checkpoints(done.id) == [] and s.effect(done.id, "k") is None
        assert s.get_run(live.id) is not None

    def test_racing_claimers_never_share_a_run(self, backend: tuple[CheckpointStore, str]) -> None:
        s, project = backend
        ids = {s.create_run(new_run(project)).id for _ in range(6)}
        got: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(6)

        def worker(n: int) -> None:
            start.wait()
            while True:
                run = s.claim(f"w{n}", lease_s=30, project_id=project)
                if run is None:
                    return
                with lock:
                    got.append(run.id)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got) == sorted(ids)  # every run claimed exactly once


class TestMemoryStore(Conformance):
    @pytest.fixture
    def backend(self) -> tuple[CheckpointStore, str]:
        return MemoryCheckpointStore(), "proj_test"

    @pytest.fixture
    def fresh_backend(self) -> tuple[CheckpointStore, str]:
        return MemoryCheckpointStore(), "proj_test"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_sql(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One database per backend for the module (a fresh one per test costs seconds); each test has a project."""
    if request.param == "sqlite":
        st = open_store(f"sqlite:///{tmp_path_factory.mktemp('flows') / 'conformance.db'}")
    else:
        st = open_store(request.getfixturevalue("pg_url"))
    yield st
    st.dispose()


def _sql_backend(store: Store) -> tuple[CheckpointStore, str]:
    from pilothouse.store.flows import SqlCheckpointStore
    from pilothouse.store.projects import create_project

    with store.begin() as conn:
        project = create_project(conn, f"flows-{uuid.uuid4().hex[:8]}").id
    return SqlCheckpointStore(store), project


class TestSqlStore(Conformance):
    @pytest.fixture
    def backend(self, shared_sql: Store) -> tuple[CheckpointStore, str]:
        return _sql_backend(shared_sql)

    @pytest.fixture
    def fresh_backend(self, store: Store) -> tuple[CheckpointStore, str]:
        return _sql_backend(store)
