"""Keyboard use: signing in without a mouse, the skip link, the navigation and the main forms in Tab order."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.tenant import Tenant

NAV = ["Overview", "Traces", "Prompts", "Evaluations", "RAG", "Monitors", "Workflows", "Governance"]


def focused(page: Page) -> str:
    """What has the keyboard focus: its tag, id and text, for readable failures."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement; "
            "return `${e.tagName.toLowerCase()}#${e.id}|${(e.innerText || e.value || '').trim().slice(0, 40)}`; }"
        )
    )


def has_visible_focus(page: Page) -> bool:
    """Whether the focused element is drawn with a focus ring (an outline or a box shadow)."""
    return bool(
        page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement); "
            "return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'; }"
        )
    )


def test_sign_in_with_the_keyboard_alone(page: Page, tenant: Tenant) -> None:
    page.goto("/login?next=/traces")
    expect(page.get_by_label("API key")).to_be_focused()  # the key field has the focus at once (autofocus)
    page.keyboard.type(tenant.admin_key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/traces$"))


def test_skip_link_nav_and_forms_in_tab_order(page: Page, tenant: Tenant) -> None:
    page.goto("/login?next=/traces")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(tenant.admin_key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/traces$"))

    page.keyboard.press("Tab")
    assert focused(page) == "a#|Skip to content", focused(page)
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()  # shown when focused
    assert has_visible_focus(page)

    page.keyboard.press("Tab")
    assert focused(page) == "a#|Pilothouse", focused(page)
    for label in NAV:  # every section, in the order the bar shows them
        page.keyboard.press("Tab")
        assert focused(page) == f"a#|{label}", f"expected the {label} link, focus is on {focused(page)}"
        assert has_visible_focus(page), f"the {label} link shows no focus ring"
    page.keyboard.press("Tab")
    assert focused(page) == "button#|Sign out", focused(page)

    page.keyboard.press("Shift+Tab")  # back up to the skip link and use it
    for _ in NAV:
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "a#|Skip to content", focused(page)
    page.keyboard.press("Enter")
    assert focused(page).startswith("main#main"), focused(page)

    page.keyboard.press("Tab")  # the first control of the page's content, then its filter form
    assert focused(page) == "a#|Live tail of new traces", focused(page)
    page.keyboard.press("Tab")
    assert focused(page).startswith("input#f-q"), focused(page)
    page.keyboard.type("parcel")
    page.keyboard.press("Enter")  # submits the filter form
    expect(page).to_have_url(re.compile(r"/traces\?.*q=parcel"))
