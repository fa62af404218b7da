"""Journeys on the traces pages: find the costliest trace of the day and open it; watch the live tail get a new
trace without reloading."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import column, sign_in
from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant


def test_find_the_costliest_trace_of_the_day_and_open_it(page: Page, tenant: Tenant) -> None:
    yesterday = tenant.trace("refund-yesterday", "9.50", started_at=time.time() - 30 * 3600)  # costlier, too old
    cheap = tenant.trace("order-status", "0.0021")
    costliest = tenant.trace("refund-dispute", "0.4875", user_id="user-17")
    failed = tenant.trace("address-change", "0.0340", status="error")
    for seeded in (yesterday, cheap, costliest, failed):
        tenant.wait_for_trace(seeded.id)

    sign_in(page, tenant.admin_key, "/traces")
    page.get_by_label("Started in").select_option("24h")
    page.get_by_label("Sort").select_option("cost")
    page.get_by_role("button", name="Show traces").click()
    page.wait_for_url(re.compile(r"/traces\?.*order=cost"))  # the filter form is a plain GET: the choice is in the URL
    assert "range=24h" in page.url
    names = [n.split()[0] for n in column(page, "traces-table", "Trace")]
    assert names == ["refund-dispute", "address-change", "order-status"], names  # yesterday's is not of the day
    assert column(page, "traces-table", "Cost")[0] == "$0.4875"
    assert_accessible(page, "the traces list")
    screenshot(page, "traces")

    page.locator("#traces-table tbody tr").first.get_by_role("link", name="refund-dispute").click()
    expect(page).to_have_url(f"{tenant.server.url}/traces/{costliest.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Trace {costliest.id}")
    expect(page.locator("#trace-summary")).to_contain_text("$0.4875")
    expect(page.locator("#trace-facts")).to_contain_text("user-17")
    spans = page.locator("#spans-table tbody tr")
    expect(spans).to_have_count(2)
    expect(spans.nth(0)).to_contain_text("refund-dispute")
    expect(spans.nth(1)).to_contain_text("chat fake-chat")
    expect(spans.nth(1)).to_contain_text("516")  # 420 input + 96 output tokens
    assert_accessible(page, "a trace")
    screenshot(page, "trace")


def test_live_tail_shows_a_new_trace_without_a_reload(page: Page, tenant: Tenant) -> None:
    first = tenant.trace("first-call", "0.001")
    tenant.wait_for_trace(first.id)
    sign_in(page, tenant.admin_key, "/traces/tail")
    rows = page.locator("#tail-table tbody tr")
    expect(rows).to_have_count(1)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    arrived = tenant.trace("arrived-later", "0.002")
    tenant.wait_for_trace(arrived.id)
    expect(page.locator(f'#tail-table tr[data-trace-id="{arrived.id}"]')).to_be_visible(timeout=8_000)
    expect(rows).to_have_count(2)
    assert page.evaluate("window.__sameDocument === true"), "the tail must update in place, not by reloading"
    assert_accessible(page, "the live tail")
    screenshot(page, "traces-tail")

    page.get_by_role("button", name="Pause").click()  # paused: new traces wait until resumed
    expect(page.get_by_role("button", name="Resume")).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(2_500)  # a refresh already under way when the button was pressed lands first
    held = tenant.trace("while-paused", "0.003")
    tenant.wait_for_trace(held.id)
    page.wait_for_timeout(2_500)  # longer than one refresh period
    expect(page.locator(f'#tail-table tr[data-trace-id="{held.id}"]')).to_have_count(0)
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(f'#tail-table tr[data-trace-id="{held.id}"]')).to_be_visible(timeout=8_000)
