"""Safety metrics backed by the guard scanners: `toxicity` and `pii` judge the answer with the same scanner
(and the same options) a guard policy would use, so an online score and a guard decision agree.

The value is the scanner's confidence of a violation (0..1, lower is better); the example passes when the
scanner found nothing at its threshold. Explanations name what was found, never the content itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar

from pilothouse.config import ConfigError
from pilothouse.evals.metrics.base import Example, Family, MetricSpecError, Score, unjudged
from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import ScanContext


class _ScannerMetric:
    family: ClassVar[Family] = "safety"
    higher_is_better: ClassVar[bool] = False
    scanner_name: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        try:
            self.scanner = build_scanner(self.scanner_name, options)
        except ConfigError as exc:
            raise MetricSpecError(str(exc)) from None
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items()))
        self.label = self.scanner_name + (f" ({shown})" if shown else "")

    def score(self, example: Example) -> Score:
        if not example.output.strip():
            return unjudged(self.scanner_name, "the answer is empty")
        verdict = self.scanner.scan(example.output, ScanContext(role="assistant", direction="output"))
        kinds = Counter(f.kind for f in verdict.findings)
        if not kinds:
            explanation = "nothing found"
        else:
            explanation = "found " + ", ".join(f"{n} x {k}" if n > 1 else k for k, n in sorted(kinds.items()))
        details = {"findings": [{"kind": f.kind, "start": f.start, "end": f.end} for f in verdict.findings]}
        return Score(self.scanner_name, round(float(verdict.score), 4), explanation, not verdict.found, details)


class Toxicity(_ScannerMetric):
    """Hateful, demeaning or abusive answers (the `toxicity` scanner; options: `threshold`, `use_lexicon`)."""

    name: ClassVar[str] = "toxicity"
    scanner_name = "toxicity"


class Pii(_ScannerMetric):
    """Personal data in the answer (the `pii` scanner; options: `entities`, `default_region`, ...)."""

    name: ClassVar[str] = "pii"
    scanner_name = "pii"


class Injection(_ScannerMetric):
    """Instructions to override the assistant carried in the answer (the layered `injection` scanner), as a
    model repeating injected content would."""

    name: ClassVar[str] = "injection"
    scanner_name = "injection"
