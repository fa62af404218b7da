"""An experiment survives its server being killed: after `kill -9` mid-run and a restart, the run shows as
interrupted, `eval resume` finishes it, and the upstream was asked for each finished item once. Also the hard
cost cap: a run whose estimate is above its cap is refused before any call. The model is a local priced
upstream that counts requests per (model, question) and answers after a short delay, so calls are in flight
when the server dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

import pilothouse
from pilothouse.sdk.client import Pilothouse, PilothouseError
from tests.support.cli_process import run_cli
from tests.support.servers import RunningServer, start_server
from tests.support.threaded_upstream import ThreadedUpstream

pytestmark = [pytest.mark.slow]

DELAY_S = 0.12
ITEMS = 40
PRICE = "2"  # USD per million tokens, in and out


class CountingUpstream(ThreadedUpstream):
    def __init__(self) -> None:
        super().__init__("counting-upstream")
        self.counts: Counter[tuple[str, str]] = Counter()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        question = str(body["messages"][-1]["content"])
        self.counts[(str(body.get("model")), question)] += 1
        if body.get("model") in ("jgood", "jbad"):  # a judge: rambles first; `jgood` gives a verdict when asked again
            verdict = len(body["messages"]) > 2 and body["model"] == "jgood"
            return self._answer(body, '{"score": 4, "reason": "mostly right"}' if verdict else "Looks fine to me!")
        await asyncio.sleep(DELAY_S)
        return self._answer(body, f"echo: {question}")

    @staticmethod
    def _answer(body: dict[str, Any], content: str) -> web.Response:
        answer = {
            "id": "chatcmpl-counted",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")


def _config(path: Path, upstream: str) -> Path:
    lines = ["include_default_models = false", "", "[local]", "preload = false"]
    for name, model in (("counted-a", "a"), ("counted-b", "b"), ("judge-good", "jgood"), ("judge-bad", "jbad")):
        lines += [
            "",
            "[[models]]",
            f'name = "{name}"',
            "[[models.deployments]]",
            'provider = "openai"',
            f'model = "{model}"',
            f'base_url = "{upstream}/v1"',
            f'input_price_per_mtok = "{PRICE}"',
            f'output_price_per_mtok = "{PRICE}"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def upstream() -> Iterator[CountingUpstream]:
    found = CountingUpstream()
    found.start()
    yield found
    found.stop()


def _kill(server: RunningServer) -> None:
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)


def _rows(db: Path, experiment_id: str) -> dict[tuple[str, str], str]:
    with sqlite3.connect(db) as conn:
        found = conn.execute(
            "SELECT variant, item_id, trace_id FROM experiment_results WHERE experiment_id = ? AND status = 'ok'",
            (experiment_id,),
        ).fetchall()
    return {(v, i): t for v, i, t in found}


def test_a_killed_run_resumes_without_paying_twice(upstream: CountingUpstream, tmp_path: Path) -> None:
    config = _config(tmp_path / "pilothouse.toml", upstream.url)
    data = tmp_path / "data"
    server = start_server(data, config=config)
    items = [{"id": f"q{i:02d}", "input": f"question {i}", "expected": f"echo: question {i}"} for i in range(ITEMS)]
    body: dict[str, Any] = {
        "name": "resume",
        "dataset": "questions",
        "variants": [{"name": "a", "model": "counted-a"}, {"name": "b", "model": "counted-b"}],
        "metrics": [{"name": "exact_match"}],
        "concurrency": 2,
    }
    try:
        with Pilothouse(server.url, server.admin_key) as ph:
            ph.push_dataset("questions", items)
            with pytest.raises(PilothouseError) as refused:
                ph.request("POST", "/api/evals/experiments", json={**body, "max_cost_usd": "0.00001"})
            assert refused.value.status == 400 and refused.value.body["error"]["code"] == "cost_cap_below_estimate"
            assert sum(upstream.counts.values()) == 0, "a refused run made calls"
            run = ph.request("POST", "/api/evals/experiments", json={**body, "max_cost_usd": "1"})
            assert Decimal(run["estimate_usd"]) > 0
            deadline = time.monotonic() + 30
            while ph.get_experiment(run["id"])["progress"]["done"] < 12:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.05)
        _kill(server)
        before = _rows(data / "pilothouse.db", run["id"])
        counts_at_kill = Counter(upstream.counts)
        assert 12 <= len(before) < 2 * ITEMS
        with sqlite3.connect(data / "pilothouse.db") as conn:  # as if the stale interval had passed
            conn.execute("UPDATE experiments SET heartbeat_at = heartbeat_at - 3600 WHERE id = ?", (run["id"],))

        server = start_server(data, config=config)
        with Pilothouse(server.url, server.admin_key) as ph:
            assert ph.get_experiment(run["id"])["status"] == "interrupted"
            ph.resume_experiment(run["id"])
            with pytest.raises(PilothouseError) as twice:
                ph.resume_experiment(run["id"])
            assert twice.value.status == 409
            final = ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)
            assert final["status"] == "done", final
            assert final["progress"] == {"done": 2 * ITEMS, "errors": 0, "total": 2 * ITEMS}
            assert final["summary"]["a"]["metrics"]["exact_match"]["mean"]["estimate"] == 1.0
            polled = ph.get_experiment(run["id"], summary=False)  # what polling reads: no intervals computed
            assert polled["summary"] is None and polled["progress"] == final["progress"]
            rows = ph.experiment_results(run["id"])
    finally:
        server.stop()
    after = {(r["variant"], r["item_id"]): r["trace_id"] for r in rows}
    assert len(after) == 2 * ITEMS
    model = {"a": "a", "b": "b"}
    for (variant, item), trace_id in before.items():
        assert after[(variant, item)] == trace_id, "a finished item was run again"
        question = f"question {int(item[1:])}"
        assert upstream.counts[(model[variant], question)] == 1
    repeated = {k: n for k, n in upstream.counts.items() if n > 1}
    # only calls in flight at the kill (at most `concurrency` of them) may have been made twice
    assert sum(n - 1 for n in repeated.values()) <= 2, repeated
    assert all(counts_at_kill[k] == 1 for k in repeated)
    assert sum(upstream.counts.values()) <= 2 * ITEMS + 2


GATE_PROMPT = """\
name: gate-say
model: counted-a
variables:
  word: {{type: string}}
