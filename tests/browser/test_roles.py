"""Journey: a viewer key is refused an admin page, and the dashboard does not offer what the role may not do."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import open_page, sign_in
from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant


def test_viewer_is_denied_an_admin_page(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant.key("viewer"), "/")
    nav = page.get_by_role("navigation", name="Sections")
    expect(nav.get_by_role("link", name="Traces")).to_be_visible()
    expect(nav.get_by_role("link", name="Governance")).to_have_count(0)  # not offered to a viewer
    expect(page.locator(".who")).to_contain_text("viewer")

    open_page(page, "/governance", status=403)  # typed in by hand: refused by the server, as the API would
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.get_by_role("alert")).to_contain_text("needs the 'admin' role")
    expect(page.get_by_role("alert")).to_contain_text("'viewer' key")
    expect(page.get_by_role("link", name="Sign in with another key")).to_be_visible()
    assert_accessible(page, "the refusal page")
    screenshot(page, "viewer-denied")

    refused = page.request.get("/api/keys")  # the same session cannot reach it through the API either
    assert refused.status == 403, refused.text()


def test_admin_sees_the_admin_page(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant.admin_key, "/")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Governance").click()
    expect(page).to_have_url(f"{tenant.server.url}/governance")
    expect(page.get_by_role("heading", level=1)).not_to_have_text("Not allowed")
