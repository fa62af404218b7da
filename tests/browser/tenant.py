"""A project of its own for each browser test, on the shared `pilothouse up`: its keys, and data seeded through
the API the way applications write it.

Tests share one server per pytest worker (starting one takes seconds), so each test works in a fresh project:
what another test seeds is in another project and never on its pages (the dashboard shows the session's
project only, as the API does).
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from tests.support.servers import RunningServer


@dataclass
class SeededTrace:
    """A trace written through POST /api/ingest/spans: its id, name and what it cost."""

    id: str
    name: str
    cost_usd: Decimal


@dataclass
class Tenant:
    """A new project on the server with an admin key; `api` calls the JSON API with that key."""

    server: RunningServer
    project: str
    admin_key: str
    api: httpx.Client
    _clients: list[httpx.Client] = field(default_factory=list)

    @classmethod
    def create(cls, server: RunningServer) -> Tenant:
        owner = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {server.admin_key}"}, timeout=30)
        try:
            project = f"browser-{uuid.uuid4().hex[:10]}"
            created = owner.post("/api/projects", json={"name": project})
            assert created.status_code == 201, created.text
            key = owner.post("/api/keys", json={"name": "browser admin", "role": "admin", "project": project})
            assert key.status_code == 201, key.text
        finally:
            owner.close()
        secret = key.json()["secret"]
        api = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {secret}"}, timeout=30)
        return cls(server, project, secret, api, [api])

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def call(self, method: str, path: str, *, expect: int | tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        """An API call with the admin key that must answer `expect`; its JSON body."""
        response = self.api.request(method, path, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, f"{method} {path} -> {response.status_code}: {response.text}"
        return response.json() if response.content else None

    def key(self, role: str) -> str:
        """A new key of `role` in this project: its secret."""
        body = self.call("POST", "/api/keys", json={"name": f"browser {role}", "role": role})
        return str(body["secret"])

    def trace(
        self,
        name: str,
        cost_usd: str,
        *,
        model: str = "fake-chat",
        started_at: float | None = None,
        status: str = "ok",
        user_id: str | None = None,
    ) -> SeededTrace:
        """A trace of two spans (a step with an LLM call under it) priced at `cost_usd`, ingested as the SDK
        would send it."""
        trace_id = secrets.token_hex(16)
        root, llm = secrets.token_hex(8), secrets.token_hex(8)
        start = time.time() - 5 if started_at is None else started_at
        spans = [
            {
                "trace_id": trace_id,
                "id": root,
                "kind": "step",
                "name": name,
                "status": status,
                "error": "the upstream timed out" if status == "error" else None,
                "started_at": start,
                "ended_at": start + 1.25,
                "input": {"question": f"{name}: where is my parcel?"},
                "output": {"answer": "It left the depot this morning."},
            },
            {
                "trace_id": trace_id,
                "id": llm,
                "parent_id": root,
                "kind": "llm",
                "name": "chat fake-chat",
                "started_at": start + 0.05,
                "ended_at": start + 1.2,
                "model": model,
                "provider": "fake",
                "input_tokens": 420,
                "output_tokens": 96,
                "cost_usd": cost_usd,
                "input": {"messages": [{"role": "user", "content": "Where is my parcel?"}]},  # as the gateway records
                "output": {"message": {"role": "assistant", "content": "It left the depot this morning."}},
            },
        ]
        body = {"spans": spans, "traces": [{"id": trace_id, "name": name, "user_id": user_id}]}
        self.call("POST", "/api/ingest/spans", json=body, expect=202)
        return SeededTrace(trace_id, name, Decimal(cost_usd))

    def wait_for_trace(self, trace_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The trace once the store has it (the sink writes in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.api.get(f"/api/traces/{trace_id}")
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            assert time.monotonic() < deadline, f"trace {trace_id} was not stored: {response.text}"
            time.sleep(0.1)
