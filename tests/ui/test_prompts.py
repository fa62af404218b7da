"""The Prompts pages: the list, a prompt's versions, labels and their history, performance per version, canary
and scenario tests, the side-by-side diff and the actions (promote, move a label, run the tests) through the API
with the session's CSRF token; and the API routes the pages added (label history, test runs).

Prompts are pushed through the API as a user would; calls go through the gateway to the fake model `fake-chat`,
which echoes the last user message (so `greet` v1 answers "echo: Hello Ada", v2 "echo: Good day Ada").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from pilothouse.ui.pages.prompts_charts import stats_charts
from pilothouse.ui.pages.prompts_diff import side_by_side

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from tests.ui.conftest import Dashboard, Session

NAME = "greet"
TESTS = "- name: names-the-user\n  variables: {who: Ada}\n  assert: [{contains: Ada}]\n"
TESTS_STRICT = TESTS + "- name: says-good-day\n  variables: {who: Ada}\n  assert: [{contains: Good}]\n"


def prompt_file(greeting: str, temperature: float = 0.2) -> str:
    return (
        f"name: {NAME}\nmodel: fake-chat\ntemperature: {temperature}\nvariables:\n  who: {{type: string}}\n"
        f"messages:\n  - role: system\n    content: |\n      You are polite.\n      Keep answers short.\n"
        f'  - role: user\n    content: "{greeting} {{{{ who }}}}"\n'
    )


def push(api: TestClient, greeting: str, tests: str = TESTS, temperature: float = 0.2, message: str = "") -> None:
    files = [
        {"path": f"{NAME}.yaml", "content": prompt_file(greeting, temperature)},
        {"path": f"{NAME}.tests.yaml", "content": tests},
    ]
    r = api.post(
        "/api/prompts/push", json={"files": files, "message": message or f"say {greeting}", "author": "ada@example.com"}
    )
    assert r.status_code == 200, r.text


def call(api: TestClient, version: int, who: str = "Ada") -> str:
    r = api.post("/v1/chat/completions", json={"model": f"prompt:{NAME}@{version}", "variables": {"who": who}})
    assert r.status_code == 200, r.text
    return str(r.headers["x-pilothouse-trace-id"])


def seed(dash: Dashboard, tests: str = TESTS) -> None:
    """`greet` v1 (Hello) and v2 (Good day, temperature 0.7); production stays on v1; 2 calls of v1 (one scored
    helpful 0.75), 1 of v2."""
    push(dash.admin_api, "Hello", tests)
    push(dash.admin_api, "Good day", tests, temperature=0.7, message="friendlier greeting")
    first = call(dash.admin_api, 1)
    call(dash.admin_api, 1, "Bo")
    call(dash.admin_api, 2)
    r = dash.admin_api.post("/api/scores", json={"trace_id": first, "name": "helpful", "value": 0.75})
    assert r.status_code == 201, r.text


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}"[^>]*>(.*?)</table>', html, re.S)
    assert match, f"no table #{table_id} on the page"
    return match.group(1)


def rows(fragment: str) -> list[str]:
    body = fragment.split("<tbody>", 1)[1] if "<tbody>" in fragment else fragment
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def audit(dash: Dashboard, action: str) -> list[dict[str, Any]]:
    r = dash.admin_api.get("/api/audit", params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def production(dash: Dashboard) -> list[dict[str, Any]]:
    labels = dash.admin_api.get(f"/api/prompts/{NAME}/labels").json()["data"]
    return next(lbl["splits"] for lbl in labels if lbl["name"] == "production")


# -- pages --------------------------------------------------------------------------------------------------------
def test_list_shows_each_prompt_with_its_newest_version_and_labels(dash: Dashboard) -> None:
    viewer = dash.session("viewer")
    empty = viewer.client.get("/prompts")
    assert empty.status_code == 200
    assert "No prompts yet" in empty.text
    seed(dash)
    page = viewer.client.get("/prompts")
    assert page.status_code == 200
    (row,) = rows(table(page.text, "prompts-table"))
    assert f'<a href="/prompts/{NAME}">{NAME}</a>' in row
    cells = text(row)
    assert "production → v1" in cells and "latest → v2" in cells
    assert re.search(r'<td class="num">2</td>', row)


def test_prompt_page_shows_versions_labels_performance_and_tests(dash: Dashboard) -> None:
    seed(dash)
    viewer = dash.session("viewer")
    page = viewer.client.get(f"/prompts/{NAME}")
    assert page.status_code == 200, page.text
    html = page.text
    versions = rows(table(html, "versions-table"))
    assert [re.search(r"v(\d+)", r).group(1) for r in versions] == ["2", "1"]  # type: ignore[union-attr]
    assert "friendlier greeting" in versions[0] and "say Hello" in versions[1]
    assert "ada@example.com" in versions[0]  # who pushed it
    assert f'href="/prompts/{NAME}/diff?a=1&amp;b=2"' in versions[0]
    assert 'id="compare-form"' in html and f'action="/prompts/{NAME}/diff"' in html
    labels = {text(r).split()[0]: text(r) for r in rows(table(html, "labels-table"))}
    assert labels["production"].startswith("production v1") and labels["latest"].startswith("latest v2")
    history = rows(table(html, "label-history-table"))
    assert len(history) == 1 and "production" in history[0] and "first version of the prompt" in history[0]
    stats = {text(r).split()[0]: text(r).split() for r in rows(table(html, "stats-table"))}
    assert stats["v1"][1] == "2" and stats["v2"][1] == "1"
    assert stats["v1"][2] == "0.0%" and "helpful 0.750 (1)" in text(rows(table(html, "stats-table"))[1])
    # every call was today: one bar per version (a line needs two days; test_stats_charts covers the lines)
    assert html.count('<figure class="chart-box">') == 5 and "Requests per version" in html and "<svg" in html
    assert "<figcaption>Score &#39;helpful&#39; (mean)</figcaption>" in html
    assert "names-the-user" in table(html, "tests-table")
    # a viewer reads everything but is offered no action
    assert "run-tests-form" not in html and "move-label-" not in html
    admin = dash.session("admin")
    html = admin.client.get(f"/prompts/{NAME}").text
    assert 'id="run-tests-form"' in html and f'data-api="/api/prompts/{NAME}/tests/run"' in html
    assert 'id="move-label-production"' in html and 'id="move-label-latest"' not in html


def test_diff_page_shows_both_versions_side_by_side(dash: Dashboard) -> None:
    seed(dash)
    admin = dash.session("admin")
    page = admin.client.get(f"/prompts/{NAME}/diff", params={"a": "1", "b": "2"})
    assert page.status_code == 200, page.text
    diff = table(page.text, "prompt-diff")
    changed = [r for r in rows(diff) if "<del>" in r or "<ins>" in r]
    assert len(changed) == 1, changed
    left, right = re.findall(r'<td class="code"[^>]*>(.*?)</td>', changed[0], re.S)
    assert "<del>Hello</del>" in left and "Good" not in left
    assert "<ins>" in right and "Good" in right and "Hello" not in right
    assert "{{ who }}" in text(left) and "{{ who }}" in text(right)  # the unchanged words are on both sides
    assert "You are polite." not in diff  # a message that did not change is not shown
    assert "temperature" in page.text and "<del>0.2</del>" in page.text and "<ins>0.7</ins>" in page.text
    assert 'id="promote-form"' in page.text and f'data-api="/api/prompts/{NAME}/promote"' in page.text
    assert 'name="version" type="number" min="1" value="2"' in page.text
    viewer = dash.session("viewer").client.get(f"/prompts/{NAME}/diff?a=1&b=2")
    assert viewer.status_code == 200 and "promote-form" not in viewer.text
    by_label = admin.client.get(f"/prompts/{NAME}/diff", params={"a": "production", "b": "latest"})
    assert by_label.status_code == 200 and "<del>Hello</del>" in by_label.text  # labels name versions too
    same = admin.client.get(f"/prompts/{NAME}/diff?a=2&b=2")
    assert same.status_code == 200 and "v2 and v2 are identical" in same.text and 'id="prompt-diff"' not in same.text


def test_side_by_side_pairs_changed_lines_and_keeps_line_numbers() -> None:
    unified = (
        "--- a\n+++ b\n@@ -1,3 +1,4 @@\n keep\n-old line here\n+new line here\n+added\n same\n"
        "@@ -10,1 +11,0 @@\n-gone\n"
    )
    out = side_by_side(unified)
    assert [r.kind for r in out] == ["context", "change", "change", "context", "gap", "change"]
    assert (out[0].left_no, out[0].right_no) == (1, 1)
    assert out[1].left == "<del>old</del> line here" and out[1].right == "<ins>new</ins> line here"
    assert out[2].left is None and out[2].right == "<ins>added</ins>" and out[2].right_no == 3
    assert (out[3].left_no, out[3].right_no) == (3, 4)
    assert out[5].left == "<del>gone</del>" and out[5].right is None and out[5].left_no == 10
    assert side_by_side("<b>\n") == []
    (row,) = [r for r in side_by_side("@@ -1 +1 @@\n-<b>x</b>\n+<i>x</i>\n") if r.kind == "change"]
    assert str(row.left).startswith("&lt;") and "<b>" not in str(row.left)  # the text is escaped


def test_stats_charts_draw_a_line_per_version_over_days() -> None:
    def day(name: str, calls: int, score: float | None = None) -> dict[str, Any]:
        scores = {} if score is None else {"helpful": {"mean": score, "n": calls}}
        latency = {"p95": 120.0}
        return {"day": name, "calls": calls, "cost_total_usd": "0.5", "error_rate": 0.1, "latency_ms": latency} | {
            "scores": scores
        }

    stats = {
        "versions": [
            {"version": 2, "total": {"scores": {"helpful": {}}}, "days": [day("2026-12-06", 4, 0.9)]},
            {"version": 1, "total": {"scores": {}}, "days": [day("2026-12-05", 7), day("2026-12-06", 3)]},
        ]
    }
    charts = stats_charts(stats)
    assert [c.title for c in charts] == [
        "Requests per day",
        "Cost per day",
        "Latency p95 (successful calls)",
        "Error rate",
        "Score 'helpful' (mean)",
    ]
    requests = charts[0]
    assert requests.headers == ("time", "v1", "v2")
    assert requests.rows == [("2026-12-05 00:00", "7", ""), ("2026-12-06 00:00", "3", "4")]
    assert charts[3].rows[0][1] == "10.0%" and charts[4].rows[1][2] == "0.9"
    assert stats_charts({"versions": []}) == []


# -- actions ------------------------------------------------------------------------------------------------------
def test_promote_from_the_dashboard_moves_the_label_and_is_audited(dash: Dashboard) -> None:
    seed(dash)
    admin = dash.session("admin")
    body = {"version": 2, "to": "production", "reason": "greet more warmly"}
    refused = admin.api("POST", f"/api/prompts/{NAME}/promote", json=body, headers={"x-csrf-token": "wrong"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert production(dash) == [{"version": 1, "weight": 100}]
    viewer = dash.session("viewer")
    assert viewer.api("POST", f"/api/prompts/{NAME}/promote", json=body).status_code == 403
    r = admin.api("POST", f"/api/prompts/{NAME}/promote", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["moved"] is True and r.json()["comparison"]["candidate"]["passed"] == 1
    assert production(dash) == [{"version": 2, "weight": 100}]
    requests = [e for e in audit(dash, "dashboard.request") if e["target"] == f"/api/prompts/{NAME}/promote"]
    # the viewer's call is recorded too (before the route refused it); the bad CSRF token got no further
    assert [e["actor"] for e in requests] == [viewer.key_id, admin.key_id]
    (promoted,) = audit(dash, "prompt.promote")
    assert promoted["actor"] == admin.key_id and promoted["seq"] > requests[1]["seq"]
    html = admin.client.get(f"/prompts/{NAME}").text
    newest = rows(table(html, "label-history-table"))[0]
    assert re.findall(r"<td>(.*?)</td>", newest)[1:5] == ["production", "prompt.promote", "v1", "v2"]
    assert admin.key_id in newest and "greet more warmly" in newest
    page = admin.client.get(f"/prompts/{NAME}/diff?a=1&b=2")
    assert "production points at v2" in text(page.text)


def test_promotion_refused_by_the_tests_says_why(dash: Dashboard) -> None:
    push(dash.admin_api, "Good day", TESTS_STRICT)
    push(dash.admin_api, "Hello", TESTS_STRICT)
    admin = dash.session("admin")
    r = admin.api("POST", f"/api/prompts/{NAME}/promote", json={"version": 2, "to": "production"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "promotion_refused"
    assert "says-good-day" in r.json()["error"]["message"]
    assert production(dash) == [{"version": 1, "weight": 100}]


def test_move_label_from_the_dashboard(dash: Dashboard) -> None:
    seed(dash)
    developer = dash.session("developer")
    r = developer.api("PUT", f"/api/prompts/{NAME}/labels/production", json={"version": 2, "reason": "try it"})
    assert r.status_code == 200, r.text
    assert production(dash) == [{"version": 2, "weight": 100}]
    viewer = dash.session("viewer")
    assert viewer.api("PUT", f"/api/prompts/{NAME}/labels/production", json={"version": 1}).status_code == 403
    history = dash.admin_api.get(f"/api/prompts/{NAME}/label-history", params={"label": "production"}).json()
    newest = history["data"][0]
    assert (newest["action"], newest["from_version"], newest["to_version"]) == ("prompt.label.move", 1, 2)
    assert newest["actor"] == developer.key_id and newest["reason"] == "try it"
    assert [e["seq"] for e in history["data"]] == sorted((e["seq"] for e in history["data"]), reverse=True)


def test_run_the_tests_from_the_dashboard(dash: Dashboard) -> None:
    seed(dash, TESTS_STRICT)
    developer = dash.session("developer")
    r = developer.api("POST", f"/api/prompts/{NAME}/tests/run", json={"version": 1})
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["version"], result["total"], result["passed"], result["failed"]) == (1, 2, 1, 1)
    failing = next(c for c in result["cases"] if not c["passed"])
    assert failing["name"] == "says-good-day" and failing["trace_id"]
    assert production(dash) == [{"version": 1, "weight": 100}]  # running the tests moves no label
    assert developer.api("POST", f"/api/prompts/{NAME}/tests/run", json={"version": 2}).json()["failed"] == 0
    (run_v2, run_v1) = dash.admin_api.get(f"/api/prompts/{NAME}/tests/runs").json()["data"]
    assert (run_v1["version"], run_v1["failed"], run_v2["version"], run_v2["failed"]) == (1, 1, 2, 0)
    assert run_v1["actor"] == developer.key_id
    html = developer.client.get(f"/prompts/{NAME}").text
    runs = html.split('id="test-runs"', 1)[1]
    assert "v2:" in runs and "2/2 passed" in runs and "1/2 passed" in runs
    assert f'href="/traces/{failing["trace_id"]}"' in runs
    assert len(audit(dash, "prompt.tests.run")) == 2
    # refused and bad requests
    viewer = dash.session("viewer")
    assert viewer.api("POST", f"/api/prompts/{NAME}/tests/run", json={"version": 1}).status_code == 403
    missing = developer.api("POST", f"/api/prompts/{NAME}/tests/run", json={"version": 9})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "prompt_version_not_found"
    assert developer.api("POST", f"/api/prompts/{NAME}/tests/run", json={"version": 1, "x": 1}).status_code in (
        400,
        422,
    )
    assert developer.api("POST", "/api/prompts/nope/tests/run", json={"version": 1}).status_code == 404
    assert (
        developer.api(
            "POST", f"/api/prompts/{NAME}/tests/run", json={"version": 1}, headers={"x-csrf-token": ""}
        ).json()["error"]["code"]
        == "csrf_failed"
    )


def test_run_tests_of_a_prompt_without_tests_is_a_clear_404(dash: Dashboard) -> None:
    r = dash.admin_api.post(f"/api/prompts/{NAME}/versions", json={"definition": {"text": "Hi there"}})
    assert r.status_code == 200, r.text
    r = dash.admin_api.post(f"/api/prompts/{NAME}/tests/run", json={"version": 1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "prompt_tests_not_found"
    html = dash.session("viewer").client.get(f"/prompts/{NAME}").text
    assert "No scenario tests" in html and "No calls of this prompt" in html


def test_canary_state_is_shown_and_refreshes_live(dash: Dashboard) -> None:
    seed(dash)
    rule = {"metric": "error_rate", "min_samples": 5}
    r = dash.admin_api.put(
        f"/api/prompts/{NAME}/labels/production/canary",
        json={"baseline": 1, "candidate": 2, "weight": 25, "rollback_rule": rule},
    )
    assert r.status_code == 200, r.text
    admin = dash.session("admin")
    html = admin.client.get(f"/prompts/{NAME}").text
    assert f'data-live="/prompts/{NAME}/canary/production"' in html
    assert 'id="canary-check-production"' in html
    live = admin.client.get(f"/prompts/{NAME}/canary/production", headers={"x-live": "1"})
    assert live.status_code == 200
    assert "<html" not in live.text and "error_rate" in live.text
    body = text(live.text)
    assert "v1" in body and "v2" in body and "25.0%" in body and "prompt.canary.start" in body
    check = admin.api("POST", f"/api/prompts/{NAME}/labels/production/canary/check")
    assert check.status_code == 200, check.text


# -- refusals and bad input ---------------------------------------------------------------------------------------
def test_unknown_prompt_and_bad_parameters_are_html_errors(dash: Dashboard) -> None:
    seed(dash)
    viewer = dash.session("viewer")
    for path, status in (
        ("/prompts/nope", 404),
        ("/prompts/nope/diff?a=1&b=2", 404),
        (f"/prompts/{NAME}/diff?a=1&b=9", 404),
        (f"/prompts/{NAME}/diff?a=1", 400),
        (f"/prompts/{NAME}/diff?a=1&b=v%3F", 400),
        (f"/prompts/{NAME}?range=forever", 400),
        ("/prompts/Bad%20Name", 400),
        (f"/prompts/{NAME}/canary/nolabel", 404),
    ):
        r = viewer.client.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html"), path
        assert "Traceback" not in r.text
    r = viewer.client.get("/prompts/nope")
    assert "Not found" in r.text and "nope" in r.text


def test_pages_need_a_session(dash: Dashboard) -> None:
    from starlette.testclient import TestClient

    anonymous = TestClient(dash.app, follow_redirects=False)
    r = anonymous.get(f"/prompts/{NAME}")
    assert r.status_code == 303 and r.headers["location"] == f"/login?next=/prompts/{NAME}"


def test_label_history_api(dash: Dashboard) -> None:
    seed(dash)
    dash.admin_api.put(f"/api/prompts/{NAME}/labels/staging", json={"version": 2})
    dash.admin_api.put(f"/api/prompts/{NAME}/labels/production", json={"version": 2})
    viewer = dash.session("viewer")
    everything = viewer.client.get(f"/api/prompts/{NAME}/label-history").json()["data"]
    assert [(e["label"], e["to_version"]) for e in everything] == [("production", 2), ("staging", 2), ("production", 1)]
    page = viewer.client.get(f"/api/prompts/{NAME}/label-history", params={"limit": 2}).json()
    assert len(page["data"]) == 2 and page["next_before"] == page["data"][-1]["seq"]
    rest = viewer.client.get(f"/api/prompts/{NAME}/label-history", params={"before": page["next_before"]}).json()
    assert [e["label"] for e in rest["data"]] == ["production"] and rest["next_before"] is None
    assert viewer.client.get("/api/prompts/nope/label-history").status_code == 404
    assert viewer.client.get(f"/api/prompts/{NAME}/label-history", params={"label": "Bad!"}).status_code in (400, 422)
    assert viewer.client.get(f"/api/prompts/{NAME}/label-history", params={"limit": 0}).status_code in (400, 422)


@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_other_projects_prompts_are_not_reachable(dash: Dashboard, role: str) -> None:
    seed(dash)
    r = dash.admin_api.post("/api/projects", json={"name": "other"})  # the bootstrap key is an owner's
    assert r.status_code in (200, 201), r.text
    created = dash.admin_api.post("/api/keys", json={"name": "o", "role": role, "project": "other"})
    assert created.status_code in (200, 201), created.text
    key = created.json()["secret"]
    other: Session = dash.sign_in(key)
    assert other.client.get(f"/prompts/{NAME}").status_code == 404
    assert NAME not in other.client.get("/prompts").text
    assert other.client.get(f"/api/prompts/{NAME}/label-history").status_code == 404
