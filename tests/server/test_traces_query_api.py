"""GET /api/traces filters and full-text search over HTTP, clear 400s for bad filter values, and content
capture set through the API changing what the next gateway call stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, running

MODELS = [ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake")])]


def chat(client: object, text: str) -> str:
    resp = client.post(  # type: ignore[attr-defined]
        "/v1/chat/completions", json={"model": "fake-chat", "messages": [{"role": "user", "content": text}]}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.headers["x-pilothouse-trace-id"])


def test_search_filters_and_capture_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running(app_settings(tmp_path, MODELS), monkeypatch) as (client, _app):
        kept = chat(client, "where is the aquamarine lighthouse")
        found = client.get("/api/traces", params={"q": "aquamarine lighthouse"}).json()["data"]
        assert [t["id"] for t in found] == [kept]
        assert client.get("/api/traces", params={"q": "aquamarine", "model": "other"}).json()["data"] == []
        assert client.get("/api/traces", params={"latency_min_ms": 0, "cost_max": "1"}).json()["data"]

        for params, param in (
            ({"q": "?!"}, "q"),
            ({"score": "groundedness is low"}, "score"),
            ({"cost_min": "lots"}, "cost_min"),
            ({"cost_min": "1e40"}, "cost_min"),
        ):
            resp = client.get("/api/traces", params=params)
            assert resp.status_code in (400, 422), (params, resp.text)
            assert param in resp.text

        assert client.get("/api/projects/capture").json()["mode"] == "full"
        changed = client.put("/api/projects/capture", json={"mode": "off"}).json()
        assert (changed["mode"], changed["previous"]) == ("off", "full")
        assert client.put("/api/projects/capture", json={"mode": "some"}).status_code == 422
        hidden = chat(client, "the aquamarine submarine")
        trace = client.get(f"/api/traces/{hidden}").json()
        assert all(s["input"] is None and s["output"] is None for s in trace["spans"])
        assert trace["input_tokens"] > 0
        assert [t["id"] for t in client.get("/api/traces", params={"q": "aquamarine"}).json()["data"]] == [kept]
