"""The Workflows pages: runs (waiting ones first), a run's graph with the path taken and its decision path, and
approving or rejecting a waiting run through the API with the session's CSRF token.

The runs execute on the server's own flow worker; the flow is the one defined below (this file is loaded as the
flow's file, as `pilothouse flow run tests/ui/test_flows.py:flow` would load it)."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from pilothouse.flows import Flow, StepContext

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from tests.ui.conftest import Dashboard


class Order(BaseModel):
    amount: float
    note: str = ""


flow = Flow("ui-order", state=Order)


@flow.step()
def check(state: Order, ctx: StepContext) -> dict[str, object]:
    return {"note": f"checked {state.amount:g}"}


@flow.step()
def ship(state: Order, ctx: StepContext) -> dict[str, object]:
    return {"note": state.note + ", shipped"}


def size(state: Order) -> str:
    return "big" if state.amount > 100 else "small"


flow.approval("approve", message=lambda s: f"Ship an order of {s.amount:g}?")
flow.start("check")
flow.branch("check", size, {"big": "approve", "small": "ship"})
flow.edge("approve", "ship")
flow.edge("ship", Flow.END)

FLOW_REF = f"{__file__}:flow"


def start(api: TestClient, amount: float) -> str:
    r = api.post("/api/flows/runs", json={"flow": FLOW_REF, "input": {"amount": amount}})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def wait(api: TestClient, run_id: str, *statuses: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run: dict[str, Any] = api.get(f"/api/flows/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, not {statuses}"
        time.sleep(0.05)


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table {table_id}"
    return match.group(0)


def test_approve_a_waiting_run_from_its_page(dash: Dashboard) -> None:
    small = start(dash.admin_api, 20)
    wait(dash.admin_api, small, "succeeded")
    big = start(dash.admin_api, 500)
    wait(dash.admin_api, big, "waiting_for_approval")
    dev = dash.session("developer")

    runs = dev.client.get("/flows")
    assert runs.status_code == 200, runs.text
    rows = table(runs.text, "runs-table")
    assert rows.index(big) < rows.index(small), "the waiting run comes first"
    assert "waiting for approval" in rows and "succeeded" in rows and "ui-order" in rows
    filtered = table(dev.client.get("/flows", params={"status": "succeeded"}).text, "runs-table")
    assert small in filtered and big not in filtered
    live_rows = dev.client.get("/flows/live", params={"status": "waiting_for_approval"}).text
    assert big in live_rows and small not in live_rows

    page = dev.client.get(f"/flows/runs/{big}")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="approve-form"' in html and 'id="reject-form"' in html and 'id="cancel-form"' in html
    assert f'data-api="/api/flows/runs/{big}/approve"' in html
    assert 'name="step" value="approve"' in html
    assert "<svg" in html and 'role="img"' in html
    # The branch took `big` to the approval; `small` to ship was not taken.
    assert re.search(r"→ approve <span class=\"muted\">\(size = big\)</span> <strong class=\"taken\">taken", html)
    assert not re.search(r"→ ship <span class=\"muted\">\(size = small\)</span> <strong", html)
    assert "-&gt; approve (size = &#39;big&#39;)" in html  # the decision path's reason
    assert 'data-live="/flows/runs/' in html  # a run still going refreshes itself

    refused = dev.client.post(f"/api/flows/runs/{big}/approve", json={"step": "approve"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    approved = dev.api("POST", f"/api/flows/runs/{big}/approve", json={"step": "approve", "comment": "fine by me"})
    assert approved.status_code == 200, approved.text
    done = wait(dash.admin_api, big, "succeeded")
    assert done["state"]["note"] == "checked 500, shipped"

    after = dev.client.get(f"/flows/runs/{big}").text
    assert 'id="approve-form"' not in after and "data-live=" not in after.split('id="run-live"')[1][:40]
    assert f"approved by {dev.key_id}: fine by me" in after
    path = re.search(r'<ol id="run-path">.*?</ol>', after, re.S)
    assert path is not None
    steps = re.findall(r"<li value=\"\d+\"><strong>(\w+)</strong> <span class=\"badge[^>]*>(\w+)<", path.group(0))
    assert steps == [
        ("check", "succeeded"),
        ("approve", "waiting"),
        ("approve", "approved"),
        ("approve", "succeeded"),
        ("ship", "succeeded"),
    ], steps
    assert re.search(r"→ ship <strong class=\"taken\">taken", after)  # approve -> ship
    assert re.search(r"→ end <strong class=\"taken\">taken", after)

    audit = dash.admin_api.get("/api/audit", params={"action": "dashboard.request", "actor": dev.key_id}).json()
    assert any(e["target"] == f"/api/flows/runs/{big}/approve" for e in audit["data"]), audit


def test_reject_cancel_and_what_a_viewer_sees(dash: Dashboard) -> None:
    first, second = start(dash.admin_api, 300), start(dash.admin_api, 400)
    wait(dash.admin_api, first, "waiting_for_approval")
    wait(dash.admin_api, second, "waiting_for_approval")
    viewer = dash.session("viewer")
    page = viewer.client.get(f"/flows/runs/{first}").text
    assert 'id="approve-form"' not in page and "needs a developer key" in page
    denied = viewer.api("POST", f"/api/flows/runs/{first}/reject", json={"step": "approve"})
    assert denied.status_code == 403

    dev = dash.session("developer")
    wrong = dev.api("POST", f"/api/flows/runs/{first}/approve", json={"step": "check"})
    assert wrong.status_code == 409
    rejected = dev.api("POST", f"/api/flows/runs/{first}/reject", json={"step": "approve", "comment": "too big"})
    assert rejected.status_code == 200, rejected.text
    failed = wait(dash.admin_api, first, "failed")
    assert failed["error"]["step"] == "approve"
    html = dev.client.get(f"/flows/runs/{first}").text
    assert "rejected by" in html and "Error at step <strong>approve</strong>" in html

    cancelled = dev.api("POST", f"/api/flows/runs/{second}/cancel", json={})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert "cancelled" in table(viewer.client.get("/flows", params={"status": "cancelled"}).text, "runs-table")


def test_bad_ids_and_filters_are_html_errors(dash: Dashboard) -> None:
    viewer = dash.session("viewer")
    missing = viewer.client.get("/flows/runs/run_nope")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "no flow run &#39;run_nope&#39;" in missing.text
    bad = viewer.client.get("/flows", params={"status": "sleeping"})
    assert bad.status_code == 400 and "unknown status &#39;sleeping&#39;" in bad.text
    empty = viewer.client.get("/flows")
    assert empty.status_code == 200 and "No runs" in empty.text
    no_session = dash.admin_api.get("/flows", follow_redirects=False)  # a key alone is no dashboard session
    assert no_session.status_code == 303 and no_session.headers["location"] == "/login?next=/flows"
