"""The Traces pages: the list (search, filters, costliest first, paging), one trace (span tree, timeline,
content, chunks, guards, tools, scores, actions through the API), the live tail, roles and bad input."""

from __future__ import annotations

import html
import re
import secrets
import time
from decimal import Decimal
from typing import Any

from tests.ui.conftest import Dashboard, Session


def ingest(
    dash: Dashboard,
    name: str,
    *,
    cost: str,
    started_at: float | None = None,
    user: str | None = None,
    tags: list[str] | None = None,
    status: str = "ok",
    words: str = "where is my parcel",
    extra: list[dict[str, Any]] | None = None,
) -> str:
    """A trace of a step with an llm call under it (and `extra` spans), as the SDK sends it; waits until stored."""
    trace_id, root, llm = secrets.token_hex(16), secrets.token_hex(8), secrets.token_hex(8)
    start = time.time() - 30 if started_at is None else started_at
    spans = [
        {
            "trace_id": trace_id,
            "id": root,
            "kind": "step",
            "name": name,
            "status": status,
            "error": "the upstream timed out" if status == "error" else None,
            "started_at": start,
            "ended_at": start + 2.0,
            "input": {"question": words},
            "output": {"answer": "It left the depot this morning."},
        },
        {
            "trace_id": trace_id,
            "id": llm,
            "parent_id": root,
            "kind": "llm",
            "name": "chat fake-chat",
            "started_at": start + 0.5,
            "ended_at": start + 1.5,
            "model": "fake-chat",
            "provider": "fake",
            "input_tokens": 420,
            "output_tokens": 96,
            "cost_usd": cost,
            "input": {"messages": [{"role": "user", "content": words}]},
            "output": {"message": {"role": "assistant", "content": "It left the depot this morning."}},
        },
    ]
    for span in extra or []:
        spans.append({"trace_id": trace_id, "id": secrets.token_hex(8), "parent_id": root, **span})
    body = {"spans": spans, "traces": [{"id": trace_id, "name": name, "user_id": user, "tags": tags}]}
    r = dash.admin_api.post("/api/ingest/spans", json=body)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 10
    while dash.admin_api.get(f"/api/traces/{trace_id}").status_code != 200:
        assert time.monotonic() < deadline, "the trace was not stored"
        time.sleep(0.05)
    return trace_id


def rows(page: str, table_id: str = "traces-table") -> list[str]:
    """The trace ids of a table's rows, in order."""
    table = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'data-trace-id="([0-9a-f]+)"', table)


def test_list_shows_costliest_first_of_the_day_and_links_to_each_trace(dash: Dashboard) -> None:
    now = time.time()
    cheap = ingest(dash, "cheap", cost="0.001", started_at=now - 60)
    dear = ingest(dash, "dear", cost="0.75", started_at=now - 3600)
    middle = ingest(dash, "middle", cost="0.2", started_at=now - 120)
    old = ingest(dash, "old-and-dearest", cost="9", started_at=now - 3 * 86_400)
    viewer = dash.session("viewer")

    newest = viewer.client.get("/traces")
    assert newest.status_code == 200
    assert rows(newest.text) == [cheap, middle, dear]  # last 24 h by default, newest first

    by_cost = viewer.client.get("/traces", params={"range": "24h", "order": "cost"})
    assert by_cost.status_code == 200
    assert rows(by_cost.text) == [dear, middle, cheap]
    assert f'href="/traces/{dear}"' in by_cost.text
    assert "$0.75" in by_cost.text
    assert old not in by_cost.text

    everything = viewer.client.get("/traces", params={"range": "all", "order": "cost"})
    assert rows(everything.text) == [old, dear, middle, cheap]


