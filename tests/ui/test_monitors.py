"""The dashboard's Monitors pages: rules with their series, alert history with evidence, online evaluation,
input drift, the series explorer, and the actions (through the API, admin only, with the CSRF token).

A rising rate of ungrounded answers is seeded into the store relative to now (a baseline at 5%, the last 20
one-minute buckets at 50%) and one evaluation of the rule opens a real alert, as the server's loop would.
"""

from __future__ import annotations

import math
import re
import time
from html import unescape
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert

from pilothouse.monitors.alerts import evaluate_rule
from pilothouse.monitors.rules import get_rule
from pilothouse.store.ids import new_id, new_trace_id
from pilothouse.store.rollups import rebuild
from pilothouse.store.tables import scores, traces
from tests.ui.conftest import Dashboard, Session

BUCKET = 60.0
PER_BUCKET = 20
DETECTOR = {
    "bucket_s": BUCKET,
    "window_s": 20 * BUCKET,
    "baseline_s": 30 * BUCKET,
    "min_abs": 0.05,
    "min_rel": 0.5,
    "false_alarm": 0.002,
}


def project_of(dash: Dashboard, session: Session) -> str:
    listed = dash.admin_api.get("/api/keys").json()
    keys = listed["data"] if isinstance(listed, dict) else listed
    return str(next(k["project_id"] for k in keys if k["id"] == session.key_id))


def seed(dash: Dashboard, project_id: str, now: float, rates: list[float], *, seed: int = 7) -> None:
    """One-minute buckets of PER_BUCKET scored answers, ungrounded at `rates[i]`, the last ending at `now`'s
    bucket boundary."""
    rng = np.random.default_rng(seed)
    end = math.floor(now / BUCKET) * BUCKET
    trace_rows, score_rows = [], []
    for index, rate in enumerate(rates):
        start = end - (len(rates) - index) * BUCKET
        for offset in rng.uniform(0, BUCKET - 2, PER_BUCKET):
            trace_id, ts = new_trace_id(), start + float(offset)
            trace_rows.append(
                {
                    "id": trace_id,
                    "project_id": project_id,
                    "name": "chat",
                    "status": "ok",
                    "started_at": ts,
                    "ended_at": ts + 0.5,
                    "input_tokens": 10,
                    "output_tokens": 10,
                    "cost_usd": 0,
                    "model": "fake-chat",
                    "prompt_name": "support",
                    "prompt_version": 3,
                }
            )
            score_rows.append(
                {
                    "id": new_id("score"),
                    "project_id": project_id,
                    "trace_id": trace_id,
                    "name": "grounded",
                    "value": 0.0 if rng.random() < rate else 1.0,
                    "source": "code",
                    "created_at": ts + 1,
                }
            )
    with dash.app.api.state.pilothouse.store.begin() as conn:
        conn.execute(insert(traces), trace_rows)
        conn.execute(insert(scores), score_rows)
    rebuild(dash.app.api.state.pilothouse.store, project_id=project_id)  # the rollups the trace sink keeps


@pytest.fixture
def alerting(dash: Dashboard) -> tuple[Session, str, dict[str, Any]]:
    """An admin session, its project, and the alert one evaluation of rule `grounding` opened."""
    admin = dash.session("admin")
    project = project_of(dash, admin)
    now = time.time()
    seed(dash, project, now, [0.05] * 30 + [0.5] * 20)  # a baseline at 5%, then the last 20 minutes at 50%
    body = {"name": "grounding", "metric": "hallucination_rate", "scope": {"prompt": "support"}, "detector": DETECTOR}
    made = admin.api("POST", "/api/monitors/rules", json=body)
    assert made.status_code == 201, made.text
    store = dash.app.api.state.pilothouse.store
    with store.connect() as conn:
        rule = get_rule(conn, project, "grounding")
    assert rule is not None
    change = evaluate_rule(store, rule, now)
    assert change is not None and change.event == "opened"
    (alert,) = dash.admin_api.get("/api/monitors/alerts").json()["data"]
    return admin, project, alert


