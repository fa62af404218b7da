"""A guard step: scan `text(state)` with guard scanners (guards/registry.py) and stop the run when one flags it.

`scanners` names them (`["injection", "pii"]`) or gives options (`[{"name": "toxicity", "options": {...}}]`);
they are built when the flow is defined, so an unknown scanner or a bad option is a definition error. A score
at or above `threshold` (0.5: the scanners' operating point) fails the step with `GuardBlocked`, naming the
scanners and what they found (never the text itself); with `on_fail="continue"` the run goes on and the
result, in state field `output`, can drive a branch. `mode="indirect"` reads third-party text (documents, tool
results) the stricter way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from pilothouse.config import ConfigError
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowDefinitionError, FlowError
from pilothouse.flows.steps.base import StepResult
from pilothouse.guards.registry import build_scanner
from pilothouse.guards.scanner import Mode, Role, ScanContext, Scanner

StateFn = Callable[[Any], Any]
DEFAULT_SCANNERS = ("injection",)


class GuardBlocked(FlowError):
    """A guard step's scanners flagged the text. `result` holds each scanner's score and findings."""

    retryable = False

    def __init__(self, message: str, *, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


class GuardStep:
    kind: ClassVar[str] = "guard"

    def __init__(
        self,
        *,
        text: StateFn,
        scanners: Sequence[str | Mapping[str, Any]] | None = None,
        output: str | None = None,
        threshold: float = 0.5,
        mode: Mode = "direct",
        role: Role = "user",
        on_fail: Literal["error", "continue"] = "error",
    ) -> None:
        if not callable(text):
            raise FlowDefinitionError("a guard step needs text=lambda state: ... (the text to scan)")
        if not 0.0 < threshold <= 1.0:
            raise FlowDefinitionError("a guard step's threshold must be in (0, 1]")
        if on_fail not in ("error", "continue"):
            raise FlowDefinitionError(f"on_fail must be 'error' or 'continue', not {on_fail!r}")
        self.text = text
        self.scanners: list[Scanner] = [_build(spec) for spec in (scanners or DEFAULT_SCANNERS)]
        if not self.scanners:
            raise FlowDefinitionError("a guard step needs at least one scanner")
        self.output = output
        self.threshold = threshold
        self.context = ScanContext(role=role, direction="input", mode=mode)
        self.on_fail = on_fail

    def scan(self, text: str) -> dict[str, Any]:
        """Every scanner's verdict on `text` and whether it passed."""
        verdicts = []
        for scanner in self.scanners:
            verdict = scanner.scan(text, self.context)
            verdicts.append(
                {
                    "scanner": verdict.scanner,
                    "score": round(verdict.score, 6),
                    "flagged": verdict.score >= self.threshold,
                    "findings": [
                        {"kind": f.kind, "start": f.start, "end": f.end, "score": f.score, "detail": f.detail}
                        for f in verdict.findings
                    ],
                }
            )
        flagged = [v["scanner"] for v in verdicts if v["flagged"]]
        return {"passed": not flagged, "flagged": flagged, "verdicts": verdicts}

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        text = self.text(state)
        if not isinstance(text, str):
            text = "" if text is None else str(text)
        result = await asyncio.to_thread(self.scan, text)
        ctx.span.attributes.update(
            {
                "pilothouse.guard.passed": result["passed"],
                "pilothouse.guard.flagged": result["flagged"],
                "pilothouse.guard.scores": {v["scanner"]: v["score"] for v in result["verdicts"]},
            }
        )
        if not result["passed"] and self.on_fail == "error":
            kinds = sorted({f["kind"] for v in result["verdicts"] if v["flagged"] for f in v["findings"]})
            found = f" ({', '.join(kinds)})" if kinds else ""
            raise GuardBlocked(
                f"step {ctx.step!r}: the text was flagged by {', '.join(result['flagged'])}{found} "
                f"at threshold {self.threshold:g}",
                result=result,
            )
        updates = {self.output: result} if self.output else {}
        return StepResult(updates=updates, output=result, decision={"guard": "pass" if result["passed"] else "flag"})


def _build(spec: str | Mapping[str, Any]) -> Scanner:
    if isinstance(spec, str):
        name, options = spec, None
    elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
        name, options = spec["name"], spec.get("options")
    else:
        raise FlowDefinitionError(f"a guard scanner is a name or {{'name': ..., 'options': {{...}}}}, not {spec!r}")
    try:
        return build_scanner(name, options)
    except ConfigError as exc:
        raise FlowDefinitionError(f"guard step: {exc}") from None