messages:
  - role: user
    content: "{content}"
"""


def test_the_gate_fails_a_regression_and_passes_an_equal_candidate(upstream: CountingUpstream, tmp_path: Path) -> None:
    """`pilothouse eval gate` as CI runs it: exit 1 with a Markdown report and JUnit XML when the candidate
    drops the word the dataset expects; exit 0 when it is the same prompt."""
    server = start_server(tmp_path / "data", config=_config(tmp_path / "pilothouse.toml", upstream.url))
    try:
        folder = tmp_path / "prompts"
        folder.mkdir()
        for content in ("Say {{ word }}", "Say something"):
            (folder / "gate-say.yaml").write_text(GATE_PROMPT.format(content=content))
            _cli(server, "prompt", "push", str(folder), check=True)
        _cli(server, "prompt", "label", "gate-say", "1", "production", check=True)
        with Pilothouse(server.url, server.admin_key) as ph:
            ph.push_dataset("words", [{"input": {"word": f"w{i}"}, "expected": f"w{i}"} for i in range(30)])
        junit = tmp_path / "gate.xml"
        failed = _cli(
            server, "eval", "gate", "--dataset", "words", "--baseline", "gate-say@production",
            "--candidate", "gate-say@2", "--metric", "contains", "--junit", str(junit),
        )  # fmt: skip
        assert failed.returncode == 1, failed.stderr
        assert "## Evaluation gate FAILED: gate-say@2 vs gate-say@production" in failed.stdout
        assert "- contains: worse by 1.0000" in failed.stdout
        assert '<failure message="contains: worse by 1.0000' in junit.read_text()
        passed = _cli(
            server, "eval", "gate", "--dataset", "words", "--baseline", "gate-say@production",
            "--candidate", "gate-say@1", "--metric", "contains",
        )  # fmt: skip
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "## Evaluation gate passed" in passed.stdout
    finally:
        server.stop()


def _cli(server: RunningServer, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = run_cli(server, server.admin_key, *args)
    assert not check or result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def test_evaluate_scores_a_python_function_next_to_a_model_and_resumes(
    upstream: CountingUpstream, tmp_path: Path
) -> None:
    """`pilothouse.evaluate`: a function's outputs are scored on the server by the same metrics as a model
    variant of the same run; an exception is that item's error; a run whose process stopped resumes with only
    the items that have no result."""
    server = start_server(tmp_path / "data", config=_config(tmp_path / "pilothouse.toml", upstream.url))
    items = tmp_path / "questions.jsonl"
    items.write_text(
        "".join(
            json.dumps({"id": f"q{i:02d}", "input": f"question {i}", "expected": f"echo: question {i}"}) + "\n"
            for i in range(24)
        )
    )
    calls: list[str] = []
    dying = [True]

    def flaky_bot(item: dict[str, Any]) -> str:
        calls.append(item["id"])
        if item["id"] == "q07":
            raise ValueError("no answer for this one")
        if item["id"] == "q13" and dying[0]:  # the first run dies here, as a process stops
            raise KeyboardInterrupt
        return "echo: " + item["input"] if item["id"] != "q03" else "something else"

    try:
        with Pilothouse(server.url, server.admin_key) as ph:
            with pytest.raises(KeyboardInterrupt):
                pilothouse.evaluate(
                    items, flaky_bot, ["exact_match"], compare_with=[{"name": "a", "model": "counted-a"}],
                    concurrency=1, client=ph, progress=False,
                )  # fmt: skip
            run_id = ph.list_experiments()[0]["id"]
            first_calls = len(calls)
            dying[0] = False
            stored = {r["item_id"] for r in ph.experiment_results(run_id, variant="flaky_bot")}
            final = pilothouse.evaluate(
                "questions", flaky_bot, ["exact_match"], resume=run_id, client=ph, progress=False
            )
            assert final["status"] == "done", final
            second = calls[first_calls:]
            assert sorted(second) == sorted({f"q{i:02d}" for i in range(24)} - {i for i in stored if i != "q07"})
            rows = {r["item_id"]: r for r in ph.experiment_results(run_id, variant="flaky_bot")}
            assert len(rows) == 24
            assert rows["q07"]["status"] == "error" and "no answer for this one" in rows["q07"]["error"]
            assert rows["q03"]["scores"]["exact_match"]["value"] is False
            assert rows["q05"]["scores"]["exact_match"]["value"] is True
            summary = final["summary"]["flaky_bot"]["metrics"]["exact_match"]
            assert summary["judged"] == 23 and summary["mean"]["estimate"] == pytest.approx(22 / 23)
            found = ph.compare_experiment(run_id, baseline="a", candidate="flaky_bot")
            entry = found["metrics"][0]
            assert entry["n"] == 23 and entry["losses"] == 1 and entry["verdict"] == "no significant difference"
    finally:
        server.stop()


def test_a_judge_is_retried_on_unreadable_answers_and_fails_openly(upstream: CountingUpstream, tmp_path: Path) -> None:
    """`llm_judge` in a run: its calls go through the gateway (traced, source `eval`); an unreadable verdict is
    asked again and then read; a judge that never answers readably leaves the item unjudged, not scored zero."""
    server = start_server(tmp_path / "data", config=_config(tmp_path / "pilothouse.toml", upstream.url))
    rubric = {"criteria": "The answer repeats the question."}
    try:
        with Pilothouse(server.url, server.admin_key) as ph:
            labelled = [{"id": f"q{i}", "input": f"question {i}", "metadata": {"human": i < 4}} for i in range(6)]
            ph.push_dataset("judged", labelled)
            run = ph.start_experiment(
                "judged",
                dataset="judged",
                variants=[{"name": "a", "model": "counted-a"}],
                metrics=[
                    {"name": "llm_judge", "options": {**rubric, "model": "judge-good"}},
                    {"name": "llm_judge", "options": {**rubric, "model": "judge-bad", "retries": 1}},
                ],
            )
            final = ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)
            assert final["status"] == "done", final
            good, bad = final["summary"]["a"]["metrics"]["llm_judge:1"], final["summary"]["a"]["metrics"]["llm_judge:2"]
            assert good["judged"] == 6 and good["mean"]["estimate"] == pytest.approx(0.75)
            assert bad["judged"] == 0 and bad["unjudged"] == 6 and bad["mean"] is None
            row = ph.experiment_results(run["id"])[0]
            assert row["scores"]["llm_judge:2"]["value"] is None
            assert row["scores"]["llm_judge:2"]["explanation"].startswith("judge failed: no readable verdict after 2")
            judge_traces = ph.list_traces(source="eval", model="judge-good", limit=50)["data"]
            assert len(judge_traces) == 12  # two calls per item: the rambling answer, then the verdict
            # people call 4 of 6 answers good; the judge passes all 6: accuracy 4/6, no agreement beyond chance
            found = ph.judge_calibration(run["id"], metric="llm_judge:1", label="human")
            assert (found["n"], found["accuracy"], found["kappa"]) == (6, pytest.approx(4 / 6), pytest.approx(0.0))
            assert found["confusion"]["counts"] == [[0, 2], [0, 4]]
            failed = ph.judge_calibration(run["id"], metric="llm_judge:2", label="human")
            assert failed["n"] == 0 and failed["unjudged"] == 6
    finally:
        server.stop()


def test_people_score_results_in_a_queue_and_a_judge_is_calibrated_against_them(
    upstream: CountingUpstream, tmp_path: Path
) -> None:
    """An annotation queue: a run's results and a trace queued for a person, the next task shows what to judge,
    answers are checked against the queue's score type, a trace's answer becomes a `human` score on it, and the
    judge's agreement with the people's answers is reported."""
    server = start_server(tmp_path / "data", config=_config(tmp_path / "pilothouse.toml", upstream.url))
    try:
        with Pilothouse(server.url, server.admin_key) as ph:
            ph.push_dataset(
                "to-annotate", [{"id": f"q{i}", "input": f"question {i}", "expected": "x"} for i in range(4)]
            )
            run = ph.start_experiment(
                "annotated",
                dataset="to-annotate",
                variants=[{"name": "a", "model": "counted-a"}],
                metrics=[
                    {"name": "llm_judge", "options": {"criteria": "Repeats the question.", "model": "judge-good"}}
                ],
            )
            assert ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)["status"] == "done"
            ph.create_queue("helpful", score={"name": "helpful", "data_type": "boolean"}, description="Is it helpful?")
            with pytest.raises(PilothouseError) as twice:
                ph.create_queue("helpful", score={"name": "helpful", "data_type": "boolean"})
            assert twice.value.status == 409
            assert ph.queue_items("helpful", experiment_id=run["id"], assignee="ana") == {
                "added": 4,
                "already_queued": 0,
            }
            assert ph.queue_items("helpful", experiment_id=run["id"])["already_queued"] == 4
            trace_id = ph.list_traces(source="eval", model="counted-a", limit=1)["data"][0]["id"]
            assert ph.queue_items("helpful", trace_ids=[trace_id])["added"] == 1
            seen = []
            for answer in (True, True, False, True):
                task = ph.next_task("helpful", assignee="ana")
                assert task["task"]["assignee"] == "ana" and task["show"]["output"].startswith("echo: question")
                assert task["show"]["input"].startswith("question") and task["show"]["expected"] == "x"
                with pytest.raises(PilothouseError) as wrong:
                    ph.answer_task("helpful", task["task"]["id"], value=0.5)
                assert wrong.value.status == 400 and "true or false" in wrong.value.message
                ph.answer_task("helpful", task["task"]["id"], value=answer)
                seen.append(task["task"]["item_id"])
                with pytest.raises(PilothouseError) as closed:
                    ph.answer_task("helpful", task["task"]["id"], value=answer)
                assert closed.value.status == 409
            assert sorted(seen) == ["q0", "q1", "q2", "q3"]
            last = ph.next_task("helpful", assignee="ana")
            assert last["task"]["trace_id"] == trace_id and last["task"]["experiment_id"] is None
            ph.answer_task("helpful", last["task"]["id"], value=False, comment="too terse")
            assert ph.next_task("helpful")["task"] is None
            scores = ph.list_scores(trace_id=trace_id)["data"]
            assert [(s["name"], s["value"], s["source"]) for s in scores] == [("helpful", 0.0, "human")]
            assert ph.list_queues()[0]["tasks"] == {"open": 0, "done": 5, "skipped": 0}
            found = ph.judge_calibration(run["id"], metric="llm_judge", label="queue:helpful")
            assert found["n"] == 4 and found["accuracy"] == pytest.approx(0.75)
    finally:
        server.stop()