def rows(html: str, table_id: str) -> list[str]:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert match, f"no table {table_id}"
    body = match.group(1).split("<tbody>", 1)[1]
    return [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", r))).strip() for r in body.split("</tr>")[:-1]]


def test_monitors_page_shows_rules_charts_and_alert_evidence(
    dash: Dashboard, alerting: tuple[Session, str, dict[str, Any]]
) -> None:
    _, _, alert = alerting
    viewer = dash.session("viewer")
    page = viewer.client.get("/monitors?range=1h")
    assert page.status_code == 200, page.text
    (rule_row,) = rows(page.text, "rules-table")
    assert rule_row.startswith("grounding hallucination_rate prompt=support bucket 1m, window 20m, baseline 30m")
    assert "firing" in rule_row
    (alert_row,) = rows(page.text, "alerts-table")
    evidence = alert["evidence"]
    baseline = f"{100 * evidence['baseline']['mean']:.2f}%"
    assert alert_row.startswith("firing grounding hallucination_rate") and baseline in alert_row
    assert f"CUSUM {evidence['statistic']}" in alert_row and f"≥ {evidence['threshold']}" in alert_row
    assert evidence["example_trace_ids"]
    for trace_id in evidence["example_trace_ids"]:
        assert f'href="/traces/{trace_id}"' in page.text
    chart = page.text.split("grounding: hallucination_rate (last 1h)", 1)[1]
    assert 'class="reference"' in chart and 'class="marker"' in chart
    assert f"baseline of alert {alert['id']} ({baseline})" in page.text  # the reference line is the alert's
    assert "<title>change point (grounding)</title>" in chart
    assert 'data-live="/monitors/alerts"' in page.text
    assert 'id="create-rule-form"' not in page.text  # a viewer changes nothing


def test_alert_fragment_filters_and_refreshes(dash: Dashboard, alerting: tuple[Session, str, dict[str, Any]]) -> None:
    viewer = dash.session("viewer")
    live = viewer.client.get("/monitors/alerts", headers={"x-live": "1"})
    assert live.status_code == 200 and "<html" not in live.text
    assert rows(live.text, "alerts-table")[0].startswith("firing grounding")
    assert "No alerts." in viewer.client.get("/monitors/alerts?status=resolved").text
    assert "No alerts." in viewer.client.get("/monitors/alerts?rule=other").text
    assert viewer.client.get("/monitors/alerts?status=maybe").status_code == 422


def test_rule_page_and_series_page_match_the_api(
    dash: Dashboard, alerting: tuple[Session, str, dict[str, Any]]
) -> None:
    viewer = dash.session("viewer")
    rule = viewer.client.get("/monitors/rules/grounding?range=1h")
    assert rule.status_code == 200, rule.text
    assert rows(rule.text, "alerts-table")[0].startswith("firing grounding")
    assert 'id="delete-rule-form"' not in rule.text
    series = viewer.client.get("/monitors/series?metric=hallucination_rate&range=1h&prompt=support")
    assert series.status_code == 200, series.text
    api = dash.admin_api.get(
        "/api/monitors/series",
        params={"metric": "hallucination_rate", "window": "1h", "bucket": "1m", "prompt": "support"},
    ).json()
    filled = [b for b in api["data"][0]["buckets"] if b["n"]]
    shown = rows(series.text, "series-table")
    assert len(shown) == len(filled)
    for row, bucket in zip(shown, filled, strict=True):
        assert row.endswith(f" {bucket['n']} {100 * bucket['value']:.2f}%"), (row, bucket)
    total = sum(b["n"] for b in filled)
    assert f"{total:,} units in the range." in series.text
    assert "mean over the range" in series.text and "change point (grounding)" in series.text
    other = viewer.client.get("/monitors/series?metric=hallucination_rate&range=1h&prompt=nobody")
    assert "0 units in the range." in other.text
    grouped = viewer.client.get("/monitors/series?metric=latency_p95&range=1h&by=model")
    assert grouped.status_code == 200 and "fake-chat" in grouped.text


def test_bad_input_and_unknown_rules_are_html_errors(
    dash: Dashboard, alerting: tuple[Session, str, dict[str, Any]]
) -> None:
    viewer = dash.session("viewer")
    missing = viewer.client.get("/monitors/rules/nope")
    assert missing.status_code == 404 and "no monitor rule &#39;nope&#39;" in missing.text
    for path, status, message in (
        ("/monitors/series?metric=bogus", 400, "unknown metric 'bogus'"),
        ("/monitors/series?metric=error_rate&range=2y", 400, "range must be one of"),
        ("/monitors?range=forever", 400, "range must be one of"),
        ("/monitors/series?metric=error_rate&by=colour", 422, ""),
        ("/monitors/series?metric=error_rate&prompt_version=x", 422, ""),
    ):
        r = viewer.client.get(path)
        assert r.status_code == status and "text/html" in r.headers["content-type"], path
        assert message in unescape(r.text), path


def test_actions_need_admin_and_the_csrf_token(dash: Dashboard) -> None:
    admin = dash.session("admin")
    page = admin.client.get("/monitors")
    assert 'id="create-rule-form"' in page.text and 'data-api="/api/monitors/rules"' in page.text
    assert "No alert rules yet." in page.text and "No alerts." in page.text
    developer = dash.session("developer")
    refused = developer.api("POST", "/api/monitors/rules", json={"name": "x", "metric": "error_rate"})
    assert refused.status_code == 403
    no_csrf = admin.client.post("/api/monitors/rules", json={"name": "x", "metric": "error_rate"})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    made = admin.api("POST", "/api/monitors/rules", json={"name": "errors", "metric": "error_rate"})
    assert made.status_code == 201, made.text
    online = admin.api(
        "POST", "/api/monitors/online-eval", json={"name": "sample", "rate": 0.25, "scorers": ["toxicity"]}
    )
    assert online.status_code == 201, online.text
    drift = admin.api("POST", "/api/monitors/rules", json={"name": "inputs", "metric": "input_drift"})
    assert drift.status_code == 201, drift.text
    page = admin.client.get("/monitors")
    names = [r.split(" ", 1)[0] for r in rows(page.text, "rules-table")]
    assert names == ["errors", "inputs"]
    (sampled,) = rows(page.text, "online-eval-table")
    assert sampled.startswith("sample 25.0% toxicity whole project 100")
    detail = admin.client.get("/monitors/rules/inputs")
    assert detail.status_code == 200, detail.text
    api_drift = dash.admin_api.get("/api/monitors/rules/inputs/drift").json()
    assert 'id="drift-stats"' in detail.text and api_drift["reason"] in unescape(detail.text)
    assert 'id="pin-reference-form"' in detail.text and 'id="delete-rule-form"' in detail.text
    assert "alerts at 0.6" in detail.text and "alerts at AUC 0.6" in page.text
    assert "(trailing)" in detail.text and 'id="trailing-reference-form"' not in detail.text
    pinned = admin.api("PUT", "/api/monitors/rules/inputs/reference", json={"start": "3d", "end": "2d"})
    assert pinned.status_code == 200, pinned.text
    detail = admin.client.get("/monitors/rules/inputs")
    assert "(pinned)" in detail.text and 'id="trailing-reference-form"' in detail.text
    removed = admin.api("DELETE", "/api/monitors/rules/errors")
    assert removed.status_code == 200
    assert admin.client.get("/monitors/rules/errors").status_code == 404


def test_a_resolved_alert_is_shown_as_resolved(dash: Dashboard, alerting: tuple[Session, str, dict[str, Any]]) -> None:
    """The rate returns to its baseline for the next minutes: the next evaluation resolves the episode."""
    _, project, opened = alerting
    later = time.time() + 6 * BUCKET
    seed(dash, project, later, [0.05] * 6, seed=8)
    store = dash.app.api.state.pilothouse.store
    with store.connect() as conn:
        rule = get_rule(conn, project, "grounding")
    assert rule is not None
    change = evaluate_rule(store, rule, later)
    assert change is not None and change.event == "resolved"
    viewer = dash.session("viewer")
    page = viewer.client.get("/monitors?range=1h")
    (alert_row,) = rows(page.text, "alerts-table")
    assert alert_row.startswith("resolved grounding hallucination_rate")
    (rule_row,) = rows(page.text, "rules-table")
    assert "firing" not in rule_row and " ok " in rule_row
    assert 'badge badge-resolved">resolved<' in page.text
    assert rows(viewer.client.get("/monitors/alerts?status=resolved").text, "alerts-table")[0].startswith("resolved")
    assert "No alerts." in viewer.client.get("/monitors/alerts?status=firing").text
    assert opened["status"] == "firing"
