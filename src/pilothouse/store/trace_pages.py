"""One page of the trace list, fast at millions of traces on SQLite (PostgreSQL's planner does this itself).

The list is newest first, so the plain plan walks `(project, started_at)` backwards and checks each trace: fast
when matches are common, a scan of the whole project when a filter is rare. SQLite has no statistics on how
rare a value range is (no STAT4), so this module asks: each narrowing filter (cost range, latency range, score
condition, full-text words) is first run alone against its own index, up to `PROBE` matches; a filter with
fewer becomes a list of row ids the page is read from (then sorted: at most `PROBE` rows). Search words that
match more traces than that are read newest first in time slices: the slice's row-id range bounds the FTS5
lookup, so a common word costs about one slice, not every match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
)

from pilothouse.store.search import match_ids, matches, query_words
from pilothouse.store.tables import scores, traces

if TYPE_CHECKING:
    from pilothouse.store.traces import TraceFilter

__all__ = ["PROBE", "fetch_page"]

PROBE = 2000
"""A filter matching fewer traces than this drives the page from its own index."""
FIRST_SLICE_S = 3600.0
SLICE_GROWTH = 4.0
MAX_SLICE_S = 4 * 86_400.0
"""Past this width, the rest of the window is searched in one go from the full-text index."""
ROWID = literal_column("traces.rowid", Integer)
_ORDER = (traces.c.started_at.desc(), traces.c.id.desc())


def _keyset(after: tuple[float, str] | None) -> list[ColumnElement[bool]]:
    if after is None:
        return []
    started, last_id = after
    return [or_(traces.c.started_at < started, and_(traces.c.started_at == started, traces.c.id < last_id))]


def fetch_page(conn: Connection, flt: TraceFilter, n: int, after: tuple[float, str] | None) -> Sequence[Row[Any]]:
    """Up to `n` traces matching `flt`, newest first, after the keyset position `after`."""
    if conn.dialect.name != "sqlite":
        return _postgresql_page(conn, flt, n, after)
    return _sqlite_page(conn, flt, n, after)


def _postgresql_page(conn: Connection, flt: TraceFilter, n: int, after: tuple[float, str] | None) -> Sequence[Row[Any]]:
    """PostgreSQL's planner picks the index from its statistics, but they are too coarse at the far tails: a
    word outside the `tsvector` statistics' most common ones is assumed to match 0.5% of traces, and a range in
    the last histogram bucket (latency over 8 s) about 1%, so a rare one was looked for row by row through the
    whole project, and a rare score condition was found by a parallel backward walk of the project that read
    ~450k traces for 50 (plan chosen on an estimate of 1,194 matches, right, but spread over 30 days). Probed
    like SQLite's filters instead: few matches drive the page."""
    where = [*flt.conditions("postgresql", narrowing=False, search=False), *_keyset(after)]
    project = traces.c.project_id == flt.project_id
    for condition in flt.narrowing():
        ids = _few(conn, select(traces.c.id).where(project, condition))
        where.append(condition if ids is None else traces.c.id.in_(ids))
    if flt.score is not None:
        ids = _score_ids(conn, flt)
        where.append(flt.score.condition() if ids is None else traces.c.id.in_(ids))
    if flt.q is not None:
        ids = _few(conn, match_ids("postgresql", flt.q))
        where.append(matches("postgresql", flt.q) if ids is None else traces.c.id.in_(ids))
    return conn.execute(select(traces).where(*where).order_by(*_ORDER).limit(n)).all()


def _score_ids(conn: Connection, flt: TraceFilter) -> list[Any] | None:
    """The ids of the traces holding the filter's score condition, when fewer than PROBE (the score index)."""
    assert flt.score is not None
    s = flt.score
    wanted = select(scores.c.trace_id).where(scores.c.project_id == flt.project_id, scores.c.name == s.name)
    return _few(conn, wanted.where(s.compare(scores.c.value)))


