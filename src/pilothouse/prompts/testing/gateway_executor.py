"""Running scenario cases inside the server, through the gateway's one entry point (`Pipeline.run`, source
`prompt_test`) without an HTTP round trip: prompt resolution and rendering, admission (rate limits, budgets,
run caps), the cache, the model call, settlement and the trace, exactly as for `/v1/chat/completions`. Used by
gated promotion, so a project's hard budget also bounds what its scenario tests spend. Every case's trace is
named `prompt.test` and tagged `prompt-test` so reports can tell test traffic from production traffic, and
the calls of one run share a session id (`prompt-test-<random>`).
"""

from __future__ import annotations

import secrets
from typing import Any

from pilothouse.gateway.call import GatewayCall
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.principal import Principal
from pilothouse.prompts.testing.assertions import Execution
from pilothouse.prompts.testing.runner import ExecutionFailed
from pilothouse.prompts.testing.scenarios import Case

TRACE_NAME = "prompt.test"
TRACE_TAG = "prompt-test"


class GatewayExecutor:
    """Runs cases against `prompt:REF` (REF: `NAME@VERSION`) in process, as `principal`."""

    def __init__(self, pipeline: Pipeline, principal: Principal, ref: str) -> None:
        self.pipeline = pipeline
        self.principal = principal
        self.ref = ref
        self.session_id = f"prompt-test-{secrets.token_hex(6)}"

    async def __call__(self, case: Case) -> Execution:
        body: dict[str, Any] = {
            "model": f"prompt:{self.ref}",
            "messages": list(case.messages),
            "variables": dict(case.variables),
        }
        call = GatewayCall(
            kind="chat",
            body=body,
            principal=self.principal,
            source="prompt_test",
            session_id=self.session_id,
            tags=(TRACE_TAG,),
            trace_name=TRACE_NAME,
        )
        outcome = await self.pipeline.run(call)
        trace = outcome.trace
        if outcome.error is not None:
            error = outcome.error
            raise ExecutionFailed(f"{error.status}: {error.message}", trace_id=trace.id)
        answer = outcome.payload or {}
        choice = (answer.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        span = outcome.span  # the llm span, or the cache span of a hit (its tokens are in the answer's usage)
        usage = answer.get("usage") or {}
        return Execution(
            output=str(message.get("content") or ""),
            input_tokens=span.input_tokens if span and span.input_tokens is not None else usage.get("prompt_tokens"),
            output_tokens=(
                span.output_tokens if span and span.output_tokens is not None else usage.get("completion_tokens")
            ),
            latency_ms=None if span is None else span.latency_ms,
            cost_usd=None if span is None else span.cost_usd,
            trace_id=trace.id,
            prompt_version=trace.prompt_version,
            finish_reason=choice.get("finish_reason"),
        )
