"""A supervisor agent routing work to worker agents.

The supervisor's model is offered one routing tool per worker (`ask_<worker>(task)`); when it calls one, that
worker runs its own conversation (its instructions, its tools, its permissions: it acts under its own name) on
the task, and the worker's answer comes back to the supervisor as the routing call's result. The supervisor
answers when it has what it needs. Every route is recorded in the step's decision (`routes`: round, worker,
task), so the decision path shows who did what. Caps (model calls, tokens, cost, wall time) count the
supervisor and its workers together; `max_rounds` bounds the routes.

    flow.add("triage", SupervisorStep(
        model="local",
        workers=[Agent("billing", "local", tools=("refund_payment",), instructions="You handle refunds."),
                 Agent("support", "local", tools=("lookup_order",), instructions="You answer order questions.")],
        task=lambda s: s.request, output="answer", max_rounds=4))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from pilothouse.flows.agents.loop import (
    Agent,
    AgentCaps,
    AgentLimitExceeded,
    AgentUsage,
    Message,
    control_tool,
    converse,
    task_message,
    text_of,
)
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowDefinitionError
from pilothouse.flows.steps.base import StepResult
from pilothouse.flows.steps.tool import runtime_of

StateFn = Callable[[Any], Any]
ROUTE_PREFIX = "ask_"
DEFAULT_INSTRUCTIONS = (
    "You are a supervisor. Route each part of the task to the worker best suited for it by calling its "
    "ask_<worker> tool with a clear task, then answer the user with what the workers found."
)


def unique_agents(agents: Sequence[Agent], what: str) -> dict[str, Agent]:
    """Agents by name; FlowDefinitionError for a duplicate name or something that is not an Agent."""
    found: dict[str, Agent] = {}
    for agent in agents:
        if not isinstance(agent, Agent):
            raise FlowDefinitionError(f"{what}: {agent!r} is not an Agent (pilothouse.flows.agents.loop.Agent)")
        if agent.name in found:
            raise FlowDefinitionError(f"{what}: two agents are named {agent.name!r}")
        found[agent.name] = agent
    if not found:
        raise FlowDefinitionError(f"{what}: needs at least one agent")
    return found


class SupervisorStep:
    kind: ClassVar[str] = "supervisor"

    def __init__(
        self,
        *,
        model: str,
        workers: Sequence[Agent],
        instructions: str | StateFn | None = None,
        task: StateFn | None = None,
        name: str = "supervisor",
        tools: Sequence[str] = (),
        max_rounds: int = 5,
        max_steps: int = 20,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_wall_s: float | None = None,
        output: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.workers = unique_agents(workers, "a supervisor's workers")
        if name in self.workers:
            raise FlowDefinitionError(f"the supervisor and a worker are both named {name!r}")
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise FlowDefinitionError("a supervisor's max_rounds must be a whole number >= 1")
        self.model = model
        self.name = name
        self.instructions = instructions
        self.task = task
        self.tools = tuple(tools)
        self.max_rounds = max_rounds
        self.caps = AgentCaps.of(max_steps, max_tokens, max_cost_usd, max_wall_s)
        self.output = output
        self.params = dict(params or {})
        self.routes = [
            control_tool(
                f"{ROUTE_PREFIX}{w.name}",
                f"Give a task to the {w.name} worker. {w.instructions}".strip()[:1000],
                {"task": {"type": "string", "description": "what the worker should do"}},
            )
            for w in self.workers.values()
        ]

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        runtime = runtime_of(ctx)
        instructions = text_of(self.instructions, state) or DEFAULT_INSTRUCTIONS
        boss = Agent(name=self.name, model=self.model, tools=self.tools, instructions=instructions, params=self.params)
        messages: list[Message] = [{"role": "system", "content": instructions}, task_message(self.task, state)]
        usage = AgentUsage(self.caps)
        transcript: list[dict[str, Any]] = []
        routes: list[dict[str, Any]] = []
        try:
            while True:
                turn = await converse(
                    ctx, runtime, boss, messages, usage, control_tools=self.routes, transcript=transcript
                )
                if turn.kind == "answer":
                    break
                worker = self.workers[(turn.control or "")[len(ROUTE_PREFIX) :]]
                if len(routes) >= self.max_rounds:
                    raise AgentLimitExceeded(
                        f"supervisor {self.name!r} (step {ctx.step!r}) routed {len(routes)} times (max_rounds="
                        f"{self.max_rounds}) without a final answer; last routes: "
                        f"{', '.join(r['worker'] for r in routes[-3:])}",
                        limit="max_rounds",
                        usage=usage.to_dict(),
                    )
                task = str(turn.arguments.get("task") or "")
                routes.append({"round": len(routes) + 1, "worker": worker.name, "task": task})
                answer = await self._work(ctx, worker, task, usage, transcript)
                turn.reply(messages, answer)
        finally:
            ctx.span.attributes.update({"pilothouse.agent.usage": usage.to_dict(), "pilothouse.agent.routes": routes})
        output = {"answer": turn.content, "routes": routes, "usage": usage.to_dict(), "transcript": transcript}
        updates = {self.output: turn.content} if self.output else {}
        return StepResult(updates=updates, output=output, decision={"routes": routes})

    async def _work(
        self, ctx: StepContext, worker: Agent, task: str, usage: AgentUsage, transcript: list[dict[str, Any]]
    ) -> str:
        messages: list[Message] = []
        if worker.instructions:
            messages.append({"role": "system", "content": worker.instructions})
        messages.append({"role": "user", "content": task})
        turn = await converse(ctx, runtime_of(ctx), worker, messages, usage, transcript=transcript)
        return turn.content
