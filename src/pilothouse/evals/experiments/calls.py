"""One item for one variant: the gateway call (in process, source `eval`), what came back, and the example the
metrics judge."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pilothouse.evals.experiments.spec import Variant
from pilothouse.evals.judges.spend import record
from pilothouse.evals.judges.transport import CALL_TIMEOUT_S
from pilothouse.evals.metrics.base import Example
from pilothouse.evals.metrics.variant_call import VariantCallFailed
from pilothouse.gateway.call import GatewayCall
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.principal import Principal

__all__ = [
    "Answer",
    "ItemMismatch",
    "PipelineVariantCaller",
    "call_body",
    "example_for",
    "input_text",
    "rewrite_input",
    "run_call",
]

TRACE_NAME = "eval.item"
TRACE_TAG = "eval"


class ItemMismatch(ValueError):
    """The item's input does not fit the variant (variables for a model variant, a text for a prompt)."""


@dataclass(frozen=True, slots=True)
class Answer:
    output: str | None
    error: str | None
    trace_id: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    retrieved: tuple[str, ...] = ()
    """Passages a client-side function retrieved for this answer (uploaded with it), in rank order."""


def call_body(variant: Variant, item: dict[str, Any]) -> dict[str, Any]:
    """The chat body for `item` under `variant`; ItemMismatch when they do not fit."""
    value = item["input"]
    body: dict[str, Any] = dict(variant.params)
    if variant.function is not None:
        raise ItemMismatch(f"variant {variant.name!r} is a client-side function: the server does not call it")
    if variant.prompt is not None:
        if not isinstance(value, dict):
            raise ItemMismatch(
                f"variant {variant.name!r} renders prompt {variant.prompt}: "
                "the item's input must be its variables (an object)"
            )
        return {**body, "model": f"prompt:{variant.prompt}", "messages": [], "variables": value}
    if isinstance(value, str):
        messages = [{"role": "user", "content": value}]
    elif isinstance(value, list):
        messages = [dict(m) for m in value]
    else:
        raise ItemMismatch(
            f"variant {variant.name!r} calls model {variant.model}: the item's input must be a text or messages"
        )
    return {**body, "model": variant.model, "messages": messages}


def input_text(item: dict[str, Any]) -> str:
    """The item's input as the metrics read it: the text, the last user message, or the variables as JSON."""
    value = item["input"]
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        users = [m.get("content", "") for m in value if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[-1]) if users else ""
    if isinstance(value, dict) and len(value) == 1:
        only = next(iter(value.values()))
        if isinstance(only, str):
            return only
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def example_for(item: dict[str, Any], answer: Answer) -> Example:
    context = item.get("context")
    passages = (context,) if isinstance(context, str) else tuple(context or ())
    return Example(
        output=answer.output or "",
        input=input_text(item),
        expected=item.get("expected"),
        context=passages,
        retrieved=answer.retrieved,
        metadata=item.get("metadata") or {},
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        latency_ms=answer.latency_ms,
        cost_usd=answer.cost_usd,
    )


async def run_call(pipeline: Pipeline, principal: Principal, body: dict[str, Any], *, session_id: str) -> Answer:
    """Through the gateway's one entry point: budgets, limits, cache, guards and the trace apply."""
    call = GatewayCall(
        kind="chat",
        body=body,
        principal=principal,
        source="eval",
        session_id=session_id,
        tags=(TRACE_TAG,),
        trace_name=TRACE_NAME,
    )
    outcome = await pipeline.run(call)
    trace = outcome.trace
    if outcome.error is not None:
        return Answer(None, f"{outcome.error.status}: {outcome.error.message}", trace.id, None, None, None, None)
    answer = outcome.payload or {}
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = answer.get("usage") or {}
    span = outcome.span
    return Answer(
        output=str(message.get("content") or ""),
        error=None,
        trace_id=trace.id,
        latency_ms=None if span is None else span.latency_ms,
        input_tokens=span.input_tokens if span and span.input_tokens is not None else usage.get("prompt_tokens"),
        output_tokens=span.output_tokens if span and span.output_tokens is not None else usage.get("completion_tokens"),
        cost_usd=None if span is None else span.cost_usd,
    )


def rewrite_input(value: Any, rewrite: Callable[[str], str]) -> Any:
    """The item's input with `rewrite` applied to every text: a user text, messages' contents, string variables."""
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list):
        return [
            {**m, "content": rewrite(m["content"])} if isinstance(m, dict) and isinstance(m.get("content"), str) else m
            for m in value
        ]
    if isinstance(value, dict):
        return {k: rewrite(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


class PipelineVariantCaller:
    """Re-runs one item's variant on a rewritten input, from a metric's worker thread, on the server's loop."""

    def __init__(
        self,
        pipeline: Pipeline,
        principal: Principal,
        loop: asyncio.AbstractEventLoop,
        variant: Variant,
        item: dict[str, Any],
        session_id: str,
    ) -> None:
        self.pipeline, self.principal, self.loop = pipeline, principal, loop
        self.variant, self.item, self.session_id = variant, item, session_id

    def rerun(self, rewrite: Callable[[str], str]) -> str:
        item = {**self.item, "input": rewrite_input(self.item["input"], rewrite)}
        try:
            body = call_body(self.variant, item)
        except ItemMismatch as exc:
            raise VariantCallFailed(str(exc)) from None
        future = asyncio.run_coroutine_threadsafe(
            run_call(self.pipeline, self.principal, body, session_id=self.session_id), self.loop
        )
        answer = future.result(timeout=CALL_TIMEOUT_S)
        record(answer.cost_usd)
        if answer.error is not None:
            raise VariantCallFailed(answer.error)
        return answer.output or ""
