"""The metric protocol: one method that scores an example and returns a `Score` with its explanation.

A metric is a class registered under a name (`registry.py`), built once from keyword options and then called
for many examples, possibly from several threads, so `score` keeps no per-call state on the instance. Scores
are a number in [0, 1], a bool or a category; `passed` is the metric's verdict against its own threshold (when
it has one), and a value of None means the example could not be judged (no context to check an answer
against, an unknown latency): the explanation says why, and it is never silently a zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

Family = Literal["deterministic", "embedding", "rag", "safety", "judge"]
"""What kind of evidence a metric uses: rules on the text, embeddings, retrieved context, safety scanners, or a
model's judgement (`evals/judges/`)."""

ScoreValue = float | bool | str
"""A number in [0, 1], a bool, or a category."""


class MetricSpecError(ValueError):
    """A metric's options are not valid; the message says what is expected."""


@dataclass(frozen=True, slots=True)
class Example:
    """What a metric judges: one answer with what it answered and what it can be checked against."""

    output: str
    """The answer being judged."""
    input: str = ""
    """The question or rendered prompt that produced it."""
    expected: Any = None
    """The reference answer (deterministic metrics compare with it when given no explicit value)."""
    context: tuple[str, ...] = ()
    """Passages the answer should be grounded in: the item's reference context (`groundedness` reads them)."""
    retrieved: tuple[str, ...] = ()
    """Passages the application itself retrieved for this answer, in rank order (a function variant uploads them);
    `context_precision` and `context_recall` compare them with `context`, the expected context."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    cost_usd: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """A metric's judgement of one example."""

    metric: str
    value: ScoreValue | None
    """None when the example could not be judged (the explanation says why)."""
    explanation: str
    passed: bool | None = None
    """The verdict against the metric's threshold; None for a metric without one, or when not judged."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Evidence behind the value (per-claim support, findings), JSON-serialisable."""

    @property
    def judged(self) -> bool:
        return self.value is not None

    @property
    def number(self) -> float | None:
        """The value as a float (a bool as 1.0/0.0); None for a category or an unjudged example."""
        if isinstance(self.value, bool):
            return 1.0 if self.value else 0.0
        if isinstance(self.value, int | float):
            return float(self.value)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "value": self.value,
            "explanation": self.explanation,
            "passed": self.passed,
            "details": dict(self.details),
        }


@runtime_checkable
class Metric(Protocol):
    """Scores one example. Implementations set `name` (the registry name), `family`, and
    `higher_is_better` (False for rates of something bad, such as toxicity); `label` describes the configured
    metric as a person reads it (`contains 'Paris'`)."""

    name: ClassVar[str]
    family: ClassVar[Family]
    higher_is_better: ClassVar[bool]
    label: str

    def score(self, example: Example) -> Score: ...


def unjudged(metric: str, why: str) -> Score:
    """The score of an example the metric cannot judge."""
    return Score(metric=metric, value=None, explanation=why, passed=None)
