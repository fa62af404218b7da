"""`policy_compliance`: would the answer pass a guard policy's output rules?

The option `policy` is a guard policy file's text (the YAML `pilothouse policy push` takes, docs/guards-*.md);
its output rules run over the answer exactly as the gateway would run them on a model's answer (the same
scanners, options, thresholds and actions, evaluated in order, stopping at a block), so an evaluation and
production agree on what the policy allows. The value is whether the answer complies: no rule would block,
redact or flag it (shadow rules and a policy in shadow mode only report). The details list each rule's
decision, score and what its scanner found, never the content itself.

Its quality is the scanners': docs/guards-content.md, guards-pii.md and guards-injection.md give their figures.
The input rules, the scope and the storage section of the policy do not apply to an answer and are ignored.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.guards.policy.engine import ScannerCache, compile_policy, evaluate
from pilothouse.guards.policy.loader import PolicyError, parse_policy
from pilothouse.guards.scanner import ScanContext

__all__ = ["PolicyCompliance"]

_ENFORCED = ("block", "redact", "flag")


class PolicyCompliance:
    """Options: `policy` (a guard policy file's YAML text, required)."""

    name: ClassVar[str] = "policy_compliance"
    family: ClassVar[Family] = "safety"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, policy: Any = None) -> None:
        if not isinstance(policy, str) or not policy.strip():
            raise MetricSpecError("'policy' is required: the text of a guard policy file (YAML with output: rules)")
        try:
            self.policy = compile_policy(parse_policy(policy), 0, ScannerCache())
        except PolicyError as exc:
            raise MetricSpecError(f"'policy' is not a valid guard policy: {exc}") from None
        if not self.policy.output:
            raise MetricSpecError(f"policy {self.policy.name!r} has no output rules to check an answer with")
        self.label = f"policy_compliance ({self.policy.name})"

    def score(self, example: Example) -> Score:
        if not example.output.strip():
            return unjudged(self.name, "the answer is empty")
        found = evaluate(self.policy.output, example.output, ScanContext(role="assistant", direction="output"))
        enforced = [r for r in found.records if r.decision in _ENFORCED]
        if enforced:
            explanation = "; ".join(
                f"{r.decision} by {r.rule.rule.scanner}" + (f" ({', '.join(sorted(r.kinds))})" if r.kinds else "")
                for r in enforced
            )
        else:
            explanation = f"complies with {self.policy.name} ({len(found.records)} output rules)"
        details = {
            "policy": self.policy.name,
            "rules": [
                {
                    "scanner": r.rule.rule.scanner,
                    "decision": r.decision,
                    "score": round(r.score, 4),
                    "found": sorted(r.kinds),
                }
                for r in found.records
            ],
        }
        return Score(self.name, not enforced, explanation, not enforced, details)
