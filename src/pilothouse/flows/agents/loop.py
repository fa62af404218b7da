"""The tool-calling loop every agent runs: the model picks tools from its allow-list (OpenAI tool calls,
through the gateway), each call runs through the tool runtime and its result goes back into the conversation,
until the model answers without a tool call or a cap stops it.

Caps (`AgentCaps`) bound model calls (`max_steps`), tokens, cost and wall time; they are checked after every
model call and before the next, and the error names the cap, what was used and the tools the agent kept
calling. The run's own budget applies on top (`BudgetExceeded`). An agent acts under its own name: the
project's grants to that agent (`pilothouse tools allow T --agent NAME`) and its allow-list decide what it may
call. A refused call (not on the allow-list, not granted, bad arguments, needing approval) is audited and its
refusal goes back to the model as the tool's result, so the agent can change course; a tool that fails or
times out does the same. Tool outputs reach the model only after the indirect-injection scan.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import orjson
from pydantic import BaseModel

from pilothouse.flows.calls import chat_answer
from pilothouse.flows.errors import FlowDefinitionError, FlowError
from pilothouse.flows.tools_runtime import OutputAction, ToolCallError, ToolRuntime
from pilothouse.money import usd_string
from pilothouse.tools.registry import ToolDefinitionError

if TYPE_CHECKING:
    from pilothouse.flows.context import StepContext

Message = dict[str, Any]


class AgentLimitExceeded(FlowError):
    """An agent hit one of its caps before it answered. `limit` is `max_steps`, `max_tokens`,
    `max_cost_usd` or `max_wall_s`."""

    retryable = False

    def __init__(self, message: str, *, limit: str, usage: dict[str, Any]) -> None:
        super().__init__(message)
        self.limit = limit
        self.usage = usage


@dataclass(frozen=True, slots=True)
class AgentCaps:
    max_steps: int = 10
    max_tokens: int | None = None
    max_cost_usd: Decimal | None = None
    max_wall_s: float | None = None

    @classmethod
    def of(
        cls,
        max_steps: int = 10,
        max_tokens: int | None = None,
        max_cost_usd: float | str | Decimal | None = None,
        max_wall_s: float | None = None,
    ) -> AgentCaps:
        """Caps from user values; FlowDefinitionError names a bad one."""
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise FlowDefinitionError("an agent's max_steps must be a whole number >= 1")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise FlowDefinitionError("an agent's max_tokens must be a whole number >= 1")
        cost = None if max_cost_usd is None else Decimal(str(max_cost_usd))
        if cost is not None and (not cost.is_finite() or cost < 0):
            raise FlowDefinitionError("an agent's max_cost_usd must be a number >= 0")
        if max_wall_s is not None and not max_wall_s > 0:
            raise FlowDefinitionError("an agent's max_wall_s must be a number of seconds > 0")
        return cls(max_steps, max_tokens, cost, max_wall_s)


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent: its name (the subject of its tool grants), model, instructions and allowed tools."""

    name: str
    model: str
    tools: tuple[str, ...] = ()
    instructions: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    on_injection: OutputAction = "block"


