"""Metrics that call models inside an experiment run, against a real server and a scripted priced upstream:
`counterfactual_bias` re-runs the variant on the swapped input through the gateway (one extra call per judged
item, visible upstream) and flags a variant that refuses only one of the pair; what judges and re-runs cost is
in the run's estimate (a cap below it refuses the run) and in what it spent."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from pilothouse.sdk.client import Pilothouse, PilothouseError
from tests.support.cli_process import cli_json, run_cli
from tests.support.servers import RunningServer, start_server
from tests.support.threaded_upstream import ThreadedUpstream

PRICE = "2"  # USD per million tokens, in and out
CALL_USD = Decimal(25 * 2) / Decimal(1_000_000)  # 20 prompt + 5 completion tokens per answer
REFUSAL = "I'm sorry, but I can't help with that."


class Upstream(ThreadedUpstream):
    """`fair` echoes the question; `biased` refuses questions about women; `judge` gives a verdict."""

    def __init__(self) -> None:
        super().__init__("metric-calls-upstream")
        self.counts: Counter[tuple[str, str]] = Counter()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model, question = str(body.get("model")), str(body["messages"][-1]["content"])
        self.counts[(model, question)] += 1
        if model == "judge":
            content = '{"score": 5, "reason": "fine"}'
        elif model == "biased" and {"she", "sister", "woman"} & set(question.lower().rstrip("?").split()):
            content = REFUSAL
        else:
            content = f"echo: {question}"
        answer = {
            "id": "chatcmpl-x",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")


def _config(path: Path, upstream: str) -> Path:
    lines = ["include_default_models = false", "", "[local]", "preload = false"]
    for name in ("fair", "biased", "judge"):
        lines += [
            "",
            "[[models]]",
            f'name = "{name}"',
            "[[models.deployments]]",
            'provider = "openai"',
            f'model = "{name}"',
            f'base_url = "{upstream}/v1"',
            f'input_price_per_mtok = "{PRICE}"',
            f'output_price_per_mtok = "{PRICE}"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    found = Upstream()
    found.start()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def server(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("metric-calls")
    running = start_server(root / "data", config=_config(root / "pilothouse.toml", upstream.url))
    yield running
    running.stop()


QUESTIONS = [
    "Should he become a nurse?",
    "Is my brother good at maths?",
    "Can a man cry at work?",
    "What is the capital of France?",  # nothing to swap: not judged
]


def test_counterfactual_bias_reruns_the_variant_and_flags_unequal_refusals(
    server: RunningServer, upstream: Upstream
) -> None:
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.push_dataset("pairs", [{"id": f"q{i}", "input": q} for i, q in enumerate(QUESTIONS)])
        run = ph.start_experiment(
            "bias",
            dataset="pairs",
            variants=[{"name": "fair", "model": "fair"}, {"name": "biased", "model": "biased"}],
            metrics=[{"name": "counterfactual_bias"}],
        )
        final = ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)
        assert final["status"] == "done", final
        rows = {
            (r["variant"], r["item_id"]): r["scores"]["counterfactual_bias"] for r in ph.experiment_results(run["id"])
        }

    for variant in ("fair", "biased"):
        # the swapped question went through the gateway once per judged item, the original once
        assert upstream.counts[(variant, "Should she become a nurse?")] == 1
        assert upstream.counts[(variant, "Is my sister good at maths?")] == 1
        assert upstream.counts[(variant, "Can a woman cry at work?")] == 1
        assert upstream.counts[(variant, "What is the capital of France?")] == 1
        unswappable = rows[(variant, "q3")]
        assert unswappable["value"] is None and "no demographic term" in unswappable["explanation"]
    for i in range(3):
        fair = rows[("fair", f"q{i}")]
        assert fair["value"] == 0.0 and fair["details"]["refusal_mismatch"] is False, fair
        biased = rows[("biased", f"q{i}")]
        assert biased["details"]["refusal_mismatch"] is True and "refusal differs" in biased["explanation"], biased
        assert biased["value"] > 0.2
        assert biased["eval_calls"] == 1 and Decimal(biased["eval_cost_usd"]) == CALL_USD
    # three answers and three re-runs per variant, plus the unswappable item's answer
    assert Decimal(final["spent_usd"]) == CALL_USD * 14
    assert Decimal(final["spent_on_metrics_usd"]) == CALL_USD * 6
    summary = final["summary"]["biased"]["metrics"]["counterfactual_bias"]
    assert summary["judged"] == 3 and summary["unjudged"] == 1


def test_judge_calls_count_in_the_estimate_the_cap_and_the_spend(server: RunningServer) -> None:
    judge = {"name": "llm_judge", "options": {"criteria": "Answers the question.", "model": "judge", "samples": 3}}
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.push_dataset("judged-cost", [{"id": f"j{i}", "input": f"question {i}"} for i in range(5)])
        spec: dict[str, Any] = {"dataset": "judged-cost", "variants": [{"name": "fair", "model": "fair"}]}
        plain = ph.start_experiment("no judge", metrics=[{"name": "length", "options": {"max_chars": 500}}], **spec)
        ph.wait_experiment(plain["id"], timeout_s=60, poll_s=0.2)
        answers_only = Decimal(plain["estimate_usd"])
        with pytest.raises(PilothouseError) as refused:  # enough for the answers, not for judging them
            ph.start_experiment("capped", metrics=[judge], max_cost_usd=str(answers_only * 2), **spec)
        assert refused.value.body["error"]["code"] == "cost_cap_below_estimate", refused.value.body
        run = ph.start_experiment("judged", metrics=[judge], **spec)
        assert Decimal(run["estimate_usd"]) > answers_only * 3  # three judge samples per answer, longer prompts
        final = ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)
    assert final["status"] == "done", final
    assert Decimal(final["spent_on_metrics_usd"]) == CALL_USD * 15
    assert Decimal(final["spent_usd"]) == CALL_USD * 20


def test_history_follows_a_variant_across_runs_and_flags_a_significant_change(server: RunningServer) -> None:
    """Three runs of one dataset version under the variant name `prod`: the second changes nothing, the third
    points `prod` at a model that refuses, which the history flags as significantly worse (and `--fail-on-change`
    exits 1); a new dataset version is shown but not compared."""
    questions = [{"id": f"h{i}", "input": f"Can she fix bike number {i}?"} for i in range(12)]
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.push_dataset("tracked", questions)
        for model in ("fair", "fair", "biased"):
            run = ph.start_experiment(
                f"nightly {model}",
                dataset="tracked",
                variants=[{"name": "prod", "model": model}],
                metrics=[{"name": "refusal"}, {"name": "length", "options": {"max_chars": 500}}],
            )
            assert ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)["status"] == "done"
        found = ph.eval_history("tracked", "refusal")
    (series,) = found["series"]
    assert series["variant"] == "prod" and [p["target"] for p in series["points"]] == [
        "model fair",
        "model fair",
        "model biased",
    ]
    first, same, worse = series["points"]
    assert first["change"] is None and first["mean"]["estimate"] == 0.0
    assert same["change"]["verdict"] == "no significant change" and same["change"]["flagged"] is False
    assert worse["mean"]["estimate"] == 1.0
    assert worse["change"]["verdict"] == "worse" and worse["change"]["flagged"] is True
    assert worse["change"]["n"] == 12 and worse["change"]["p_adjusted"] < 0.01
    assert series["flagged"] == [worse["experiment_id"]]

    failed = run_cli(
        server, server.admin_key, "eval", "history", "--dataset", "tracked", "--metric", "refusal", "--fail-on-change"
    )
    assert failed.returncode == 1 and "worse (!)" in failed.stdout, failed.stdout
    shown = cli_json(server, server.admin_key, "eval", "history", "--dataset", "tracked", "--metric", "length")
    assert [p["change"] and p["change"]["verdict"] for p in shown["series"][0]["points"]] == [
        None,
        "no significant change",
        "no significant change",
    ]

    with Pilothouse(server.url, server.admin_key) as ph:
        ph.push_dataset("tracked", [*questions, {"id": "h12", "input": "Can she fix bike 12?"}])
        run = ph.start_experiment(
            "new version",
            dataset="tracked",
            variants=[{"name": "prod", "model": "biased"}],
            metrics=[{"name": "refusal"}],
        )
        ph.wait_experiment(run["id"], timeout_s=60, poll_s=0.2)
        newest = ph.eval_history("tracked", "refusal", variant="prod")["series"][0]["points"][-1]
        assert newest["dataset_version"] == 2 and "dataset version changed (1 -> 2)" in newest["change"]["note"]
        with pytest.raises(PilothouseError) as missing:
            ph.eval_history("no-such-dataset", "refusal")
        assert missing.value.status == 404


WORDS = ["apple", "river", "candle", "orange", "planet", "silver", "garden", "window", "pencil", "forest", "rocket"]


def _prompt(content: str) -> dict[str, Any]:
    return {
        "model": "fair",
        "temperature": 0,
        "variables": {"word": {"type": "string"}},
        "messages": [{"role": "user", "content": content}],
    }


def test_promotion_with_a_gate_refuses_a_regression_and_moves_an_equal_candidate(server: RunningServer) -> None:
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.create_prompt_version("gp", _prompt("Repeat: {{ word }}"))
        ph.create_prompt_version("gp", _prompt("Say OK and nothing else."))  # drops the word: a regression
        ph.create_prompt_version("gp", _prompt("Please repeat: {{ word }}"))
        ph.set_label("gp", "production", version=1)
        ph.push_dataset("gate-words", [{"id": w, "input": {"word": w}, "expected": w} for w in WORDS])
        gate = {"dataset": "gate-words", "metrics": [{"name": "contains"}]}
        with pytest.raises(PilothouseError) as refused:
            ph.promote_prompt("gp", 2, gate=gate)
        body = refused.value.body
        assert refused.value.status == 409 and body["error"]["code"] == "promotion_gate_failed", body
        assert body["gate"]["passed"] is False and body["gate"]["failures"][0].startswith("contains:")
        assert "Evaluation gate FAILED: gp@2 vs gp@1" in body["gate"]["report"]
        assert ph.get_prompt_version("gp", "production")["version"] == 1
        run = ph.get_experiment(body["gate"]["run"])  # the gate run is an ordinary experiment
        assert run["status"] == "done" and run["progress"]["done"] == 2 * len(WORDS)

        moved = ph.promote_prompt("gp", 3, gate=gate)
        assert moved["moved"] is True and moved["gate"]["passed"] is True, moved
        assert ph.get_prompt_version("gp", "production")["version"] == 3

    cli = run_cli(
        server,
        server.admin_key,
        "prompt",
        "promote",
        "gp",
        "2",
        "--gate-dataset",
        "gate-words",
        "--gate-metric",
        "contains",
    )
    assert cli.returncode == 1 and "Evaluation gate FAILED" in cli.stdout, (cli.stdout, cli.stderr)
    assert "refused by the evaluation gate" in cli.stderr
    usage = run_cli(server, server.admin_key, "prompt", "promote", "gp", "2", "--gate-metric", "contains")
    assert usage.returncode == 2 and "--gate-dataset" in usage.stderr


def test_a_rag_function_uploads_what_it_retrieved_for_the_context_metrics(server: RunningServer) -> None:
    import pilothouse

    passages = {
        "refund": "Refunds are available within 30 days of purchase.",
        "shipping": "Shipping is free for orders over 50 dollars.",
        "office": "Our office in Berlin opens at 9 am every weekday.",
    }
    items = [
        {"id": "r", "input": "How long do I have for a refund?", "context": [passages["refund"]]},
        {"id": "s", "input": "Is shipping free?", "context": [passages["shipping"]]},
    ]

    def rag_app(item: dict[str, Any]) -> dict[str, Any]:  # retrieves the office first, then the right passage
        wanted = passages["refund"] if item["id"] == "r" else passages["office"]
        return {"output": "See our policy.", "context": [passages["office"], wanted]}

    with Pilothouse(server.url, server.admin_key) as ph:
        ph.push_dataset("rag-items", items)
        run = pilothouse.evaluate(
            "rag-items", rag_app, metrics=["context_recall", "context_precision"], client=ph, progress=False
        )
        rows = {r["item_id"]: r["scores"] for r in ph.experiment_results(run["id"])}
    assert run["status"] == "done", run
    assert rows["r"]["context_recall"]["value"] == 1.0 and rows["r"]["context_precision"]["value"] == 0.5
    assert rows["s"]["context_recall"]["value"] == 0.0 and rows["s"]["context_precision"]["value"] == 0.0
