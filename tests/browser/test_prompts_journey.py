"""Journey: compare two versions of a prompt side by side and promote the newer one to production."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import sign_in
from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant


def push_version(tenant: Tenant, name: str, system: str, max_tokens: int, message: str) -> None:
    definition = {
        "model": "fake-chat",
        "max_tokens": max_tokens,
        "variables": {"question": {"type": "string"}},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "{{ question }}"}],
    }
    tenant.call("POST", f"/api/prompts/{name}/versions", json={"definition": definition, "message": message})


def test_compare_two_versions_and_promote_one(page: Page, tenant: Tenant) -> None:
    push_version(tenant, "support-answer", "You answer customer questions.", 64, "first version")
    push_version(tenant, "support-answer", "You answer customer questions in one short sentence.", 32, "shorter")
    production = tenant.call("GET", "/api/prompts/support-answer/labels")["data"]
    assert {lbl["name"]: lbl["version"] for lbl in production}["production"] == 1

    sign_in(page, tenant.admin_key, "/prompts")
    page.get_by_role("link", name="support-answer").first.click()
    expect(page).to_have_url(re.compile(r"/prompts/support-answer$"))
    expect(page.locator("#versions-table tbody tr")).to_have_count(2)
    assert_accessible(page, "a prompt")
    screenshot(page, "prompt")

    form = page.locator("#compare-form")
    form.get_by_label("Older version").select_option("1")
    form.get_by_label("Newer version").select_option("2")
    form.get_by_role("button", name="Compare side by side").click()
    expect(page).to_have_url(re.compile(r"/prompts/support-answer/diff\?a=1&b=2$"))
    diff = page.locator("#prompt-diff")
    expect(diff).to_contain_text("You answer customer questions.")
    expect(diff).to_contain_text("You answer customer questions in one short sentence.")
    expect(page.get_by_role("main")).to_contain_text("max_tokens")  # the configuration change is listed
    assert_accessible(page, "a prompt diff")
    screenshot(page, "prompt-diff")

    promote = page.locator("#promote-form")
    expect(promote.get_by_label("Version")).to_have_value("2")
    promote.get_by_label("Reason").fill("shorter answers")
    with (
        page.expect_navigation(),  # the form reloads the page once the API has answered
        page.expect_response(lambda r: r.url.endswith("/api/prompts/support-answer/promote")) as answer,
    ):
        promote.get_by_role("button", name="Promote v2").click()
    assert answer.value.status == 200, answer.value.text()

    labels = tenant.call("GET", "/api/prompts/support-answer/labels")["data"]
    assert {lbl["name"]: lbl["version"] for lbl in labels}["production"] == 2
    expect(page.get_by_role("main")).to_contain_text("production points at v2")  # the page reloaded itself
    page.goto("/prompts/support-answer")
    row = page.locator("#labels-table tbody tr", has=page.get_by_role("cell", name="production", exact=True))
    expect(row).to_contain_text("v2")
    expect(page.locator("#label-history-table")).to_contain_text("shorter answers")
