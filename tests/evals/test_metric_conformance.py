"""Every registered metric (built in or a plugin) keeps the protocol: it declares its name, family and
direction, builds from keyword options, and scores examples into `Score`s whose values are in range, with an
explanation, never raising on odd input; an example it cannot judge is reported unjudged, not scored zero."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pilothouse.evals.metrics import Example, Metric, MetricSpecError, Score, build_metric, metric_class, metric_names

OPTIONS: dict[str, dict[str, Any]] = {
    "max_tokens": {"limit": 10},
    "max_latency_ms": {"limit": 100},
    "max_cost_usd": {"limit": "0.01"},
    "length": {"max_chars": 100},
    "llm_judge": {"criteria": "The answer is correct and complete."},
    "policy_compliance": {"policy": "name: p\noutput:\n  - {scanner: pii, action: redact}\n"},
}
"""The least a metric needs to be built (the others build with no options)."""

EXAMPLES = [
    Example(
        output="Paris is the capital of France.",
        input="What is the capital of France?",
        expected="Paris",
        context=("Paris is the capital and largest city of France.",),
        output_tokens=7,
        latency_ms=12.0,
        cost_usd=Decimal("0.001"),
    ),
    Example(output=""),
    Example(output="   \n\t "),
    Example(output='{"a": 1}', expected={"type": "object"}),
    Example(output="x" * 5000, input="?", context=("",)),
    Example(output="\u202e\u0000 ünïcödé 🙂 " * 20, expected=["a", "b"], context=("ünïcödé",)),
    Example(output="He is right.", input="Is he right?", context=("Paris is big.",), retrieved=("", "Paris is big.")),
]


LOCAL = [n for n in metric_names() if metric_class(n).family != "judge"]
"""Metrics that score without calling a model (judges call one through the gateway; their own tests run them
against a local upstream)."""


@pytest.fixture(params=metric_names())
def metric(request: pytest.FixtureRequest) -> Metric:
    return build_metric(request.param, OPTIONS.get(request.param, {}))


@pytest.fixture(params=LOCAL)
def local_metric(request: pytest.FixtureRequest) -> Metric:
    return build_metric(request.param, OPTIONS.get(request.param, {}))


def test_the_registry_lists_the_documented_families() -> None:
    names = set(metric_names())
    deterministic = {
        "exact_match",
        "fuzzy_match",
        "contains",
        "regex",
        "json_schema",
        "numeric",
        "length",
        "rouge_l",
        "max_tokens",
        "max_latency_ms",
        "max_cost_usd",
    }
    assert deterministic | {"groundedness", "answer_relevance", "toxicity", "pii", "refusal"} <= names
    assert {metric_class(n).family for n in deterministic} == {"deterministic"}


def test_a_metric_declares_the_protocol(metric: Metric) -> None:
    assert isinstance(metric, Metric)
    assert metric.name in metric_names()
    assert metric.family in ("deterministic", "embedding", "rag", "safety", "judge")
    assert isinstance(metric.higher_is_better, bool)
    assert isinstance(metric.label, str) and metric.label


@pytest.mark.parametrize("example", EXAMPLES, ids=range(len(EXAMPLES)))
def test_a_metric_scores_any_example(local_metric: Metric, example: Example) -> None:
    metric = local_metric
    score = metric.score(example)
    assert isinstance(score, Score) and score.metric == metric.name
    assert isinstance(score.explanation, str) and score.explanation
    if score.value is None:
        assert score.passed is None  # unjudged is never a verdict
    elif isinstance(score.value, float):
        assert 0.0 <= score.value <= 1.0
    else:
        assert isinstance(score.value, bool | str)
    assert score.passed is None or isinstance(score.passed, bool)
    score.to_dict()


def test_unknown_metrics_and_options_say_what_to_fix() -> None:
    with pytest.raises(MetricSpecError, match=r"unknown metric 'contain'; known: .*contains"):
        build_metric("contain")
    with pytest.raises(MetricSpecError, match=r"unknown option\(s\) ignorecase; allowed: any, ignore_case, value"):
        build_metric("contains", {"value": "x", "ignorecase": True})
    with pytest.raises(MetricSpecError, match="threshold"):
        build_metric("groundedness", {"threshold": 2})
