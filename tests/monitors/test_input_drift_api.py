"""Input drift through the API and CLI in process (SQLite, real MiniLM): a drift rule, pinning its reference,
the current comparison, the series, and clear 4xx answers for bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from bench.drift_sim import mix, prompts
from sqlalchemy import insert
from typer.testing import CliRunner

from pilothouse.cli.main import app
from pilothouse.monitors.drift_sampler import DriftSampler
from pilothouse.store.ids import new_span_id, new_trace_id
from pilothouse.store.tables import spans, traces
from tests.support.asgi_app import app_settings, cli_in_process

pytestmark = pytest.mark.model
runner = CliRunner()
DETECTOR = {"bucket_s": 60, "window_s": 300, "baseline_s": 600, "min_samples": 5, "samples_per_hour": 10_000}


def test_drift_rules_reference_and_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli_in_process(app_settings(tmp_path, [], monitor_interval_s=0), monkeypatch) as client:
        project = client.get("/api/projects").json()["data"][0]["id"]
        state = client.app.api.state.pilothouse  # type: ignore[attr-defined]
        now = time.time()
        questions = prompts(mix(0.0), 60, np.random.default_rng(5))
        trace_rows, span_rows = [], []
        for i, question in enumerate(questions):
            trace_id, ts = new_trace_id(), now - 1200 + i * 19.0
            trace_rows.append({"id": trace_id, "project_id": project, "name": "chat", "status": "ok",
                               "started_at": ts, "ended_at": ts + 1, "input_tokens": 1, "output_tokens": 1,
                               "cost_usd": 0})  # fmt: skip
            span_rows.append({"id": new_span_id(), "trace_id": trace_id, "project_id": project, "kind": "llm",
                              "name": "chat", "status": "ok", "started_at": ts, "ended_at": ts + 1,
                              "usage_estimated": False,
                              "input": {"messages": [{"role": "user", "content": question}]}})  # fmt: skip
        with state.store.begin() as conn:
            conn.execute(insert(traces), trace_rows)
            conn.execute(insert(spans), span_rows)

        added = runner.invoke(
            app, ["monitors", "rules", "add", "drift", "input_drift", "--detector", json.dumps(DETECTOR), "--json"]
        )
        assert added.exit_code == 0, added.output
        assert json.loads(added.output)["detector"]["reference_start"] is None
        assert client.post("/api/monitors/rules", json={"name": "errors", "metric": "error_rate"}).status_code == 201

        # Pin the reference to a window that has happened (durations mean "ago"), then back to trailing.
        pinned = runner.invoke(
            app, ["monitors", "rules", "pin-reference", "drift", "--start", "20m", "--end", "10m", "--json"]
        )
        assert pinned.exit_code == 0, pinned.output
        detector = json.loads(pinned.output)["detector"]
        assert detector["reference_end"] - detector["reference_start"] == pytest.approx(600, abs=2)
        again = runner.invoke(app, ["monitors", "rules", "pin-reference", "drift", "--start", "20m", "--end", "10m"])
        assert again.exit_code == 0 and "reference" in again.output, again.output

        assert DriftSampler(state.store).run_once() > 0
        found = client.get("/api/monitors/rules/drift/drift")
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["baseline_window"]["pinned"] is True and body["n_recent"] >= 5 and body["n_reference"] >= 5
        assert 0.0 < body["p_value"] <= 1.0 and 0.0 <= body["auc"] <= 1.0
        assert body["fired"] is False, "the same mix throughout"
        shown = runner.invoke(app, ["monitors", "drift", "drift"])
        assert shown.exit_code == 0 and "input drift" in shown.output and "AUC" in shown.output, shown.output

        series = runner.invoke(
            app, ["monitors", "series", "input_drift", "--window", "20m", "--bucket", "5m", "--json"]
        )
        assert series.exit_code == 0, series.output
        (data,) = json.loads(series.output)["data"]
        assert data["metric"] == "input_drift" and sum(b["n"] for b in data["buckets"]) > 40

        trailing = runner.invoke(app, ["monitors", "rules", "pin-reference", "drift", "--trailing", "--json"])
        assert trailing.exit_code == 0 and json.loads(trailing.output)["detector"]["reference_start"] is None

        # Bad input: 4xx with a message naming the problem.
        for bad, where in (
            ({"min_abs": 0.02}, "unknown detector settings for input_drift: min_abs"),
            ({"reference_start": now + 3600, "reference_end": now + 7200}, "future"),
            ({"reference_start": now - 100, "reference_end": now - 200}, "before reference_end"),
            ({"reference_start": now - 100}, "both reference_start and reference_end"),
            ({"min_auc": 0.4}, "min_auc"),
            ({"alpha": "x"}, "alpha"),
            ({"samples_per_hour": 1.5}, "samples_per_hour"),
            ({"window_s": 10}, "window_s"),
        ):
            answer = client.post("/api/monitors/rules", json={"name": "x", "metric": "input_drift", "detector": bad})
            assert answer.status_code == 400 and where in answer.json()["error"]["message"], (bad, answer.text)
        grouped = client.get("/api/monitors/series", params={"metric": "input_drift", "by": "model"})
        assert grouped.status_code == 400 and "cannot be grouped" in grouped.text
        for name, body_, status, where in (
            ("nope", {"trailing": True}, 404, "no monitor rule"),
            ("errors", {"trailing": True}, 400, "only input_drift rules"),
            ("drift", {"start": now - 600, "end": now + 3600}, 400, "future"),
            ("drift", {"start": "last tuesday", "end": "1h"}, 400, "start"),
            ("drift", {"start": "2h"}, 400, "needs start and end"),
            ("drift", {"trailing": True, "start": "2h"}, 400, "either trailing"),
            ("drift", {"start": "1h", "end": "2h"}, 400, "before reference_end"),
        ):
            answer = client.put(f"/api/monitors/rules/{name}/reference", json=body_)
            assert answer.status_code == status and where in answer.text, (name, body_, answer.text)
        assert client.get("/api/monitors/rules/errors/drift").status_code == 400
        assert client.get("/api/monitors/rules/nope/drift").status_code == 404
        cli_bad = runner.invoke(app, ["monitors", "rules", "pin-reference", "drift", "--start", "1h"])
        assert cli_bad.exit_code != 0 and "needs start and end" in cli_bad.output
