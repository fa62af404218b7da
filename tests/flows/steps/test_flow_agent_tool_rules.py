"""Agents in a project with tool rules, with their model calls through the real gateway pipeline: the gateway's
tool gate applies the project's grants to each agent by name (an agent granted a tool runs; one without the
grant is refused before its model is called, and audited under its name), and leaves a supervisor's routing
tools and the hand-off tools, which the flow engine acts on itself, to the engine. The model is a local
OpenAI-compatible upstream answering by policy (tests/support/policy_upstream.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pilothouse.audit.chain import list_events
from pilothouse.flows.agents.handoff import HandoffStep
from pilothouse.flows.agents.loop import Agent
from pilothouse.flows.agents.supervisor import SupervisorStep
from pilothouse.flows.graph import Flow
from pilothouse.flows.tool_registry import ToolRegistry, flow_tool
from pilothouse.flows.tools_runtime import ToolRuntime
from pilothouse.store.tools import set_grant, upsert_tool
from pilothouse.tools.rules import ToolRules
from tests.flows.steps.fakes import answer, calls, tool_results
from tests.flows.steps.test_flow_agents import Ask, agent_flow, offered, system_of
from tests.flows.steps.test_flow_gateway_calls import World, world  # noqa: F401  (the gateway world fixture)
from tests.support.policy_upstream import PolicyUpstream

ORDER: dict[str, Any] = {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
REFUND: dict[str, Any] = {
    "type": "object",
    "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
    "required": ["order", "amount"],
}
GRANTS = {"lookup": ("helper", ORDER), "refund_payment": ("billing", REFUND), "wipe": (None, ORDER)}
"""Each registered tool, the one agent granted it by name (wipe: no one), and its parameters."""


@pytest.fixture(scope="module")
def upstream() -> Iterator[PolicyUpstream]:
    """The `scripted` model of the gateway world: answers by the test's policy."""
    server = PolicyUpstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def governed(world: World, upstream: PolicyUpstream) -> ToolRuntime:  # noqa: F811
    """The project's tool rules (registered tools, grants to agents by name) and the runtime that obeys them."""
    upstream.bodies.clear()
    with world.store.begin() as conn:
        for name, (agent, parameters) in GRANTS.items():
            upsert_tool(
                conn,
                project_id=world.project_id,
                name=name,
                description="",
                risk="low",
                parameters=parameters,
                actor="a",
            )
            if agent is not None:
                set_grant(
                    conn, project_id=world.project_id, tool=name, kind="agent", subject=agent, rules=[], actor="a"
                )
    tools, ran = ToolRegistry(), []

    @flow_tool(registry=tools)
    def lookup(order: str) -> str:
        ran.append(order)
        return f"order {order}: shipped"

    @flow_tool(registry=tools)
    def refund_payment(order: str, amount: float) -> str:
        return f"refunded {amount:g} on order {order}"

    return ToolRuntime(registry=tools, rules=ToolRules(world.store, ttl_s=0.01), audit=world.audit, tracer=world.sink)


def refusals(of: World) -> list[tuple[str, str | None, Any]]:
    """(actor, tool, agent) of each tool refusal in the world's audit log."""
    with of.store.connect() as conn:
        events = list_events(conn, project_id=of.project_id, actions=["tool.refused"])
    return [(e.actor, e.target, (e.details or {}).get("agent")) for e in events]


def looker(body: dict[str, Any]) -> dict[str, Any]:
    results = tool_results(body)
    return answer(results[-1]) if results else calls(("lookup", {"order": "17"}))


def one_agent(name: str) -> Flow:
    """A flow of one agent, acting under `name`, that may call `lookup`."""
    flow = Flow("ask", state=Ask)
    flow.agent(name, model="scripted", tools=["lookup"], task=lambda s: s.question, output="answer")
    flow.start(name)
    flow.edge(name, Flow.END)
    return flow


