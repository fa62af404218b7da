"""`assert_metric`: one answer scored by a registered metric, as a test assertion."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pilothouse.evals.metrics.base import Example, Score
from pilothouse.evals.metrics.registry import build_metric

__all__ = ["MetricFailed", "assert_metric", "recorded"]

_LOCK = threading.Lock()
_RECORDED: list[tuple[str, Score, bool]] = []
"""(metric label, score, passed) of every assert_metric call in this process, for the plugin's summary."""


class MetricFailed(AssertionError):
    """An answer did not pass a metric; the message is the metric's explanation."""

    def __init__(self, message: str, score: Score) -> None:
        super().__init__(message)
        self.score = score


def recorded() -> list[tuple[str, Score, bool]]:
    with _LOCK:
        return list(_RECORDED)


def assert_metric(
    metric: str,
    output: str,
    *,
    expected: Any = None,
    input: str = "",
    context: str | Sequence[str] = (),
    threshold: float | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    latency_ms: float | None = None,
    cost_usd: Decimal | None = None,
    **options: Any,
) -> Score:
    """Score `output` with `metric` (built with `options`); raise MetricFailed unless it passes.

    Passing means: the metric's own verdict when it has one (`passed`), else a numeric score at least `threshold`
    (given) or a true boolean. An unjudged answer (the metric could not tell) fails. Returns the Score."""
    __tracebackhide__ = True  # pytest shows the user's line, not ours
    built = build_metric(metric, options)
    passages = (context,) if isinstance(context, str) else tuple(context)
    example = Example(
        output=output,
        input=input,
        expected=expected,
        context=passages,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=latency_ms,
        cost_usd=cost_usd,
    )
    score = built.score(example)
    number = score.number
    if score.value is None:
        ok, why = False, f"could not judge: {score.explanation}"
    elif threshold is not None:
        if number is None:
            raise ValueError(f"{metric} gives categories ({score.value!r}); a threshold needs a numeric metric")
        good = number >= threshold if built.higher_is_better else number <= threshold
        bound = ">=" if built.higher_is_better else "<="
        ok, why = good, f"{number:.4f} is not {bound} {threshold}: {score.explanation}"
    elif score.passed is not None:
        ok, why = score.passed, score.explanation
    else:
        ok, why = score.value is True, score.explanation
    with _LOCK:
        _RECORDED.append((built.label, score, ok))
    if not ok:
        raise MetricFailed(f"{built.label}: {why}", score)
    return score
