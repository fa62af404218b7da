"""The decision on one tool call: allowed, refused (with the rule that refused it), or needs approval.

In order: the tool must be registered in the caller's project, a grant of it must apply to the caller
(permissions.py), its arguments must be a JSON object that satisfies the tool's schema (arguments.py) and
the grant's argument rules (constraints.py); then a `high`-risk tool needs a person's approval. A project
with no tools registered and no grants has no tool rules: every call is allowed (`unrestricted`), so tool
permissions cost nothing until a project adopts them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pilothouse.errors import Forbidden
from pilothouse.tools.arguments import parse_arguments, schema_problem
from pilothouse.tools.permissions import Caller, ProjectTools

Verdict = Literal["allowed", "refused", "needs_approval"]

NOT_ALLOWED = "tool_not_allowed"
ARGUMENTS_INVALID = "tool_arguments_invalid"
REQUIRES_APPROVAL = "tool_requires_approval"


@dataclass(frozen=True, slots=True)
class Decision:
    """What may happen with one tool call. `rule` names what decided (never the call's argument values)."""

    verdict: Verdict
    tool: str
    reason: str
    rule: str
    """`unrestricted`, `registered`, `grant`, `arguments`, `schema:KEYWORD`, `rule:ARG: CHECKS`, `risk:high`,
    or `allowed` (every check passed)."""
    code: str | None = None
    """The stable error code when not allowed: tool_not_allowed, tool_arguments_invalid, tool_requires_approval."""
    risk: str | None = None
    grant: str | None = None
    """Which grant applied (`project`, `key:ID`, `agent:NAME`)."""

    @property
    def allowed(self) -> bool:
        return self.verdict == "allowed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "tool": self.tool,
            "reason": self.reason,
            "rule": self.rule,
            "code": self.code,
            "risk": self.risk,
            "grant": self.grant,
        }

    def error(self, param: str | None = None) -> Forbidden:
        """The refusal the gateway answers (403, `permission_error`, the stable code); only when not allowed."""
        if self.code is None:
            raise ValueError(f"tool call {self.tool!r} is allowed: there is no error to answer")
        return Forbidden(self.reason, code=self.code, param=param)


def _refused(tool: str, code: str, reason: str, rule: str, **kw: Any) -> Decision:
    return Decision("refused", tool, reason, rule, code, **kw)


def decide(tools: ProjectTools | None, caller: Caller, name: str, arguments: str | dict[str, Any] | None) -> Decision:
    """The decision on calling tool `name` with `arguments` (the model's JSON string, or an object)."""
    if tools is None or tools.is_empty():
        return Decision("allowed", name, "the project has no tool rules", "unrestricted")
    tool = tools.tools.get(name)
    if tool is None:
        reason = f"tool {name!r} is not registered in this project (register it with `pilothouse tools register`)"
        return _refused(name, NOT_ALLOWED, reason, "registered")
    grant = tools.grant_for(caller, name)
    if grant is None:
        reason = f"tool {name!r} is not on the allow-list of this caller (grant it with `pilothouse tools allow`)"
        return _refused(name, NOT_ALLOWED, reason, "grant", risk=tool.risk)
    label = "project" if grant.kind == "project" else f"{grant.kind}:{grant.subject}"
    parsed, problem = parse_arguments(arguments)
    if parsed is None:
        reason = f"tool {name!r}: {problem}"
        return _refused(name, ARGUMENTS_INVALID, reason, "arguments", risk=tool.risk, grant=label)
    failed = schema_problem(tools.validator(tool), parsed)
    if failed is not None:
        keyword, why = failed
        reason = f"tool {name!r}: {why}"
        return _refused(name, ARGUMENTS_INVALID, reason, f"schema:{keyword}", risk=tool.risk, grant=label)
    for rule in grant.rules:
        why_not = rule.check(parsed)
        if why_not is not None:
            reason = f"tool {name!r}: {why_not} (rule of {grant.describe()}: {rule.describe()})"
            return _refused(name, ARGUMENTS_INVALID, reason, f"rule:{rule.describe()}", risk=tool.risk, grant=label)
    if tool.risk == "high":
        reason = f"tool {name!r} is high risk: a person must approve each call"
        return Decision("needs_approval", name, reason, "risk:high", REQUIRES_APPROVAL, risk=tool.risk, grant=label)
    return Decision("allowed", name, f"tool {name!r} is allowed", "allowed", risk=tool.risk, grant=label)


def first_refusal(decisions: Iterable[Decision]) -> Decision | None:
    """The decision that stops a set of calls: the first refusal, else the first that needs approval."""
    pending = None
    for decision in decisions:
        if decision.verdict == "refused":
            return decision
        if decision.verdict == "needs_approval" and pending is None:
            pending = decision
    return pending
