"""The dashboard's RAG pages: collections, documents with freshness and access lists, the query playground.

Data goes in through the API (a collection of a few records embedded with the bundled MiniLM); pages are read
as signed-in sessions of each role and checked against what the API answers for the same key.
"""

from __future__ import annotations

import re
import time
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from pilothouse.rag.embedders import DEFAULT_MODEL
from pilothouse.store.rag_tables import rag_documents
from tests.ui.conftest import Dashboard, Session

RECORDS: list[dict[str, Any]] = [
    {"id": "leave", "title": "Leave policy", "text": "Every employee has twenty-five days of paid leave a year."},
    {
        "id": "keys",
        "title": "Rotating keys",
        "text": "To rotate the production API keys, run the rotate-keys job and revoke the old key.",
        "groups": ["ops"],
    },
    {"id": "review", "title": "Review", "text": "Ana's performance review: exceeds expectations.", "users": ["ana"]},
]


@pytest.fixture
def docs(dash: Dashboard) -> str:
    """A collection `docs` (TTL one day) with three records; the `leave` record was indexed two days ago."""
    body = {"name": "docs", "index": "exact", "settings": {"ttl_days": 1}}
    r = dash.admin_api.post("/api/rag/collections", json=body)
    assert r.status_code == 201, r.text
    r = dash.admin_api.post("/api/rag/collections/docs/records", json={"records": RECORDS})
    assert r.status_code == 200 and r.json()["added"] == ["leave", "keys", "review"], r.text
    store = dash.app.api.state.pilothouse.store
    with store.begin() as conn:
        conn.execute(
            update(rag_documents).where(rag_documents.c.source == "leave").values(indexed_at=time.time() - 2 * 86400)
        )
    return "docs"


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert match, f"no table {table_id}"
    return match.group(1)