def test_list_pages_with_the_api_cursor_in_cost_order(dash: Dashboard) -> None:
    costs = ["0.5", "0.4", "0.4", "0.3", "0.1"]
    ids = [ingest(dash, f"t{i}", cost=c) for i, c in enumerate(costs)]
    viewer = dash.session("viewer")
    first = viewer.client.get("/traces", params={"order": "cost", "limit": "2"})
    assert len(rows(first.text)) == 2
    seen = list(rows(first.text))
    url = html.unescape(re.search(r'href="(/traces\?[^"]*cursor=[^"]+)" rel="next"', first.text).group(1))  # type: ignore[union-attr]
    while url:
        page = viewer.client.get(url)
        assert page.status_code == 200
        seen += rows(page.text)
        found = re.search(r'href="(/traces\?[^"]*cursor=[^"]+)" rel="next"', page.text)
        url = html.unescape(found.group(1)) if found else ""
    assert seen[0] == ids[0] and seen[-1] == ids[-1]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    # the API pages the same way, and refuses a cursor of another order
    api = dash.admin_api.get("/api/traces", params={"order": "cost", "limit": 2}).json()
    assert [t["id"] for t in api["data"]] == seen[:2]
    wrong = dash.admin_api.get("/api/traces", params={"order": "latency", "cursor": api["next_cursor"]})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "cursor"


def test_list_filters_and_full_text_search(dash: Dashboard) -> None:
    parcel = ingest(dash, "parcel", cost="0.01", user="ana", tags=["vip"], words="where is my parcel")
    refund = ingest(dash, "refund", cost="0.02", user="bo", words="I want a refund", status="error")
    viewer = dash.session("viewer")
    assert rows(viewer.client.get("/traces", params={"q": "refund"}).text) == [refund]
    assert rows(viewer.client.get("/traces", params={"user": "ana"}).text) == [parcel]
    assert rows(viewer.client.get("/traces", params={"tag": "vip"}).text) == [parcel]
    assert rows(viewer.client.get("/traces", params={"status": "error"}).text) == [refund]
    assert rows(viewer.client.get("/traces", params={"cost_min": "0.015"}).text) == [refund]
    by_latency = viewer.client.get("/traces", params={"order": "latency", "latency_min_ms": "1000"})
    assert set(rows(by_latency.text)) == {parcel, refund}
    assert 'value="ana"' in viewer.client.get("/traces", params={"user": "ana"}).text  # the form keeps the filter


def test_bad_list_input_is_an_html_error_not_a_crash(dash: Dashboard) -> None:
    viewer = dash.session("viewer")
    for params in (
        {"order": "alphabetical"},
        {"cost_min": "lots"},
        {"score": "no good"},
        {"cursor": "xyz"},
        {"range": "9y"},
    ):
        r = viewer.client.get("/traces", params=params)
        assert r.status_code == 400, (params, r.status_code)
        assert "text/html" in r.headers["content-type"]


def test_trace_page_shows_tree_timeline_content_chunks_guards_and_tools(dash: Dashboard) -> None:
    now = time.time()
    extra = [
        {
            "kind": "retrieval",
            "name": "search docs",
            "started_at": now - 30 + 0.1,
            "ended_at": now - 30 + 0.4,
            "attributes": {
                "gen_ai.retrieval.query.text": "parcel status",
                "gen_ai.retrieval.documents": [
                    {"id": "chunk-7", "score": 0.913, "source": "kb/shipping.md", "text": "Parcels leave daily."}
                ],
            },
        },
        {
            "kind": "guard",
            "name": "input guard",
            "started_at": now - 30 + 0.01,
            "ended_at": now - 30 + 0.05,
            "attributes": {"pilothouse.guard.decision": "redact", "pilothouse.guard.scanner": "pii"},
        },
        {
            "kind": "tool",
            "name": "track_parcel",
            "started_at": now - 30 + 1.5,
            "ended_at": now - 30 + 1.9,
            "attributes": {"gen_ai.tool.name": "track_parcel", "gen_ai.tool.call.arguments": '{"id": "P-42"}'},
            "output": {"status": "in transit"},
        },
    ]
    trace_id = ingest(dash, "support-answer", cost="0.0123", started_at=now - 30, user="ana", extra=extra)
    viewer = dash.session("viewer")
    r = viewer.client.get(f"/traces/{trace_id}")
    assert r.status_code == 200, r.text
    text = r.text
    assert "support-answer" in text and "$0.0123" in text
    assert 'id="spans-table"' in text
    assert text.count('class="timeline"') == 5
    # the llm span starts 0.5 s into a 2 s trace and lasts 1 s: a bar from 25% of width 50%
    assert "left: 25.0%; width: 50.0%" in text
    assert "chunk-7" in text and "kb/shipping.md" in text and "0.913" in text
    assert "redact" in text and "pii" in text
    assert "track_parcel" in text and "in transit" in text
    assert "It left the depot this morning." in text  # span output as stored
    assert "420" in text  # tokens
    # a viewer sees no action forms
    assert 'id="annotate-form"' not in text and 'id="score-form"' not in text


