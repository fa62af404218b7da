"""The tool gate for in-process callers (gateway/stages/tool_gate.py): a call made for an agent gets the
project's grants to that agent by name as well as its key's and the project's, and the caller's internal tools
(a workflow's routing and hand-off tools) are neither checked when offered nor judged in the answer, whole or
streamed; every other tool is gated as before. Neither can be set by an HTTP caller. The model is the scripted
upstream (tests/support/tool_upstream.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from pilothouse.audit.chain import list_events
from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.gateway.admission import build_admission
from pilothouse.gateway.call import GatewayCall
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.gateway.stages.base import Outcome
from pilothouse.principal import Principal
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.tools import set_grant, upsert_tool
from pilothouse.tools.rules import ToolRules
from pilothouse.tracing.sink import StoreSink
from tests.support.asgi_app import app_settings, running
from tests.support.tool_upstream import ToolUpstream, script

ORDER = {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}
ROUTE = "ask_billing"


def offer(*names: str) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": n, "parameters": ORDER}} for n in names]


@dataclass
class World:
    store: Store
    project_id: str
    pipeline: Pipeline

    async def chat(
        self,
        calls: list[tuple[str, dict[str, Any]]],
        offered: list[str],
        *,
        agent: str | None = None,
        internal: frozenset[str] = frozenset(),
        stream: bool = False,
    ) -> Outcome:
        body: dict[str, Any] = {
            "model": "scripted",
            "messages": [{"role": "user", "content": script("", calls)}],
            "tools": offer(*offered),
        }
        if stream:
            body["stream"] = True
        call = GatewayCall(
            kind="chat",
            body=body,
            principal=Principal("key_flow", self.project_id, "service"),
            source="flow",
            agent=agent,
            internal_tools=internal,
        )
        return await self.pipeline.run(call)

    def refusals(self) -> list[tuple[str | None, dict[str, Any]]]:
        with self.store.connect() as conn:
            events = list_events(conn, project_id=self.project_id, actions=["tool.refused"])
        return [(e.target, e.details or {}) for e in events]


@pytest.fixture(scope="module")
def upstream() -> Iterator[ToolUpstream]:
    server = ToolUpstream()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def world(tmp_path: Path, upstream: ToolUpstream) -> AsyncIterator[World]:
    deployment = Deployment(provider="openai", model="scripted-model", base_url=upstream.url + "/v1")
    settings = Settings(
        include_default_models=False,
        data_dir=tmp_path / "data",
        models=[ModelEntry(name="scripted", deployments=[deployment])],
    )
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    resolver = PromptResolver(store)
    pool = ProviderPool(settings)
    gateway = Gateway(settings, pool, default_price_book(), resolver)
    admission = build_admission(settings, store, gateway.prices, gateway.catalog)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    with store.begin() as conn:
        project = create_project(conn, "gated")
        for name in ("lookup", "wipe"):
            upsert_tool(conn, project_id=project.id, name=name, description="", risk="low", parameters=ORDER, actor="a")
        # lookup is the helper agent's alone; wipe is registered and granted to no one
        set_grant(conn, project_id=project.id, tool="lookup", kind="agent", subject="helper", rules=[], actor="a")
    assert admission.audit is not None
    pipeline = Pipeline(gateway, sink, admission=admission, tools=ToolRules(store, ttl_s=0.01))
    yield World(store, project.id, pipeline)
    await pool.aclose()
    sink.close()
    admission.audit.close()
    resolver.close()
    store.dispose()


def tool_calls_of(outcome: Outcome) -> list[str]:
    assert outcome.error is None, outcome.error
    assert outcome.payload is not None
    message = outcome.payload["choices"][0]["message"]
    return [c["function"]["name"] for c in message.get("tool_calls") or ()]


async def streamed(outcome: Outcome) -> list[dict[str, Any]]:
    assert outcome.error is None, outcome.error
    assert outcome.events is not None
    return [orjson.loads(e.removeprefix(b"data: ").strip()) async for e in outcome.events]


async def test_a_grant_to_an_agent_by_name_applies_to_calls_made_for_that_agent(world: World) -> None:
    allowed = await world.chat([("lookup", {"order": "7"})], ["lookup"], agent="helper")
    assert tool_calls_of(allowed) == ["lookup"]
    for agent in (None, "intruder"):  # the key alone, or another agent, has no grant of lookup
        refused = await world.chat([("lookup", {"order": "7"})], ["lookup"], agent=agent)
        assert refused.error is not None and (refused.error.status, refused.error.code) == (403, "tool_not_allowed")
        assert refused.error.param == "tools[0]"
    (first, second) = world.refusals()
    assert first[0] == "lookup" and "agent" not in first[1] and first[1]["stage"] == "request"
    assert second[0] == "lookup" and second[1]["agent"] == "intruder"


async def test_the_agent_s_answer_is_judged_under_its_grants(world: World) -> None:
    refused = await world.chat([("lookup", {"order": "7"}), ("wipe", {"order": "7"})], ["lookup"], agent="helper")
    assert refused.error is not None and refused.error.code == "tool_not_allowed" and "'wipe'" in refused.error.message
    ((target, details),) = world.refusals()
    assert target == "wipe" and details["agent"] == "helper" and details["stage"] == "response"


async def test_internal_tools_are_neither_checked_when_offered_nor_judged(world: World) -> None:
    internal = frozenset({ROUTE})
    passed = await world.chat([(ROUTE, {"order": "7"})], [ROUTE], internal=internal)
    assert tool_calls_of(passed) == [ROUTE]
    # without the flag the same unregistered name is refused, offered or called
    offered = await world.chat([(ROUTE, {"order": "7"})], [ROUTE])
    assert offered.error is not None and offered.error.code == "tool_not_allowed" and offered.error.param == "tools[0]"
    called = await world.chat([(ROUTE, {"order": "7"})], [], agent="helper")
    assert called.error is not None and called.error.code == "tool_not_allowed"
    assert [t for t, _ in world.refusals()] == [ROUTE, ROUTE]


async def test_internal_tools_cover_only_their_own_names(world: World) -> None:
    internal = frozenset({ROUTE})
    both = await world.chat(
        [(ROUTE, {}), ("lookup", {"order": "7"})], [ROUTE, "lookup"], agent="helper", internal=internal
    )
    assert tool_calls_of(both) == [ROUTE, "lookup"]
    offered = await world.chat([], [ROUTE, "wipe"], agent="helper", internal=internal)
    assert offered.error is not None and offered.error.param == "tools[1]"
    called = await world.chat([(ROUTE, {}), ("wipe", {"order": "7"})], [ROUTE], agent="helper", internal=internal)
    assert called.error is not None and "'wipe'" in called.error.message
    assert [t for t, _ in world.refusals()] == ["wipe", "wipe"]


async def test_a_stream_passes_internal_and_granted_calls_and_refuses_others(world: World) -> None:
    internal = frozenset({ROUTE})
    ok = await world.chat(
        [(ROUTE, {}), ("lookup", {"order": "7"})], [ROUTE, "lookup"], agent="helper", internal=internal, stream=True
    )
    chunks = await streamed(ok)
    names = [
        c["function"]["name"]
        for chunk in chunks
        for choice in chunk.get("choices") or ()
        for c in choice["delta"].get("tool_calls") or ()
        if c.get("function", {}).get("name")
    ]
    assert names == [ROUTE, "lookup"]
    refused = await world.chat(
        [(ROUTE, {}), ("wipe", {"order": "7"})], [ROUTE], agent="helper", internal=internal, stream=True
    )
    assert refused.error is not None and refused.error.status == 403 and "'wipe'" in refused.error.message
    assert [t for t, _ in world.refusals()] == ["wipe"]


def test_an_http_caller_can_name_neither_an_agent_nor_internal_tools(
    upstream: ToolUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment = Deployment(provider="openai", model="scripted-model", base_url=upstream.url + "/v1")
    settings = app_settings(tmp_path, [ModelEntry(name="scripted", deployments=[deployment])])
    with running(settings, monkeypatch) as (http, _app):
        registered = http.post("/api/tools", json={"tools": [{"name": "lookup", "risk": "low", "parameters": ORDER}]})
        granted = http.post("/api/tools/lookup/grants", json={"kind": "agent", "subject": "helper"})
        assert registered.status_code < 300 and granted.status_code < 300, (registered.text, granted.text)
        for name in ("lookup", ROUTE):  # granted to the agent helper; an internal tool of in-process callers
            body = {
                "model": "scripted",
                "messages": [{"role": "user", "content": script("", [(name, {"order": "7"})])}],
                "tools": offer(name),
                "agent": "helper",
                "internal_tools": [ROUTE],
            }
            headers = {"x-pilothouse-agent": "helper", "x-pilothouse-internal-tools": ROUTE}
            refused = http.post("/v1/chat/completions", json=body, headers=headers)
            assert refused.status_code == 403, refused.text
            error = refused.json()["error"]
            assert (error["code"], error["param"]) == ("tool_not_allowed", "tools[0]")
