"""Fixtures for the browser tests: one `pilothouse up` per pytest worker (SQLite, a fake priced model), one
headless Chromium per worker, and per test a fresh project (`tenant`) and a fresh browser context (`page`).

Chromium is Debian's package at /usr/bin/chromium (`scripts/install-browser.sh` installs it; another path can be
given in PILOTHOUSE_CHROMIUM). Playwright drives it at that path; Playwright's own browser downloads are never
used. A test fails when the page throws an uncaught JavaScript error, and leaves a screenshot when it fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Error, Page, sync_playwright

from tests.browser.screenshots import screenshot
from tests.browser.tenant import Tenant
from tests.support.servers import RunningServer, start_server

CHROMIUM = Path(os.environ.get("PILOTHOUSE_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1280, "height": 800}

CONFIG = """\
include_default_models = false
canary_check_interval_s = 0

[local]
preload = false

[[models]]
name = "fake-chat"
[[models.deployments]]
provider = "fake"
model = "fake"
input_price_per_mtok = "1"
output_price_per_mtok = "2"
"""


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("dashboard")
    config = root / "pilothouse.toml"
    config.write_text(CONFIG, encoding="utf-8")
    running = start_server(root / "data", config=config)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test file. Not for the session: Playwright's sync API keeps its event loop marked as
    running in this thread until it stops, and every asyncio test that a worker runs after a browser file would
    then fail ("Cannot run the event loop while another loop is running")."""
    if not CHROMIUM.is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: run scripts/install-browser.sh (or set PILOTHOUSE_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture
def tenant(server: RunningServer) -> Iterator[Tenant]:
    """A fresh project with an admin key, so a test sees only its own data on the shared server."""
    made = Tenant.create(server)
    yield made
    made.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if call.when == "call":
        item.stash[_FAILED] = report.failed  # type: ignore[attr-defined]
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, server: RunningServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new browser context (no cookies) on the server, 1280x800; uncaught script errors fail the test."""
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(f"{opened.url}: {exc}"))
    yield opened
    if request.node.stash.get(_FAILED, False):
        name = "failed-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:70].strip("-")
        with contextlib.suppress(Error):
            screenshot(opened, name)
    context.close()
    assert not errors, "uncaught JavaScript errors:\n" + "\n".join(errors)
