"""A project with something on every page: traces of the last day, a prompt with two versions, workflow runs
(one waiting for approval), an annotation queue, a dataset, a RAG collection and a monitor rule, all made
through the API. The every-page audit and the screenshots in docs/dashboard.md use it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.browser.tenant import SeededTrace, Tenant

FLOW = f"{Path(__file__).with_name('refund_flow.py')}:flow"
PROMPT = "support-answer"
QUEUE = "support-review"
DATASET = "support-cases"
COLLECTION = "handbook"
RULE = "latency-watch"

TRACES = [  # name, cost (USD), hours ago, status, user
    ("refund-dispute", "0.4875", 0.2, "ok", "user-17"),
    ("order-status", "0.0021", 0.5, "ok", "user-4"),
    ("address-change", "0.0340", 1.5, "error", "user-9"),
    ("order-status", "0.0019", 3.0, "ok", "user-4"),
    ("refund-dispute", "0.3120", 6.0, "ok", "user-2"),
    ("invoice-copy", "0.0456", 9.0, "ok", "user-11"),
    ("order-status", "0.0023", 14.0, "ok", "user-8"),
    ("address-change", "0.0298", 20.0, "ok", "user-9"),
]


@dataclass
class Showcase:
    tenant: Tenant
    traces: list[SeededTrace]
    waiting_run: str
    finished_run: str

    @property
    def costliest(self) -> SeededTrace:
        return max(self.traces, key=lambda t: t.cost_usd)


def _prompt(tenant: Tenant) -> None:
    for system, max_tokens, message in (
        ("You answer customer questions.", 64, "first version"),
        ("You answer customer questions in one short sentence.", 32, "shorter answers"),
    ):
        definition = {
            "model": "fake-chat",
            "max_tokens": max_tokens,
            "variables": {"question": {"type": "string"}},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": "{{ question }}"}],
        }
        tenant.call("POST", f"/api/prompts/{PROMPT}/versions", json={"definition": definition, "message": message})


def _run(tenant: Tenant, amount: float, approve: bool) -> str:
    run_id = str(tenant.call("POST", "/api/flows/runs", json={"flow": FLOW, "input": {"amount": amount}})["id"])
    deadline = time.monotonic() + 20
    while tenant.call("GET", f"/api/flows/runs/{run_id}")["status"] != "waiting_for_approval":
        assert time.monotonic() < deadline, f"run {run_id} did not reach its approval step"
        time.sleep(0.1)
    if approve:
        tenant.call("POST", f"/api/flows/runs/{run_id}/approve", json={"step": "approve", "comment": "fine"})
    return run_id


def build(tenant: Tenant) -> Showcase:
    now = time.time()
    traces = [
        tenant.trace(name, cost, started_at=now - hours * 3600, status=status, user_id=user)
        for name, cost, hours, status, user in TRACES
    ]
    for t in traces:
        tenant.wait_for_trace(t.id)
    _prompt(tenant)
    finished = _run(tenant, 80, approve=True)
    waiting = _run(tenant, 240, approve=False)
    score = {"name": "helpfulness", "data_type": "numeric", "min": 1, "max": 5}
    tenant.call("POST", "/api/evals/queues", json={"name": QUEUE, "score": score}, expect=201)
    tenant.call("POST", f"/api/evals/queues/{QUEUE}/items", json={"trace_ids": [t.id for t in traces[:3]]})
    tenant.call("POST", f"/api/evals/datasets/{DATASET}/from-traces", json={"since": "2d"})
    tenant.call("POST", "/api/rag/collections", json={"name": COLLECTION}, expect=201)
    records = [
        {"id": "refunds", "title": "Refunds", "text": "Refunds above 100 EUR need a person's approval."},
        {"id": "shipping", "title": "Shipping", "text": "Parcels leave the depot within one working day."},
        {"id": "invoices", "title": "Invoices", "text": "A copy of an invoice can be sent to the account email."},
    ]
    tenant.call("POST", f"/api/rag/collections/{COLLECTION}/records", json={"records": records})
    tenant.call("POST", "/api/monitors/rules", json={"name": RULE, "metric": "latency_p95"}, expect=201)
    return Showcase(tenant, traces, waiting, finished)