def _few(conn: Connection, query: Select[Any]) -> list[Any] | None:
    """The values `query` selects when there are fewer than PROBE of them, else None."""
    found = conn.execute(query.limit(PROBE)).scalars().all()
    return list(found) if len(found) < PROBE else None


def _fts_rowids(words: list[str], lo: int, hi: int) -> Select[Any]:
    """The FTS5 matches among row ids [lo, hi] (FTS5 bounds its doclist walk by the range)."""
    fts = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    stmt = text("SELECT rowid FROM trace_search WHERE trace_search MATCH :fts_q AND rowid BETWEEN :fts_lo AND :fts_hi")
    stmt = stmt.bindparams(bindparam("fts_q", fts), bindparam("fts_lo", lo), bindparam("fts_hi", hi))
    return select(stmt.columns(rowid=Integer).subquery().c.rowid)


def _sqlite_page(conn: Connection, flt: TraceFilter, n: int, after: tuple[float, str] | None) -> Sequence[Row[Any]]:
    where = [*flt.conditions("sqlite", narrowing=False), *_keyset(after)]
    project = traces.c.project_id == flt.project_id
    drivers: list[ColumnElement[bool]] = []
    others: list[ColumnElement[bool]] = []
    for condition in flt.narrowing():
        ids = _few(conn, select(ROWID).select_from(traces).where(project, condition))
        if ids is None:
            others.append(condition)
        else:
            drivers.append(ROWID.in_(ids))
    if flt.score is not None:
        ids = _score_ids(conn, flt)
        if ids is None:
            others.append(flt.score.condition())
        else:
            drivers.append(traces.c.id.in_(ids))
    words = None if flt.q is None else query_words(flt.q)
    if words is not None:
        ids = _few(conn, match_ids("sqlite", flt.q or ""))
        if ids is not None:
            drivers.append(ROWID.in_(ids))
        elif drivers:
            others.append(matches("sqlite", flt.q or ""))
        else:
            return _sliced(conn, flt, [*where, *others], words, n, after)
    query = select(traces).where(*where, *drivers, *others).order_by(*_ORDER).limit(n)
    return conn.execute(query).all()


def _sliced(
    conn: Connection,
    flt: TraceFilter,
    where: list[ColumnElement[bool]],
    words: list[str],
    n: int,
    after: tuple[float, str] | None,
) -> list[Row[Any]]:
    """A common-word search newest first: slice by slice back in time, each slice's FTS5 lookup bounded by the
    row ids of the traces that started in it, until the page is full."""
    project = traces.c.project_id == flt.project_id
    # min and max apart: SQLite answers each from one end of the index, but scans the range for both at once
    first = conn.execute(select(func.min(traces.c.started_at)).where(project)).scalar()
    last = conn.execute(select(func.max(traces.c.started_at)).where(project)).scalar()
    if first is None or last is None:
        return []
    lowest = max(float(first), flt.since if flt.since is not None else -math.inf)
    hi = math.nextafter(float(last), math.inf)
    if flt.until is not None:
        hi = min(hi, flt.until)
    if after is not None:
        hi = min(hi, math.nextafter(after[0], math.inf))
    out: list[Row[Any]] = []
    width = FIRST_SLICE_S
    while hi > lowest and len(out) < n:
        lo = hi - width
        in_slice = [traces.c.started_at < hi]
        if width > MAX_SLICE_S or lo <= lowest:
            found = matches("sqlite", " ".join(words))  # the rest of the window, from the full-text index
            lo = lowest
        else:
            in_slice.append(traces.c.started_at >= lo)
            span = conn.execute(select(func.min(ROWID), func.max(ROWID)).where(project, *in_slice)).one()
            if span[0] is None:
                hi, width = lo, width * SLICE_GROWTH
                continue
            found = ROWID.in_(_fts_rowids(words, int(span[0]), int(span[1])))
        query = select(traces).where(*where, *in_slice, found).order_by(*_ORDER).limit(n - len(out))
        out += conn.execute(query).all()
        hi, width = lo, width * SLICE_GROWTH
    return out
