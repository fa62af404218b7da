"""The metric registry: metrics score an example (an answer, with its question, expected answer and context)
and return a `Score` with an explanation. Scenario tests of prompts and online evaluation of production traces
both use it; plugins add metrics through the `pilothouse.metrics` entry point group.

    from pilothouse.evals.metrics import Example, build_metric
    score = build_metric("contains", {"value": "Paris"}).score(Example(output="It is Paris."))
"""

from pilothouse.evals.metrics.base import Example, Family, Metric, MetricSpecError, Score, ScoreValue
from pilothouse.evals.metrics.registry import build_metric, metric_class, metric_from_spec, metric_names

__all__ = [
    "Example",
    "Family",
    "Metric",
    "MetricSpecError",
    "Score",
    "ScoreValue",
    "build_metric",
    "metric_class",
    "metric_from_spec",
    "metric_names",
]
