"""One trace as the dashboard shows it: the explanation `GET /api/traces/{id}/explain` returns (tracing/explain.py),
with each span of its path joined to its stored input and output and placed on a timeline, plus what the
page's actions need (the datasets and annotation queues to offer, what the session's role may do).

The actions are forms that call the JSON API (`/api/evals/datasets/{name}/from-traces`,
`/api/evals/queues/{name}/items`, `/api/scores`); the dataset or queue is chosen first (a plain GET of this
page with `?dataset=` or `?queue=`) because the route names it in its path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pilothouse.errors import InvalidRequest
from pilothouse.server.api.traces import explain, show
from pilothouse.store.annotations import list_queues
from pilothouse.store.datasets import list_datasets
from pilothouse.store.keys import role_at_least
from pilothouse.ui.context import UiContext

__all__ = ["timeline", "trace_view"]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
"""Dataset and queue names (the API's pattern)."""
MAX_CHOICES = 200
MIN_WIDTH_PCT = 0.3
"""A span shorter than this share of the trace is still drawn (a sliver, not nothing)."""


def timeline(path: list[dict[str, Any]], total_ms: float | None) -> list[dict[str, Any]]:
    """Each span of `path` with `offset_pct` and `width_pct`: where its bar starts and how wide it is on a
    timeline as long as the trace (or as its last span's end, when the trace has no end)."""
    ends = [p["start_ms"] + (p["latency_ms"] or 0.0) for p in path]
    total = max([total_ms or 0.0, *ends, 0.0])
    out = []
    for p in path:
        start = max(0.0, float(p["start_ms"]))
        width = float(p["latency_ms"] or 0.0)
        if total <= 0 or not math.isfinite(total):
            offset_pct, width_pct = 0.0, 100.0
        else:
            offset_pct = min(100.0, 100.0 * start / total)
            width_pct = max(MIN_WIDTH_PCT, min(100.0 - offset_pct, 100.0 * width / total))
        out.append({**p, "offset_pct": round(offset_pct, 2), "width_pct": round(width_pct, 2)})
    return out


def _chosen(query: Mapping[str, str], name: str) -> str | None:
    value = (query.get(name) or "").strip()
    if not value:
        return None
    if not NAME.match(value):
        raise InvalidRequest(f"{name} {value!r} is not a valid name (letters, digits, . _ -)", param=name)
    return value


def _pinpoint(trace: dict[str, Any]) -> dict[str, Any]:
    """The from-traces filter that selects exactly this trace."""
    return {"trace_ids": trace["id"], "limit": 1}


def trace_view(ctx: UiContext, trace_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """Everything the trace page renders; NotFound (the API's 404) for an id not in the session's project."""
    found = explain(trace_id, ctx.state, ctx.principal)
    trace = found["trace"]
    spans = {s["id"]: s for s in show(trace_id, ctx.state, ctx.principal)["spans"]}
    with ctx.state.store.connect() as conn:
        can_curate = role_at_least(ctx.principal.role, "developer")
        datasets = (
            [d.name for d, _ in list_datasets(conn, ctx.principal.project_id)][:MAX_CHOICES] if can_curate else []
        )
        queues = [q.name for q, _ in list_queues(conn, ctx.principal.project_id)][:MAX_CHOICES] if can_curate else []
    path = [{**p, "span": spans.get(p["span_id"], {})} for p in timeline(found["path"], trace["latency_ms"])]
    return {
        "x": found,
        "trace": trace,
        "path": path,
        "can_curate": can_curate,
        "can_score": role_at_least(ctx.principal.role, "service"),
        "datasets": datasets,
        "queues": queues,
        "dataset": _chosen(query, "dataset"),
        "queue": _chosen(query, "queue"),
        "pinpoint": _pinpoint(trace),
    }
