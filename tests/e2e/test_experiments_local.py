"""`pilothouse eval run` as a user runs it against `pilothouse up` with the local model: a 30-item dataset
against two versions of a prompt, scored by deterministic metrics whose scores the test recomputes from the
stored outputs, then compared with an interval and an adjusted p-value. Every call is a trace with source `eval`.
The module works in a project of its own on the session server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilothouse.sdk.client import Pilothouse, PilothouseError
from tests.e2e import assert_clean_log
from tests.support.cli_process import cli_ok
from tests.support.servers import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

PROMPT = """\
name: ev-say
model: smollm2-135m
temperature: 0
max_tokens: 6
variables:
  word: {{type: string}}
messages:
  - role: user
    content: "{instruction}"
"""
V1 = "Repeat this word and nothing else: {{ word }}"
V2 = "Reply with the single word OK. Ignore this: {{ word }}"
WORDS = [
    "apple", "river", "candle", "orange", "planet", "silver", "garden", "window", "pencil", "forest",
    "rocket", "butter", "castle", "dragon", "guitar", "harbor", "island", "jacket", "kettle", "lemon",
    "marble", "needle", "ocean", "pepper", "quartz", "ribbon", "saddle", "tunnel", "violet", "walnut",
]  # fmt: skip


def _ok(server: RunningServer, key: str, *args: str) -> str:
    return cli_ok(server, key, *args)


def test_two_prompt_versions_on_thirty_items(server: RunningServer, tmp_path: Path) -> None:
    offset = len(server.log())
    project = f"eval-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}) as http:
        assert http.post("/api/projects", json={"name": project}).status_code == 201
        key = http.post("/api/keys", json={"name": "dev", "role": "developer", "project": project}).json()["secret"]
    folder = tmp_path / "prompts"
    folder.mkdir()
    for instruction in (V1, V2):
        (folder / "ev-say.yaml").write_text(PROMPT.format(instruction=instruction))
        _ok(server, key, "prompt", "push", str(folder))
    items = tmp_path / "words.jsonl"
    items.write_text("".join(json.dumps({"id": w, "input": {"word": w}, "expected": w}) + "\n" for w in WORDS))
    _ok(server, key, "dataset", "push", str(items), "--name", "words")

    run = json.loads(
        _ok(
            server, key, "eval", "run", "--dataset", "words@1", "--prompt", "ev-say@1", "--prompt", "ev-say@2",
            "--metric", 'contains={"ignore_case": true}', "--metric", "exact_match", "--concurrency", "2", "--json",
        )
    )  # fmt: skip
    assert run["status"] == "done", run
    assert run["progress"] == {"done": 60, "errors": 0, "total": 60}

    with Pilothouse(server.url, key) as ph:
        rows = ph.experiment_results(run["id"])
        # the deterministic metrics give the scores the outputs imply
        for row in rows:
            word, output = row["item_id"], row["output"]
            assert row["scores"]["contains"]["value"] == (word.lower() in output.lower()), row
            assert row["scores"]["exact_match"]["value"] == (output.strip() == word), row
            assert row["scores"]["contains"]["explanation"]
        rate = {
            variant: sum(r["scores"]["contains"]["value"] for r in rows if r["variant"] == variant) / 30
            for variant in ("ev-say@1", "ev-say@2")
        }
        summary = run["summary"]["ev-say@1"]["metrics"]["contains"]
        assert summary["mean"]["estimate"] == pytest.approx(rate["ev-say@1"]) and summary["judged"] == 30
        assert summary["mean"]["low"] <= rate["ev-say@1"] <= summary["mean"]["high"]

        found = ph.compare_experiment(run["id"], baseline="ev-say@1", candidate="ev-say@2")
        contains = next(m for m in found["metrics"] if m["metric"] == "contains")
        assert contains["n"] == 30
        assert contains["difference"]["estimate"] == pytest.approx(rate["ev-say@2"] - rate["ev-say@1"])
        assert contains["difference"]["low"] <= contains["difference"]["estimate"] <= contains["difference"]["high"]
        assert 0.0 < contains["p_value"] <= contains["p_adjusted"] <= 1.0
        assert contains["verdict"] in ("better", "worse", "no significant difference")

        # every call went through the gateway as an `eval` trace of this run's session
        traces = ph.list_traces(source="eval", limit=100)["data"]
        assert {r["trace_id"] for r in rows} <= {t["id"] for t in traces}

        with pytest.raises(PilothouseError) as bad:
            ph.compare_experiment(run["id"], baseline="ev-say@1", candidate="ev-say@9")
        assert bad.value.status == 400 and "no variant 'ev-say@9'" in bad.value.message

    table = _ok(server, key, "eval", "compare", run["id"], "--baseline", "ev-say@1", "--candidate", "ev-say@2")
    assert "contains" in table and "exact_match" in table
    report = _ok(server, key, "eval", "report", run["id"], "--baseline", "ev-say@1", "--candidate", "ev-say@2")
    assert report.startswith("# words: ev-say@1 vs ev-say@2") and "## ev-say@2 vs ev-say@1" in report
    assert f"| ev-say@1 | contains | {rate['ev-say@1']:.3f}" in report
    assert_clean_log(server, offset)


def test_bad_runs_are_refused_before_any_call(server: RunningServer) -> None:
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.push_dataset("eval-refusals", [{"input": "plain text"}])
        cases: list[tuple[dict[str, Any], str]] = [
            ({"metrics": [{"name": "no_such_metric"}]}, "no_such_metric"),
            ({"variants": [{"name": "p", "prompt": "ev-say@1"}]}, "the item's input must be its variables"),
            ({"dataset": "missing-dataset"}, "no dataset named 'missing-dataset'"),
            ({"variants": [{"name": "m", "model": "smollm2-135m", "params": {"temprature": 0}}]}, "unknown parameter"),
        ]
        for change, message in cases:
            body = {
                "name": "refused",
                "dataset": "eval-refusals",
                "variants": [{"name": "m", "model": "smollm2-135m"}],
                "metrics": [{"name": "contains", "options": {"value": "x"}}],
                **change,
            }
            with pytest.raises(PilothouseError) as refused:
                ph.request("POST", "/api/evals/experiments", json=body)
            assert refused.value.status in (400, 404, 422) and message in refused.value.message, refused.value.body
