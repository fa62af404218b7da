"""The SQL checkpoint store's own rules beyond the conformance suite: the audit trail of approvals, the
per-workflow kill switch, requeueing a failed run, retention that bounds storage, and two claimers racing."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from pilothouse.flows.protocol import Approval, Checkpoint, LeaseLost, NewRun, SeqConflict
from pilothouse.store.engine import Store
from pilothouse.store.flows import FlowDisabled, SqlCheckpointStore
from pilothouse.store.projects import create_project
from pilothouse.store.tables import audit_events


def _project(store: Store) -> str:
    with store.begin() as conn:
        return create_project(conn, "flows").id


def _new(project: str, name: str = "refund") -> NewRun:
    return NewRun(
        project_id=project,
        flow="pkg.mod:flow",
        flow_name=name,
        flow_hash="h" * 16,
        input={"amount": 1},
        state={"amount": 1},
        next_steps=("check",),
    )


def _cp(run_id: str, seq: int, step: str = "check", state: dict[str, object] | None = None) -> Checkpoint:
    return Checkpoint(
        run_id=run_id,
        seq=seq,
        step=step,
        attempt=1,
        status="succeeded",
        input={"i": seq},
        output={"o": seq},
        state_after=state or {"amount": seq},
        cost_usd=0.000125,
        tokens=3,
    )


def test_fenced_commits_approval_audit_and_requeue(store: Store) -> None:
    flows = SqlCheckpointStore(store)
    project = _project(store)
    run = flows.create_run(_new(project))
    claimed = flows.claim("w1", lease_s=30)
    assert claimed is not None and claimed.id == run.id and claimed.status == "running"
    assert flows.claim("w2", lease_s=30) is None  # held
    with pytest.raises(LeaseLost):
        flows.commit_step(run.id, "w2", [_cp(run.id, 1)], state={}, next_steps=(), status="running", spent={})
    with pytest.raises(SeqConflict):
        flows.commit_step(run.id, "w1", [_cp(run.id, 2)], state={}, next_steps=(), status="running", spent={})
    after = flows.commit_step(
        run.id,
        "w1",
        [_cp(run.id, 1)],
        state={"amount": 1},
        next_steps=("approve",),
        status="waiting_for_approval",
        spent={"steps": 1},
    )
    assert after.seq == 1 and after.lease_owner is None and after.status == "waiting_for_approval"
    [cp] = flows.checkpoints(run.id)
    assert cp.cost_usd == pytest.approx(0.000125) and cp.output == {"o": 1}
    with pytest.raises(ValueError, match="waiting at step 'approve'"):
        flows.decide(Approval(run.id, "other", "approved", "key_1"))
    decided = flows.decide(Approval(run.id, "approve", "approved", "key_1", "ok", {"amount": 5}))
    assert decided.status == "queued" and decided.state["amount"] == 5 and decided.seq == 2
    with store.connect() as conn:
        event = conn.execute(select(audit_events).where(audit_events.c.action == "flow.approve")).one()
    assert event.target == run.id and event.actor == "key_1" and event.details["state_edits"] == {"amount": 5}
    assert flows.claim("w2", lease_s=30) is not None
    failed = flows.commit_step(
        run.id,
        "w2",
        [_cp(run.id, 3, "approve")],
        state={"amount": 5},
        next_steps=("pay",),
        status="failed",
        spent={},
        error={"step": "pay", "cause": "Boom", "message": "x", "state": {}},
    )
    assert failed.status == "failed"
    again = flows.requeue(run.id)
    assert again.status == "queued" and again.error is None and again.next_steps == ("pay",)


def test_kill_switch_and_retention(store: Store) -> None:
    flows = SqlCheckpointStore(store)
    project = _project(store)
    queued = flows.create_run(_new(project))
    flows.set_flow_enabled(project, "refund", False, reason="incident", actor="key_1")
    with pytest.raises(FlowDisabled, match="pilothouse flow enable refund"):
        flows.create_run(_new(project))
    assert flows.claim("w", lease_s=30) is None  # its runs are not claimed
    flows.set_flow_enabled(project, "refund", True, actor="key_1")
    assert flows.claim("w", lease_s=30, run_id=queued.id) is not None
    flows.commit_step(
        queued.id,
        "w",
        [_cp(queued.id, i) for i in range(1, 11)],
        state={},
        next_steps=(),
        status="succeeded",
        spent={},
    )
    flows.record_effect(queued.id, "k", {"paid": 1})
    flows.record_effect(queued.id, "k", {"paid": 2})
    assert flows.effect(queued.id, "k") == {"paid": 1}
    assert flows.prune(keep_last=3) == 7
    assert [c.seq for c in flows.checkpoints(queued.id)] == [8, 9, 10]
    assert flows.prune(keep_last=3) == 0  # bounded: a second pass finds nothing
    assert flows.prune(older_than_s=0) == 1 + 3 + 1  # the run, its checkpoints, its effect
    assert flows.storage() == {"flow_runs": 0, "flow_checkpoints": 0, "flow_effects": 0}


def test_racing_claimers_take_each_run_once(store: Store) -> None:
    flows = SqlCheckpointStore(store)
    project = _project(store)
    ids = {flows.create_run(_new(project)).id for _ in range(12)}
    taken: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while (run := flows.claim(name, lease_s=60)) is not None:
            with lock:
                taken.append(run.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)
