"""Every dashboard page, walked with a key of every role: a section the role may not see answers the 403 page,
every other page renders (nothing answers 500), and every page needs a session."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from pilothouse.store.keys import ROLES, role_at_least
from pilothouse.ui.nav import SECTIONS, current_section
from pilothouse.ui.pages import ROUTERS
from tests.ui.conftest import Dashboard


def _plain_pages() -> list[str]:
    """GET routes of the pages with no path parameter."""
    paths = set()
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and "GET" in route.methods and not re.search(r"\{", route.path):
                paths.add(route.path)
    return sorted(paths)


def _required_query(path: str) -> bool:
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path == path:
                return any(p.field_info.is_required() for p in route.dependant.query_params)
    return False


def test_every_page_answers_each_role_as_its_section_allows(dash: Dashboard) -> None:
    pages = _plain_pages()
    assert "/" in pages and "/traces" in pages and "/governance" in pages, pages
    minimum = {s.path: s.min_role for s in SECTIONS}
    for role in ROLES:
        session = dash.session(role)
        for path in pages:
            r = session.client.get(path)
            allowed = role_at_least(role, minimum[current_section(path)])
            assert r.status_code < 500, f"{role} {path}: {r.status_code}\n{r.text[:2000]}"
            if not allowed:
                assert r.status_code == 403, f"{role} may not see {path}, got {r.status_code}"
                assert "text/html" in r.headers["content-type"]
            elif not _required_query(path):
                assert r.status_code == 200, f"{role} {path}: {r.status_code}\n{r.text[:2000]}"


def test_every_page_needs_a_session(dash: Dashboard) -> None:
    client = dash.browser()
    for path in _plain_pages():
        r = client.get(path)
        assert r.status_code in (303, 401), f"{path} answered {r.status_code} without a session"
        if r.status_code == 303:
            assert r.headers["location"].startswith("/login?next=")
