"""Hand-off between agents: one conversation, passed from agent to agent.

The active agent sees the conversation under its own instructions and is offered its own tools plus one
`transfer_to_<agent>` tool per agent it may hand off to (`handoffs`; default: every other agent). When it
calls one, the next agent takes over the same conversation, with its own instructions, tools and permissions
(tool calls act under the active agent's name). The agent that answers without a tool call ends the step.
Every hand-off is recorded in the step's decision (`handoffs`: from, to, reason); `max_handoffs` bounds them
and the caps (model calls, tokens, cost, wall time) count all the agents together.

    flow.add("desk", HandoffStep(
        agents=[Agent("triage", "local", instructions="Find out what the customer needs."),
                Agent("refunds", "local", tools=("refund_payment",), instructions="You issue refunds.")],
        start="triage", handoffs={"triage": ["refunds"]}, task=lambda s: s.request, output="answer"))
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
)
from pilothouse.flows.agents.supervisor import unique_agents
from pilothouse.flows.context import StepContext
from pilothouse.flows.errors import FlowDefinitionError
from pilothouse.flows.steps.base import StepResult
from pilothouse.flows.steps.tool import runtime_of

StateFn = Callable[[Any], Any]
TRANSFER_PREFIX = "transfer_to_"


class HandoffStep:
    kind: ClassVar[str] = "handoff"

    def __init__(
        self,
        *,
        agents: Sequence[Agent],
        start: str,
        handoffs: Mapping[str, Sequence[str]] | None = None,
        task: StateFn | None = None,
        max_handoffs: int = 5,
        max_steps: int = 20,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        max_wall_s: float | None = None,
        output: str | None = None,
    ) -> None:
        self.agents = unique_agents(agents, "a hand-off step's agents")
        if start not in self.agents:
            raise FlowDefinitionError(f"hand-off start {start!r} is none of the agents ({', '.join(self.agents)})")
        routes = {n: [o for o in self.agents if o != n] for n in self.agents} if handoffs is None else {}
        for source, targets in (handoffs or {}).items():
            unknown = [t for t in [source, *targets] if t not in self.agents]
            if unknown:
                raise FlowDefinitionError(f"hand-off {source!r} -> {list(targets)!r} names unknown agent(s) {unknown}")
            if source in targets:
                raise FlowDefinitionError(f"agent {source!r} cannot hand off to itself")
            routes[source] = list(targets)
        if isinstance(max_handoffs, bool) or not isinstance(max_handoffs, int) or max_handoffs < 0:
            raise FlowDefinitionError("max_handoffs must be a whole number >= 0")
        self.start = start
        self.routes = routes
        self.task = task
        self.max_handoffs = max_handoffs
        self.caps = AgentCaps.of(max_steps, max_tokens, max_cost_usd, max_wall_s)
        self.output = output
        self.transfers = {
            name: [
                control_tool(
                    f"{TRANSFER_PREFIX}{target}",
                    f"Hand the conversation to the {target} agent. {self.agents[target].instructions}".strip()[:1000],
                    {"reason": {"type": "string", "description": "why this agent should take over"}},
                )
                for target in targets
            ]
            for name, targets in routes.items()
        }

    async def run(self, state: BaseModel, ctx: StepContext) -> StepResult:
        runtime = runtime_of(ctx)
        history: list[Message] = [task_message(self.task, state)]
        usage = AgentUsage(self.caps)
        transcript: list[dict[str, Any]] = []
        handoffs: list[dict[str, Any]] = []
        active = self.agents[self.start]
        try:
            while True:
                conversation = [{"role": "system", "content": active.instructions}] if active.instructions else []
                system = len(conversation)
                conversation += history
                turn = await converse(
                    ctx,
                    runtime,
                    active,
                    conversation,
                    usage,
                    control_tools=self.transfers.get(active.name, []),
                    transcript=transcript,
                )
                history = conversation[system:]
                if turn.kind == "answer":
                    break
                target = (turn.control or "")[len(TRANSFER_PREFIX) :]
                if len(handoffs) >= self.max_handoffs:
                    raise AgentLimitExceeded(
                        f"hand-off step {ctx.step!r}: {len(handoffs)} hand-offs (max_handoffs={self.max_handoffs}) "
                        f"without a final answer; last: {' -> '.join([h['from'] for h in handoffs[-3:]] + [target])}",
                        limit="max_handoffs",
                        usage=usage.to_dict(),
                    )
                handoffs.append({"from": active.name, "to": target, "reason": str(turn.arguments.get("reason") or "")})
                turn.reply(history, f"transferred to {target}")
                active = self.agents[target]
        finally:
            ctx.span.attributes.update(
                {"pilothouse.agent.usage": usage.to_dict(), "pilothouse.agent.handoffs": handoffs}
            )
        output = {
            "answer": turn.content,
            "answered_by": active.name,
            "handoffs": handoffs,
            "usage": usage.to_dict(),
            "transcript": transcript,
        }
        updates = {self.output: turn.content} if self.output else {}
        return StepResult(updates=updates, output=output, decision={"handoffs": handoffs, "answered_by": active.name})
