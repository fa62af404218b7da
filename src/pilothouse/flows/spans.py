"""Every step a span: kind `step` in the run's trace, with the step's input, output, the branch taken and why.

A run's trace is written in parts (tracing/merge.py): each step's span goes out as its own part once the
step's checkpoint is committed (in the background: the next step does not wait; the execution waits for its
spans before it ends), so a trace grows as the run goes, across workers and resumes. Tracing never fails a
run: a sink error is logged.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from pilothouse.tracing.model import SpanRecord, TraceRecord

log = logging.getLogger("pilothouse.flows")


class SpanWriter(Protocol):
    """Where step spans go (tracing.sink.StoreSink satisfies it)."""

    async def write(self, trace: TraceRecord) -> None: ...


def jsonable(value: Any) -> Any:
    """A step's input or output as plain JSON values (pydantic models, dataclasses, sets... converted)."""
    return to_jsonable_python(value, fallback=str)


def new_step_span(
    *, trace_id: str | None, project_id: str, step: str, kind: str, run_id: str, flow_name: str, parent_id: str | None
) -> SpanRecord:
    span = SpanRecord(trace_id=trace_id or "", project_id=project_id, kind="step", name=step, parent_id=parent_id)
    span.attributes.update(
        {"pilothouse.flow.name": flow_name, "pilothouse.flow.run_id": run_id, "pilothouse.step.kind": kind}
    )
    return span


async def emit(writer: SpanWriter | None, *, flow_name: str, spans: list[SpanRecord]) -> None:
    """Write finished step spans as one part of the run's trace."""
    if writer is None or not spans or not spans[0].trace_id:
        return
    first = spans[0]
    trace = TraceRecord(
        project_id=first.project_id,
        name=f"flow {flow_name}",
        id=first.trace_id,
        source="flow",
        started_at=min(s.started_at for s in spans),
        spans=list(spans),
    )
    trace.finish()
    try:
        await writer.write(trace)
    except Exception:  # tracing must never fail a run
        log.exception("writing the spans of flow %s (trace %s) failed", flow_name, first.trace_id)
