"""Every step a span in the run's trace, written in parts through the real trace sink and read back whole."""

from __future__ import annotations

from pathlib import Path

from pilothouse.flows import Approval, Engine
from pilothouse.store.engine import open_store
from pilothouse.store.flows import SqlCheckpointStore
from pilothouse.store.projects import create_project
from pilothouse.store.traces import get_trace
from pilothouse.tracing.sink import StoreSink
from tests.flows.engine.test_engine import refund_flow


async def test_the_trace_shows_the_path(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'flows.db'}")
    sink = StoreSink(store, spill_path=tmp_path / "spill.jsonl")
    try:
        with store.begin() as conn:
            project = create_project(conn, "flows").id
        checkpoints = SqlCheckpointStore(store)
        flow = refund_flow([])
        engine = Engine(checkpoints, worker="w1", tracer=sink)
        run = engine.start(flow, {"amount": 120}, project_id=project)
        await engine.run(flow, run.id)
        checkpoints.decide(Approval(run.id, "approve", "approved", "alice"))
        done = await Engine(checkpoints, worker="w2", tracer=sink).run(flow, run.id)  # resumed by another worker
        assert done.status == "succeeded"
        with store.connect() as conn:
            trace = get_trace(conn, project, run.trace_id or "")
    finally:
        sink.close()
        store.dispose()
    assert trace is not None and trace["source"] == "flow" and trace["name"] == "flow refund"
    steps = [(s["name"], s["kind"]) for s in trace["spans"] if s["parent_id"] is None]
    assert [name for name, _ in steps] == ["check", "each", "approve", "approve", "pay"]
    assert {kind for _, kind in steps} == {"step"}
    each = next(s for s in trace["spans"] if s["name"] == "each")
    assert each["attributes"]["pilothouse.step.decision"] == {"condition": "size", "value": "big", "to": "approve"}
    items = [s for s in trace["spans"] if s["parent_id"] == each["id"]]
    assert sorted(s["attributes"]["pilothouse.step.item"] for s in items) == [0, 1, 2]
    approved = [s for s in trace["spans"] if s["name"] == "approve"][-1]
    assert approved["attributes"]["pilothouse.step.decision"]["actor"] == "alice"
    pay = next(s for s in trace["spans"] if s["name"] == "pay")
    assert pay["output"] == {"note": "paid 120.0"} and pay["attributes"]["pilothouse.flow.run_id"] == run.id
