"""Flow runs for the route-policy walk (tests/server/test_route_policy.py): each recipe that acts on a run gets
a fresh one of the tenant's project, started with its owner key and left where the route needs it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

WALK_FLOW = f"{Path(__file__).with_name('walk_flow.py')}:flow"


def start_body(**input: Any) -> dict[str, Any]:
    return {"flow": WALK_FLOW, "input": input}


def flow_run(world: Any, tenant: Any, *, fail: bool = False) -> str:
    """A run of the tenant's that waits for approval at step `approve` (or, with `fail`, has failed)."""
    owner = tenant.keys["owner"]
    run_id: str = world.ok("POST", "/api/flows/runs", owner, json=start_body(fail=fail))["id"]
    deadline = time.monotonic() + 30
    while world.ok("GET", f"/api/flows/runs/{run_id}", owner)["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the walk's flow run did not settle"
        time.sleep(0.02)
    return run_id
