"""Assertions of scenario tests: each checks one property of a case's output (text, JSON shape, tokens,
latency, cost) and says why it failed.

The checks are the metrics of the metric registry (`pilothouse.evals.metrics`): a tests file's `- kind: spec`
builds the metric `kind` from its short form (`metric_from_spec`) and the case passes the assertion when the
metric's verdict is a pass. `ASSERTION_KINDS` lists the deterministic metrics under their names; any other
registered metric (`groundedness`, `refusal`, a plugin's) can be named too. `register_assertion` still adds a
kind that is not a metric (a class built from the spec with one method, `check(result) -> AssertionOutcome`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from pilothouse.evals.metrics import Example, Metric, MetricSpecError, metric_from_spec, metric_names
from pilothouse.evals.metrics.structure import parse_json_output

__all__ = [
    "ASSERTION_KINDS",
    "Assertion",
    "AssertionOutcome",
    "Execution",
    "MetricAssertion",
    "SpecError",
    "build_assertion",
    "parse_json_output",
    "register_assertion",
]

SpecError = MetricSpecError
"""The value given for an assertion kind is not valid; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Execution:
    """What one run of a case produced: the output text and what the gateway measured for it."""

    output: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: Decimal | None = None
    trace_id: str | None = None
    prompt_version: int | None = None
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_ms": self.latency_ms,
            "cost_usd": None if self.cost_usd is None else format(self.cost_usd, "f"),
            "trace_id": self.trace_id,
            "prompt_version": self.prompt_version,
            "finish_reason": self.finish_reason,
        }

    def example(self) -> Example:
        """The execution as a metric example (a scenario case has no expected answer or context)."""
        return Example(
            output=self.output,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            latency_ms=self.latency_ms,
            cost_usd=self.cost_usd,
            metadata={"trace_id": self.trace_id, "prompt_version": self.prompt_version},
        )


@dataclass(frozen=True, slots=True)
class AssertionOutcome:
    """The verdict of one assertion: `assertion` names it as a person reads it, `detail` says why."""

    kind: str
    assertion: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "assertion": self.assertion, "passed": self.passed, "detail": self.detail}


class Assertion(Protocol):
    def check(self, result: Execution) -> AssertionOutcome:
        """Judge one execution."""
        ...


class MetricAssertion:
    """A registered metric used as an assertion: passes on the metric's pass verdict. A metric without a
    threshold passes whenever it could judge the output (its value is in the detail); one that could not
    judge it fails, saying why."""

    def __init__(self, metric: Metric) -> None:
        self.metric = metric

    def check(self, result: Execution) -> AssertionOutcome:
        score = self.metric.score(result.example())
        passed = score.passed if score.passed is not None else score.judged
        detail = score.explanation
        if score.passed is None and score.judged:
            detail = f"{score.value} ({detail})"
        return AssertionOutcome(self.metric.name, self.metric.label, passed, detail)


AssertionClass = Callable[[Any], Assertion]

DETERMINISTIC_KINDS = (
    "contains",
    "not_contains",
    "regex",
    "equals",
    "exact_match",
    "fuzzy_match",
    "rouge_l",
    "json_schema",
    "numeric",
    "length",
    "max_tokens",
    "max_latency_ms",
    "max_cost_usd",
)


def _metric_kind(name: str) -> AssertionClass:
    def build(spec: Any) -> Assertion:
        return MetricAssertion(metric_from_spec(name, spec))

    return build


ASSERTION_KINDS: dict[str, AssertionClass] = {name: _metric_kind(name) for name in DETERMINISTIC_KINDS}


def register_assertion(kind: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: make `kind` usable in tests files (`- kind: <spec>`). Prefer registering a metric
    (`pilothouse.metrics` entry point): it then also serves evaluations and online scoring."""

    def add(cls: type[Any]) -> type[Any]:
        if kind in ASSERTION_KINDS:
            raise ValueError(f"assertion kind {kind!r} is already registered")
        ASSERTION_KINDS[kind] = cls
        return cls

    return add


def build_assertion(kind: str, spec: Any) -> Assertion:
    """The assertion for `kind` with its spec; SpecError for an unknown kind or a bad spec."""
    cls = ASSERTION_KINDS.get(kind)
    if cls is not None:
        return cls(spec)
    if kind in metric_names():
        return MetricAssertion(metric_from_spec(kind, spec))
    known = sorted(set(ASSERTION_KINDS) | set(metric_names()))
    raise SpecError(f"unknown assertion {kind!r}; known: {', '.join(known)}")
