"""End-to-end tests: the gateway as a subprocess, called with the official `openai` client.

Shared helpers live here (fixtures are in conftest.py).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.support.servers import RunningServer


class AdminApi:
    """The management API of one server, with its admin key (traces, keys, health)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=30.0
        )

    def trace(self, trace_id: str, *, wait_s: float = 0.0) -> dict[str, Any]:
        """GET /api/traces/{id}. The gateway stores a trace before the answer ends, so no waiting is needed,
        except where the caller stops reading early (`wait_s` then allows for the store to catch up)."""
        deadline = time.monotonic() + wait_s
        resp = self.http.get(f"/api/traces/{trace_id}")
        while resp.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.05)
            resp = self.http.get(f"/api/traces/{trace_id}")
        assert resp.status_code == 200, f"GET /api/traces/{trace_id}: {resp.status_code} {resp.text}"
        body: dict[str, Any] = resp.json()
        return body

    def traces(self, **params: Any) -> dict[str, Any]:
        resp = self.http.get("/api/traces", params={k: v for k, v in params.items() if v is not None})
        assert resp.status_code == 200, f"GET /api/traces {params}: {resp.status_code} {resp.text}"
        body: dict[str, Any] = resp.json()
        return body

    def close(self) -> None:
        self.http.close()


def only_span(trace: dict[str, Any], kind: str) -> dict[str, Any]:
    """The single span of `kind` on a stored trace (fails with the trace if there is not exactly one)."""
    found: list[dict[str, Any]] = [s for s in trace["spans"] if s["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} span, got {len(found)}: {trace}"
    return found[0]


def assert_clean_log(server: RunningServer, offset: int = 0) -> None:
    """The server's log from `offset` on has no traceback or error line, and no trace was spilled to disk
    (a spill means a trace could not be stored)."""
    tail = server.log()[offset:]
    assert "Traceback" not in tail, f"the server logged a traceback:\n{tail}"
    assert " ERROR " not in tail, f"the server logged an error:\n{tail}"
    spill = server.data_dir / "traces-unstored.jsonl"
    assert not spill.exists(), f"traces were spilled to {spill}:\n{tail}"
