"""The trace list sorted by cost or by latency, largest first ("the costliest traces of the day").

Keyset-paged on (value, id) descending. PostgreSQL's planner chooses between the filter's index and the sort's
own one (`ix_traces_project_cost`, the expression index `ix_traces_project_latency`) from its statistics.
SQLite has none worth the name, so this module decides as `store/trace_pages.py` does: the filter is first run
alone, up to `PROBE` matches, through whatever index suits it (the time window, a model, a user); when it
matches fewer, the page is read from those row ids and sorted (at most `PROBE` rows). When it matches more,
the page walks the sort's index from the top in growing slices, each slice a range of the sort's index from its
top down to the value found `size` entries down (an index-only read), every trace of the range checked against
the filter: with that many matches the first page is a slice or two in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Row, and_, or_, select

from pilothouse.store.tables import traces
from pilothouse.store.trace_pages import PROBE, ROWID, _few

if TYPE_CHECKING:
    from pilothouse.store.traces import TraceFilter

__all__ = ["fetch_sorted"]

FIRST_SLICE = PROBE
"""Index entries read in the first slice of the sort's index; each further slice reads four times as many."""
SLICE_GROWTH = 4


def _after(key: ColumnElement[Any], after: tuple[Any, str] | None) -> list[ColumnElement[bool]]:
    if after is None:
        return []
    value, last_id = after
    return [or_(key < value, and_(key == value, traces.c.id < last_id))]


def fetch_sorted(
    conn: Connection, flt: TraceFilter, key: ColumnElement[Any], n: int, after: tuple[Any, str] | None
) -> Sequence[Row[Any]]:
    """Up to `n` traces matching `flt`, by `key` (a traces column or expression) descending, then id descending,
    after the keyset position `after` ((key value, id)). Traces whose key is null (still running, for latency)
    are left out."""
    dialect = conn.dialect.name
    where = [*flt.conditions(dialect), key.is_not(None), *_after(key, after)]
    order = (key.desc(), traces.c.id.desc())
    if dialect != "sqlite":
        return conn.execute(select(traces).where(*where).order_by(*order).limit(n)).all()
    ids = _few(conn, select(ROWID).select_from(traces).where(*where))
    if ids is not None:
        return conn.execute(select(traces).where(ROWID.in_(ids)).order_by(*order).limit(n)).all()
    return _walk(conn, flt, key, where, n, after)


def _walk(
    conn: Connection,
    flt: TraceFilter,
    key: ColumnElement[Any],
    where: list[ColumnElement[bool]],
    n: int,
    after: tuple[Any, str] | None,
) -> Sequence[Row[Any]]:
    """Many matches on SQLite: find the value `size` entries down the sort index (project, key descending; an
    index-only read), then read the traces at or above it that match the filter, in order. That range holds
    every trace above the value, so when it yields a full page the page is exact; else grow `size`. The range
    on the sort's index is what SQLite then walks (an IN list of row ids lost to a time range's index)."""
    top = [traces.c.project_id == flt.project_id, key.is_not(None)]
    if after is not None:
        top.append(key <= after[0])
    order = (key.desc(), traces.c.id.desc())
    size = FIRST_SLICE
    while True:
        bound = conn.execute(select(key).where(*top).order_by(key.desc()).offset(size - 1).limit(1)).scalar()
        last = bound is None
        if last:  # fewer than `size` entries left: the range goes down to the lowest one
            bound = conn.execute(select(key).where(*top).order_by(key.asc()).limit(1)).scalar()
            if bound is None:
                return []
        rows = conn.execute(select(traces).where(key >= bound, *where).order_by(*order).limit(n)).all()
        if last or len(rows) >= n:
            return rows
        size *= SLICE_GROWTH
