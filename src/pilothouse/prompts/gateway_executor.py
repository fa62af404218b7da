"""Running scenario cases inside the server, through the same gateway pipeline as `/v1/chat/completions`
(prompt resolution and rendering, the model call, metering), without an HTTP round trip. Used by gated
promotion. Every case's call is traced like any other: the trace is stored, named `prompt.test` and tagged
`prompt-test` so reports can tell test traffic from production traffic, and the calls of one run share a
session id (`prompt-test-<random>`).
"""

from __future__ import annotations

import secrets
from typing import Any

from pilothouse.errors import ApiError
from pilothouse.gateway.pipeline import Gateway, Principal
from pilothouse.prompts.assertions import Execution
from pilothouse.prompts.runner import ExecutionFailed
from pilothouse.prompts.scenarios import Case
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import TraceSink

TRACE_NAME = "prompt.test"
TRACE_TAG = "prompt-test"


class GatewayExecutor:
    """Runs cases against `prompt:REF` (REF: `NAME@VERSION`) in process, as `principal`."""

    def __init__(self, gateway: Gateway, sink: TraceSink, principal: Principal, ref: str) -> None:
        self.gateway = gateway
        self.sink = sink
        self.principal = principal
        self.ref = ref
        self.session_id = f"prompt-test-{secrets.token_hex(6)}"

    async def __call__(self, case: Case) -> Execution:
        trace = TraceRecord(
            project_id=self.principal.project_id,
            name=TRACE_NAME,
            api_key_id=self.principal.key_id,
            session_id=self.session_id,
            tags=[TRACE_TAG],
        )
        body: dict[str, Any] = {
            "model": f"prompt:{self.ref}",
            "messages": list(case.messages),
            "variables": dict(case.variables),
        }
        try:
            prep = await self.gateway.prepare_chat_async(body, trace)
            answer = await self.gateway.chat(prep)
            prep.span.finish()
        except ApiError as exc:
            _record_failure(trace, exc)
            raise ExecutionFailed(f"{exc.status}: {exc.message}", trace_id=trace.id) from None
        finally:
            trace.finish()
            await self.sink.write(trace)
        choice = (answer.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        span = prep.span
        return Execution(
            output=str(message.get("content") or ""),
            input_tokens=span.input_tokens,
            output_tokens=span.output_tokens,
            latency_ms=span.latency_ms,
            cost_usd=span.cost_usd,
            trace_id=trace.id,
            prompt_version=trace.prompt_version,
            finish_reason=choice.get("finish_reason"),
        )


def _record_failure(trace: TraceRecord, error: ApiError) -> None:
    """The refusal goes on the open model span if there is one, else on a request step span."""
    open_spans = [s for s in trace.spans if s.ended_at is None]
    span = open_spans[-1] if open_spans else trace.span("step", "request")
    span.attributes["error.type"] = error.code or error.type
    span.attributes["http.response.status_code"] = error.status
    span.finish(status="error", error=error.message)
    trace.status = "error"
