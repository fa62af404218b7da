"""Full-text search over the kept content of traces: SQLite FTS5, PostgreSQL `tsvector` with a GIN index.

The text of a trace is every string in its spans' `input` and `output` (messages, answers, tool arguments and
results), as stored: after content capture (`off` stores none, `redacted` the redacted text). The trace sink
indexes each batch in the transaction that stores it (`index_traces`); retention's purge removes a trace
from the index through a trigger (migration 0013), so purged content is never found again.

A query is a list of words: a trace matches when its text holds every word (case-insensitive, whole
words). Both backends tokenize the same simple way (no stemming), so a query finds the same traces on each;
operators and quotes in the query are taken as plain text, never as query syntax.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, bindparam, literal_column, text

from pilothouse.store.tables import traces

__all__ = ["EmptyQuery", "document_text", "index_traces", "matches", "query_words"]

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


def index_traces(
    conn: Connection, trace_rows: Sequence[Mapping[str, Any]], span_rows: Sequence[Mapping[str, Any]]
) -> int:
    """Index freshly inserted traces in the caller's transaction; returns how many had text to index."""
    by_trace: dict[str, list[Mapping[str, Any]]] = {}
    for s in span_rows:
        by_trace.setdefault(s["trace_id"], []).append(s)
    docs = [{"id": t["id"], "doc": doc} for t in trace_rows if (doc := document_text(by_trace.get(t["id"], ())))]
    if not docs:
        return 0
    if conn.dialect.name == "postgresql":
        stmt = "INSERT INTO trace_search (trace_id, document) VALUES (:id, to_tsvector('simple', :doc))"
    else:
        stmt = "INSERT INTO trace_search (rowid, document) SELECT rowid, :doc FROM traces WHERE id = :id"
    conn.execute(text(stmt), docs)
    return len(docs)


def query_words(q: str) -> list[str]:
    """The words of a search text, lower-cased; raises `EmptyQuery` when there are none."""
    words = [w.lower() for w in _WORD.findall(q)][:MAX_QUERY_WORDS]
    if not words:
        raise EmptyQuery("the search text has no words to look for")
    return words


def matches(dialect: str, q: str) -> ColumnElement[bool]:
    """A condition on `traces`: the trace's indexed text holds every word of `q`."""
    words = query_words(q)
    if dialect == "postgresql":
        found = text(
            "SELECT trace_id FROM trace_search WHERE document @@ plainto_tsquery('simple', :search_q)"
        ).bindparams(bindparam("search_q", " ".join(words)))
        return traces.c.id.in_(found.columns(trace_id=traces.c.id.type))
    fts = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    rowids = text("SELECT rowid FROM trace_search WHERE trace_search MATCH :search_q").bindparams(
        bindparam("search_q", fts)
    )
    return literal_column("traces.rowid", Integer).in_(rowids.columns(rowid=Integer))
