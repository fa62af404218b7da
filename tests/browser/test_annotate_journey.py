"""Journey: a person scores an item of an annotation queue; the answer becomes a human score on the trace."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import sign_in
from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant


def test_annotate_an_item(page: Page, tenant: Tenant) -> None:
    traces = [tenant.trace("refund-dispute", "0.02"), tenant.trace("order-status", "0.01")]
    for t in traces:
        tenant.wait_for_trace(t.id)
    score = {"name": "helpfulness", "data_type": "numeric", "min": 1, "max": 5}
    tenant.call("POST", "/api/evals/queues", json={"name": "support-review", "score": score}, expect=201)
    tenant.call("POST", "/api/evals/queues/support-review/items", json={"trace_ids": [t.id for t in traces]})

    sign_in(page, tenant.admin_key, "/evals/queues")
    row = page.locator("#queues-table tbody tr", has=page.get_by_role("link", name="support-review"))
    expect(row).to_contain_text(re.compile(r"helpfulness \(numeric, 1(\.0)? to 5(\.0)?\)"))
    row.get_by_role("link", name="support-review").click()
    task = page.locator("#annotation-task")
    first_task = task.get_attribute("data-task")
    expect(task).to_contain_text("Where is my parcel?")  # what the person judges: the trace's input and output
    expect(task).to_contain_text("It left the depot this morning.")
    assert_accessible(page, "an annotation queue item")
    screenshot(page, "annotate")

    form = page.locator("#annotate-item-form")
    form.get_by_label("helpfulness: value").fill("4")
    form.get_by_label("Comment (optional)").fill("right answer, could name the carrier")
    with (
        page.expect_navigation(),  # the form reloads the page once the API has answered
        page.expect_response(lambda r: "/api/evals/queues/support-review/tasks/" in r.url) as answer,
    ):
        form.get_by_role("button", name="Save and load the next item").click()
    assert answer.value.status == 200, answer.value.text()
    expect(page.locator("#annotation-task")).not_to_have_attribute("data-task", first_task or "")  # the next one

    scored = tenant.call("GET", "/api/scores", params={"name": "helpfulness", "source": "human"})["data"]
    assert len(scored) == 1, scored
    assert scored[0]["value"] == 4 and scored[0]["comment"] == "right answer, could name the carrier"
    assert scored[0]["trace_id"] in {t.id for t in traces}

    out_of_range = page.locator("#annotate-item-form")
    out_of_range.get_by_label("helpfulness: value").fill("9")
    out_of_range.get_by_role("button", name="Save and load the next item").click()  # the browser refuses it
    assert page.locator("#annotate-item-form input#value").evaluate("el => !el.validity.valid")
    assert len(tenant.call("GET", "/api/scores", params={"name": "helpfulness"})["data"]) == 1
