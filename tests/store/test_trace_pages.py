"""The trace list's page strategies (store/trace_pages.py) return exactly what the plain query returns, page by
page, on SQLite and PostgreSQL: rare filters driven from their own index, common ones checked row by row, and
common search words read in time slices (the probe limit is lowered so a few hundred traces exercise each)."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import pilothouse.store.trace_pages as pages
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.store.scores import add_score
from pilothouse.store.tables import traces
from pilothouse.store.traces import ScoreFilter, TraceFilter, list_traces
from pilothouse.tracing.model import TraceRecord
from pilothouse.tracing.sink import StoreSink

T0 = 1_750_000_000.0
WORDS = ["refund", "invoice", "lighthouse", "shipping"]


@pytest.fixture
def project(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(pages, "PROBE", 20)
    monkeypatch.setattr(pages, "FIRST_SLICE_S", 600.0)
    monkeypatch.setattr(pages, "MAX_SLICE_S", 3 * 86_400.0)
    rng = random.Random(7)
    with store.begin() as conn:
        project_id = create_project(conn, "acme").id
        create_project(conn, "other")
    records = []
    for i in range(240):
        started = T0 + rng.random() * 5 * 86_400  # five days, in no particular order
        t = TraceRecord(project_id=project_id, name="chat", started_at=started, model=rng.choice(["m1", "m2"]))
        if i % 60 == 0:
            t.started_at = T0 + 86_400.0  # several traces at the same instant: the cursor's tie-break
        span = t.span("llm", "chat")
        span.started_at = t.started_at
        text = " ".join(rng.choice(["please", "help", "order"]) for _ in range(5))
        if rng.random() < 0.5:
            text += " refund"
        if rng.random() < 0.03:
            text += " lighthouse"
        span.input = {"messages": [{"role": "user", "content": text}]}
        span.cost_usd = Decimal(rng.choice(["0.001", "0.002", "0.5"] if rng.random() < 0.1 else ["0.001", "0.002"]))
        span.finish()
        t.finish()
        t.ended_at = t.started_at + (rng.choice([0.1, 0.2, 9.0]) if rng.random() < 0.1 else 0.15)
        records.append(t)
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        for record in records:
            sink.write_sync(record)
    finally:
        sink.close()
    with store.begin() as conn:
        for t in records[::7]:
            add_score(conn, project_id=project_id, trace_id=t.id, name="grounded", value=rng.random())
    return project_id


def _plain(store: Store, flt: TraceFilter) -> list[str]:
    with store.connect() as conn:
        query = select(traces.c.id).where(*flt.conditions(conn.dialect.name))
        return list(conn.execute(query.order_by(traces.c.started_at.desc(), traces.c.id.desc())).scalars())


def _paged(store: Store, flt: TraceFilter, limit: int) -> list[str]:
    out: list[str] = []
    cursor = None
    with store.connect() as conn:
        while True:
            page, cursor = list_traces(conn, flt, limit=limit, cursor=cursor)
            out += [t["id"] for t in page]
            if cursor is None:
                return out


FILTERS: list[dict[str, Any]] = [
    {},
    {"q": "refund"},  # common: time slices
    {"q": "lighthouse"},  # rare: from the full-text index
    {"q": "refund", "model": "m2"},
    {"q": "refund please", "since": T0 + 86_400.5, "until": T0 + 3 * 86_400},
    {"q": "nowhere"},
    {"cost_min": Decimal("0.5")},  # rare: from the cost index
    {"cost_max": Decimal("0.0015")},  # common: row by row
    {"latency_min_ms": 5000.0},
    {"latency_min_ms": 120.0, "latency_max_ms": 180.0},
    {"score": ScoreFilter.parse("grounded<0.2")},
    {"score": ScoreFilter.parse("grounded>=0.1")},
    {"cost_min": Decimal("0.5"), "q": "refund"},
]


def test_pages_equal_the_plain_query(store: Store, project: str) -> None:
    for kw in FILTERS:
        flt = TraceFilter(project_id=project, **kw)
        expected = _plain(store, flt)
        for limit in (7, 50):
            assert _paged(store, flt, limit) == expected, (kw, limit)
    assert _plain(store, TraceFilter(project_id=project, q="refund"))  # the data has matches
    assert _plain(store, TraceFilter(project_id=project, cost_min=Decimal("0.5")))
