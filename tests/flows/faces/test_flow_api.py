"""The /api/flows faces beyond the demo: reject, cancel, resume of a failed run, state edits validated, the
per-workflow kill switch and retention, with the SDK against a real server."""

from __future__ import annotations

import pytest

from pilothouse.sdk.client import Pilothouse, PilothouseError
from tests.flows.faces.route_walk import WALK_FLOW
from tests.support.servers import RunningServer


@pytest.fixture
def ph(server: RunningServer) -> Pilothouse:
    return Pilothouse(server.url, server.admin_key)


def waiting(ph: Pilothouse, **input: object) -> str:
    run = ph.wait_flow_run(ph.start_flow_run(WALK_FLOW, input)["id"], timeout_s=60)
    assert run["status"] == "waiting_for_approval", run
    return str(run["id"])


def test_decisions_cancel_and_resume(ph: Pilothouse) -> None:
    run_id = waiting(ph)
    with pytest.raises(PilothouseError) as bad:
        ph.approve_flow_run(run_id, step="approve", state={"fail": "not a boolean"})
    assert bad.value.status == 400 and "fail" in bad.value.message
    with pytest.raises(PilothouseError) as wrong:
        ph.approve_flow_run(run_id, step="first")
    assert wrong.value.status == 409 and "waiting at step 'approve'" in wrong.value.message
    ph.approve_flow_run(run_id, step="approve", state={"note": "edited"}, comment="fine")
    done = ph.wait_flow_run(run_id, timeout_s=60)
    assert done["status"] == "succeeded" and done["state"]["note"] == "edited"

    rejected = ph.wait_flow_run(ph.reject_flow_run(waiting(ph), step="approve", comment="no")["id"], timeout_s=60)
    assert rejected["status"] == "failed" and rejected["error"]["step"] == "approve"

    cancelled = ph.cancel_flow_run(waiting(ph))
    assert cancelled["status"] == "cancelled" and cancelled["cancel_requested"] is True

    failed = ph.wait_flow_run(ph.start_flow_run(WALK_FLOW, {"fail": True})["id"], timeout_s=60)
    assert failed["status"] == "failed" and failed["error"]["step"] == "first"
    assert "asked to fail" in failed["error"]["message"]
    again = ph.wait_flow_run(ph.resume_flow_run(failed["id"])["id"], timeout_s=60)
    assert again["status"] == "failed" and again["seq"] > failed["seq"]  # it ran the failed step again
    with pytest.raises(PilothouseError) as finished:
        ph.resume_flow_run(done["id"])
    assert finished.value.status == 409


def test_kill_switch_and_prune(ph: Pilothouse) -> None:
    ph.set_flow_enabled("walk", False, reason="incident")
    try:
        with pytest.raises(PilothouseError) as refused:
            ph.start_flow_run(WALK_FLOW, {})
        assert refused.value.status == 409 and "pilothouse flow enable walk" in refused.value.message
    finally:
        ph.set_flow_enabled("walk", True)
    run_id = waiting(ph)
    ph.approve_flow_run(run_id, step="approve")
    assert ph.wait_flow_run(run_id, timeout_s=60)["status"] == "succeeded"
    assert ph.prune_flow_runs(keep_last=1) >= 3
    assert [p["step"] for p in ph.show_flow_run(run_id)["path"]] == ["approve"]  # only the last checkpoint kept
    with pytest.raises(PilothouseError) as nothing:
        ph.prune_flow_runs()
    assert nothing.value.status == 400