async def test_an_agent_granted_a_tool_by_name_runs_under_tool_rules(
    world: World,  # noqa: F811
    upstream: PolicyUpstream,
    governed: ToolRuntime,
) -> None:
    upstream.policy = looker
    run = await world.run(one_agent("helper"), {"question": "where is order 17?"}, governed)
    assert run.status == "succeeded", run.error
    assert run.state["answer"] == "order 17: shipped" and run.spent["model_calls"] == 2
    assert [offered(b) for b in upstream.bodies] == [["lookup"], ["lookup"]]
    assert refusals(world) == []


async def test_an_agent_without_the_grant_is_refused_before_its_model_is_called_and_audited(
    world: World,  # noqa: F811
    upstream: PolicyUpstream,
    governed: ToolRuntime,
) -> None:
    upstream.policy = looker
    run = await world.run(one_agent("snoop"), {"question": "where is order 17?"}, governed)
    assert run.status == "failed" and run.error is not None and run.error["cause"] == "ModelCallFailed"
    assert "403 tool_not_allowed" in run.error["message"] and "'lookup'" in run.error["message"]
    assert upstream.bodies == [] and run.spent["model_calls"] == 0
    assert refusals(world) == [("key_flow", "lookup", "snoop")]


def routing_policy(body: dict[str, Any]) -> dict[str, Any]:
    system, results = system_of(body), tool_results(body)
    if system.startswith("You route"):
        return answer(f"done: {results[-1]}") if results else calls(("ask_billing", {"task": "refund 5 on 17"}))
    if system.startswith("You handle refunds") or system.startswith("You issue refunds"):
        refunded = [r for r in results if r.startswith("refunded")]
        return answer(refunded[-1]) if refunded else calls(("refund_payment", {"order": "17", "amount": 5}))
    if system.startswith("Find out"):
        return calls(("transfer_to_billing", {"reason": "wants money back"}))
    raise AssertionError(f"unexpected agent: {system!r}")


async def test_a_supervisor_routes_to_its_workers_under_tool_rules(
    world: World,  # noqa: F811
    upstream: PolicyUpstream,
    governed: ToolRuntime,
) -> None:
    upstream.policy = routing_policy
    step = SupervisorStep(
        model="scripted",
        instructions="You route work to workers.",
        workers=[
            Agent("billing", "scripted", tools=("refund_payment",), instructions="You handle refunds."),
            Agent("helper", "scripted", tools=("lookup",), instructions="You answer order questions."),
        ],
        task=lambda s: s.question,
        output="answer",
    )
    run = await world.run(agent_flow(step), {"question": "refund order 17"}, governed)
    assert run.status == "succeeded", run.error
    assert run.state["answer"] == "done: refunded 5 on order 17"
    assert [offered(b) for b in upstream.bodies] == [
        ["ask_billing", "ask_helper"],
        ["refund_payment"],
        ["refund_payment"],
        ["ask_billing", "ask_helper"],
    ]
    assert refusals(world) == []


async def test_agents_hand_off_under_tool_rules(
    world: World,  # noqa: F811
    upstream: PolicyUpstream,
    governed: ToolRuntime,
) -> None:
    upstream.policy = routing_policy
    step = HandoffStep(
        agents=[
            Agent("triage", "scripted", instructions="Find out what the customer needs."),
            Agent("billing", "scripted", tools=("refund_payment",), instructions="You issue refunds."),
        ],
        start="triage",
        task=lambda s: s.question,
        output="answer",
    )
    run = await world.run(agent_flow(step), {"question": "refund 17"}, governed)
    assert run.status == "succeeded", run.error
    assert run.state["answer"] == "refunded 5 on order 17"
    # billing may hand back to triage (every other agent, by default): its transfer tool passes the gate too
    billing = ["refund_payment", "transfer_to_triage"]
    assert [offered(b) for b in upstream.bodies] == [["transfer_to_billing"], billing, billing]
    assert refusals(world) == []