def rows(html: str, table_id: str) -> list[str]:
    body = table(html, table_id).split("<tbody>", 1)[1]
    return [re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", r))).strip() for r in body.split("</tr>")[:-1]]


def test_collections_page_lists_counts_and_stale_documents(dash: Dashboard, docs: str) -> None:
    viewer = dash.session("viewer")
    api = dash.admin_api.get("/api/rag/collections").json()[0]
    page = viewer.client.get("/rag")
    assert page.status_code == 200, page.text
    (row,) = rows(page.text, "collections-table")
    assert row.startswith(f"docs {DEFAULT_MODEL} 384 dims exact 3 ")
    assert f" 3 {api['chunks']} 0 1 stale " in row
    assert '<a href="/rag/docs?stale=stale">1 stale</a>' in page.text
    assert 'href="/rag/docs/query"' in page.text
    assert 'id="create-collection-form"' not in page.text  # a viewer cannot create one


def test_documents_page_shows_freshness_access_and_pages(dash: Dashboard, docs: str) -> None:
    viewer = dash.session("viewer")
    page = viewer.client.get("/rag/docs")
    assert page.status_code == 200, page.text
    found = {r.split(" ", 1)[0]: r for r in rows(page.text, "documents-table")}
    assert list(found) == ["keys", "leave", "review"]  # by source, as the API lists them
    assert "stale: ttl" in found["leave"] and "whole project" in found["leave"]
    assert "fresh" in found["keys"] and "groups: ops" in found["keys"]
    assert "users: ana" in found["review"]
    api_stale = dash.admin_api.get("/api/rag/collections/docs/stale").json()
    assert [s["source"] for s in api_stale] == ["leave"]
    stale_only = viewer.client.get("/rag/docs?stale=stale")
    assert [r.split(" ", 1)[0] for r in rows(stale_only.text, "documents-table")] == ["leave"]
    fresh = viewer.client.get("/rag/docs?stale=fresh&prefix=k")
    assert [r.split(" ", 1)[0] for r in rows(fresh.text, "documents-table")] == ["keys"]
    beyond = viewer.client.get("/rag/docs?page=2")
    assert beyond.status_code == 200 and "No documents match." in beyond.text and "page 2 of 1" in beyond.text
    assert 'id="ingest-records-form"' not in page.text


def test_documents_are_paged(dash: Dashboard) -> None:
    dash.admin_api.post("/api/rag/collections", json={"name": "many", "index": "exact"})
    records = [{"id": f"doc-{i:03d}", "text": f"note number {i}"} for i in range(55)]
    r = dash.admin_api.post("/api/rag/collections/many/records", json={"records": records})
    assert r.status_code == 200, r.text
    viewer = dash.session("viewer")
    first = viewer.client.get("/rag/many")
    listed = [r.split(" ", 1)[0] for r in rows(first.text, "documents-table")]
    assert listed == [f"doc-{i:03d}" for i in range(50)]
    assert 'href="/rag/many?page=2" rel="next"' in first.text
    second = viewer.client.get("/rag/many?page=2")
    assert [r.split(" ", 1)[0] for r in rows(second.text, "documents-table")] == [f"doc-{i:03d}" for i in range(50, 55)]
    assert 'href="/rag/many?page=1" rel="prev"' in second.text and 'rel="next"' not in second.text


def test_unknown_collections_and_bad_parameters_are_html_errors(dash: Dashboard, docs: str) -> None:
    viewer = dash.session("viewer")
    for path in ("/rag/nope", "/rag/nope/query?q=x"):
        r = viewer.client.get(path)
        assert r.status_code == 404 and "text/html" in r.headers["content-type"], path
        assert "no RAG collection named &#39;nope&#39;" in r.text or "no collection named &#39;nope&#39;" in r.text
    assert viewer.client.get("/rag/docs?page=abc").status_code == 422
    assert viewer.client.get("/rag/docs?status=gone").status_code == 422
    bad = {
        "mode=fuzzy": "mode",
        "k=abc": "k must be a whole number",
        "k=0": "k:",
        "filters=%7Bnot-json": "filters must be a JSON object",
        "filters=" + "%7B%22any_of%22%3A%7B%22_acl%22%3A%5B%22g%3Aops%22%5D%7D%7D": "_acl",
    }
    for query, message in bad.items():
        r = viewer.client.get(f"/rag/docs/query?q=keys&{query}")
        assert r.status_code == 400 and "text/html" in r.headers["content-type"], query
        assert message in unescape(r.text), (query, r.text)
    unsigned = dash.sign_in(dash.create_key("viewer")[0]).client
    unsigned.cookies.clear()
    assert unsigned.get("/rag/docs").status_code == 303


def _playground(session: Session, **params: Any) -> str:
    r = session.client.get("/rag/docs/query?" + urlencode(params))
    assert r.status_code == 200, r.text
    return str(r.text)


def test_playground_shows_candidates_fusion_and_packing_as_the_api_ranks(dash: Dashboard, docs: str) -> None:
    viewer = dash.session("viewer")
    empty = _playground(viewer)
    assert 'id="rag-query-form"' in empty and 'id="hits-table"' not in empty
    assert 'name="user"' not in empty and 'name="all"' not in empty  # a viewer acts as itself only
    html = _playground(viewer, q="how many days of paid leave for keys", mode="hybrid", k=2, pack=200)
    hits = [r.split(" ")[1] for r in rows(html, "hits-table")]
    api = viewer.api("POST", "/api/rag/docs/query", json={"query": "how many days of paid leave for keys", "k": 2})
    assert hits == [h["source"] for h in api.json()["hits"]] == ["leave"]  # "keys" is ops', "review" ana's
    dense, keyword = rows(html, "candidates-dense"), rows(html, "candidates-keyword")
    assert len(dense) == 1 and dense[0].startswith("1 ") and " leave " in dense[0]
    assert len(keyword) == 1 and keyword[0].startswith("1 ") and " leave " in keyword[0]
    ranking = rows(html, "ranking-table")
    assert ranking[0].startswith("1 ") and ranking[0].endswith(" yes")
    packed = rows(html, "packed-table")
    assert packed[0].startswith("[1] ") and " leave " in packed[0]
    assert "of 200 tokens" in html and "[1]" in html
    trace_id = re.search(r'href="/traces/([^"]+)"', html)
    assert trace_id, "the playground links the query's trace"
    trace = dash.admin_api.get(f"/api/traces/{trace_id.group(1)}").json()
    span = next(s for s in trace["spans"] if s["kind"] == "retrieval")
    assert span["output"]["packed"]["budget"] == 200 and "dashboard" in trace["tags"]
    assert len(keyword) == len(span["output"]["candidates"]["keyword"])
    asserted = viewer.client.get("/rag/docs/query?" + urlencode({"q": "keys", "user": "ana"}))
    assert asserted.status_code == 403 and "acts as itself" in unescape(asserted.text)


def test_playground_identities_by_role(dash: Dashboard, docs: str) -> None:
    admin = dash.session("admin")
    form = _playground(admin)
    assert 'name="user"' in form and 'name="all"' in form
    everything = _playground(admin, q="rotate the production API keys", k=3, all="1")
    assert "everything (no access lists)" in everything
    assert rows(everything, "hits-table")[0].split(" ")[1] == "keys"
    service = dash.session("service")
    as_ops = _playground(service, q="rotate the production API keys", mode="dense", k=1, groups="ops")
    assert "groups ops" in as_ops and rows(as_ops, "hits-table")[0].split(" ")[1] == "keys"
    assert 'id="candidates-keyword"' not in as_ops  # dense mode runs one retriever
    refused = service.client.get("/rag/docs/query?" + urlencode({"q": "keys", "all": "1"}))
    assert refused.status_code == 403


def test_actions_go_through_the_api_with_roles_and_csrf(dash: Dashboard, docs: str) -> None:
    viewer = dash.session("viewer")
    refused = viewer.api("POST", "/api/rag/collections", json={"name": "from-viewer"})
    assert refused.status_code == 403
    developer = dash.session("developer")
    page = developer.client.get("/rag")
    assert 'id="create-collection-form"' in page.text and 'data-api="/api/rag/collections"' in page.text
    no_csrf = developer.client.post("/api/rag/collections", json={"name": "no-token"})
    assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "csrf_failed"
    made = developer.api("POST", "/api/rag/collections", json={"name": "made-here", "index": "exact"})
    assert made.status_code == 201, made.text
    added = developer.api(
        "POST", "/api/rag/collections/made-here/records", json={"records": [{"id": "a", "text": "hello there"}]}
    )
    assert added.status_code == 200 and added.json()["added"] == ["a"]
    detail = developer.client.get("/rag/made-here")
    assert 'id="ingest-records-form"' in detail.text and 'id="delete-collection-form"' in detail.text
    assert rows(detail.text, "documents-table")[0].startswith("a ")
    assert developer.api("DELETE", "/api/rag/collections/made-here").status_code == 200
    assert developer.client.get("/rag/made-here").status_code == 404
