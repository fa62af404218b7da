"""Steps every journey takes in the browser: signing in and out, going to a page, reading a table."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from pilothouse.server.session_auth import SESSION_COOKIE


def sign_in(page: Page, key: str, path: str = "/") -> None:
    """Sign in with `key` on the sign-in page, as a person does, and land on `path`."""
    page.goto("/login?next=" + path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + r"(\?.*)?$"))


def session_cookie(base_url: str, key: str) -> dict[str, str]:
    """Sign in once over HTTP (the same form post a browser makes) and return the session cookie, for tests
    that open many pages as one person: `page.context.add_cookies([cookie])`."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=30) as client:
        response = client.post("/login", data={"api_key": key, "next": "/"})
        assert response.status_code == 303, response.text
        return {"name": SESSION_COOKIE, "value": response.cookies[SESSION_COOKIE], "url": base_url}


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def open_page(page: Page, path: str, status: int = 200) -> None:
    """Go to `path` and check the server answered `status` (a page that errors fails here, not later)."""
    response = page.goto(path)
    assert response is not None, f"no response for {path}"
    assert response.status == status, f"GET {path} -> {response.status}"


def column(page: Page, table_id: str, header: str) -> list[str]:
    """The texts of one column of a table (by its header's text), top to bottom."""
    table = page.locator(f"#{table_id}")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    assert header in headers, f"#{table_id} has no column {header!r}: {headers}"
    index = headers.index(header) + 1
    return [t.strip() for t in table.locator(f"tbody tr > :nth-child({index})").all_inner_texts()]
