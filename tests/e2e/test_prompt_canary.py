"""A canary rollout end to end with the real server and the local model (smollm2-135m, temperature 0, a few
tokens): push two versions, split production 50/50 with a rollback rule on feedback, call through the official
`openai` client as 24 distinct end users, score the answers (the baseline's helpful, the candidate's not),
run `prompt canary-check`: the label is back on the baseline, the audit log says why, and every next call
uses the baseline. Also: the same user keeps the same version while the split stands, and `prompt stats`.

The server runs with its background monitor off (`canary_check_interval_s = 0`), so the rollback is the one
`canary-check` performs; the background monitor is tested in tests/prompts/test_canary.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from typer.testing import CliRunner, Result

from pilothouse import Pilothouse
from pilothouse.cli import common
from pilothouse.cli.main import app
from tests.e2e import AdminApi, assert_clean_log
from tests.support.servers import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model]

runner = CliRunner()
NAME = "support-answer"
PROMPT = """name: support-answer
model: smollm2-135m
temperature: 0
max_tokens: 6
variables:
  question: {{type: string}}
messages:
  - role: system
    content: {system}
  - role: user
    content: "{{{{ question }}}}"
"""
USERS = [f"user-{i}" for i in range(24)]


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`pilothouse up` with the local model and the background canary monitor off."""
    root = tmp_path_factory.mktemp("canary-server")
    config = root / "pilothouse.toml"
    config.write_text("canary_check_interval_s = 0\n", encoding="utf-8")
    srv = start_server(root / "data", config=config)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(common.console, "width", 250)
    for name in ("PILOTHOUSE_URL", "PILOTHOUSE_API_KEY", "PILOTHOUSE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def cli(server: RunningServer, *args: str) -> Result:
    result = runner.invoke(app, [*args, "--url", server.url, "--api-key", server.admin_key])
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.output
    return result


def cli_json(server: RunningServer, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json").stdout)


def ask(client: OpenAI, admin: AdminApi, user: str) -> tuple[str, int]:
    """One call as end user `user`; the trace id and the prompt version the trace records."""
    raw = client.chat.completions.with_raw_response.create(
        model=f"prompt:{NAME}@production",
        messages=[],
        user=user,
        extra_body={"variables": {"question": "How do I reset my password?"}},
    )
    assert raw.parse().choices[0].message.content  # the local model answered
    trace = admin.trace(raw.headers["x-pilothouse-trace-id"])
    assert trace["prompt_name"] == NAME and trace["status"] == "ok"
    return trace["id"], int(trace["prompt_version"])


def production_splits(admin: AdminApi) -> list[dict[str, Any]]:
    labels = admin.http.get(f"/api/prompts/{NAME}/labels").json()["data"]
    (label,) = [lbl for lbl in labels if lbl["name"] == "production"]
    splits: list[dict[str, Any]] = label["splits"]
    return splits


def test_a_worse_canary_is_rolled_back_by_canary_check(
    canary_server: RunningServer,
    openai_for: Any,
    admin_for: Any,
    tmp_path: Path,
) -> None:
    server = canary_server
    offset = len(server.log())
    client: OpenAI = openai_for(server)
    admin: AdminApi = admin_for(server)
    folder = tmp_path / "prompts"
    folder.mkdir()
    for system in ("You answer customer questions in one short sentence.", "You answer in riddles."):
        (folder / f"{NAME}.yaml").write_text(PROMPT.format(system=system), encoding="utf-8")
        cli(server, "prompt", "push", str(folder))
    assert production_splits(admin) == [{"version": 1, "weight": 100}]

    started = cli_json(
        server,
        "prompt", "canary", NAME, "production",
        "--baseline", "1", "--candidate", "2", "--weight", "50",
        "--rollback-on", "score:helpful", "--min-samples", "8",
    )  # fmt: skip
    assert started["status"] == "insufficient_samples"
    assert production_splits(admin) == [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]

    # traffic from 24 end users; feedback by the version each answer came from
    version_of: dict[str, int] = {}
    with Pilothouse(server.url, server.admin_key) as ph:
        for user in USERS:
            trace_id, version = ask(client, admin, user)
            version_of[user] = version
            ph.score(trace_id, "helpful", 1.0 if version == 1 else 0.0, comment=f"feedback from {user}")
        scored = ph.list_scores(name="helpful", limit=100)["data"]
    assert len(scored) == 24
    per_version = [list(version_of.values()).count(v) for v in (1, 2)]
    assert min(per_version) >= 8, per_version  # both arms have enough samples to judge
    # the CLI records feedback too (one more for the baseline's first user)
    first_baseline = next(u for u, v in version_of.items() if v == 1)
    trace_id, _ = ask(client, admin, first_baseline)
    added = cli_json(server, "scores", "add", trace_id, "helpful", "1", "--comment", "great")
    assert added["value"] == 1.0 and added["comment"] == "great"
    listed = cli_json(server, "scores", "list", "--trace", trace_id)
    assert [s["id"] for s in listed["data"]] == [added["id"]]

    # sticky: while the split stands, each user keeps their version
    for user in USERS[:8]:
        assert ask(client, admin, user)[1] == version_of[user]

    looked = cli_json(server, "prompt", "canary-check", NAME, "production", "--dry-run")
    assert looked["status"] == "worse" and not looked["rolled_back"]
    assert len(production_splits(admin)) == 2
    status = cli_json(server, "prompt", "canary", "status", NAME, "production")
    assert status["decision"]["decision"] == "rollback" and status["decision"]["interval"]["upper"] < 0
    shown = cli(server, "prompt", "canary", "status", NAME, "production").stdout
    assert "always-valid interval" in shown and "mSPRT" in shown and "worse" in shown
    assert len(production_splits(admin)) == 2  # status only looks

    checked = cli(server, "prompt", "canary-check", NAME, "production").stdout
    assert "ROLLED BACK" in checked and "score:helpful" in checked and "rolled back to v1" in checked

    assert production_splits(admin) == [{"version": 1, "weight": 100}]
    events = admin.http.get("/api/audit", params={"limit": 1000}).json()["data"]
    (event,) = [e for e in events if e["action"] == "prompt.canary.rollback"]
    reason = event["details"]["reason"]
    assert event["target"] == f"prompt:{NAME}@production"
    assert event["details"]["to"] == [{"version": 1, "weight": 100}]
    for part in ("score:helpful", "candidate v2", "baseline v1", "mSPRT", "p = "):
        assert part in reason, f"{part!r} not in {reason!r}"
    decision = event["details"]["decision"]
    assert decision["decision"] == "rollback" and decision["min_samples"] == 8
    assert decision["samples"]["baseline"] >= 8 and decision["samples"]["candidate"] >= 8
    assert admin.http.get("/api/audit/verify").json()["ok"] is True

    # every next call, the candidate's users included, uses the baseline
    assert {ask(client, admin, user)[1] for user in USERS} == {1}

    stats = cli_json(server, "prompt", "stats", NAME, "--since", "1h")
    totals = {v["version"]: v["total"] for v in stats["versions"]}
    assert totals[1]["scores"]["helpful"]["mean"] == 1.0 and totals[2]["scores"]["helpful"]["mean"] == 0.0
    assert sum(t["calls"] for t in totals.values()) == 24 + 1 + 8 + 24
    assert totals[1]["latency_ms"]["p50"] > 0 and totals[1]["output_tokens_mean"] > 0
    assert totals[1]["error_rate"] == 0 and totals[1]["cost_per_call_usd"] == "0"
    table = cli(server, "prompt", "stats", NAME).stdout
    assert "v1" in table and "v2" in table and "helpful" in table
    assert_clean_log(server, offset)
