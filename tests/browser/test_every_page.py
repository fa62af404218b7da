"""Every dashboard page in the browser, filled with data: it loads, passes the axe-core audit (no serious or
critical WCAG 2.x A/AA violation) and is kept as a screenshot (test-artifacts/screenshots/)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser import showcase
from tests.browser.accessibility import assert_accessible
from tests.browser.dashboard import open_page, session_cookie, sign_in
from tests.browser.screenshots import screenshot
from tests.browser.showcase import Showcase
from tests.browser.tenant import Tenant
from tests.support.servers import RunningServer

PAGES = [  # screenshot name, path ({trace}, {run} and {waiting} filled in from the showcase)
    ("overview", "/"),
    ("traces-list", "/traces?range=24h&order=cost"),
    ("trace-detail", "/traces/{trace}"),
    ("traces-live-tail", "/traces/tail"),
    ("prompts", "/prompts"),
    ("prompt-detail", f"/prompts/{showcase.PROMPT}"),
    ("prompt-compare", f"/prompts/{showcase.PROMPT}/diff?a=1&b=2"),
    ("evals", "/evals"),
    ("evals-history", "/evals/history"),
    ("evals-dataset", f"/evals/datasets/{showcase.DATASET}"),
    ("annotation-queues", "/evals/queues"),
    ("annotation-queue", f"/evals/queues/{showcase.QUEUE}"),
    ("rag", "/rag"),
    ("rag-collection", f"/rag/{showcase.COLLECTION}"),
    ("rag-playground", f"/rag/{showcase.COLLECTION}/query?q=who+approves+a+refund&mode=hybrid"),
    ("monitors", "/monitors"),
    ("monitors-series", "/monitors/series"),
    ("monitor-rule", f"/monitors/rules/{showcase.RULE}"),
    ("workflows", "/flows"),
    ("workflow-run-waiting", "/flows/runs/{waiting}"),
    ("workflow-run-done", "/flows/runs/{run}"),
    ("governance", "/governance"),
    ("governance-policies", "/governance/policies"),
    ("governance-keys", "/governance/keys"),
    ("governance-budgets", "/governance/budgets"),
    ("governance-audit", "/governance/audit"),
]


@pytest.fixture(scope="module")
def shown(server: RunningServer) -> Iterator[Showcase]:
    """One seeded project for every page test of this module (they only read it)."""
    tenant = Tenant.create(server)
    try:
        yield showcase.build(tenant)
    finally:
        tenant.close()


@pytest.fixture(scope="module")
def cookie(shown: Showcase) -> dict[str, str]:
    """One dashboard session (the sign-in journey is tested on its own) for all the page visits."""
    return session_cookie(shown.tenant.server.url, shown.tenant.admin_key)


@pytest.mark.parametrize(("name", "path"), PAGES, ids=[name for name, _ in PAGES])
def test_page_loads_and_is_accessible(
    page: Page, shown: Showcase, cookie: dict[str, str], name: str, path: str
) -> None:
    target = path.format(trace=shown.costliest.id, run=shown.finished_run, waiting=shown.waiting_run)
    page.context.add_cookies([cookie])  # type: ignore[list-item]
    open_page(page, target)
    expect(page.get_by_role("heading", level=1)).not_to_be_empty()
    expect(page.locator("main h2, main p, main table").first).to_be_visible()
    assert_accessible(page, target)
    screenshot(page, name)


def test_the_error_page_is_accessible(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant.admin_key, "/traces")
    open_page(page, "/traces/" + "0" * 32, status=404)
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    assert_accessible(page, "the 404 page")
    screenshot(page, "not-found")
