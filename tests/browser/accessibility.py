"""The accessibility audit: axe-core, run inside the page in the real browser.

axe-core's script comes from the `axe-playwright-python` package (it ships `axe.min.js`; nothing is fetched).
Only WCAG 2.0/2.1 level A and AA rules run, and a page fails on violations of impact `serious` or `critical`;
`describe` prints them so a failure says which rule, which element and how to fix it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

from playwright.sync_api import Page

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
FAILING_IMPACTS = frozenset({"serious", "critical"})


@cache
def axe_script() -> str:
    """axe-core's browser script, as shipped inside the axe-playwright-python wheel."""
    return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def audit(page: Page) -> list[dict[str, Any]]:
    """The serious and critical WCAG A/AA violations axe-core finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_script())
    options = {"runOnly": {"type": "tag", "values": list(WCAG_TAGS)}, "resultTypes": ["violations"]}
    result: dict[str, Any] = page.evaluate("options => window.axe.run(document, options)", options)
    return [v for v in result["violations"] if v.get("impact") in FAILING_IMPACTS]


def describe(violations: list[dict[str, Any]], where: str) -> str:
    """A readable report: each rule with its impact, help text and link, then each element that breaks it."""
    lines = [f"{len(violations)} accessibility violation(s) on {where}:"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{v.get('helpUrl', '')}]")
        for node in v["nodes"][:10]:
            target = " ".join(str(t) for t in node.get("target", []))
            lines.append(f"    at {target}: {node.get('html', '')[:200]}")
            summary = node.get("failureSummary")
            if summary:
                lines.extend(f"      {line}" for line in str(summary).splitlines())
        if len(v["nodes"]) > 10:
            lines.append(f"    … and {len(v['nodes']) - 10} more elements")
    return "\n".join(lines)


def assert_accessible(page: Page, where: str | None = None) -> None:
    """Fail with `describe`'s report when the page has serious or critical violations."""
    found = audit(page)
    assert not found, describe(found, where or page.url)
