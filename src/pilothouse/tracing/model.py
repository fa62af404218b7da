"""The in-memory shape of a trace and its spans, before they are written.

Span kinds follow the data model: llm, embedding, retrieval, tool, guard, cache, step, eval.
Attributes use OpenTelemetry GenAI names (`gen_ai.*`) where one exists, `pilothouse.*` otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from pilothouse.store.ids import new_span_id, new_trace_id

SpanKind = Literal["llm", "embedding", "retrieval", "tool", "guard", "cache", "step", "eval", "http"]
Status = Literal["ok", "error"]
TraceStatus = Literal["ok", "error", "unknown_outcome"]
"""`unknown_outcome`: a call its replica never finished (killed mid-call), charged at its reservation
(gateway/limits/ledger_recovery.py)."""
TraceSource = Literal["http", "prompt_test", "eval", "flow", "sdk", "otlp"]
"""Who made the call a trace records: the HTTP API (`/v1/...`), a prompt's scenario tests run in the server,
and (later) evaluation runs, workflow steps and in-process SDK calls. None: not known (a call recovered from the
write-ahead ledger)."""
TRACE_SOURCES: tuple[TraceSource, ...] = ("http", "prompt_test", "eval", "flow", "sdk", "otlp")


@dataclass(slots=True)
class SpanRecord:
    trace_id: str
    project_id: str
    kind: SpanKind
    name: str
    id: str = field(default_factory=new_span_id)
    parent_id: str | None = None
    status: Status = "ok"
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False
    cost_usd: Decimal | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    input: Any = None
    output: Any = None

    def finish(self, *, status: Status = "ok", error: str | None = None) -> None:
        self.ended_at = time.time()
        self.latency_ms = round((self.ended_at - self.started_at) * 1000.0, 3)
        self.status = status
        self.error = error

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "project_id": self.project_id,
            "kind": self.kind,
            "name": self.name,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "model": self.model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "usage_estimated": self.usage_estimated,
            "cost_usd": self.cost_usd,
            "attributes": self.attributes,
            "input": self.input,
            "output": self.output,
        }


@dataclass(slots=True)
class TraceRecord:
    project_id: str
    name: str
    id: str = field(default_factory=new_trace_id)
    api_key_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    tags: list[str] | None = None
    status: TraceStatus = "ok"
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    model: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    source: TraceSource | None = None
    spans: list[SpanRecord] = field(default_factory=list)
    ledger_id: str | None = None
    """The key of this call's in-flight record (store/inflight.py) when it is not the trace id: a gateway call
    that joins its caller's trace (traceparent) shares the trace id with the caller's other calls, so its record
    gets an id of its own. Not stored with the trace."""

    def span(self, kind: SpanKind, name: str, *, parent_id: str | None = None) -> SpanRecord:
        record = SpanRecord(trace_id=self.id, project_id=self.project_id, kind=kind, name=name, parent_id=parent_id)
        self.spans.append(record)
        return record

    def finish(self) -> None:
        self.ended_at = time.time()
        if any(s.status == "error" for s in self.spans if s.parent_id is None):
            self.status = "error"

    def totals(self) -> tuple[int, int, Decimal]:
        """Tokens and cost summed over the trace's llm and embedding spans."""
        tin = tout = 0
        cost = Decimal(0)
        for s in self.spans:
            if s.kind in ("llm", "embedding"):
                tin += s.input_tokens or 0
                tout += s.output_tokens or 0
                cost += s.cost_usd or 0
        return tin, tout, cost

    def row(self) -> dict[str, Any]:
        tin, tout, cost = self.totals()
        return {
            "id": self.id,
            "project_id": self.project_id,
            "api_key_id": self.api_key_id,
            "name": self.name,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "tags": self.tags,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "model": self.model,
            "prompt_name": self.prompt_name,
            "prompt_version": self.prompt_version,
            "source": self.source,
            "input_tokens": tin,
            "output_tokens": tout,
            "cost_usd": cost,
        }
