"""Fakes for step tests: a scripted model service, an audit recorder, and a one-call engine runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from pilothouse.flows.context import StepContext
from pilothouse.flows.engine import Engine
from pilothouse.flows.graph import Flow
from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.flows.protocol import RunRecord
from pilothouse.flows.tools_runtime import ToolRuntime

Policy = Callable[[dict[str, Any]], dict[str, Any]]
"""The request body -> the assistant message the fake model answers."""


def call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def calls(*items: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """An assistant message with these tool calls."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [call(n, a, f"call_{i}") for i, (n, a) in enumerate(items)],
    }


def answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


class ScriptedModels:
    """A `ModelCalls` whose answers a policy chooses from the request; each call costs `cost_usd` and
    10 + 5 tokens, charged to the run like the gateway's."""

    def __init__(self, policy: Policy, *, cost_usd: str = "0.001", delay_s: float = 0.0) -> None:
        self.policy = policy
        self.delay_s = delay_s
        self.cost = Decimal(cost_usd)
        self.bodies: list[dict[str, Any]] = []

    async def chat(self, ctx: StepContext, body: dict[str, Any]) -> dict[str, Any]:
        ctx.check_budget()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.bodies.append(orjson.loads(orjson.dumps(body)))
        message = self.policy(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        ctx.charge(cost_usd=self.cost, tokens=15, model_calls=1)
        return {
            "object": "chat.completion",
            "model": body.get("model"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }


class AuditRecorder:
    """An `Auditor` that keeps the events."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def record(
        self, *, actor: str, action: str, target: str | None, project_id: str | None, details: dict[str, Any] | None
    ) -> None:
        self.events.append(
            {"actor": actor, "action": action, "target": target, "project_id": project_id, "details": details}
        )

    def actions(self) -> list[tuple[str, str | None]]:
        return [(e["action"], e["target"]) for e in self.events]


def last_user(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m.get("role") == "user"]
    return str(users[-1]["content"]) if users else ""


def tool_results(body: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in body["messages"] if m.get("role") == "tool"]


async def run_flow(
    flow: Flow,
    data: dict[str, Any],
    *,
    models: Any = None,
    tools: ToolRuntime | None = None,
    store: MemoryCheckpointStore | None = None,
    budget: dict[str, Any] | None = None,
) -> tuple[RunRecord, MemoryCheckpointStore]:
    """Start and run `flow` on a memory store until it ends or waits."""
    store = store or MemoryCheckpointStore()
    engine = Engine(store, worker="test", models=models, tools=tools)
    run = engine.start(flow, data, project_id="proj", budget=budget)
    return await engine.run(flow, run.id), store
