"""The gate of a promotion: compare a candidate version's scenario results with the current version's.

The rule (docs/prompts.md, "Gated promotion"):
1. The candidate must pass every case of the prompt's stored suite.
2. It must not pass fewer cases than the version the label points at now. (Given rule 1 this always holds;
   it is checked on its own so the refusal names both reasons when both apply.)
Latency and cost are reported side by side but never decide: they are noisy from run to run, and a case
that must bound them says so with `max_latency_ms` / `max_cost_usd` / `max_tokens` assertions, which then
count under rule 1. A prompt without stored tests has nothing to gate on: the promotion goes ahead and the
comparison says it was ungated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pilothouse.prompts.testing.runner import CaseResult, SuiteResult

RULE = (
    "the candidate must pass every scenario case and no fewer cases than the current version; "
    "latency and cost are shown, not gated"
)


def _summary(suite: SuiteResult) -> dict[str, Any]:
    cost = suite.total_cost_usd()
    return {
        "version": suite.version,
        "passed": suite.passed,
        "total": suite.total,
        "mean_latency_ms": suite.mean_latency_ms(),
        "total_cost_usd": None if cost is None else format(cost, "f"),
        "failing": [{"case": c.name, "reason": c.reason()} for c in suite.failing()],
    }


def _case_row(name: str, candidate: CaseResult | None, current: CaseResult | None) -> dict[str, Any]:
    def verdict(result: CaseResult | None) -> dict[str, Any] | None:
        if result is None:
            return None
        latency = result.execution.latency_ms if result.execution else None
        return {"passed": result.passed, "reason": result.reason(), "latency_ms": latency, "trace_id": result.trace_id}

    return {"case": name, "candidate": verdict(candidate), "current": verdict(current)}


@dataclass(frozen=True, slots=True)
class Comparison:
    prompt: str
    label: str
    candidate: SuiteResult
    current: SuiteResult | None
    allowed: bool
    reasons: list[str] = field(default_factory=list)
    regressions: list[str] = field(default_factory=list)

    @property
    def gated(self) -> bool:
        """False when the prompt has no scenario tests (nothing was checked)."""
        return self.candidate.total > 0

    def summary(self) -> str:
        """One line for the audit log and the CLI: what ran and how each version did."""
        if not self.gated:
            return f"no scenario tests stored for {self.prompt}: promoted without a gate"
        cand = self.candidate
        text = f"scenario tests: candidate v{cand.version} passed {cand.passed}/{cand.total}"
        if self.current is not None:
            text += f"; current v{self.current.version} passed {self.current.passed}/{self.current.total}"
        else:
            text += f"; '{self.label}' pointed at no version"
        return text

    def to_dict(self) -> dict[str, Any]:
        current = {c.name: c for c in self.current.cases} if self.current is not None else {}
        return {
            "prompt": self.prompt,
            "label": self.label,
            "allowed": self.allowed,
            "gated": self.gated,
            "rule": RULE,
            "reasons": self.reasons,
            "summary": self.summary(),
            "candidate": _summary(self.candidate),
            "current": None if self.current is None else _summary(self.current),
            "regressions": self.regressions,
            "cases": [_case_row(c.name, c, current.get(c.name)) for c in self.candidate.cases],
        }


def compare(prompt: str, label: str, candidate: SuiteResult, current: SuiteResult | None) -> Comparison:
    """Apply the promotion rule; `current` is None when the label points at no version yet."""
    reasons: list[str] = []
    regressions: list[str] = []
    failing = candidate.failing()
    if failing:
        names = ", ".join(c.name for c in failing)
        reasons.append(f"candidate v{candidate.version} fails {len(failing)} of {candidate.total} case(s): {names}")
    if current is not None:
        passed_now = {c.name for c in current.cases if c.passed}
        regressions = [c.name for c in failing if c.name in passed_now]
        if candidate.passed < current.passed:
            reasons.append(
                f"candidate v{candidate.version} passes {candidate.passed} case(s), fewer than the "
                f"{current.passed} of current v{current.version}"
            )
    return Comparison(prompt, label, candidate, current, not reasons, reasons, regressions)
