"""The monitors API and CLI in process (SQLite): rules CRUD, series by prompt version, alerts, online
evaluation rules, and clear 4xx answers for bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from pilothouse.cli.main import app
from pilothouse.store.ids import new_trace_id
from pilothouse.store.tables import traces
from tests.support.asgi_app import app_settings, cli_in_process

runner = CliRunner()


def test_rules_series_and_alerts_through_api_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli_in_process(app_settings(tmp_path, [], monitor_interval_s=0), monkeypatch) as client:
        project = client.get("/api/projects").json()["data"][0]["id"]
        state = client.app.api.state.pilothouse  # type: ignore[attr-defined]
        now = time.time()
        rows = [
            {
                "id": new_trace_id(),
                "project_id": project,
                "name": "chat",
                "status": "error" if i % 4 == 0 else "ok",
                "started_at": now - 600 + i,
                "ended_at": now - 600 + i + 0.2,
                "input_tokens": 1,
                "output_tokens": 1,
                "cost_usd": 0,
                "prompt_name": "support",
                "prompt_version": 1 + i % 2,
            }
            for i in range(40)
        ]
        with state.store.begin() as conn:
            conn.execute(insert(traces), rows)

        found = runner.invoke(
            app, ["monitors", "series", "error_rate", "--by", "prompt_version", "--window", "1h", "--json"]
        )
        assert found.exit_code == 0, found.output
        body = json.loads(found.output)
        by_group = {s["group"]: s for s in body["data"]}
        assert set(by_group) == {"support@1", "support@2"}
        totals = {g: sum(b["n"] for b in s["buckets"]) for g, s in by_group.items()}
        assert totals == {"support@1": 20, "support@2": 20}
        errors = sum(b["value"] * b["n"] for b in by_group["support@1"]["buckets"] if b["n"])
        assert errors == pytest.approx(10)  # i % 4 == 0 are all even: version 1
        shown = runner.invoke(app, ["monitors", "series", "latency_p95", "--window", "1h", "--bucket", "1h"])
        assert shown.exit_code == 0 and "ms" in shown.output

        detector = json.dumps({"bucket_s": 60, "window_s": 1200, "baseline_s": 3600})
        added = runner.invoke(
            app,
            ["monitors", "rules", "add", "halluc", "hallucination_rate", "--prompt", "support",
             "--webhook", "http://127.0.0.1:9/hook", "--detector", detector, "--json"],
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        assert json.loads(added.output)["detector"]["bucket_s"] == 60
        listed = runner.invoke(app, ["monitors", "rules", "list", "--json"])
        assert [r["name"] for r in json.loads(listed.output)["data"]] == ["halluc"]
        again = client.post("/api/monitors/rules", json={"name": "halluc", "metric": "error_rate"})
        assert again.status_code == 409

        for bad, where in (
            ({"name": "x", "metric": "nope"}, "metric"),
            ({"name": "x", "metric": "error_rate", "detector": {"min_abs": -1}}, "min_abs"),
            ({"name": "x", "metric": "error_rate", "detector": {"bogus": 1}}, "bogus"),
            ({"name": "x", "metric": "error_rate", "webhook_url": "ftp://a"}, "webhook_url"),
            ({"name": "x", "metric": "error_rate", "scope": {"colour": "red"}}, "colour"),
        ):
            answer = client.post("/api/monitors/rules", json=bad)
            assert answer.status_code in (400, 422) and where in answer.text, (bad, answer.text)
        assert client.get("/api/monitors/series", params={"metric": "nope"}).status_code == 400
        assert client.get("/api/monitors/series", params={"metric": "error_rate", "window": "x"}).status_code == 400
        tiny = client.get("/api/monitors/series", params={"metric": "error_rate", "window": "30d", "bucket": "1s"})
        assert tiny.status_code == 400 and "too many" in tiny.text

        alerts = runner.invoke(app, ["monitors", "alerts", "--json"])
        assert alerts.exit_code == 0 and json.loads(alerts.output) == {"data": []}

        sampling = runner.invoke(
            app, ["monitors", "online-eval", "add", "sample", "--rate", "0.2", "--scorer", "pii", "--json"]
        )
        assert sampling.exit_code == 0, sampling.output
        assert client.get("/api/monitors/online-eval").json()["data"][0]["scorers"] == ["pii"]
        over = client.post("/api/monitors/online-eval", json={"name": "s2", "rate": 2, "scorers": ["pii"]})
        assert over.status_code == 422
        assert runner.invoke(app, ["monitors", "online-eval", "remove", "sample"]).exit_code == 0

        removed = runner.invoke(app, ["monitors", "rules", "remove", "halluc"])
        assert removed.exit_code == 0
        assert client.delete("/api/monitors/rules/halluc").status_code == 404
