"""The workflow methods of the `Pilothouse` client (a mixin); docs/flows.md.

ph = Pilothouse()
run = ph.start_flow_run("examples/flows/approval_demo.py:flow", {"amount": 120})
run = ph.wait_flow_run(run["id"])                 # polls until it pauses or finishes
if run["status"] == "waiting_for_approval":
    ph.approve_flow_run(run["id"], step="approve", comment="ok")
print(ph.show_flow_run(run["id"])["path"])         # the decision path
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any


def absolute_ref(ref: str, base_dir: Path | None = None) -> str:
    """The reference with a file part made absolute (against `base_dir`, default the working directory), so the
    server loads the file this machine means; a module reference as it is. The server checks the rest."""
    target, sep, attr = ref.strip().rpartition(":")
    if not sep or not (target.endswith(".py") or "/" in target or "\\" in target):
        return ref
    path = Path(target).expanduser()
    return f"{(base_dir or Path.cwd()) / path}:{attr}"


SETTLED = frozenset({"waiting_for_approval", "succeeded", "failed", "cancelled"})
"""The statuses a run rests in until someone acts (or for good)."""


class FlowsMixin:
    if TYPE_CHECKING:

        def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def start_flow_run(
        self,
        flow: str,
        input: Mapping[str, Any] | None = None,
        *,
        budget: Mapping[str, Any] | None = None,
        base_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Start a run of `flow` (`path/to/file.py:attr`, made absolute here against `base_dir` or the working
        directory, or `package.module:attr`); the server's workers execute it. Returns the run (`id`, `status`)."""
        body = {"flow": absolute_ref(flow, base_dir), "input": dict(input or {}), "budget": dict(budget or {})}
        result: dict[str, Any] = self.request("POST", "/api/flows/runs", json=body)
        return result

    def get_flow_run(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/flows/runs/{run_id}")
        return result

    def list_flow_runs(
        self, *, status: str | None = None, flow: str | None = None, limit: int = 50, before: str | None = None
    ) -> list[dict[str, Any]]:
        """The project's runs, newest first; `flow` filters by the flow's name, `before` pages on from a run id."""
        params = {k: v for k, v in {"status": status, "flow": flow, "limit": limit, "before": before}.items() if v}
        result: list[dict[str, Any]] = self.request("GET", "/api/flows/runs", params=params)["data"]
        return result

    def wait_flow_run(self, run_id: str, *, timeout_s: float = 300.0, poll_s: float = 0.2) -> dict[str, Any]:
        """Poll until the run waits for approval or finishes; the last state seen when `timeout_s` runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.get_flow_run(run_id)
            if run["status"] in SETTLED or time.monotonic() >= deadline:
                return run
            time.sleep(poll_s)

    def show_flow_run(self, run_id: str) -> dict[str, Any]:
        """The run, its checkpoints and the decision path it took."""
        result: dict[str, Any] = self.request("GET", f"/api/flows/runs/{run_id}/path")
        return result

    def approve_flow_run(
        self,
        run_id: str,
        *,
        step: str,
        comment: str | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Approve the run waiting at `step` (with optional edits of its state); it continues on a worker."""
        body = {"step": step, "comment": comment, "state": None if state is None else dict(state)}
        result: dict[str, Any] = self.request("POST", f"/api/flows/runs/{run_id}/approve", json=body)
        return result

    def reject_flow_run(self, run_id: str, *, step: str, comment: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "POST", f"/api/flows/runs/{run_id}/reject", json={"step": step, "comment": comment}
        )
        return result

    def cancel_flow_run(self, run_id: str) -> dict[str, Any]:
        """Kill switch of one run: a queued or waiting run stops at once, a running one before its next step."""
        result: dict[str, Any] = self.request("POST", f"/api/flows/runs/{run_id}/cancel")
        return result

    def resume_flow_run(self, run_id: str) -> dict[str, Any]:
        """Continue a run from its last checkpoint: one whose worker died, or one that failed."""
        result: dict[str, Any] = self.request("POST", f"/api/flows/runs/{run_id}/resume")
        return result

    def prune_flow_runs(self, *, keep_last: int | None = None, older_than_days: float | None = None) -> int:
        """Retention of finished runs: keep each one's last `keep_last` checkpoints, delete those older than
        `older_than_days`. Returns the rows deleted."""
        body = {"keep_last": keep_last, "older_than_days": older_than_days}
        deleted: int = self.request("POST", "/api/flows/prune", json=body)["deleted"]
        return deleted

    def set_flow_enabled(self, flow_name: str, enabled: bool, *, reason: str | None = None) -> dict[str, Any]:
        """The kill switch of a workflow: disabled, its runs are not picked up and new runs are refused."""
        result: dict[str, Any] = self.request(
            "PUT", f"/api/flows/switches/{flow_name}", json={"enabled": enabled, "reason": reason}
        )
        return result
