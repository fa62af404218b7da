"""One trace, several writers: trace rows are upserted and spans appended, so a trace can be written in parts.

The tracing SDK sends a trace's spans in batches as they end, and a gateway call made with the trace's
`traceparent` writes its own part of the same trace. Each part arrives as a trace row with its spans; the
store keeps one row per trace:

* times: the earliest start and the latest end; status `error` once any part failed;
* tokens and cost: the sum of the parts (the totals of the spans each part added);
* name and source: the SDK's (the application named the trace) over the gateway's; session, user and tags:
  the newest value set; model, prompt and key: the first value set;
* a part for a trace id another project already holds is refused (logged) when it was ingested (SDK, OTLP: the
  sender is told); a gateway call's part is stored under a fresh id in its own project (INGESTED).

Writing the same part twice (an SDK retry whose first answer was lost, a spill replayed after it was stored)
changes nothing: spans already stored are skipped and the totals they carried taken back off the row. A span
id held by another trace, or repeated within the batch, is a clash (IntegrityError): the sink spills that trace.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from pilothouse.store.ids import new_trace_id
from pilothouse.store.tables import spans, traces

log = logging.getLogger("pilothouse.tracing")
Repeats = Literal["skip", "refuse"]
"""What a span id stored before means: the same part written again (skip it) or a clash (refuse)."""
_METERED = ("llm", "embedding")  # the span kinds a trace's totals sum (TraceRecord.totals)


def merge_rows(trace_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one batch with the same trace id combined into one (a statement may touch a row only once)."""
    merged: dict[str, dict[str, Any]] = {}
    for row in trace_rows:
        have = merged.get(row["id"])
        if have is None:
            merged[row["id"]] = dict(row)
            continue
        sdk_wins = row.get("source") == "sdk" and have.get("source") != "sdk"
        have["started_at"] = min(have["started_at"], row["started_at"])
        ends = [e for e in (have["ended_at"], row["ended_at"]) if e is not None]
        have["ended_at"] = max(ends) if ends else None
        have["input_tokens"] += row["input_tokens"]
        have["output_tokens"] += row["output_tokens"]
        have["cost_usd"] += row["cost_usd"]
        if row["status"] == "error":
            have["status"] = "error"
        if sdk_wins:
            have["name"], have["source"] = row["name"], row["source"]
        for key in ("session_id", "user_id", "tags"):
            if row.get(key) is not None:
                have[key] = row[key]
        for key in ("model", "prompt_name", "prompt_version", "api_key_id"):
            if have.get(key) is None:
                have[key] = row.get(key)
    return list(merged.values())


@dataclass(slots=True)
class Written:
    """What `write_parts` stored: the trace rows and spans (parts refused for naming another project's trace
    left out), and the ids of the traces that were already there (the rows merged into)."""

    traces: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    merged: set[str] = field(default_factory=set)

    def fresh(self) -> list[dict[str, Any]]:
        """The trace rows stored for the first time."""
        return [row for row in self.traces if row["id"] not in self.merged]


def write_parts(
    conn: Connection, trace_rows: list[dict[str, Any]], span_rows: list[dict[str, Any]], *, repeats: Repeats = "skip"
) -> Written:
    """Upsert the trace rows and append their spans (see the module docstring). `repeats="refuse"` makes a
    span stored before a clash too (the spill replay counts such a trace as already stored)."""
    trace_rows = merge_rows(trace_rows)
    merged = {r.id for r in conn.execute(_EXISTING, {"ids": [t["id"] for t in trace_rows]})}
    name = conn.dialect.name
    stmt = _trace_upsert(name)
    written = {row.id for row in conn.execute(stmt, trace_rows)}
    refused = {row["id"] for row in trace_rows} - written
    if refused:
        trace_rows, span_rows, refused = _rehome(conn, trace_rows, span_rows, refused)
    if span_rows:
        if len({row["id"] for row in span_rows}) < len(span_rows):
            raise _clash("a span id appears twice in the batch")
        if not merged:
            # Every trace of the batch is new, so none of its spans can be stored yet: a plain insert (no
            # RETURNING, the common case on the gateway's path); an id another trace holds raises the clash.
            conn.execute(spans.insert(), span_rows)
            return Written(trace_rows, span_rows, set())
        stored = {row.id for row in conn.execute(_span_insert(name), span_rows)}
        if len(stored) < len(span_rows):
            repeated = [row for row in span_rows if row["id"] not in stored]
            if repeats == "refuse":
                raise _clash("spans of this trace are already stored")
            _check_repeats(conn, repeated)
            _take_back(conn, repeated)
            span_rows = [row for row in span_rows if row["id"] in stored]
    return Written(trace_rows, span_rows, merged - refused)


_EXISTING = select(traces.c.id).where(traces.c.id.in_(bindparam("ids", expanding=True)))
"""The ids of a batch's traces that are stored already (the parts merged into)."""


