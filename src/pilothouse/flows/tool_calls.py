"""What a flow's tool call produces: its result (`ToolResult`, with the idempotency key, the decision that
allowed it and the injection scan of its output), where it was made (`ToolSite`), and the errors that end it.
The runtime that makes calls is tools_runtime.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from pilothouse.tools.decisions import Decision
from pilothouse.tools.permissions import Caller

__all__ = [
    "Screening",
    "ToolCallError",
    "ToolFailed",
    "ToolOutputBlocked",
    "ToolRefused",
    "ToolResult",
    "ToolSite",
    "ToolTimeout",
    "output_text",
]


class ToolCallError(Exception):
    """A tool call that did not produce a usable result. `code` is stable; `retryable` tells a retry policy
    whether trying the step again can help."""

    code: str = "tool_failed"
    retryable: bool = False

    def __init__(self, message: str, *, tool: str, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.tool = tool
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "code": self.code, "message": self.message, **self.details}


class ToolRefused(ToolCallError):
    """Not allowed: not on the allow-list, not registered, not granted, bad arguments, or needs approval."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason, tool=decision.tool, code=decision.code, details={"rule": decision.rule})
        self.decision = decision

    @property
    def needs_approval(self) -> bool:
        return self.decision.verdict == "needs_approval"


class ToolTimeout(ToolCallError):
    code = "tool_timeout"
    retryable = True


class ToolFailed(ToolCallError):
    """The tool raised (the message names the exception) or returned something that is not JSON."""

    code = "tool_failed"
    retryable = True


class ToolOutputBlocked(ToolCallError):
    """The tool's output speaks to the AI that would read it (indirect prompt injection): withheld."""

    code = "tool_output_blocked"


@dataclass(frozen=True, slots=True)
class ToolSite:
    """Where a call is made: the run, its project and step, and who acts (the run's key, the agent)."""

    run_id: str
    project_id: str
    step: str
    key_id: str | None = None
    agent: str | None = None

    def caller(self) -> Caller:
        return Caller(project_id=self.project_id, key_id=self.key_id, agent=self.agent)


@dataclass(frozen=True, slots=True)
class Screening:
    """What the injection scan of a tool's output found."""

    score: float
    findings: tuple[dict[str, Any], ...] = ()
    withheld: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "findings": list(self.findings), "withheld": self.withheld}


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool: str
    arguments: dict[str, Any]
    output: Any
    """The tool's result as JSON data (what was recorded under the idempotency key)."""
    key: str
    reused: bool
    """True when the result was recorded by an earlier attempt: the tool did not run again."""
    decision: Decision
    screening: Screening
    latency_ms: float
    risk: str = "low"

    @property
    def withheld(self) -> bool:
        return self.screening.withheld

    def model_text(self) -> str:
        """What a model may read: the output as text, or a notice when it was withheld."""
        if self.withheld:
            return (
                f"[the output of tool {self.tool!r} was withheld: it contains instructions addressed to an AI "
                f"(indirect prompt injection, score {self.screening.score:.2f})]"
            )
        return output_text(self.output)

    def span_attributes(self) -> dict[str, Any]:
        return {
            "pilothouse.tool.name": self.tool,
            "pilothouse.tool.risk": self.risk,
            "pilothouse.tool.rule": self.decision.rule,
            "pilothouse.tool.idempotency_key": self.key,
            "pilothouse.tool.reused": self.reused,
            "pilothouse.tool.latency_ms": round(self.latency_ms, 3),
            "pilothouse.tool.output_injection_score": self.screening.score,
            "pilothouse.tool.output_withheld": self.screening.withheld,
        }


def output_text(output: Any) -> str:
    return output if isinstance(output, str) else orjson.dumps(output).decode()
