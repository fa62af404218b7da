"""A monitor over a stream of traces, on SQLite and PostgreSQL: a rising rate of ungrounded answers alerts once,
with evidence, to a real local webhook receiver and the audit log, and resolves when the rate returns; a stable
stream with the same noise never alerts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert

from pilothouse.audit.chain import list_events, verify_chain
from pilothouse.monitors.alerts import list_alerts
from pilothouse.monitors.rules import add_rule
from pilothouse.monitors.runner import MonitorRunner
from pilothouse.store.engine import Store
from pilothouse.store.ids import new_id, new_trace_id
from pilothouse.store.projects import create_project
from pilothouse.store.tables import scores, traces

T0 = 1_700_000_040.0  # a bucket boundary
BUCKET = 60.0
PER_BUCKET = 40
DETECTOR = {
    "bucket_s": BUCKET,
    "window_s": 20 * BUCKET,
    "baseline_s": 30 * BUCKET,
    "min_abs": 0.05,
    "min_rel": 0.5,
    "false_alarm": 0.002,
}


class Receiver:
    """A real HTTP webhook receiver on localhost that keeps the JSON bodies it was sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def add_bucket(store: Store, project_id: str, index: int, rate: float, rng: np.random.Generator) -> None:
    """PER_BUCKET scored answers in bucket `index`, each ungrounded with probability `rate`."""
    trace_rows, score_rows = [], []
    for offset in rng.uniform(0, BUCKET, PER_BUCKET):
        trace_id, ts = new_trace_id(), T0 + index * BUCKET + float(offset)
        trace_rows.append(
            {
                "id": trace_id,
                "project_id": project_id,
                "name": "chat",
                "status": "ok",
                "started_at": ts,
                "ended_at": ts + 0.5,
                "input_tokens": 10,
                "output_tokens": 10,
                "cost_usd": 0,
                "prompt_name": "support",
                "prompt_version": 3,
            }
        )
        grounded = 0.0 if rng.random() < rate else 1.0
        score_rows.append(
            {
                "id": new_id("score"),
                "project_id": project_id,
                "trace_id": trace_id,
                "name": "grounded",
                "value": grounded,
                "source": "code",
                "created_at": ts + 1,
            }
        )
    with store.begin() as conn:
        conn.execute(insert(traces), trace_rows)
        conn.execute(insert(scores), score_rows)


def run_stream(store: Store, rates: list[float], seed: int, webhook: str | None) -> tuple[str, list[Any]]:
    """Feed the stream bucket by bucket and evaluate after each bucket closes, as the server's loop would."""
    rng = np.random.default_rng(seed)
    with store.begin() as conn:
        project = create_project(conn, f"mon-{seed}").id
        add_rule(
            conn,
            project_id=project,
            name="hallucination",
            metric="hallucination_rate",
            scope={"prompt": "support"},
            detector=DETECTOR,
            webhook_url=webhook,
        )
    now = [T0]
    changes: list[Any] = []

    async def main() -> None:
        runner = MonitorRunner(store, 60, clock=lambda: now[0])
        for index, rate in enumerate(rates):
            add_bucket(store, project, index, rate, rng)
            now[0] = T0 + (index + 1) * BUCKET + 1
            for change in await runner.run_once():
                changes.append((index, change))
        await runner.stop()  # waits for the webhook deliveries

    asyncio.run(main())
    return project, changes


RISE = [0.05] * 45 + [0.05 + 0.01 * i for i in range(1, 16)] + [0.2] * 15 + [0.05] * 10


def test_rising_hallucination_alerts_once_with_evidence_and_resolves(store: Store, receiver: Receiver) -> None:
    project, changes = run_stream(store, RISE, seed=7, webhook=receiver.url)
    assert [c.event for _, c in changes] == ["opened", "resolved"]
    (opened_at, opened), (resolved_at, _) = changes
    assert 45 <= opened_at < 75, "fires during the rise, not before it"
    assert resolved_at >= 75, "resolves only after the rate returned"
    evidence = opened.alert.evidence
    assert evidence["direction"] == "up" and evidence["statistic"] >= evidence["threshold"] > 0
    assert evidence["baseline"]["mean"] == pytest.approx(0.05, abs=0.03)
    assert evidence["effect"] >= DETECTOR["min_abs"]
    assert evidence["window"]["end"] - evidence["window"]["start"] <= DETECTOR["window_s"]
    assert 1 <= len(evidence["example_trace_ids"]) <= 5

    # The webhook got both changes once each, with the evidence; the episode records the deliveries.
    assert [b["event"] for b in receiver.bodies] == ["alert.opened", "alert.resolved"]
    assert receiver.bodies[0]["alert"]["evidence"]["example_trace_ids"] == evidence["example_trace_ids"]
    with store.connect() as conn:
        (alert,) = list_alerts(conn, project)
        assert alert.status == "resolved" and alert.resolution is not None
        assert alert.delivery is not None and alert.delivery["opened"]["ok"] and alert.delivery["resolved"]["ok"]
        events = list_events(conn, project_id=project, actions=["monitor.alert"])
        assert [e.action for e in events] == ["monitor.alert.open", "monitor.alert.resolve"]
        assert events[0].details is not None
        assert events[0].details["example_trace_ids"] == evidence["example_trace_ids"]
        assert events[0].details["baseline"]["mean"] == evidence["baseline"]["mean"]
        assert verify_chain(conn)[1] is None


def test_stable_series_with_the_same_noise_does_not_alert(store: Store, receiver: Receiver) -> None:
    project, changes = run_stream(store, [0.05] * len(RISE), seed=7, webhook=receiver.url)
    assert changes == [] and receiver.bodies == []
    with store.connect() as conn:
        assert list_alerts(conn, project) == []