@functools.cache
def _trace_upsert(dialect_name: str) -> Any:
    """The trace-row upsert of `write_parts`, built once per dialect (building it costs more than running it)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(traces)
    new, old = stmt.excluded, traces.c
    least = func.least if dialect_name == "postgresql" else func.min
    greatest = func.greatest if dialect_name == "postgresql" else func.max
    sdk_wins = and_(new.source == "sdk", func.coalesce(old.source, "") != "sdk")
    return stmt.on_conflict_do_update(
        index_elements=[traces.c.id],
        set_={
            "started_at": least(old.started_at, new.started_at),
            "ended_at": greatest(func.coalesce(old.ended_at, new.ended_at), func.coalesce(new.ended_at, old.ended_at)),
            "input_tokens": old.input_tokens + new.input_tokens,
            "output_tokens": old.output_tokens + new.output_tokens,
            "cost_usd": old.cost_usd + new.cost_usd,
            "status": case((or_(old.status == "error", new.status == "error"), "error"), else_=old.status),
            "name": case((sdk_wins, new.name), else_=old.name),
            "source": case((sdk_wins, new.source), else_=old.source),
            "session_id": func.coalesce(new.session_id, old.session_id),
            "user_id": func.coalesce(new.user_id, old.user_id),
            "tags": case((new.tags.is_(None), old.tags), else_=new.tags),
            "model": func.coalesce(old.model, new.model),
            "prompt_name": func.coalesce(old.prompt_name, new.prompt_name),
            "prompt_version": func.coalesce(old.prompt_version, new.prompt_version),
            "api_key_id": func.coalesce(old.api_key_id, new.api_key_id),
        },
        where=old.project_id == new.project_id,
    ).returning(traces.c.id)


@functools.cache
def _span_insert(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(spans).on_conflict_do_nothing(index_elements=[spans.c.id]).returning(spans.c.id)


INGESTED = frozenset({"sdk", "otlp"})
"""Sources whose parts name their trace id themselves (SDK batches, OTLP): a part for another project's trace is
refused and reported to the sender. A gateway call that joined such a trace (its caller's `traceparent`) is
stored under a fresh id instead: the call happened and was paid for, so its trace must not be lost."""


def _rehome(
    conn: Connection, trace_rows: list[dict[str, Any]], span_rows: list[dict[str, Any]], refused: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]]:
    """Drop the refused ingested parts; store refused gateway parts under fresh trace ids."""
    moved = {
        row["id"]: new_trace_id() for row in trace_rows if row["id"] in refused and row.get("source") not in INGESTED
    }
    dropped = refused - set(moved)
    if dropped:
        log.warning("trace ids %s belong to another project; those parts were not stored", sorted(dropped))
    if moved:
        log.warning(
            "trace ids %s belong to another project; the gateway's parts were stored as %s",
            sorted(moved),
            [moved[old] for old in sorted(moved)],
        )
        conn.execute(traces.insert(), [{**row, "id": moved[row["id"]]} for row in trace_rows if row["id"] in moved])
    kept = [
        {**row, "id": moved[row["id"]]} if row["id"] in moved else row for row in trace_rows if row["id"] not in dropped
    ]
    spans_kept = [
        {**row, "trace_id": moved[row["trace_id"]]} if row["trace_id"] in moved else row
        for row in span_rows
        if row["trace_id"] not in dropped
    ]
    return kept, spans_kept, dropped


def _clash(message: str) -> IntegrityError:
    """The error the sink treats as a clash of ids (the trace is spilled, not repaired)."""
    return IntegrityError(message, None, ValueError(message))


def _check_repeats(conn: Connection, repeated: list[dict[str, Any]]) -> None:
    """Skipped spans must be this trace's own, stored before (a repeated part); an id another trace's span
    holds is a clash, and the whole transaction fails."""
    ids = [row["id"] for row in repeated]
    owners = {r.id: r.trace_id for r in conn.execute(select(spans.c.id, spans.c.trace_id).where(spans.c.id.in_(ids)))}
    if any(owners.get(row["id"]) != row["trace_id"] for row in repeated):
        raise _clash("a span id is already used by another trace")


def _take_back(conn: Connection, repeated: list[dict[str, Any]]) -> None:
    """Spans already stored were skipped: the totals they added to their trace rows come off again."""
    per_trace: dict[str, list[Any]] = {}
    for row in repeated:
        if row["kind"] not in _METERED:
            continue
        tin, tout, cost = per_trace.setdefault(row["trace_id"], [0, 0, Decimal(0)])
        per_trace[row["trace_id"]] = [
            tin + (row["input_tokens"] or 0),
            tout + (row["output_tokens"] or 0),
            cost + (row["cost_usd"] or 0),
        ]
    for trace_id, (tin, tout, cost) in per_trace.items():
        conn.execute(
            update(traces)
            .where(traces.c.id == trace_id)
            .values(
                input_tokens=traces.c.input_tokens - tin,
                output_tokens=traces.c.output_tokens - tout,
                cost_usd=traces.c.cost_usd - cost,
            )
        )
