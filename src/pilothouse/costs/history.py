"""Output-token history for forecasts: how long the answers of past calls were.

The sample is the newest `HISTORY_LIMIT` successful llm calls of the model (and, for a prompt, of calls made
with that prompt, any version) started in the last `HISTORY_WINDOW_S` seconds, in the caller's project.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, select

from pilothouse.store.tables import spans, traces

HISTORY_LIMIT = 5_000
HISTORY_WINDOW_S = 30 * 86_400


def output_token_history(
    conn: Connection,
    project_id: str,
    model: str,
    *,
    prompt_name: str | None = None,
    now: float | None = None,
) -> list[int]:
    """Output tokens of recent successful llm calls of `model` (and `prompt_name`), newest first."""
    since = (time.time() if now is None else now) - HISTORY_WINDOW_S
    stmt = (
        select(spans.c.output_tokens)
        .select_from(spans.join(traces, spans.c.trace_id == traces.c.id))
        .where(
            traces.c.project_id == project_id,
            traces.c.started_at >= since,
            spans.c.kind == "llm",
            spans.c.status == "ok",
            spans.c.model == model,
            spans.c.output_tokens.is_not(None),
        )
    )
    if prompt_name is not None:
        stmt = stmt.where(traces.c.prompt_name == prompt_name)
    rows = conn.execute(stmt.order_by(spans.c.started_at.desc()).limit(HISTORY_LIMIT))
    return [int(row.output_tokens) for row in rows]
