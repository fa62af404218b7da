"""A workflow trace with one span of every kind explain reads: step spans (the path), a retrieval span with its
chunks, an input guard span (a redaction), the tool gate, a tool span, and an llm span rendered from a managed
prompt that asked for a tool call."""

from __future__ import annotations

from decimal import Decimal

from pilothouse.tracing.model import SpanRecord, TraceRecord

CHUNKS = [
    {"id": "doc-7#2", "source": "handbook/refunds.md", "score": 0.91, "text": "Refunds take 5 business days."},
    {"id": "doc-3#0", "source": "faq.md", "score": 0.62, "text": "Contact support by email."},
]
MESSAGES = [
    {"role": "system", "content": "You answer refund questions."},
    {"role": "user", "content": "How long do refunds take? My card is [CREDIT_CARD]."},
]


def _timed(span: SpanRecord, start: float, ms: float) -> SpanRecord:
    span.started_at = start
    span.ended_at = start + ms / 1000.0
    span.latency_ms = ms
    return span


def sample_trace(project_id: str, *, t0: float = 1_700_000_000.0) -> TraceRecord:
    trace = TraceRecord(project_id=project_id, name="agent support", source="sdk", started_at=t0)
    trace.session_id, trace.user_id, trace.tags = "sess-1", "user-9", ["refunds"]
    trace.prompt_name, trace.prompt_version, trace.model = "support-answer", 3, "fake-chat"
    root = _timed(trace.span("step", "agent"), t0, 900.0)
    plan = _timed(trace.span("step", "plan", parent_id=root.id), t0 + 0.01, 400.0)
    retrieve = _timed(trace.span("retrieval", "search handbook", parent_id=plan.id), t0 + 0.02, 35.0)
    retrieve.attributes.update(
        {
            "gen_ai.operation.name": "retrieval",
            "gen_ai.retrieval.query.text": "refund duration",
            "gen_ai.data_source.id": "handbook",
            "gen_ai.retrieval.documents": CHUNKS,
        }
    )
    guard = _timed(trace.span("guard", "guard input pii", parent_id=plan.id), t0 + 0.06, 2.5)
    guard.attributes.update(
        {
            "pilothouse.guard.policy": "pii-default",
            "pilothouse.guard.policy_version": 2,
            "pilothouse.guard.direction": "input",
            "pilothouse.guard.scanner": "pii",
            "pilothouse.guard.score": 1.0,
            "pilothouse.guard.threshold": 0.5,
            "pilothouse.guard.action": "redact",
            "pilothouse.guard.decision": "redact",
            "pilothouse.guard.kinds": ["CREDIT_CARD"],
        }
    )
    llm = _timed(trace.span("llm", "chat fake-chat", parent_id=plan.id), t0 + 0.07, 300.0)
    llm.model, llm.provider = "fake-chat", "fake"
    llm.input_tokens, llm.output_tokens, llm.cost_usd = 42, 7, Decimal("0.000123")
    llm.attributes.update(
        {
            "gen_ai.request.model": "fake-chat",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 64,
            "gen_ai.response.finish_reasons": ["tool_calls"],
            "gen_ai.prompt.name": "support-answer",
            "pilothouse.prompt.version": 3,
            "pilothouse.prompt.label": "production",
            "pilothouse.prompt.content_hash": "abc123",
            "pilothouse.deployment.model": "fake-1",
        }
    )
    llm.input = {"messages": MESSAGES, "variables": {"question": "How long do refunds take?"}}
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order": "A-1"}'}}
    llm.output = {
        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
        "finish_reason": "tool_calls",
    }
    act = _timed(trace.span("step", "act", parent_id=root.id), t0 + 0.45, 420.0)
    gate = _timed(trace.span("guard", "tool_gate", parent_id=act.id), t0 + 0.46, 0.4)
    gate.attributes.update(
        {
            "pilothouse.guard.scanner": "tool_gate",
            "pilothouse.guard.decision": "allow",
            "pilothouse.tool.name": "lookup_order",
            "pilothouse.tool.stage": "answer",
        }
    )
    tool = _timed(trace.span("tool", "lookup_order", parent_id=act.id), t0 + 0.47, 120.0)
    tool.attributes.update(
        {
            "gen_ai.tool.name": "lookup_order",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"order": "A-1"}',
            "gen_ai.tool.call.result": '{"status": "refunded"}',
        }
    )
    trace.ended_at = t0 + 0.9
    return trace
