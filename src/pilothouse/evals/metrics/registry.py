"""Finding metric classes (built in, or plugins through the `pilothouse.metrics` entry point group) and
building metrics from their options.

A plugin registers a class under its metric name, for example in its `pyproject.toml`:

    [project.entry-points."pilothouse.metrics"]
    mycorp_tone = "mycorp_evals:ToneMetric"

The class implements `pilothouse.evals.metrics.base.Metric` (`name`, `family`, `higher_is_better`, `label`,
`score`) and takes its options as keyword arguments; it may add a `from_spec(spec) -> options` classmethod
for the short forms of scenario tests files (`- contains: Paris`). `tests/evals/test_metric_conformance.py`
runs over every registered metric.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, get_args

from pilothouse.evals.metrics.base import Family, Metric, MetricSpecError

GROUP = "pilothouse.metrics"

_BUILTIN: dict[str, str] = {
    "contains": "pilothouse.evals.metrics.text_match:Contains",
    "not_contains": "pilothouse.evals.metrics.text_match:NotContains",
    "regex": "pilothouse.evals.metrics.text_match:Regex",
    "exact_match": "pilothouse.evals.metrics.text_match:ExactMatch",
    "equals": "pilothouse.evals.metrics.text_match:Equals",
    "fuzzy_match": "pilothouse.evals.metrics.text_match:FuzzyMatch",
    "rouge_l": "pilothouse.evals.metrics.text_match:RougeL",
    "bleu": "pilothouse.evals.metrics.reference:Bleu",
    "semantic_similarity": "pilothouse.evals.metrics.reference:SemanticSimilarity",
    "json_schema": "pilothouse.evals.metrics.structure:JsonSchema",
    "numeric": "pilothouse.evals.metrics.structure:Numeric",
    "length": "pilothouse.evals.metrics.structure:Length",
    "max_tokens": "pilothouse.evals.metrics.budgets:MaxTokens",
    "max_latency_ms": "pilothouse.evals.metrics.budgets:MaxLatency",
    "max_cost_usd": "pilothouse.evals.metrics.budgets:MaxCost",
    "groundedness": "pilothouse.evals.metrics.groundedness:Groundedness",
    "answer_relevance": "pilothouse.evals.metrics.relevance:AnswerRelevance",
    "context_precision": "pilothouse.evals.metrics.context:ContextPrecision",
    "context_recall": "pilothouse.evals.metrics.context:ContextRecall",
    "factual_correctness": "pilothouse.evals.metrics.factual:FactualCorrectness",
    "counterfactual_bias": "pilothouse.evals.metrics.counterfactual:CounterfactualBias",
    "coherence": "pilothouse.evals.judges.coherence:Coherence",
    "toxicity": "pilothouse.evals.metrics.safety:Toxicity",
    "pii": "pilothouse.evals.metrics.safety:Pii",
    "injection": "pilothouse.evals.metrics.safety:Injection",
    "refusal": "pilothouse.evals.metrics.refusal:Refusal",
    "policy_compliance": "pilothouse.evals.metrics.policy:PolicyCompliance",
    "llm_judge": "pilothouse.evals.judges.rubric:RubricJudge",
}


def _load(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)


def metric_names() -> list[str]:
    """Every metric name: the built-in ones and installed plugins."""
    return sorted(set(_BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})


def metric_class(name: str) -> type[Metric]:
    """The class registered as `name`; MetricSpecError when none is, or it does not look like a Metric."""
    if name in _BUILTIN:
        target, loaded = _BUILTIN[name], _load(_BUILTIN[name])
    else:
        found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
        if not found:
            raise MetricSpecError(f"unknown metric {name!r}; known: {', '.join(metric_names())}")
        target, loaded = found[0].value, found[0].load()
    if not isinstance(loaded, type) or not callable(getattr(loaded, "score", None)):
        raise MetricSpecError(f"metric {name!r} ({target}) is not a class with a score(example) method")
    if getattr(loaded, "family", None) not in get_args(Family):
        raise MetricSpecError(f"metric {name!r} ({target}) does not declare its `family`")
    return loaded


def build_metric(name: str, options: Mapping[str, Any] | None = None) -> Metric:
    """A metric from its name and keyword options; MetricSpecError (saying what to fix) for bad options."""
    cls = metric_class(name)
    given = dict(options or {})
    parameters = inspect.signature(cls).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        allowed = {n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}
        unknown = sorted(str(k) for k in set(given) - allowed)
        if unknown:
            raise MetricSpecError(
                f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed)) or 'none'}"
            )
    try:
        return cls(**given)
    except MetricSpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise MetricSpecError(f"metric {name!r}: bad options {given!r}: {exc}") from exc


def metric_from_spec(name: str, spec: Any) -> Metric:
    """A metric from the short form a tests file gives (`contains: Paris`, `max_tokens: 64`, a mapping of
    options, or nothing)."""
    cls = metric_class(name)
    from_spec = getattr(cls, "from_spec", None)
    if callable(from_spec):
        options = from_spec(spec)
    elif spec is None:
        options = {}
    elif isinstance(spec, dict):
        options = spec
    else:
        raise MetricSpecError(f"metric {name!r} takes a mapping of options, got {type(spec).__name__}")
    return build_metric(name, options)
