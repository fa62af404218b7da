"""A flow step's model call: through the gateway's one entry point, in process, with source `flow`.

Budgets, rate limits, the cache, guard policies, tool permissions and tracing apply exactly as on the HTTP
path (gateway/pipeline.py). The call joins the run's trace under the step's span. The run's budget is
enforced twice: before the call from what the run has spent (`RunBudget`, durable across workers), and by the
gateway's loop guard, which reserves the call's worst case against the run's caps (`x-pilothouse-run-id` is
the flow run), so a call that could take the run over its cost or tokens is refused before it is made, and
the same call repeated past `limits.run_max_repeats` is stopped as a loop. What the call used is then charged
to the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pilothouse.errors import ApiError
from pilothouse.flows.budget import RunBudget
from pilothouse.flows.errors import BudgetExceeded, FlowError
from pilothouse.gateway.call import GatewayCall
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.money import usd_string
from pilothouse.principal import Principal

if TYPE_CHECKING:
    from pilothouse.flows.context import StepContext

__all__ = [
    "ChatAnswer",
    "GatewayModelCalls",
    "ModelCallFailed",
    "chat_answer",
    "flow_chat",
    "message_of",
    "run_headers",
]

TRACE_TAG = "flow"
_RUN_CAPS = {
    "model_calls": b"x-pilothouse-run-max-calls",
    "tokens": b"x-pilothouse-run-max-tokens",
    "cost_usd": b"x-pilothouse-run-max-cost-usd",
}
_BUDGET_CODES = {"run_limit_exceeded"}


class ModelCallFailed(FlowError):
    """The gateway answered a step's model call with an error (its status, code and message).

    `retryable`: an upstream failure, a timeout or a rate limit (429) may pass on a later attempt; a request
    the gateway refuses (4xx: invalid, blocked by a guard, a tool not allowed, a loop detected) will not."""

    def __init__(self, error: ApiError, *, step: str, trace_id: str | None) -> None:
        super().__init__(
            f"step {step!r}: model call failed ({error.status} {error.code or error.type}): {error.message}"
        )
        self.status = error.status
        self.code = error.code
        self.error_message = error.message
        self.trace_id = trace_id
        self.retryable = error.status >= 500 or (error.status == 429 and error.code not in ("loop_detected",))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.error_message, "trace_id": self.trace_id}


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """A completed model call: the OpenAI `chat.completion` body and what it cost."""

    payload: dict[str, Any]
    cost_usd: Decimal
    input_tokens: int
    output_tokens: int
    trace_id: str
    span_id: str | None
    model: str | None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def message(self) -> dict[str, Any]:
        return message_of(self.payload)

    @property
    def content(self) -> str:
        return str(self.message.get("content") or "")

    def usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd_string(self.cost_usd),
            "model": self.model,
        }


class GatewayModelCalls:
    """The model calls of an engine's steps (`StepContext.chat`): `flow_chat` as the run's key.

    A run acts as the key that started it (`created_by`: its budgets and limits apply); a run started without
    one (a local `pilothouse flow run`) acts as `key_id`, with `role`."""

    def __init__(self, pipeline: Pipeline, *, key_id: str = "flow", role: str = "service") -> None:
        self.pipeline = pipeline
        self.key_id = key_id
        self.role = role

    def principal(self, ctx: StepContext) -> Principal:
        return Principal(key_id=ctx.created_by or self.key_id, project_id=ctx.project_id, role=self.role)

    async def answer(
        self,
        ctx: StepContext,
        body: dict[str, Any],
        *,
        agent: str | None = None,
        internal_tools: frozenset[str] = frozenset(),
    ) -> ChatAnswer:
        """The call with its cost and usage (what LLM and agent steps record); `agent` and `internal_tools`
        as in `flow_chat`."""
        answer = await flow_chat(
            self.pipeline,
            self.principal(ctx),
            body,
            run_id=ctx.run_id,
            step=ctx.step,
            budget=ctx.budget,
            trace_id=ctx.trace_id,
            parent_span_id=ctx.span_id,
            agent=agent,
            internal_tools=internal_tools,
        )
        record_on_span(ctx, answer)
        return answer

    async def chat(self, ctx: StepContext, body: dict[str, Any]) -> dict[str, Any]:
        return (await self.answer(ctx, body)).payload


async def chat_answer(
    ctx: StepContext,
    body: dict[str, Any],
    *,
    agent: str | None = None,
    internal_tools: frozenset[str] = frozenset(),
) -> ChatAnswer:
    """A step's model call with its cost and usage, whatever model service the engine has: the gateway's
    (`GatewayModelCalls.answer`, for `agent` with `internal_tools` as in `flow_chat`), or another `ModelCalls`
    (its cost is then what the run was charged)."""
    if isinstance(ctx.models, GatewayModelCalls):
        return await ctx.models.answer(ctx, body, agent=agent, internal_tools=internal_tools)
    before = ctx.budget.cost_usd
    payload = await ctx.chat(body)
    usage = payload.get("usage") or {}
    answer = ChatAnswer(
        payload=payload,
        cost_usd=max(Decimal(0), ctx.budget.cost_usd - before),
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        trace_id=ctx.trace_id or "",
        span_id=None,
        model=payload.get("model"),
    )
    record_on_span(ctx, answer)
    return answer


def record_on_span(ctx: StepContext, answer: ChatAnswer) -> None:
    """Add a model call to the step's span: its usage and cost (summed; the checkpoint records them) and a
    link to the call's own `llm` span."""
    span = ctx.span
    span.input_tokens = (span.input_tokens or 0) + answer.input_tokens
    span.output_tokens = (span.output_tokens or 0) + answer.output_tokens
    span.cost_usd = (span.cost_usd or Decimal(0)) + answer.cost_usd
    calls: list[dict[str, Any]] = span.attributes.setdefault("pilothouse.flow.model_calls", [])
    calls.append({"trace_id": answer.trace_id, "span_id": answer.span_id, **answer.usage()})


