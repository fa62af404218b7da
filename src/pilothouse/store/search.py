"""Full-text search over the kept content of traces: SQLite FTS5, PostgreSQL `tsvector` with a GIN index.

The text of a trace is every string in its spans' `input` and `output` (messages, answers, tool arguments and
results), as stored: after content capture (`off` stores none, `redacted` the redacted text). The trace writers
index each batch in the transaction that stores it (`index_traces`), a later part of a trace added to its
text; retention's purge removes a trace from the index through a trigger (migration 0013), so purged content
is never found again.

A query is a list of words: a trace matches when its text holds every word (case-insensitive, whole
words). Both backends tokenize the same simple way (no stemming), so a query finds the same traces on each;
operators and quotes in the query are taken as plain text, never as query syntax.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Integer, Select, bindparam, literal_column, select, text

from pilothouse.store.tables import traces

__all__ = ["EmptyQuery", "document_text", "index_traces", "match_ids", "matches", "query_words"]

MAX_DOCUMENT_CHARS = 100_000
"""Text past this (per trace) is not indexed: enough for long conversations, bounded for odd ones."""
MAX_QUERY_WORDS = 16
_SKIP_KEYS = frozenset({"role", "finish_reason", "id", "type", "model", "name", "tool_call_id"})
_WORD = re.compile(r"\w+", re.UNICODE)


class EmptyQuery(ValueError):
    """A search text with no word in it."""


def _strings(value: Any, out: list[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    if isinstance(value, str):
        if value:
            out.append(value[: budget[0]])
            budget[0] -= len(out[-1])
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in _SKIP_KEYS:
                _strings(item, out, budget)
    elif isinstance(value, list | tuple):
        for item in value:
            _strings(item, out, budget)


def document_text(trace_spans: Sequence[Mapping[str, Any]]) -> str:
    """The searchable text of one trace: the strings of its spans' input and output (guard spans carry none)."""
    out: list[str] = []
    budget = [MAX_DOCUMENT_CHARS]
    for s in trace_spans:
        if s["kind"] == "guard":
            continue
        _strings(s.get("input"), out, budget)
        _strings(s.get("output"), out, budget)
    return "\n".join(out).replace("\x00", " ")


# Built once: a `text()` construct parses its SQL for parameters, which costs more than running it.
# PostgreSQL: one statement per batch over one JSON array of {id, doc} (its text never changes, so it is
# prepared once; orjson encodes the batch in one call), where an executemany sends one statement per trace. The
# ids are unique (the writer merges a batch's trace rows), so the upsert touches no row twice.
_INDEX_POSTGRESQL = text(
    "INSERT INTO trace_search (trace_id, document) "
    "SELECT d.id, to_tsvector('simple', d.doc) FROM json_to_recordset(CAST(:docs AS json)) AS d(id text, doc text) "
    "ON CONFLICT (trace_id) DO UPDATE SET document = trace_search.document || excluded.document"
)
# SQLite: the driver's executemany over (doc, id) tuples (text() made a parameter dict of each row in Python).
_INDEX_SQLITE = "INSERT INTO trace_search (rowid, document) SELECT rowid, ? FROM traces WHERE id = ?"
_APPEND_SQLITE = text(
    "UPDATE trace_search SET document = substr(document || char(10) || :doc, 1, :cap) "
    "WHERE rowid = (SELECT rowid FROM traces WHERE id = :id)"
)
_ADD_SQLITE = text(
    "INSERT INTO trace_search (rowid, document) SELECT t.rowid, :doc FROM traces t WHERE t.id = :id "
    "AND NOT EXISTS (SELECT 1 FROM trace_search s WHERE s.rowid = t.rowid)"
)


def index_traces(
    conn: Connection,
    trace_rows: Sequence[Mapping[str, Any]],
    span_rows: Sequence[Mapping[str, Any]],
    *,
    merged: Collection[str] = (),
) -> int:
    """Index stored trace parts in the caller's transaction; returns how many parts had text to index.

    `merged`: ids of traces stored before (tracing/merge.py): their part's text is added to what the trace
    already has, so a trace written in parts (SDK batches, gateway calls, OTLP requests) is found by words
    from any part. PostgreSQL concatenates the `tsvector`s; SQLite appends the text, up to MAX_DOCUMENT_CHARS."""
    by_trace: dict[str, list[Mapping[str, Any]]] = {}
    for s in span_rows:
        by_trace.setdefault(s["trace_id"], []).append(s)
    docs = [{"id": t["id"], "doc": doc} for t in trace_rows if (doc := document_text(by_trace.get(t["id"], ())))]
    if not docs:
        return 0
    if conn.dialect.name == "postgresql":
        conn.execute(_INDEX_POSTGRESQL, {"docs": orjson.dumps(docs).decode()})
        return len(docs)
    fresh = [d for d in docs if d["id"] not in merged]
    later = [{**d, "cap": MAX_DOCUMENT_CHARS} for d in docs if d["id"] in merged]
    if fresh:
        conn.exec_driver_sql(_INDEX_SQLITE, [(d["doc"], d["id"]) for d in fresh])
    if later:
        conn.execute(_APPEND_SQLITE, later)
        conn.execute(_ADD_SQLITE, later)  # the trace's first parts had no text to index
    return len(docs)


def query_words(q: str) -> list[str]:
    """The words of a search text, lower-cased; raises `EmptyQuery` when there are none."""
    words = [w.lower() for w in _WORD.findall(q)][:MAX_QUERY_WORDS]
    if not words:
        raise EmptyQuery("the search text has no words to look for")
    return words


def match_ids(dialect: str, q: str) -> Select[Any]:
    """The ids of the traces whose indexed text holds every word of `q`: `traces.id` on PostgreSQL, the
    trace's `rowid` on SQLite."""
    words = query_words(q)
    if dialect == "postgresql":
        found = text(
            "SELECT trace_id FROM trace_search WHERE document @@ plainto_tsquery('simple', :search_q)"
        ).bindparams(bindparam("search_q", " ".join(words)))
        return select(found.columns(trace_id=traces.c.id.type).subquery().c.trace_id)
    fts = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    rowids = text("SELECT rowid FROM trace_search WHERE trace_search MATCH :search_q").bindparams(
        bindparam("search_q", fts)
    )
    return select(rowids.columns(rowid=Integer).subquery().c.rowid)


def matches(dialect: str, q: str) -> ColumnElement[bool]:
    """A condition on `traces`: the trace's indexed text holds every word of `q`."""
    if dialect == "postgresql":
        return traces.c.id.in_(match_ids(dialect, q))
    return literal_column("traces.rowid", Integer).in_(match_ids(dialect, q))