def test_trace_actions_go_through_the_api_with_csrf(dash: Dashboard) -> None:
    trace_id = ingest(dash, "to-curate", cost="0.01", user="ana")
    ingest(dash, "other", cost="0.01", user="ana")
    dev = dash.session("developer")
    assert (
        dash.admin_api.post(
            "/api/evals/queues", json={"name": "review", "score": {"name": "quality", "data_type": "numeric"}}
        ).status_code
        == 201
    )

    page = dev.client.get(f"/traces/{trace_id}", params={"dataset": "golden", "queue": "review"})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'id="add-to-dataset-form"' in text and 'data-api="/api/evals/datasets/golden/from-traces"' in text
    assert 'id="annotate-form"' in text and 'data-api="/api/evals/queues/review/items"' in text
    assert 'id="score-form"' in text

    # the add-to-dataset form's hidden fields select exactly this trace
    fields = dict(
        re.findall(
            r'<input type="hidden" name="(\w+)" value="([^"]*)"',
            text.split('id="add-to-dataset-form"')[1].split("</form>")[0],
        )
    )
    assert fields["trace_ids"] == trace_id
    # as the page's script sends it: data-type="list" splits on commas, "number" converts
    body: dict[str, Any] = {
        **fields,
        "trace_ids": [trace_id],
        "limit": int(fields["limit"]),
        "message": "from the page",
    }
    no_csrf = dev.client.post("/api/evals/datasets/golden/from-traces", json=body)
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    added = dev.api("POST", "/api/evals/datasets/golden/from-traces", json=body)
    assert added.status_code == 200, added.text
    items = dash.admin_api.get("/api/evals/datasets/golden/items").json()
    listed = items["data"] if isinstance(items, dict) else items
    assert len(listed) == 1
    assert trace_id in str(listed[0])

    queued = dev.api("POST", "/api/evals/queues/review/items", json={"trace_ids": [trace_id]})
    assert queued.status_code == 200, queued.text

    scored = dev.api("POST", "/api/scores", json={"trace_id": trace_id, "name": "helpful", "value": 0.8})
    assert scored.status_code == 201, scored.text
    again = dev.client.get(f"/traces/{trace_id}")
    assert 'id="scores-table"' in again.text and "helpful" in again.text and "0.8" in again.text

    audit = dash.admin_api.get("/api/audit", params={"limit": 50}).json()
    actions = [e["action"] for e in (audit["data"] if isinstance(audit, dict) else audit)]
    assert "dashboard.request" in actions


def test_viewer_cannot_act_through_the_api(dash: Dashboard) -> None:
    trace_id = ingest(dash, "t", cost="0.01")
    viewer: Session = dash.session("viewer")
    r = viewer.api("POST", "/api/scores", json={"trace_id": trace_id, "name": "helpful", "value": 1})
    assert r.status_code == 403


def test_unknown_trace_is_an_html_404(dash: Dashboard) -> None:
    viewer = dash.session("viewer")
    r = viewer.client.get("/traces/" + "0" * 32)
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"] and "no trace" in r.text
    assert viewer.client.get("/traces/" + "0" * 32, params={"dataset": "../x"}).status_code == 404


