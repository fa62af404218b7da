"""An agent step: a tool-calling agent (flows/agents/loop.py) works on `task(state)` with the tools on its
allow-list until it answers; the answer goes to state field `output`.

    flow.agent("helper", model="local", tools=["lookup"], max_steps=5, max_cost_usd=0.01, output="answer",
               instructions="You answer questions about orders.", task=lambda s: s.question)

The agent acts under the step's name (or `agent=`), which is the subject of its tool grants. It stops with
`AgentLimitExceeded` at any of its caps (model calls, tokens, cost, wall time), and with `BudgetExceeded` when
the run's budget is spent.
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
    converse,
    task_message,
    text_of,
)
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowDefinitionError
from pilothouse.flows.steps.base import StepResult
from pilothouse.flows.steps.tool import runtime_of
from pilothouse.flows.tools_runtime import OutputAction

StateFn = Callable[[Any], Any]


class AgentStep:
    kind: ClassVar[str] = "agent"

    def __init__(
        self,
        *,
        model: str,
        tools: Sequence[str],
        instructions: str | StateFn | None = None,
        task: StateFn | None = None,
        max_steps: int = 10,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_wall_s: float | None = None,
        output: str | None = None,
        agent: str | None = None,
        params: Mapping[str, Any] | None = None,
        on_injection: OutputAction = "block",
    ) -> None:
        if not model or not isinstance(model, str):
            raise FlowDefinitionError("an agent step needs model=... (e.g. model='local')")
        if isinstance(tools, str) or not all(isinstance(t, str) and t for t in tools):
            raise FlowDefinitionError("an agent's tools must be a list of tool names (its allow-list)")
        if on_injection not in ("block", "flag"):
            raise FlowDefinitionError(f"on_injection must be 'block' or 'flag', not {on_injection!r}")
        self.model = model
        self.tools = tuple(tools)
        self.instructions = instructions
        self.task = task
        self.caps = AgentCaps.of(max_steps, max_tokens, max_cost_usd, max_wall_s)
        self.output = output
        self.agent = agent
        self.params = dict(params or {})
        self.on_injection: OutputAction = on_injection

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        runtime = runtime_of(ctx)
        agent = Agent(
            name=self.agent or ctx.step,
            model=self.model,
            tools=self.tools,
            instructions=text_of(self.instructions, state),
            params=self.params,
            on_injection=self.on_injection,
        )
        messages: list[Message] = []
        if agent.instructions:
            messages.append({"role": "system", "content": agent.instructions})
        messages.append(task_message(self.task, state))
        start = list(messages)
        usage = AgentUsage(self.caps)
        transcript: list[dict[str, Any]] = []
        ctx.span.attributes.update({"pilothouse.agent.name": agent.name, "pilothouse.agent.tools": list(agent.tools)})
        try:
            turn = await converse(ctx, runtime, agent, messages, usage, transcript=transcript)
        except AgentLimitExceeded:
            ctx.span.attributes["pilothouse.agent.usage"] = usage.to_dict()
            ctx.span.attributes["pilothouse.agent.transcript"] = transcript
            raise
        ctx.span.attributes["pilothouse.agent.usage"] = usage.to_dict()
        output = {"answer": turn.content, "agent": agent.name, "usage": usage.to_dict(), "transcript": transcript}
        updates = {self.output: turn.content} if self.output else {}
        return StepResult(updates=updates, output=output, input={"messages": start})
