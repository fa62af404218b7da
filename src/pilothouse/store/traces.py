"""Reading traces and spans back (writes go through `pilothouse.tracing.sink`)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from pilothouse.store.tables import spans, traces


class BadCursor(ValueError):
    """A pagination cursor that this server did not issue."""


@dataclass(frozen=True, slots=True)
class TraceFilter:
    project_id: str
    since: float | None = None
    until: float | None = None
    model: str | None = None
    status: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    source: str | None = None


def encode_cursor(started_at: float, trace_id: str) -> str:
    return base64.urlsafe_b64encode(f"{started_at!r}|{trace_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        started, trace_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(started), trace_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("invalid cursor: pass back the next_cursor value of a previous page") from exc


def _trace_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "project_id": row.project_id,
        "api_key_id": row.api_key_id,
        "name": row.name,
        "session_id": row.session_id,
        "user_id": row.user_id,
        "tags": row.tags or [],
        "status": row.status,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "latency_ms": None if row.ended_at is None else round((row.ended_at - row.started_at) * 1000, 3),
        "model": row.model,
        "prompt_name": row.prompt_name,
        "prompt_version": row.prompt_version,
        "source": row.source,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_usd": format(row.cost_usd, "f"),
        "content_purged_at": row.content_purged_at,
    }


def span_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "trace_id": row.trace_id,
        "parent_id": row.parent_id,
        "kind": row.kind,
        "name": row.name,
        "status": row.status,
        "error": row.error,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "model": row.model,
        "provider": row.provider,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "usage_estimated": row.usage_estimated,
        "cost_usd": None if row.cost_usd is None else format(row.cost_usd, "f"),
        "attributes": row.attributes or {},
        "input": row.input,
        "output": row.output,
    }


def list_traces(
    conn: Connection, flt: TraceFilter, *, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns a page and the cursor of the next page (None at the end)."""
    query = select(traces).where(traces.c.project_id == flt.project_id)
    if flt.since is not None:
        query = query.where(traces.c.started_at >= flt.since)
    if flt.until is not None:
        query = query.where(traces.c.started_at < flt.until)
    if flt.model is not None:
        query = query.where(traces.c.model == flt.model)
    if flt.status is not None:
        query = query.where(traces.c.status == flt.status)
    if flt.user_id is not None:
        query = query.where(traces.c.user_id == flt.user_id)
    if flt.session_id is not None:
        query = query.where(traces.c.session_id == flt.session_id)
    if flt.source is not None:
        query = query.where(traces.c.source == flt.source)
    if cursor:
        started, last_id = decode_cursor(cursor)
        query = query.where(
            or_(traces.c.started_at < started, and_(traces.c.started_at == started, traces.c.id < last_id))
        )
    rows = conn.execute(query.order_by(traces.c.started_at.desc(), traces.c.id.desc()).limit(limit + 1)).all()
    page = [_trace_dict(r) for r in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1].started_at, rows[limit - 1].id) if len(rows) > limit else None
    return page, next_cursor


def get_trace(conn: Connection, project_id: str, trace_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(traces).where(traces.c.id == trace_id, traces.c.project_id == project_id)).first()
    if row is None:
        return None
    result = _trace_dict(row)
    span_rows = conn.execute(select(spans).where(spans.c.trace_id == trace_id).order_by(spans.c.started_at)).all()
    result["spans"] = [span_dict(s) for s in span_rows]
    return result