@dataclass(slots=True)
class AgentUsage:
    """What the agents of one step used together, checked against the step's caps."""

    caps: AgentCaps
    started: float = field(default_factory=time.monotonic)
    model_calls: int = 0
    tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    tool_calls: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_calls": self.model_calls,
            "tokens": self.tokens,
            "cost_usd": usd_string(self.cost_usd),
            "wall_s": round(time.monotonic() - self.started, 3),
            "tool_calls": dict(self.tool_calls),
        }

    def wall_left(self) -> float | None:
        """Seconds left under `max_wall_s` (None: no cap): a model call is not waited for past it."""
        if self.caps.max_wall_s is None:
            return None
        return max(0.0, self.caps.max_wall_s - (time.monotonic() - self.started))

    def check(self, who: str, *, before_call: bool, timed_out: bool = False) -> None:
        """Raise AgentLimitExceeded when a cap is reached (`before_call`: another model call would pass it;
        `timed_out`: a model call was stopped at the wall-time cap)."""
        caps = self.caps
        limit: tuple[str, str] | None = None
        if before_call and self.model_calls >= caps.max_steps:
            limit = ("max_steps", f"{self.model_calls} model calls of its max_steps={caps.max_steps}")
        elif caps.max_tokens is not None and self.tokens >= caps.max_tokens:
            limit = ("max_tokens", f"{self.tokens:,} tokens of its max_tokens={caps.max_tokens:,}")
        elif caps.max_cost_usd is not None and self.cost_usd >= caps.max_cost_usd and self.model_calls:
            limit = ("max_cost_usd", f"${usd_string(self.cost_usd)} of its max_cost_usd=${caps.max_cost_usd}")
        elif caps.max_wall_s is not None and (timed_out or time.monotonic() - self.started >= caps.max_wall_s):
            limit = ("max_wall_s", f"{time.monotonic() - self.started:.1f}s of its max_wall_s={caps.max_wall_s:g}")
        if limit is None:
            return
        kept = ", ".join(f"{name} x{n}" for name, n in self.tool_calls.most_common(3)) or "no tool"
        raise AgentLimitExceeded(
            f"{who} stopped without a final answer: it used {limit[1]} (tool calls so far: {kept}); "
            f"raise {limit[0]} or narrow the task",
            limit=limit[0],
            usage=self.to_dict(),
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """How a conversation stopped: a final answer, or a control call (a hand-off or a route) to act on."""

    kind: Literal["answer", "control"]
    content: str = ""
    control: str | None = None
    """The control tool the model called (for `control`)."""
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str = ""

    def reply(self, messages: list[Message], content: str) -> None:
        """Answer the control call in the conversation (its result, as a tool message)."""
        messages.append({"role": "tool", "tool_call_id": self.call_id, "content": content})


async def converse(
    ctx: StepContext,
    runtime: ToolRuntime,
    agent: Agent,
    messages: list[Message],
    usage: AgentUsage,
    *,
    control_tools: Sequence[dict[str, Any]] = (),
    transcript: list[dict[str, Any]],
) -> Turn:
    """Run `agent` on `messages` (appended to in place) until it answers or calls a control tool."""
    who = f"agent {agent.name!r} (step {ctx.step!r})"
    control_names = {t["function"]["name"] for t in control_tools}
    internal = frozenset(control_names)  # the gateway's tool gate leaves these to the loop
    try:
        offered = runtime.registry.specs(agent.tools) + list(control_tools)
    except ToolDefinitionError as exc:
        raise FlowError(f"{who}: {exc}") from None
    while True:
        usage.check(who, before_call=True)
        body: dict[str, Any] = {**agent.params, "model": agent.model, "messages": messages}
        if offered:
            body["tools"] = offered
        try:
            asked = chat_answer(ctx, body, agent=agent.name, internal_tools=internal)
            answer = await asyncio.wait_for(asked, usage.wall_left())
        except TimeoutError:
            usage.check(who, before_call=False, timed_out=True)
            raise
        usage.model_calls += 1
        usage.tokens += answer.tokens
        usage.cost_usd += answer.cost_usd
        message = answer.message
        calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
        transcript.append(
            {
                "agent": agent.name,
                "model_call": usage.model_calls,
                "content": message.get("content"),
                "tool_calls": [(c.get("function") or {}).get("name") for c in calls],
            }
        )
        if not calls:
            return Turn("answer", content=str(message.get("content") or ""))
        messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
        control: Turn | None = None
        for call in calls:
            fn = call.get("function") or {}
            name, raw_args, call_id = str(fn.get("name") or ""), fn.get("arguments"), str(call.get("id") or "")
            if control is not None:  # every call gets an answer; none runs once control is handed over
                messages.append({"role": "tool", "tool_call_id": call_id, "content": f"not run: {control.control}"})
            elif name in control_names:
                control = Turn("control", control=name, arguments=_object(raw_args), call_id=call_id)
            else:
                usage.tool_calls[name] += 1
                text = await _tool_result(ctx, runtime, agent, name, raw_args, transcript)
                messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        if control is not None:
            return control  # the caller answers its call (`reply`)
        usage.check(who, before_call=False)


async def _tool_result(
    ctx: StepContext, runtime: ToolRuntime, agent: Agent, name: str, raw_args: Any, transcript: list[dict[str, Any]]
) -> str:
    """The text the model gets back for one tool call: the (scanned) output, or why there is none."""
    try:
        result = await runtime.call_in(
            ctx, name, raw_args, allowed=agent.tools, agent=agent.name, on_injection=agent.on_injection
        )
    except ToolCallError as exc:
        transcript.append(
            {"agent": agent.name, "tool": name, "status": "error", "code": exc.code, "error": exc.message}
        )
        return f"error ({exc.code}): {exc.message}"
    transcript.append(
        {"agent": agent.name, "tool": name, "status": "withheld" if result.withheld else "ok", "reused": result.reused}
    )
    return result.model_text()


def text_of(value: str | Callable[[Any], Any] | None, state: BaseModel) -> str:
    """A text option that is fixed or computed from the state."""
    if value is None:
        return ""
    found = value(state) if callable(value) else value
    return found if isinstance(found, str) else json.dumps(found, default=str)


def task_message(task: Callable[[Any], Any] | None, state: BaseModel) -> Message:
    """The user turn that starts an agent: `task(state)`, or the whole state as JSON."""
    text = text_of(task, state) if task is not None else state.model_dump_json()
    return {"role": "user", "content": text}


def control_tool(name: str, description: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tool offered to the model that the loop acts on itself (a route to a worker, a hand-off)."""
    parameters: dict[str, Any] = {"type": "object", "properties": properties or {}, "additionalProperties": False}
    if properties:
        parameters["required"] = sorted(properties)
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def _object(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        found = orjson.loads(raw) if isinstance(raw, str | bytes) and raw else {}
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}