def test_other_projects_traces_are_not_found(dash: Dashboard) -> None:
    trace_id = ingest(dash, "mine", cost="0.01")
    assert dash.admin_api.post("/api/projects", json={"name": "elsewhere"}).status_code == 201
    key = dash.admin_api.post("/api/keys", json={"name": "far", "role": "viewer", "project": "elsewhere"})
    assert key.status_code == 201, key.text
    far = dash.sign_in(key.json()["secret"])
    assert far.client.get(f"/traces/{trace_id}").status_code == 404
    assert trace_id not in far.client.get("/traces", params={"range": "all"}).text


def test_live_tail_page_and_fragment(dash: Dashboard) -> None:
    first = ingest(dash, "first", cost="0.01")
    viewer = dash.session("viewer")
    page = viewer.client.get("/traces/tail")
    assert page.status_code == 200
    assert 'data-live="/traces/tail/rows"' in page.text and 'data-live-every="2"' in page.text
    assert 'data-live-toggle="tail"' in page.text
    assert rows(page.text, "tail-table") == [first]
    second = ingest(dash, "second", cost="0.02")
    fragment = viewer.client.get("/traces/tail/rows", headers={"x-live": "1"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert rows(fragment.text, "tail-table") == [second, first]
    signed_out = dash.admin_api.get("/traces/tail/rows", headers={"x-live": "1", "authorization": ""})
    assert signed_out.status_code == 401


def test_list_cost_order_is_exact_with_many_ties(dash: Dashboard) -> None:
    """The sorted read keeps ties in id order across pages (the keyset is (cost, id))."""
    ids = [ingest(dash, f"tie{i}", cost="0.05") for i in range(4)]
    api = dash.admin_api.get("/api/traces", params={"order": "cost", "limit": 3}).json()
    rest = dash.admin_api.get("/api/traces", params={"order": "cost", "limit": 3, "cursor": api["next_cursor"]}).json()
    got = [t["id"] for t in api["data"] + rest["data"]]
    assert got == sorted(ids, reverse=True)
    assert all(Decimal(t["cost_usd"]) == Decimal("0.05") for t in api["data"])


def test_sorted_pages_from_the_sort_index_match_a_full_sort(dash: Dashboard, monkeypatch: Any) -> None:
    """With more matches than the probe takes, a sorted page is read from the sort's index in growing slices
    (store/trace_sorted.py); shrunk here so a dozen traces take that path, with ties and a time filter."""
    from pilothouse.store import trace_pages, trace_sorted

    monkeypatch.setattr(trace_pages, "PROBE", 3)
    monkeypatch.setattr(trace_sorted, "FIRST_SLICE", 2)
    walked: list[int] = []
    walk = trace_sorted._walk

    def counted(*args: Any) -> Any:
        walked.append(1)
        return walk(*args)

    monkeypatch.setattr(trace_sorted, "_walk", counted)
    now = time.time()
    costs = ["0.3", "0.1", "0.3", "0.9", "0.2", "0.2", "0.2", "0.05", "0.7", "0.3", "0.6", "0.01"]
    seeded = [
        (ingest(dash, f"s{i}", cost=c, started_at=now - 60 * (i + 1) - (2 * 86_400 if i % 4 == 3 else 0)), c)
        for i, c in enumerate(costs)
    ]
    recent = [(tid, Decimal(c)) for i, (tid, c) in enumerate(seeded) if i % 4 != 3]
    expected = [tid for tid, _ in sorted(recent, key=lambda p: (p[1], p[0]), reverse=True)]
    got: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"order": "cost", "limit": 2, "since": repr(now - 86_400)}
        if cursor:
            params["cursor"] = cursor
        body = dash.admin_api.get("/api/traces", params=params).json()
        got += [t["id"] for t in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert got == expected
    assert walked, "the pages were read from the sort's index"
    slowest = dash.admin_api.get("/api/traces", params={"order": "latency", "limit": 50}).json()["data"]
    assert sorted(t["id"] for t in slowest) == sorted(tid for tid, _ in seeded)
    latencies = [t["latency_ms"] for t in slowest]
    assert latencies == sorted(latencies, reverse=True)
