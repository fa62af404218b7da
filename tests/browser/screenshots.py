"""Screenshots of dashboard pages, kept as test artefacts (test-artifacts/screenshots/, ignored by git).

docs/dashboard.md shows a chosen set of them, copied to docs/images/dashboard/ (see that page for the command).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import Page

from tests.support.servers import REPO

SHOTS = Path(os.environ.get("PILOTHOUSE_SCREENSHOTS", REPO / "test-artifacts" / "screenshots"))
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,80}$")


def screenshot(page: Page, name: str) -> Path:
    """Save what the browser shows now (the 1280x800 viewport) as `<name>.png`; the file's path."""
    assert _NAME.match(name), f"screenshot names are lower-case words and dashes, not {name!r}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False, animations="disabled")
    return path
