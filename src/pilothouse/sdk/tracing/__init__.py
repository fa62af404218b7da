"""Tracing for applications: `@observe`, `span(...)`, `update_trace(...)`, `wrap_openai(client)`; spans are
sent in the background to `POST /api/ingest/spans` (`configure`, `flush`). docs/observability-sdk.md."""

from pilothouse.sdk.tracing.context import ContextExecutor, carry, current_span, current_traceparent
from pilothouse.sdk.tracing.exporter import configure, flush
from pilothouse.sdk.tracing.observe import observe, span, update_trace
from pilothouse.sdk.tracing.openai import wrap_openai

__all__ = [
    "ContextExecutor",
    "carry",
    "configure",
    "current_span",
    "current_traceparent",
    "flush",
    "observe",
    "span",
    "update_trace",
    "wrap_openai",
]
