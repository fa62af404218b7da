"""Journey: approve a workflow step that waits for a person."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import sign_in
from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant

FLOW = f"{Path(__file__).with_name('refund_flow.py')}:flow"


def wait_for_status(tenant: Tenant, run_id: str, status: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = tenant.call("GET", f"/api/flows/runs/{run_id}")
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, not {status}: {run}"
        time.sleep(0.1)


def start_waiting_run(tenant: Tenant, amount: float) -> str:
    run = tenant.call("POST", "/api/flows/runs", json={"flow": FLOW, "input": {"amount": amount}})
    run_id = str(run["id"])
    wait_for_status(tenant, run_id, "waiting_for_approval")
    return run_id


def test_approve_a_waiting_step(page: Page, tenant: Tenant) -> None:
    run_id = start_waiting_run(tenant, 120)
    sign_in(page, tenant.admin_key, "/flows")
    table = page.locator("#runs-table")
    row = table.locator("tbody tr", has=page.get_by_role("link", name=run_id))
    expect(row).to_contain_text("waiting for approval")
    expect(row).to_contain_text("browser-refund")
    assert_accessible(page, "the workflow runs")
    screenshot(page, "flows")

    row.get_by_role("link", name=run_id).click()
    expect(page).to_have_url(f"{tenant.server.url}/flows/runs/{run_id}")
    expect(page.locator("#decide-h")).to_contain_text("approve")
    assert_accessible(page, "a run waiting for approval")
    screenshot(page, "flow-run-waiting")

    form = page.locator("#approve-form")
    form.get_by_label("Comment (optional)").fill("checked the parcel photos")
    with (
        page.expect_navigation(),  # the form reloads the page once the API has answered
        page.expect_response(lambda r: r.url.endswith(f"/api/flows/runs/{run_id}/approve")) as answer,
    ):
        form.get_by_role("button", name="Approve").click()
    assert answer.value.status == 200, answer.value.text()

    run = wait_for_status(tenant, run_id, "succeeded")
    assert run["state"]["paid"] is True, run
    page.reload()
    expect(page.locator("#approve-form")).to_have_count(0)  # nothing waits any more
    path = f"/api/flows/runs/{run_id}/approve"
    audit = tenant.call("GET", "/api/audit", params={"action": "dashboard.request", "target": path})
    assert len(audit["data"]) == 1, "the approval through the dashboard is in the audit log"
