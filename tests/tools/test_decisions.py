"""The decision on a tool call: registry, grant (most specific first), schema, rules, risk; in that order."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pilothouse.errors import Forbidden
from pilothouse.tools import Caller, decide
from pilothouse.tools.constraints import parse_rules
from pilothouse.tools.decisions import first_refusal
from pilothouse.tools.permissions import Grant, ProjectTools
from pilothouse.tools.registry import parse_tool

SECRET = "hunter2-0123456789"
SEND = parse_tool(
    {
        "name": "send_email",
        "risk": "medium",
        "parameters": {
            "type": "object",
            "properties": {"to": {"type": "string", "format": "email"}, "body": {"type": "string"}},
            "required": ["to"],
            "additionalProperties": False,
        },
    }
)
PAY = parse_tool(
    {"name": "pay", "risk": "high", "parameters": {"type": "object", "properties": {"usd": {"type": "number"}}}}
)
LOOKUP = parse_tool({"name": "lookup"})
ALICE, BOB = Caller("p1", key_id="key_alice"), Caller("p1", key_id="key_bob")
TRIAGE = Caller("p1", agent="triage")


def rules(*raw: dict[str, Any]) -> Any:
    return parse_rules(list(raw))


TOOLS = ProjectTools.build(
    [SEND, PAY, LOOKUP],
    [
        Grant("send_email", "project", "", rules({"arg": "to", "pattern": r"[^@]+@example\.com"})),
        Grant("send_email", "key", "key_alice", ()),  # alice may mail anyone
        Grant("pay", "project", "", rules({"arg": "usd", "max": 100})),
        Grant("lookup", "agent", "triage", ()),
    ],
)


def test_a_project_without_rules_is_unrestricted() -> None:
    for tools in (None, ProjectTools()):
        decision = decide(tools, ALICE, "anything", "{not json")
        assert decision.allowed and decision.rule == "unrestricted"


@pytest.mark.parametrize(
    ("caller", "name", "arguments", "verdict", "code", "rule"),
    [
        (BOB, "send_email", {"to": "a@example.com"}, "allowed", None, "allowed"),
        (BOB, "send_email", {"to": "a@evil.test"}, "refused", "tool_arguments_invalid", "rule:to: pattern="),
        (ALICE, "send_email", {"to": "a@evil.test"}, "allowed", None, "allowed"),  # her own grant applies
        (ALICE, "send_email", {"to": "not-an-address"}, "refused", "tool_arguments_invalid", "schema:format"),
        (ALICE, "send_email", {"body": "hi"}, "refused", "tool_arguments_invalid", "schema:required"),
        (
            ALICE,
            "send_email",
            {"to": "a@b.co", "cc": "x"},
            "refused",
            "tool_arguments_invalid",
            "schema:additionalProperties",
        ),
        (ALICE, "send_email", "{not json", "refused", "tool_arguments_invalid", "arguments"),
        (ALICE, "send_email", "[1, 2]", "refused", "tool_arguments_invalid", "arguments"),
        (ALICE, "lookup", {}, "refused", "tool_not_allowed", "grant"),
        (TRIAGE, "lookup", "", "allowed", None, "allowed"),
        (ALICE, "rm_rf", {}, "refused", "tool_not_allowed", "registered"),
        (ALICE, "pay", {"usd": 500}, "refused", "tool_arguments_invalid", "rule:usd: max=100"),
        (ALICE, "pay", {"usd": 5}, "needs_approval", "tool_requires_approval", "risk:high"),
    ],
)
def test_decisions(caller: Caller, name: str, arguments: Any, verdict: str, code: str | None, rule: str) -> None:
    decision = decide(
        TOOLS, caller, name, arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
    )
    assert (decision.verdict, decision.code) == (verdict, code), decision
    assert decision.rule.startswith(rule), decision


def test_the_grant_that_applied_is_named() -> None:
    assert decide(TOOLS, ALICE, "send_email", {"to": "x@y.z"}).grant == "key:key_alice"
    assert decide(TOOLS, BOB, "send_email", {"to": "x@example.com"}).grant == "project"
    assert decide(TOOLS, TRIAGE, "lookup", {}).grant == "agent:triage"


@pytest.mark.parametrize(
    "arguments",
    [{"to": SECRET}, {"to": "a@b.co", SECRET: 1}, {"to": 5, "body": SECRET}, {"to": f"{SECRET}@evil.test"}],
)
def test_refusals_never_quote_the_arguments(arguments: dict[str, Any]) -> None:
    decision = decide(TOOLS, BOB, "send_email", arguments)
    assert not decision.allowed
    assert SECRET not in repr(decision.to_dict())


def test_the_error_is_a_403_with_the_stable_code() -> None:
    decision = decide(TOOLS, ALICE, "rm_rf", {})
    error = decision.error(param="tools[0]")
    assert isinstance(error, Forbidden) and error.status == 403
    assert error.body()["error"] == {
        "message": decision.reason,
        "type": "permission_error",
        "param": "tools[0]",
        "code": "tool_not_allowed",
    }
    with pytest.raises(ValueError, match="allowed"):
        decide(TOOLS, ALICE, "send_email", {"to": "a@b.co"}).error()


def test_a_refusal_outranks_an_approval() -> None:
    approval = decide(TOOLS, ALICE, "pay", {"usd": 1})
    refused = decide(TOOLS, ALICE, "rm_rf", {})
    allowed = decide(TOOLS, BOB, "send_email", {"to": "a@example.com"})
    assert first_refusal([allowed, approval, refused]) is refused
    assert first_refusal([allowed, approval]) is approval
    assert first_refusal([allowed]) is None
