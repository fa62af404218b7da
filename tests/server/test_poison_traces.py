"""Valid requests whose content a backend refuses as sent (NUL characters in PostgreSQL's JSON and text, a
user id longer than its column) answer 200 and leave a readable trace, on SQLite and on PostgreSQL, and the
good calls between them keep theirs as sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.store.engine import Store
from tests.prompts.inprocess import FAKE_MODEL, running_app


def test_odd_content_is_stored_capped_and_other_traces_are_kept(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_app(store, tmp_path / "data", monkeypatch) as app:
        odd = [
            {"messages": [{"role": "user", "content": "nul \u0000 inside"}]},
            {"messages": [{"role": "user", "content": "long user"}], "user": "u" * 500},
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "part \u0000"}]}], "user": "\u0000"},
        ]
        ids: list[tuple[str, str]] = []
        for i, extra in enumerate(odd * 3):
            for body, kind in ((extra, "odd"), ({"messages": [{"role": "user", "content": f"good {i}"}]}, "good")):
                response = app.call("POST", "/v1/chat/completions", json={"model": FAKE_MODEL, **body})
                assert response.status_code == 200, response.text
                ids.append((kind, response.headers["x-pilothouse-trace-id"]))
        for kind, trace_id in ids:
            trace = app.ok("GET", f"/api/traces/{trace_id}")
            assert trace["status"] == "ok" and len(trace["spans"]) == 1, trace
            repaired = "pilothouse.trace.repaired" in trace["spans"][0]["attributes"]
            if kind == "good":
                assert not repaired
            elif store.dialect == "postgresql":
                assert repaired, "PostgreSQL refuses NUL and over-long text: the trace is stored capped"
        assert not (tmp_path / "data" / "traces-unstored.jsonl").exists()
