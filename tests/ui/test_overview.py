"""The Overview page: totals and charts from the rollups, filters, time ranges, roles and bad input."""

from __future__ import annotations

import re
import time

import pytest

from tests.ui.conftest import Dashboard
from tests.ui.test_traces import ingest


def stat(page: str, label: str) -> str:
    """The value shown on the stat card `label` (its first text)."""
    found = re.search(rf"<dt>{re.escape(label)}</dt><dd>([^<]*)", page)
    assert found, f"no stat card {label!r}"
    return found.group(1).strip()


def chat(dash: Dashboard, text: str) -> dict[str, object]:
    r = dash.admin_api.post(
        "/v1/chat/completions", json={"model": "fake-chat", "messages": [{"role": "user", "content": text}]}
    )
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def wait_for(dash: Dashboard, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(dash.admin_api.get("/api/traces", params={"limit": 100}).json()["data"]) < count:
        assert time.monotonic() < deadline, "the traces were not stored"
        time.sleep(0.05)


def test_overview_totals_match_what_was_spent(dash: Dashboard) -> None:
    ingest(dash, "a", cost="0.25")
    ingest(dash, "b", cost="0.5", status="error")
    answer = chat(dash, "hello there")
    wait_for(dash, 3)
    usage = answer["usage"]
    assert isinstance(usage, dict)
    report = dash.admin_api.get("/api/costs/report", params={"since": "24h"}).json()["total"]
    viewer = dash.session("viewer")
    page = viewer.client.get("/")
    assert page.status_code == 200, page.text
    text = page.text
    assert stat(text, "Requests") == "3"
    assert stat(text, "Error rate") == "33.3%"
    tokens = 2 * (420 + 96) + usage["prompt_tokens"] + usage["completion_tokens"]
    assert stat(text, "Tokens") == f"{tokens:,}"
    assert report["requests"] == 3
    assert "$0.75" in stat(text, "Cost")  # 0.25 + 0.5 + the fake model's (tiny) price
    assert stat(text, "Guard blocks") == "0"
    # charts: one per measure, each with its data table
    for title in ("Requests and errors", "Cost", "Latency", "Tokens", "Error rate", "Guard blocks and cache hits"):
        assert f"<figcaption>{title}</figcaption>" in text
    assert text.count('role="img"') >= 6
    assert 'href="/traces?since=' in text and "order=cost" in text


def test_overview_filters_by_model_and_key(dash: Dashboard) -> None:
    ingest(dash, "sdk-call", cost="0.25")
    chat(dash, "hello")
    wait_for(dash, 2)
    viewer = dash.session("viewer")
    page = viewer.client.get("/", params={"model": "fake-chat", "range": "7d"})
    assert page.status_code == 200
    assert stat(page.text, "Requests") == "2"
    assert '<option value="fake-chat" selected>' in page.text
    none = viewer.client.get("/", params={"model": "no-such-model", "range": "1h"})
    assert stat(none.text, "Requests") == "0"
    keys = re.findall(r'<option value="([^"]+)"', page.text.split('id="f-key"')[1].split("</select>")[0])
    assert keys, "the key filter lists the keys that made requests"
    one = viewer.client.get("/", params={"key": keys[0], "range": "30d"})
    assert stat(one.text, "Requests") == "2"  # the admin key made both


def test_overview_ranges_and_bad_input(dash: Dashboard) -> None:
    ingest(dash, "old", cost="1", started_at=time.time() - 3 * 86_400)
    ingest(dash, "new", cost="0.1")
    viewer = dash.session("viewer")
    assert stat(viewer.client.get("/", params={"range": "24h"}).text, "Requests") == "1"
    assert stat(viewer.client.get("/", params={"range": "7d"}).text, "Requests") == "2"
    bad = viewer.client.get("/", params={"range": "9y"})
    assert bad.status_code == 400 and "text/html" in bad.headers["content-type"] and "range" in bad.text


def test_overview_other_projects_need_the_owner_role(dash: Dashboard) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get("/", params={"project": "all"})
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert 'id="f-project"' not in viewer.client.get("/").text


def test_owner_sees_all_projects_and_the_read_is_audited(dash: Dashboard) -> None:
    from tests.support.asgi_app import ADMIN_KEY

    ingest(dash, "mine", cost="0.25")
    owner = dash.sign_in(ADMIN_KEY)
    page = owner.client.get("/", params={"project": "all"})
    assert page.status_code == 200, page.text
    assert 'id="f-project"' in page.text and stat(page.text, "Requests") == "1"
    events = dash.admin_api.get("/api/audit", params={"project": "all", "action": "dashboard.overview"}).json()
    assert any(e["action"] == "dashboard.overview" for e in events["data"])


def test_overview_needs_a_session(dash: Dashboard) -> None:
    from starlette.testclient import TestClient

    anonymous = TestClient(dash.app, follow_redirects=False)
    r = anonymous.get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def _guard_block() -> dict[str, object]:
    """A guard span that blocked, inside a trace `ingest` starts 30 s ago."""
    at = time.time() - 29.5
    return {
        "kind": "guard",
        "name": "pii",
        "started_at": at,
        "ended_at": at + 0.01,
        "attributes": {"pilothouse.guard.decision": "block"},
    }


def test_overview_filters_by_end_user_from_their_traces(dash: Dashboard) -> None:
    block = _guard_block()
    ingest(dash, "a", cost="0.25", user="alice", extra=[block])
    ingest(dash, "b", cost="0.5", user="alice", status="error")
    ingest(dash, "c", cost="1", user="bob")
    ingest(dash, "d", cost="2", user="alice", started_at=time.time() - 3 * 86_400)
    viewer = dash.session("viewer")
    everyone = viewer.client.get("/").text
    assert stat(everyone, "Requests") == "3"
    page = viewer.client.get("/", params={"user": " alice "})
    assert page.status_code == 200, page.text
    text = page.text
    assert stat(text, "Requests") == "2"
    assert stat(text, "Error rate") == "50.0%"
    assert "$0.75" in stat(text, "Cost")
    assert stat(text, "Tokens") == f"{2 * (420 + 96):,}"
    assert stat(text, "Guard blocks") == "1"
    assert (
        '<label for="f-user">End user</label>' in text and 'id="f-user" name="user" type="text" value="alice"' in text
    )
    assert "&amp;user=alice&amp;order=cost" in text
    assert text.count('role="img"') >= 6
    assert stat(viewer.client.get("/", params={"user": "alice", "range": "7d"}).text, "Requests") == "3"
    with_model = viewer.client.get("/", params={"user": "alice", "model": "fake-chat"}).text
    assert stat(with_model, "Requests") == "2"
    assert stat(viewer.client.get("/", params={"user": "alice", "model": "other"}).text, "Requests") == "0"
    assert stat(viewer.client.get("/", params={"user": "carol"}).text, "Requests") == "0"
    too_long = viewer.client.get("/", params={"user": "x" * 201})
    assert too_long.status_code == 400 and "text/html" in too_long.headers["content-type"] and "user" in too_long.text


def test_a_busy_users_cache_hits_and_guard_blocks_are_not_guessed(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pilothouse.store.user_activity as user_activity
    from tests.ui.test_overview_user_rollups import at_the_days_first_edge

    at = at_the_days_first_edge()  # whole hours come from the user rollups: only the edges are read from rows
    block = {**_guard_block(), "started_at": at + 0.5, "ended_at": at + 0.51}
    ingest(dash, "a", cost="0.25", user="alice", started_at=at, extra=[block])
    ingest(dash, "b", cost="0.25", user="alice", started_at=at)
    monkeypatch.setattr(user_activity, "SPAN_READ_MAX", 1)
    text = dash.session("viewer").client.get("/", params={"user": "alice"}).text
    assert stat(text, "Requests") == "2"
    assert stat(text, "Guard blocks") == "-" and stat(text, "Cache savings") == "-"
    assert "Cache hits and guard blocks are not counted" in text
