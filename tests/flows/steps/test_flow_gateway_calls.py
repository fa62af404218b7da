"""Model calls of flow steps through the real gateway pipeline, in process (source `flow`): the call joins the
run's trace under the step's span, its cost is charged to the run, the gateway's loop guard refuses a call
that could take the run over its budget, and an agent on a scripted OpenAI-compatible upstream that keeps
calling a tool is stopped by its cap, with refusals in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pilothouse.audit.chain import list_events
from pilothouse.audit.writer import AuditWriter
from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import RateLimited
from pilothouse.flows.budget import RunBudget, check_limits
from pilothouse.flows.calls import GatewayModelCalls, flow_chat
from pilothouse.flows.engine import Engine
from pilothouse.flows.errors import BudgetExceeded
from pilothouse.flows.graph import Flow
from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.flows.protocol import RunRecord
from pilothouse.flows.steps.agent import AgentStep
from pilothouse.flows.tool_registry import ToolRegistry, flow_tool
from pilothouse.flows.tools_runtime import ToolRuntime
from pilothouse.gateway.admission import build_admission
from pilothouse.gateway.call import GatewayCall
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.stages.base import Outcome
from pilothouse.principal import Principal
from pilothouse.prompts.registry.push import push_files
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.tools import set_grant, upsert_tool
from pilothouse.store.traces import get_trace
from pilothouse.tools.rules import ToolRules
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink
from tests.support.tool_upstream import ToolUpstream, script


class Note(BaseModel):
    text: str
    summary: str = ""


@dataclass
class World:
    store: Store
    project_id: str
    models: GatewayModelCalls
    sink: StoreSink
    audit: AuditWriter

    def engine(self, tools: ToolRuntime | None = None) -> Engine:
        return Engine(MemoryCheckpointStore(), worker="w", models=self.models, tools=tools, tracer=self.sink)

    async def run(self, flow: Flow, data: dict[str, Any], tools: ToolRuntime | None = None, **kw: Any) -> RunRecord:
        engine = self.engine(tools)
        run = engine.start(flow, data, project_id=self.project_id, **kw)
        return await engine.run(flow, run.id)

    def trace(self, trace_id: str) -> dict[str, Any]:
        with self.store.connect() as conn:
            found = get_trace(conn, self.project_id, trace_id)
        assert found is not None, f"trace {trace_id} not stored"
        return found


@pytest.fixture(scope="module")
def upstream() -> Iterator[ToolUpstream]:
    server = ToolUpstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def world(tmp_path: Path, upstream: ToolUpstream) -> AsyncIterator[World]:
    priced: dict[str, Any] = {"input_price_per_mtok": Decimal("2"), "output_price_per_mtok": Decimal("8")}
    settings = Settings(
        include_default_models=False,
        data_dir=tmp_path / "data",
        models=[
            ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake-1", **priced)]),
            ModelEntry(
                name="scripted",
                deployments=[
                    Deployment(provider="openai", model="scripted-model", base_url=upstream.url + "/v1", **priced)
                ],
            ),
        ],
    )
    store = open_store(f"sqlite:///{tmp_path / 'flows.db'}")
    resolver = PromptResolver(store)
    pool = ProviderPool(settings)
    gateway = Gateway(settings, pool, default_price_book(), resolver)
    admission = build_admission(settings, store, gateway.prices, gateway.catalog)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    with store.begin() as conn:
        project = create_project(conn, "flows")
    assert admission.audit is not None
    pipeline = Pipeline(gateway, sink, admission=admission, tools=ToolRules(store, ttl_s=0.01))
    models = GatewayModelCalls(pipeline, key_id="key_flow")
    yield World(store, project.id, models, sink, admission.audit)
    await pool.aclose()
    sink.close()
    admission.audit.close()
    resolver.close()
    store.dispose()


def summarise_flow(**budget: Any) -> Flow:
    flow = Flow("summarise", state=Note, budget=budget)
    flow.llm(
        "summarise",
        model="fake-chat",
        messages=lambda s: [{"role": "user", "content": s.text}],
        output="summary",
        params={"max_tokens": 20},
    )
    flow.start("summarise")
    flow.edge("summarise", Flow.END)
    return flow


async def test_a_step_s_model_call_is_traced_under_its_step_and_charged_to_the_run(world: World) -> None:
    run = await world.run(summarise_flow(cost_usd=1), {"text": "the parcel arrived broken"})
    assert run.status == "succeeded", run.error
    assert run.state["summary"] == "echo: the parcel arrived broken"
    assert Decimal(run.spent["cost_usd"]) > 0 and run.spent["model_calls"] == 1 and run.spent["tokens"] > 0
    assert run.trace_id is not None
    trace = world.trace(run.trace_id)
    spans = {s["kind"]: s for s in trace["spans"]}
    step, llm = spans["step"], spans["llm"]
    assert step["name"] == "summarise" and llm["parent_id"] == step["id"]
    assert trace["source"] == "flow" and llm["model"] == "fake-chat"
    assert Decimal(step["attributes"]["pilothouse.cost_usd"]) == Decimal(run.spent["cost_usd"])


async def test_an_llm_step_renders_a_registry_prompt_through_the_gateway(world: World) -> None:
    prompt = (
        "name: reply\nmodel: fake-chat\nmax_tokens: 20\nvariables:\n  issue: {type: string}\n"
        'messages:\n  - role: user\n    content: "please help with {{ issue }}"\n'
    )
    with world.store.begin() as conn:
        push_files(conn, project_id=world.project_id, files=[("reply.yaml", prompt)], actor="key_admin")
    flow = Flow("prompted", state=Note)
    flow.llm("reply", prompt="reply@1", variables=lambda s: {"issue": s.text}, output="summary")
    flow.start("reply")
    flow.edge("reply", Flow.END)
    run = await world.run(flow, {"text": "a broken parcel"})
    assert run.status == "succeeded", run.error
    assert run.state["summary"] == "echo: please help with a broken parcel"
    llm = [s for s in world.trace(run.trace_id or "")["spans"] if s["kind"] == "llm"]
    assert len(llm) == 1 and llm[0]["model"] == "fake-chat"


async def test_the_call_that_takes_the_run_over_its_budget_fails_the_step(world: World) -> None:
    flow = summarise_flow(cost_usd="0.00003")  # one call costs $0.00002 here
    flow.llm("again", model="fake-chat", messages=lambda s: [{"role": "user", "content": "more"}], output="summary")
    flow.edges["summarise"] = ["again"]
    flow.edge("again", Flow.END)
    run = await world.run(flow, {"text": "hello"})
    assert run.status == "failed" and run.error is not None
    assert run.error["step"] == "again" and run.error["cause"] == "BudgetExceeded"
    assert run.error["message"] == "run budget cost_usd exceeded: spent 0.00004 of 0.00003"
    assert run.spent["model_calls"] == 2


class RefusingPipeline:
    """Answers every call as the gateway's loop guard refuses one over the run's cap."""

    def __init__(self) -> None:
        self.calls: list[GatewayCall] = []

    async def run(self, call: GatewayCall) -> Outcome:
        self.calls.append(call)
        refusal = RateLimited(
            "Run limit reached: run 'flow:x' has used 12 tokens of its cap of 10", code="run_limit_exceeded"
        )
        return Outcome(TraceRecord(project_id="p", name="x"), error=refusal)


async def test_the_loop_guard_s_refusal_is_the_run_s_budget_error() -> None:
    pipeline = RefusingPipeline()
    budget = RunBudget(check_limits({"tokens": 10, "model_calls": 5, "cost_usd": 0.5, "steps": 3}), {})
    principal = Principal("key_1", "p", "service")
    body = {"model": "m", "messages": [], "stream": True}
    with pytest.raises(BudgetExceeded, match="refused the model call for the run's budget") as refused:
        await flow_chat(pipeline, principal, body, run_id="run_1", step="s", budget=budget)  # type: ignore[arg-type]
    assert refused.value.limit == "tokens"
    (call,) = pipeline.calls
    assert call.source == "flow" and call.session_id == "run_1" and "stream" not in call.body
    assert call.headers == [
        (b"x-pilothouse-run-id", b"flow:run_1"),
        (b"x-pilothouse-run-max-calls", b"5"),
        (b"x-pilothouse-run-max-tokens", b"10"),
        (b"x-pilothouse-run-max-cost-usd", b"0.5"),
    ]


async def test_an_agent_that_keeps_calling_a_tool_through_the_gateway_is_stopped(world: World) -> None:
    tools, ran = ToolRegistry(), []

    @flow_tool(registry=tools)
    def lookup(order: str) -> str:
        ran.append(order)
        return f"order {order}: shipped"

    flow = Flow("stubborn", state=Note)
    # the scripted upstream answers every turn with the same tool calls: one allowed, one not on the allow-list
    flow.agent(
        "helper",
        model="scripted",
        tools=["lookup"],
        task=lambda s: s.text,
        max_steps=3,
        output="summary",
    )
    flow.start("helper")
    flow.edge("helper", Flow.END)
    task = script("", [("lookup", {"order": "17"}), ("delete_orders", {"all": True})])
    runtime = ToolRuntime(registry=tools, audit=world.audit, tracer=world.sink)
    run = await world.run(flow, {"text": task}, runtime)
    assert run.status == "failed" and run.error is not None
    assert run.error["cause"] == "AgentLimitExceeded"
    assert "3 model calls of its max_steps=3" in run.error["message"] and "lookup x3" in run.error["message"]
    assert ran == ["17", "17", "17"] and run.spent["model_calls"] == 3
    with world.store.connect() as conn:
        events = list_events(conn, project_id=world.project_id, actions=["tool.refused"])
    assert [(e.actor, e.target) for e in events] == [("flow", "delete_orders")] * 3
    assert events[0].details is not None and events[0].details["agent"] == "helper"
    assert events[0].details["run_id"] == run.id and events[0].details["rule"] == "allow_list"
    trace = world.trace(run.trace_id or "")
    (step,) = [s for s in trace["spans"] if s["kind"] == "step"]
    tool_spans = [s for s in trace["spans"] if s["kind"] == "tool"]
    assert [(s["name"], s["status"]) for s in tool_spans] == [("lookup", "ok"), ("delete_orders", "error")] * 3
    assert all(s["parent_id"] == step["id"] for s in tool_spans)
    assert (
        tool_spans[0]["output"] == "order 17: shipped"
        and tool_spans[0]["attributes"]["pilothouse.agent.name"] == "helper"
    )
    assert tool_spans[1]["attributes"]["pilothouse.tool.rule"] == "allow_list"
    assert len([s for s in trace["spans"] if s["kind"] == "llm"]) == 3


async def test_in_a_project_with_tool_rules_the_gateway_refuses_an_ungranted_tool(world: World) -> None:
    tools = ToolRegistry()

    @flow_tool(registry=tools)
    def lookup(order: str) -> str:
        return f"order {order}: shipped"

    @flow_tool(registry=tools)
    def wipe(order: str) -> str:
        raise AssertionError("never runs")

    parameters = {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
    with world.store.begin() as conn:
        for name in ("lookup", "wipe"):
            upsert_tool(
                conn,
                project_id=world.project_id,
                name=name,
                description="",
                risk="low",
                parameters=parameters,
                actor="a",
            )
        set_grant(conn, project_id=world.project_id, tool="lookup", kind="project", subject="", rules=[], actor="a")
    flow = Flow("governed", state=Note)
    flow.agent("helper", model="scripted", tools=["lookup", "wipe"], task=lambda s: s.text, max_steps=2)
    flow.start("helper")
    flow.edge("helper", Flow.END)
    run = await world.run(flow, {"text": script("", [("lookup", {"order": "1"})])}, ToolRuntime(registry=tools))
    assert run.status == "failed" and run.error is not None and run.error["cause"] == "ModelCallFailed"
    assert "403 tool_not_allowed" in run.error["message"] and "'wipe'" in run.error["message"]
    assert run.spent["model_calls"] == 0  # refused before the model was called
    with world.store.connect() as conn:
        events = list_events(conn, project_id=world.project_id, actions=["tool.refused"])
    assert [(e.actor, e.target) for e in events] == [("key_flow", "wipe")]


def test_an_agent_step_is_built_from_the_flow_builder() -> None:
    flow = Flow("b", state=Note)
    flow.agent("helper", model="scripted", tools=["lookup"], max_cost_usd=0.01)
    step = flow.nodes["helper"].step
    assert isinstance(step, AgentStep) and step.caps.max_cost_usd == Decimal("0.01")