def message_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The first choice's message of a `chat.completion` body ({} when there is none)."""
    choices = payload.get("choices") or [{}]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    return message if isinstance(message, dict) else {}


def run_headers(run_id: str, budget: RunBudget) -> list[tuple[bytes, bytes]]:
    """The loop-guard headers naming the flow run and its caps (the run's limits, not what is left: the
    gateway counts the run's calls itself)."""
    headers = [(b"x-pilothouse-run-id", f"flow:{run_id}".encode())]
    for name, header in _RUN_CAPS.items():
        limit = budget.limits.get(name)
        if limit is not None and (name == "cost_usd" or int(limit) >= 1):
            headers.append((header, str(limit).encode()))
    return headers


async def flow_chat(
    pipeline: Pipeline,
    principal: Principal,
    body: dict[str, Any],
    *,
    run_id: str,
    step: str,
    budget: RunBudget,
    trace_id: str | None = None,
    parent_span_id: str | None = None,
    agent: str | None = None,
    internal_tools: frozenset[str] = frozenset(),
) -> ChatAnswer:
    """Run one chat call for `step` of run `run_id` and charge it to `budget`.

    `agent`: the agent the call is for; in a project with tool rules the gateway's tool gate applies the
    project's grants to that agent by name (as well as the key's and the project's). `internal_tools`: the
    step's own control tools (a supervisor's routes, hand-offs), which the engine acts on itself and the gate
    does not check.

    Raises BudgetExceeded (before the call when the run's budget is already spent; when the gateway refuses
    the call for the run's caps; or after it, when it took the run over a limit) and ModelCallFailed for any
    other error answer. A streamed body is called whole (a step needs the whole answer)."""
    budget.check()
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    call = GatewayCall(
        kind="chat",
        body=body,
        principal=principal,
        source="flow",
        headers=run_headers(run_id, budget),
        session_id=run_id,
        tags=(TRACE_TAG,),
        trace_name=f"flow.{step}",
        trace_id=trace_id,
        parent_span_id=parent_span_id,
        agent=agent,
        internal_tools=internal_tools,
    )
    outcome = await pipeline.run(call)
    if outcome.error is not None:
        if outcome.error.code in _BUDGET_CODES:
            raise BudgetExceeded(
                f"step {step!r}: the gateway refused the model call for the run's budget: {outcome.error.message}",
                limit=_limit_named(outcome.error.message),
            )
        raise ModelCallFailed(outcome.error, step=step, trace_id=outcome.trace.id)
    payload = outcome.payload or {}
    span = outcome.span
    usage = payload.get("usage") or {}
    input_tokens = span.input_tokens if span and span.input_tokens is not None else usage.get("prompt_tokens")
    output_tokens = span.output_tokens if span and span.output_tokens is not None else usage.get("completion_tokens")
    cached = span is not None and span.kind == "cache"
    answer = ChatAnswer(
        payload=payload,
        cost_usd=Decimal(0) if span is None or span.cost_usd is None or cached else Decimal(span.cost_usd),
        input_tokens=0 if cached else int(input_tokens or 0),
        output_tokens=0 if cached else int(output_tokens or 0),
        trace_id=outcome.trace.id,
        span_id=None if span is None else span.id,
        model=None if span is None else span.model,
    )
    budget.charge(cost_usd=answer.cost_usd, tokens=answer.tokens, model_calls=1)
    return answer


def _limit_named(message: str) -> str:
    for needle, limit in (("calls", "model_calls"), ("tokens", "tokens"), ("cap of $", "cost_usd")):
        if needle in message:
            return limit
    return "cost_usd"
