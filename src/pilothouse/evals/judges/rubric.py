"""`llm_judge`: a rubric scored by a model through the gateway.

The rubric is the operator's: `criteria` (what a good answer is), optional `steps` (how to check it) and a
`scale` (default 1 to 5). The judge sees the question, the answer and, where the item has them, the reference
answer and the context, and answers with `{"score": N, "reason": "..."}`. An answer that cannot be read is
retried `retries` times with the reason it could not be read; then that judgement fails. With `samples` > 1 the
judge is asked several times (at `temperature`, default 0.7 then) and the scores are aggregated (`mean` or
`majority`); how much the samples agree is in the details, so a judge's noise is visible per item. The value is
the aggregate mapped to 0..1 ((score - low) / (high - low)); `passed` compares it with `threshold` (0.5). When
every sample fails the example is not judged (`value` None, "judge failed: ..."), never scored zero.

With `structured` (the default) the judge asks for its verdict under a JSON schema (OpenAI `response_format`
`json_schema`: an integer `score` among the scale's values and a short `reason`), so a model that constrains its
output (the bundled model does it with a llama.cpp grammar; OpenAI and most OpenAI-compatible servers do it too)
can only answer with a readable verdict. A model whose call is refused because of `response_format` is asked
again without it, and this judge stops sending it; the parser still reads what comes back.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

from pilothouse.evals.judges.parse import JudgeParseError, Verdict, parse_verdict
from pilothouse.evals.judges.transport import JudgeCallFailed, transport
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.evals.metrics.options import fraction, text

__all__ = ["DEFAULT_JUDGE_MODEL", "RubricJudge", "verdict_format"]

DEFAULT_JUDGE_MODEL = "smollm2-135m"
REASON_MAX_CHARS = 200
"""A constrained reason is cut here, so the verdict closes within the default `max_tokens` (120)."""
SYSTEM = (
    "You are a strict evaluator. You judge one answer against the criteria you are given and reply with one JSON "
    'object and nothing else: {"score": <integer>, "reason": "<one sentence>"}.'
)


def verdict_format(low: int, high: int) -> dict[str, Any]:
    """The OpenAI `response_format` that holds a judge to one verdict on the scale `low`..`high`."""
    schema = {
        "type": "object",
        "properties": {
            "score": {"type": "integer", "enum": list(range(low, high + 1))},
            "reason": {"type": "string", "maxLength": REASON_MAX_CHARS},
        },
        "required": ["score", "reason"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MetricSpecError(f"'{what}' must be a whole number from {low} to {high}, got {value!r}")
    return value


class RubricJudge:
    name: ClassVar[str] = "llm_judge"
    family: ClassVar[Family] = "judge"
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        criteria: Any = None,
        steps: Any = None,
        scale: Any = None,
        model: Any = DEFAULT_JUDGE_MODEL,
        samples: Any = 1,
        aggregate: Any = "mean",
        threshold: Any = 0.5,
        retries: Any = 2,
        temperature: Any = None,
        max_tokens: Any = 120,
        structured: Any = True,
    ) -> None:
        if criteria is None:
            raise MetricSpecError("'criteria' is required: what makes a good answer, in a sentence or two")
        self.criteria = text(criteria, "'criteria'")
        if steps is not None and (not isinstance(steps, list) or not all(isinstance(s, str) and s for s in steps)):
            raise MetricSpecError("'steps' must be a list of texts")
        self.steps: list[str] = list(steps or [])
        low, high = scale if scale is not None else (1, 5)
        if isinstance(scale, list | tuple) and len(scale) != 2:
            raise MetricSpecError("'scale' must be two whole numbers [low, high]")
        self.low = _int(low, "scale[0]", 0, 100)
        self.high = _int(high, "scale[1]", self.low + 1, 100)
        self.model = text(model, "'model'")
        self.samples = _int(samples, "samples", 1, 9)
        if aggregate not in ("mean", "majority"):
            raise MetricSpecError(f"'aggregate' must be mean or majority, got {aggregate!r}")
        self.aggregate = str(aggregate)
        self.threshold = fraction(threshold, "'threshold'")
        self.retries = _int(retries, "retries", 0, 5)
        chosen = temperature if temperature is not None else (0.7 if self.samples > 1 else 0.0)
        if isinstance(chosen, bool) or not isinstance(chosen, int | float) or not 0 <= chosen <= 2:
            raise MetricSpecError(f"'temperature' must be a number from 0 to 2, got {chosen!r}")
        self.params: dict[str, Any] = {
            "temperature": float(chosen),
            "max_tokens": _int(max_tokens, "max_tokens", 16, 4096),
        }
        if not isinstance(structured, bool):
            raise MetricSpecError(f"'structured' must be true or false, got {structured!r}")
        if structured:
            self.params["response_format"] = verdict_format(self.low, self.high)
        self.label = f"llm_judge ({self.model}, {self.low}-{self.high})"

    def _prompt(self, example: Example) -> str:
        parts = [f"Criteria: {self.criteria}"]
        if self.steps:
            parts.append("Evaluation steps:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(self.steps, start=1)))
        if example.input:
            parts.append(f"Question:\n{example.input}")
        if example.context:
            parts.append("Context:\n" + "\n---\n".join(example.context))
        if example.expected is not None:
            parts.append(f"Reference answer:\n{example.expected}")
        parts.append(f"Answer to judge:\n{example.output}")
        parts.append(
            f"Score the answer from {self.low} (worst) to {self.high} (best) against the criteria. "
            'Reply with only {"score": N, "reason": "..."}.'
        )
        return "\n\n".join(parts)

    def planned_requests(self, example: Example) -> list[dict[str, Any]]:
        """The chat bodies judging `example` sends when every verdict is readable (the cost estimate prices them)."""
        body = {**self.params, "model": self.model, "messages": self._messages(self._prompt(example))}
        return [body] * self.samples

    @staticmethod
    def _messages(prompt: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]

    def _complete(self, messages: list[dict[str, str]]) -> str:
        """The judge's answer; a model that refuses `response_format` is asked again without it (and from then on)."""
        params = self.params
        try:
            return transport().complete(messages, model=self.model, params=params)
        except JudgeCallFailed as exc:
            if "response_format" not in params or "response_format" not in str(exc):
                raise
        self.params = {k: v for k, v in params.items() if k != "response_format"}
        return transport().complete(messages, model=self.model, params=self.params)

    def _one(self, prompt: str) -> Verdict | str:
        """A verdict, or why this judgement failed."""
        messages = self._messages(prompt)
        why = ""
        for _ in range(self.retries + 1):
            try:
                answer = self._complete(messages)
            except JudgeCallFailed as exc:
                return f"the judge model call failed: {exc}"
            try:
                return parse_verdict(answer, low=self.low, high=self.high)
            except JudgeParseError as exc:
                why = str(exc)
                messages += [
                    {"role": "assistant", "content": answer},
                    {"role": "user", "content": f"That could not be read: {why}. Reply with only the JSON object."},
                ]
        return f"no readable verdict after {self.retries + 1} tries ({why})"

    def score(self, example: Example) -> Score:
        prompt = self._prompt(example)
        verdicts: list[Verdict] = []
        failures: list[str] = []
        for _ in range(self.samples):
            found = self._one(prompt)
            if isinstance(found, str):
                failures.append(found)
            else:
                verdicts.append(found)
        if not verdicts:
            return unjudged(self.name, f"judge failed: {failures[0]}")
        raw = [v.score for v in verdicts]
        if self.aggregate == "majority":
            counts = Counter(raw).most_common()
            top = counts[0][1]
            value_raw = min(s for s, n in counts if n == top)  # a tie goes to the lower score: the cautious reading
        else:
            value_raw = statistics.fmean(raw)
        value = (value_raw - self.low) / (self.high - self.low)
        mode_share = Counter(raw).most_common(1)[0][1] / len(raw)
        details: Mapping[str, Any] = {
            "scores": raw,
            "reasons": [v.reason for v in verdicts],
            "failed_samples": failures,
            "agreement": mode_share,
            "stdev": statistics.pstdev(raw) if len(raw) > 1 else 0.0,
            "model": self.model,
        }
        reason = verdicts[0].reason or "no reason given"
        explanation = f"{value_raw:g} on {self.low}-{self.high} ({len(raw)} of {self.samples} samples): {reason}"
        return Score(self.name, value, explanation, passed=value >= self.threshold, details=details)
