"""Signing in with an API key, the session cookie it sets, and signing out, in the browser."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from pilothouse.server.session_auth import SESSION_COOKIE
from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import sign_in, sign_out
from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant


def test_sign_in_and_out(page: Page, tenant: Tenant) -> None:
    page.goto("/traces")
    expect(page).to_have_url(re.compile(r"/login\?next=/traces$"))  # no session: to the sign-in page first
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Pilothouse")
    assert_accessible(page, "the sign-in page")
    screenshot(page, "sign-in")

    page.get_by_label("API key").fill("ph-not-a-real-key-000000000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    assert_accessible(page, "the sign-in page with an error")

    sign_in(page, tenant.admin_key, "/traces")  # back where the person was going
    expect(page.get_by_role("navigation", name="Sections").get_by_role("link", name="Traces")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator(".who")).to_contain_text("admin")
    [cookie] = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
    assert page.evaluate("document.cookie") == "", "the session cookie must not be readable by scripts"

    sign_out(page)
    page.goto("/traces")
    expect(page).to_have_url(re.compile(r"/login\?next=/traces$"))  # the session is closed on the server
