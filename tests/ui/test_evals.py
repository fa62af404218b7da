"""The Evaluations pages: experiments and datasets, one run's comparison, drill-down and calibration, a metric's
history, a running run's live progress, and the annotation queues, where a person scores an item through the
API with the session's CSRF token and the page moves on to the next one.

Data is made as a user would make it, through the API: a dataset; a finished run of two client-side function
variants (outputs uploaded, then `finish`), so the scores and the comparison are known exactly; a run of the fake
model through the gateway, which leaves traces to link to; and a run still waiting for its outputs (running).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from starlette.testclient import TestClient

if TYPE_CHECKING:
    from tests.ui.conftest import Dashboard, Session

ITEMS = [{"id": f"i{n}", "input": f"question {n}", "expected": f"answer {n}"} for n in range(1, 13)]
METRICS = [{"name": "exact_match"}, {"name": "contains", "options": {"value": "answer"}}]


def ok(response: Any, *codes: int) -> Any:
    assert response.status_code in (codes or (200,)), response.text
    return response.json()


def function_run(api: TestClient, name: str, outputs: dict[str, list[str]], *, finish: bool = True) -> str:
    body = {
        "name": name,
        "dataset": "qa",
        "variants": [{"name": v, "function": f"app.{v}"} for v in outputs],
        "metrics": METRICS,
    }
    experiment_id: str = ok(api.post("/api/evals/experiments", json=body), 202)["id"]
    for variant, answers in outputs.items():
        results = [{"item_id": item["id"], "output": out} for item, out in zip(ITEMS, answers, strict=True)]
        path = f"/api/evals/experiments/{experiment_id}/results"
        ok(api.post(path, json={"variant": variant, "results": results}))
    if finish:
        ok(api.post(f"/api/evals/experiments/{experiment_id}/finish"))
    return experiment_id


def model_run(api: TestClient) -> dict[str, Any]:
    body = {
        "name": "fake-model-run",
        "dataset": "qa",
        "variants": [{"name": "m", "model": "fake-chat"}],
        "metrics": METRICS,
    }
    experiment_id = ok(api.post("/api/evals/experiments", json=body), 202)["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown: dict[str, Any] = ok(api.get(f"/api/evals/experiments/{experiment_id}", params={"summary": "false"}))
        if shown["status"] != "running":
            assert shown["status"] == "done", shown
            return shown
        time.sleep(0.1)
    raise AssertionError("the model run did not finish")


@dataclass
class Seeded:
    finished: str
    earlier: str
    running: str
    model: str


@pytest.fixture
def seeded(dash: Dashboard) -> Seeded:
    api = dash.admin_api
    ok(api.post("/api/evals/datasets", json={"name": "qa", "items": ITEMS, "description": "ui questions"}))
    right = [item["expected"] for item in ITEMS]
    # baseline: right on 2 of 12 items, candidate on all 12 (and the same for contains "answer")
    wrong = right[:2] + ["no idea"] * (len(ITEMS) - 2)
    earlier = function_run(api, "earlier-run", {"base": wrong, "cand": wrong})
    finished = function_run(api, "compare-run", {"base": wrong, "cand": right})
    body = {  # a run of a function whose outputs have not come yet: running
        "name": "still-waiting",
        "dataset": "qa",
        "variants": [{"name": "late", "function": "app.late"}],
        "metrics": METRICS,
    }
    running = ok(api.post("/api/evals/experiments", json=body), 202)["id"]
    model = model_run(api)["id"]
    return Seeded(finished, earlier, running, model)


def cells(html: str, table_id: str) -> str:
    match = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert match, f"no table #{table_id}"
    return match.group(0)


def test_experiments_and_datasets_list(dash: Dashboard, seeded: Seeded) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get("/evals")
    assert r.status_code == 200, r.text
    table = cells(r.text, "experiments-table")
    for name in ("compare-run", "earlier-run", "still-waiting", "fake-model-run"):
        assert name in table
    row = re.search(r"<tr>(?:(?!</tr>).)*compare-run(?:(?!</tr>).)*</tr>", table, re.S)
    assert row is not None
    assert "base, cand" in row.group(0) and "24 / 24" in row.group(0) and "badge-done" in row.group(0)
    waiting = re.search(r"<tr>(?:(?!</tr>).)*still-waiting(?:(?!</tr>).)*</tr>", table, re.S)
    assert waiting is not None and "0 / 12" in waiting.group(0) and ">running<" in waiting.group(0)
    model = re.search(r"<tr>(?:(?!</tr>).)*fake-model-run(?:(?!</tr>).)*</tr>", table, re.S)
    assert model is not None and "12 / 12" in model.group(0) and "$0.000108" in model.group(0)
    datasets = cells(r.text, "datasets-table")
    assert 'href="/evals/datasets/qa"' in datasets and "ui questions" in datasets


def test_dataset_page_versions_items_and_history_links(dash: Dashboard, seeded: Seeded) -> None:
    ok(dash.admin_api.post("/api/evals/datasets", json={"name": "qa", "items": ITEMS[:3], "message": "smaller"}))
    viewer = dash.session("viewer")
    page = viewer.client.get("/evals/datasets/qa")
    assert page.status_code == 200, page.text
    versions = cells(page.text, "dataset-versions-table")
    assert "v2" in versions and "v1" in versions and "smaller" in versions
    items = cells(page.text, "dataset-items-table")
    assert "question 3" in items and "question 4" not in items  # the latest version: 3 items
    old = viewer.client.get("/evals/datasets/qa", params={"version": 1})
    assert "question 8" in cells(old.text, "dataset-items-table")
    assert "/evals/history?dataset=qa&amp;metric=exact_match" in page.text
    assert viewer.client.get("/evals/datasets/nope").status_code == 404
    assert viewer.client.get("/evals/datasets/qa", params={"version": 9}).status_code == 404


def test_experiment_page_compares_variants_with_intervals(dash: Dashboard, seeded: Seeded) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get(f"/evals/{seeded.finished}")
    assert r.status_code == 200, r.text
    # per metric: each variant's mean with its interval, and the interval plot
    first = cells(r.text, "metric-table-1")
    assert "0.167" in first and "1.000" in first  # base 2/12, cand 12/12 on exact_match
    assert r.text.count('class="interval-plot"') == 2
    compare = cells(r.text, "compare-table")
    assert "exact_match" in compare and "contains" in compare
    assert "badge-better" in compare and "0.833" in compare  # the difference, candidate better
    assert "data-live" not in r.text  # finished: nothing to refresh
    # the other way round: worse
    swapped = viewer.client.get(f"/evals/{seeded.finished}", params={"baseline": "cand", "candidate": "base"})
    assert "badge-worse" in cells(swapped.text, "compare-table")
    bad = viewer.client.get(f"/evals/{seeded.finished}", params={"baseline": "nobody"})
    assert bad.status_code == 200 and "no variant &#39;nobody&#39;" in bad.text


def test_results_drill_down_pages_and_links_traces(dash: Dashboard, seeded: Seeded) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get(f"/evals/{seeded.finished}", params={"variant": "cand"})
    table = cells(r.text, "results-table")
    assert table.count("<tr>") == 13 and "answer 5" in table and "no idea" not in table
    assert "exact_match: true (pass)" in table
    model = viewer.client.get(f"/evals/{seeded.model}")
    links = re.findall(r'href="/traces/([0-9a-f]+)"', cells(model.text, "results-table"))
    assert len(links) == 12
    results = ok(dash.admin_api.get(f"/api/evals/experiments/{seeded.model}/results"))["data"]
    assert {row["trace_id"] for row in results} == set(links)
    beyond = viewer.client.get(f"/evals/{seeded.finished}", params={"offset": 50})
    assert "results-table" not in beyond.text and "No results on this page" in beyond.text
    assert viewer.client.get(f"/evals/{seeded.finished}", params={"offset": "x"}).status_code == 422


def test_running_experiment_refreshes_its_progress(dash: Dashboard, seeded: Seeded) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get(f"/evals/{seeded.running}")
    assert f'data-live="/evals/{seeded.running}/progress"' in r.text and 'data-live-every="3"' in r.text
    part = viewer.client.get(f"/evals/{seeded.running}/progress", headers={"x-live": "1"})
    assert part.status_code == 200 and "<html" not in part.text
    assert "0 / 12" in part.text and "running" in part.text
    items = [{"item_id": item["id"], "output": item["expected"]} for item in ITEMS[:5]]
    path = f"/api/evals/experiments/{seeded.running}/results"
    ok(dash.admin_api.post(path, json={"variant": "late", "results": items}))
    assert "5 / 12" in viewer.client.get(f"/evals/{seeded.running}/progress").text
    assert "5 / 12" in cells(viewer.client.get("/evals").text, "experiments-table")
    anonymous = TestClient(dash.app, follow_redirects=False)  # a live refresh without a session: a bare 401
    assert anonymous.get(f"/evals/{seeded.running}/progress", headers={"x-live": "1"}).status_code == 401


def test_history_page(dash: Dashboard, seeded: Seeded) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get("/evals/history", params={"dataset": "qa", "metric": "exact_match"})
    assert r.status_code == 200, r.text
    assert "<svg" in r.text and "Variant cand" in r.text and "Variant base" in r.text
    assert f'href="/evals/{seeded.earlier}"' in r.text and f'href="/evals/{seeded.finished}"' in r.text
    assert "badge-better" in r.text  # cand went from 2/12 to 12/12 between the two runs
    assert viewer.client.get("/evals/history", params={"dataset": "nope", "metric": "x"}).status_code == 404
    chooser = viewer.client.get("/evals/history")
    assert chooser.status_code == 200 and '<option value="qa">qa</option>' in chooser.text
    metrics = viewer.client.get("/evals/history", params={"dataset": "qa"})
    assert 'href="/evals/history?dataset=qa&amp;metric=contains"' in metrics.text
    assert viewer.client.get("/evals/history", params={"dataset": "nope"}).status_code == 404
    assert viewer.client.get("/evals/history", params={"dataset": "qa", "metric": "x", "limit": 1}).status_code == 422


def make_queue(session: Session, name: str, score: dict[str, Any]) -> None:
    ok(session.api("POST", "/api/evals/queues", json={"name": name, "score": score}), 201)


def test_annotate_an_item(dash: Dashboard, seeded: Seeded) -> None:
    """JOURNEY: open a queue, read the item, score it, and the page shows the next item."""
    dev = dash.session("developer")
    blocked = dev.client.post(
        "/api/evals/queues", json={"name": "nope", "score": {"name": "x", "data_type": "boolean"}}
    )
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "csrf_failed"
    make_queue(dev, "review", {"name": "correct", "data_type": "boolean"})
    added = ok(
        dev.api(
            "POST",
            "/api/evals/queues/review/items",
            json={"experiment_id": seeded.finished, "variant": "cand", "limit": 2},
        )
    )
    assert added["added"] == 2

    listing = dev.client.get("/evals/queues")
    table = cells(listing.text, "queues-table")
    assert 'href="/evals/queues/review"' in table and re.search(r'<td class="num">2</td>', table)
    assert 'id="create-queue-form"' in listing.text

    annotator = dash.session("service")
    page = annotator.client.get("/evals/queues/review")
    assert page.status_code == 200, page.text
    task_id = re.search(r'data-task="([^"]+)"', page.text)
    assert task_id is not None
    item = re.search(r"item <code>i(\d+)</code>", page.text)
    assert item is not None  # what to judge: the item's input, and cand's output (its expected answer)
    assert f"question {item.group(1)}</pre>" in page.text and f"answer {item.group(1)}</pre>" in page.text
    form = re.search(r'<form[^>]*id="annotate-item-form"[^>]*>', page.text)
    assert form is not None and f'data-api="/api/evals/queues/review/tasks/{task_id.group(1)}"' in form.group(0)
    assert 'id="add-queue-items-form"' not in page.text  # adding needs the developer role

    answer = ok(
        annotator.api(
            "POST", f"/api/evals/queues/review/tasks/{task_id.group(1)}", json={"value": True, "comment": "fine"}
        )
    )
    assert answer["status"] == "done"
    after = annotator.client.get("/evals/queues/review")
    second = re.search(r'data-task="([^"]+)"', after.text)
    assert second is not None and second.group(1) != task_id.group(1)
    other = re.search(r"item <code>i(\d+)</code>", after.text)
    assert other is not None and other.group(1) != item.group(1)
    skipped = ok(annotator.api("POST", f"/api/evals/queues/review/tasks/{second.group(1)}", json={"skip": True}))
    assert skipped["status"] == "skipped"
    done = annotator.client.get("/evals/queues/review")
    assert 'id="queue-done"' in done.text and "annotate-item-form" not in done.text

    # the person's label against the metric, on the experiment page
    cal = dev.client.get(f"/evals/{seeded.finished}", params={"cal_metric": "exact_match", "cal_label": "queue:review"})
    assert cal.status_code == 200
    result = re.search(
        r'<div id="calibration-result">.*?</div>\n</div>|<div id="calibration-result">.*?</dl>', cal.text, re.S
    )
    assert result is not None
    assert "<dt>Items with both</dt><dd>1</dd>" in result.group(0)  # one answer (true), on cand's right answer
    assert "<dt>Accuracy</dt><dd>100.0%</dd>" in result.group(0)
    missing = dev.client.get(
        f"/evals/{seeded.finished}", params={"cal_metric": "exact_match", "cal_label": "queue:gone"}
    )
    assert "no annotation queue named" in missing.text


def test_trace_task_and_numeric_and_categorical_forms(dash: Dashboard, seeded: Seeded) -> None:
    admin = dash.session("admin")
    trace_id = ok(dash.admin_api.get(f"/api/evals/experiments/{seeded.model}/results"))["data"][0]["trace_id"]
    make_queue(admin, "rating", {"name": "quality", "data_type": "numeric", "min": 1, "max": 5})
    ok(admin.api("POST", "/api/evals/queues/rating/items", json={"trace_ids": [trace_id]}))
    page = admin.client.get("/evals/queues/rating")
    assert 'type="number"' in page.text and 'min="1' in page.text and f'href="/traces/{trace_id}"' in page.text
    assert "echo: question" in page.text  # the trace's answer from the fake model
    task = re.search(r'data-task="([^"]+)"', page.text)
    assert task is not None
    out_of_range = admin.api("POST", f"/api/evals/queues/rating/tasks/{task.group(1)}", json={"value": 9})
    assert out_of_range.status_code == 400
    ok(admin.api("POST", f"/api/evals/queues/rating/tasks/{task.group(1)}", json={"value": 4}))
    scores = ok(dash.admin_api.get("/api/scores", params={"trace_id": trace_id}))
    assert any(s["name"] == "quality" and s["source"] == "human" for s in scores["data"])

    make_queue(admin, "kind", {"name": "kind", "data_type": "categorical", "categories": ["good", "bad"]})
    ok(admin.api("POST", "/api/evals/queues/kind/items", json={"trace_ids": [trace_id]}))
    kind = admin.client.get("/evals/queues/kind")
    assert '<select id="category" name="category"' in kind.text and '<option value="bad">' in kind.text


def test_roles_and_unknown_ids(dash: Dashboard, seeded: Seeded) -> None:
    admin = dash.session("admin")
    make_queue(admin, "review", {"name": "correct", "data_type": "boolean"})
    ok(admin.api("POST", "/api/evals/queues/review/items", json={"experiment_id": seeded.finished, "limit": 1}))
    task_id = ok(dash.admin_api.get("/api/evals/queues/review/next"))["task"]["id"]

    viewer = dash.session("viewer")
    listing = viewer.client.get("/evals/queues")
    assert listing.status_code == 200 and "review" in listing.text
    assert 'href="/evals/queues/review"' not in listing.text and "create-queue-form" not in listing.text
    refused = viewer.client.get("/evals/queues/review")
    assert refused.status_code == 403 and "service" in refused.text
    answer = viewer.api("POST", f"/api/evals/queues/review/tasks/{task_id}", json={"value": True})
    assert answer.status_code == 403
    assert viewer.client.get("/evals/__nope__").status_code == 404
    missing = viewer.client.get("/evals/exp_doesnotexist")
    assert missing.status_code == 404 and "no experiment" in missing.text and "<html" in missing.text
    assert viewer.client.get("/evals/exp_doesnotexist/progress").status_code == 404
    assert admin.client.get("/evals/queues/nope").status_code == 404
    assert viewer.client.get(f"/evals/{seeded.finished}", params={"correction": "bogus"}).status_code == 422

    browser = TestClient(dash.app, follow_redirects=False)  # signed out: sent to sign in, then back
    r = browser.get(f"/evals/{seeded.finished}")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/evals/")
