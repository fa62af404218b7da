"""The issue's acceptance check: the approval demo and its documented commands, with the real CLI in a
subprocess against a real server (`pilothouse up`, SQLite, the bundled model)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.flows.faces.route_walk import WALK_FLOW
from tests.support.servers import REPO, RunningServer

DEMO = "examples/flows/approval_demo.py:flow"


def cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.env, "PILOTHOUSE_URL": server.url, "PILOTHOUSE_API_KEY": server.admin_key}
    return subprocess.run(
        [sys.executable, "-m", "pilothouse", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=240
    )


def ok(server: RunningServer, *args: str) -> str:
    result = cli(server, *args)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_documented_commands_pause_for_approval_then_pay_once(server: RunningServer) -> None:
    started = json.loads(ok(server, "flow", "run", DEMO, "--input", '{"amount": 120}', "--json"))
    run_id = started["id"]
    assert started["status"] == "waiting_for_approval" and started["next_steps"] == ["approve"]
    assert started["state"]["summary"]  # the bundled model answered

    approved = json.loads(ok(server, "flow", "approve", run_id, "--step", "approve", "--json"))
    assert approved["status"] == "succeeded", approved
    receipt = approved["state"]["receipt"]
    assert receipt["amount"] == 120 and receipt["repeated"] is False

    shown = ok(server, "flow", "show", run_id)
    for expected in ("check", "summarise", "approve", "pay", "'needs_approval' -> approve", "approved by"):
        assert expected in shown, shown
    path = json.loads(ok(server, "flow", "show", run_id, "--json"))["path"]
    assert [(p["step"], p["status"]) for p in path] == [
        ("check", "succeeded"),
        ("summarise", "succeeded"),
        ("approve", "waiting"),
        ("approve", "approved"),  # the person's decision (audited)
        ("approve", "succeeded"),  # the step resumed with it
        ("pay", "succeeded"),
    ]

    ledger = [json.loads(line) for line in (Path(server.data_dir) / "refunds.jsonl").read_text().splitlines()]
    assert [p["receipt"] for p in ledger if run_id in p["key"]] == [receipt["receipt"]]  # paid exactly once

    auth = {"authorization": f"Bearer {server.admin_key}"}
    events = httpx.get(f"{server.url}/api/audit", params={"action": "flow.approve"}, headers=auth).json()["data"]
    assert any(e["target"] == run_id for e in events)
    spans: dict[str, str] = {}
    wanted = {"check", "summarise", "approve", "pay", "refund_payment"}
    deadline = time.monotonic() + 20  # the trace is written in parts, a batch at a time
    while not wanted <= set(spans) and time.monotonic() < deadline:
        time.sleep(0.2)
        found = httpx.get(f"{server.url}/api/traces/{approved['trace_id']}", headers=auth)
        spans = {s["name"]: s["kind"] for s in found.json().get("spans", [])} if found.status_code == 200 else {}
    assert wanted <= set(spans), spans  # every step a span of the run's trace, and the tool call its own span
    assert spans["pay"] == "step" and spans["refund_payment"] == "tool", spans
    listed = json.loads(ok(server, "flow", "list", "--flow", "refund", "--json"))
    assert run_id in [r["id"] for r in listed]


def test_a_small_refund_needs_no_approval(server: RunningServer) -> None:
    done = json.loads(ok(server, "flow", "run", DEMO, "--input", '{"amount": 20}', "--json"))
    assert done["status"] == "succeeded"
    path = json.loads(ok(server, "flow", "show", done["id"], "--json"))["path"]
    assert [p["step"] for p in path] == ["check", "summarise", "pay"]
    assert path[1]["decision"] == {"condition": "condition", "value": "small", "to": "pay"}


def test_mistakes_are_one_clear_line(server: RunningServer) -> None:
    bad_json = cli(server, "flow", "run", DEMO, "--input", "{amount")
    assert bad_json.returncode == 2 and "--input is not valid JSON" in bad_json.stderr
    bad_input = cli(server, "flow", "run", DEMO, "--input", '{"amount": -5}')
    assert bad_input.returncode == 1 and "amount" in bad_input.stderr and "Traceback" not in bad_input.stderr
    no_file = cli(server, "flow", "run", "examples/flows/nope.py:flow")
    assert no_file.returncode == 2 and "no such file" in no_file.stderr
    waiting = json.loads(ok(server, "flow", "run", WALK_FLOW, "--json"))
    wrong = cli(server, "flow", "approve", waiting["id"], "--step", "first")
    assert wrong.returncode == 1 and "waiting at step 'approve'" in wrong.stderr
    edited = cli(server, "flow", "approve", waiting["id"], "--step", "approve", "--state", '{"fail": "maybe"}')
    assert edited.returncode == 1 and "edited state is not valid: fail" in edited.stderr, edited.stderr
    assert "Traceback" not in edited.stderr
