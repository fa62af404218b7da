"""`pilothouse cache explain` and per-project thresholds end to end: `pilothouse up` with the semantic cache on
and the local model, the real CLI in a subprocess, the SDK, the HTTP API and the official `openai` client.

A project of its own gets a threshold low enough for a paraphrase that misses at the default; the explanation,
the hit, a refusal and the spans all say which threshold applied and what the contrast check decided; the
changes are audited; bad input and roles are refused with a clear 4xx.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from pilothouse import Pilothouse, PilothouseError
from tests.e2e import assert_clean_log, only_span
from tests.e2e.test_cache import CACHE, TRACE, ask, cache_config, messages
from tests.support.servers import REPO, RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model]

DEFAULT = 0.9  # cache_config's threshold
CACHED = "How do I reset my password?"
PARAPHRASES = (  # rewordings below the default threshold (MiniLM: 0.83, 0.61, 0.87)
    "Could you help me reset my password please?",
    "how do i reset my pasword",
    "What are the steps to change my password if I forgot it?",
)
OPPOSITE = "How do I disable dark mode?"
ENABLE = "How do I enable dark mode?"


@dataclass
class Project:
    server: RunningServer
    name: str
    keys: dict[str, str]
    clients: dict[str, Pilothouse] = field(default_factory=dict)

    def cli(self, *args: str, role: str = "admin") -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
        cmd = [sys.executable, "-m", "pilothouse", *args, "--url", self.server.url, "--api-key", self.keys[role]]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)

    def ok(self, *args: str, role: str = "admin") -> str:
        result = self.cli(*args, role=role)
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def sdk(self, role: str = "admin") -> Pilothouse:
        """The SDK client with this project's key of `role` (one per role, closed with the project)."""
        if role not in self.clients:
            self.clients[role] = Pilothouse(self.server.url, self.keys[role])
        return self.clients[role]

    def close(self) -> None:
        for ph in self.clients.values():
            ph.close()

    def attributes(self, trace_id: str, kind: str) -> dict[str, Any]:
        """The attributes of the one span of `kind` on a trace of this project."""
        found: dict[str, Any] = only_span(self.sdk("developer").get_trace(trace_id), kind)["attributes"]
        return found


@pytest.fixture(scope="module")
def explain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("cache-explain")
    srv = start_server(root / "data", config=cache_config(root / "pilothouse.toml", semantic=True))
    offset = len(srv.log())
    yield srv
    assert_clean_log(srv, offset)
    srv.stop()


@pytest.fixture(scope="module")
def project(explain_server: RunningServer) -> Iterator[Project]:
    name = f"explain-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {explain_server.admin_key}"}
    with httpx.Client(base_url=explain_server.url, headers=admin, timeout=30) as http:
        assert http.post("/api/projects", json={"name": name}).status_code == 201
        keys = {}
        for role in ("service", "developer", "admin"):
            resp = http.post("/api/keys", json={"name": f"{role}-key", "role": role, "project": name})
            assert resp.status_code == 201, resp.text
            keys[role] = resp.json()["secret"]
    found = Project(explain_server, name, {**keys, "owner": explain_server.admin_key})
    yield found
    found.close()


def test_cli_explains_a_paraphrase_and_a_refused_opposite(project: Project) -> None:
    hit = project.ok("cache", "explain", "How can I enable dark mode?", ENABLE, role="developer")
    lines = dict(line.split(None, 1) for line in hit.strip().splitlines())
    assert float(lines["similarity"]) >= DEFAULT
    assert lines["threshold"] == f"{DEFAULT:g} (the default)"
    assert lines["contrast"] == "passes" and lines["answer"] == "would hit"

    refused = project.ok("cache", "explain", OPPOSITE, ENABLE, role="developer")
    lines = dict(line.split(None, 1) for line in refused.strip().splitlines())
    assert float(lines["similarity"]) >= DEFAULT  # the embedding alone would answer the opposite question
    assert lines["contrast"].startswith("refuses (") and "disable" in lines["contrast"]
    assert lines["answer"].startswith("would not hit: the contrast check refuses it (")

    found = json.loads(project.ok("cache", "explain", OPPOSITE, ENABLE, "--json", role="developer"))
    assert found["decision"] == "refused" and found["would_hit"] is False and found["semantic_cache"] == "on"
    assert found["contrast"]["ok"] is False and found["contrast"]["kind"]
    assert found["threshold_source"] == "default" and found["default_threshold"] == DEFAULT


def test_a_project_threshold_makes_a_paraphrase_hit_and_is_on_every_span(
    project: Project, openai_for: Callable[..., OpenAI]
) -> None:
    explained = [project.sdk("developer").cache.explain(text, CACHED) for text in PARAPHRASES]
    # the first the contrast check passes (explain checks below the threshold too)
    paraphrase, before = next((t, e) for t, e in zip(PARAPHRASES, explained, strict=True) if e["contrast"]["ok"])
    similarity = before["similarity"]
    assert before["decision"] == "below_threshold" and 0.5 < similarity < DEFAULT, before
    assert before["answer"].startswith("would not hit: similarity ")
    lowered = max(0.5, math.floor(similarity * 100) / 100 - 0.01)

    shown = project.ok("cache", "threshold", "set", str(lowered), "--project", project.name)
    assert f"{lowered:g} for project" in shown and "(was the default)" in shown
    shown = project.ok("cache", "threshold", "show", role="developer")
    assert f"{lowered:g} for project" in shown and "(its own, set by " in shown and f"default is {DEFAULT:g})" in shown
    after = project.sdk("developer").cache.explain(paraphrase, CACHED)
    assert after["threshold"] == lowered and after["threshold_source"] == "project" and after["would_hit"]

    oai = openai_for(project.server, project.keys["service"])
    system = messages("")[0]
    _, first = ask(oai, [system, {"role": "user", "content": CACHED}])
    assert first[CACHE] == "miss"
    attrs = project.attributes(first[TRACE], "llm")
    assert attrs["pilothouse.cache.semantic.threshold"] == lowered
    assert attrs["pilothouse.cache.contrast.decision"] == "below_threshold"

    _, second = ask(oai, [system, {"role": "user", "content": paraphrase}])
    assert second[CACHE] == "hit" and second[CACHE + "-kind"] == "semantic"
    attrs = project.attributes(second[TRACE], "cache")
    assert attrs["pilothouse.cache.semantic.threshold"] == lowered
    assert attrs["pilothouse.cache.semantic.score"] == pytest.approx(similarity, abs=1e-3)
    assert attrs["pilothouse.cache.contrast.decision"] == "hit"

    _, third = ask(oai, [system, {"role": "user", "content": "How do I not reset my password?"}])
    assert third[CACHE] == "miss"
    attrs = project.attributes(third[TRACE], "llm")
    assert attrs["pilothouse.cache.contrast.decision"] == "refused"
    assert attrs["pilothouse.cache.contrast.reason"] and attrs["pilothouse.cache.contrast.kind"]

    cleared = project.ok("cache", "threshold", "clear", "--project", project.name)
    assert f"cleared {lowered:g}" in cleared
    assert "(the default; no threshold of its own)" in project.ok("cache", "threshold", "show", role="developer")


def test_threshold_changes_are_audited_and_validated(project: Project) -> None:
    owner = project.sdk("owner")
    owner.cache.set_threshold(0.95, project=project.name)  # an owner acting in another project
    view = project.sdk("developer").cache.threshold()
    assert view["threshold"] == 0.95 and view["source"] == "project" and view["default"] == DEFAULT
    assert project.sdk("admin").cache.clear_threshold()["changed"] is True
    assert project.sdk("admin").cache.clear_threshold()["changed"] is False  # nothing left: no change, no event

    events = project.sdk("admin").audit_events(action=["cache.threshold.set", "cache.threshold.clear"])
    mine = [e for e in events if e["details"].get("threshold") == 0.95 or e["details"].get("previous") == 0.95]
    assert [e["action"] for e in mine][-2:] == ["cache.threshold.set", "cache.threshold.clear"]
    assert mine[-2]["details"]["cross_project"] is True
    assert owner.verify_audit()["ok"] is True

    low = project.cli("cache", "threshold", "set", "0.3")
    assert low.returncode == 1 and "greater than or equal to 0.5" in low.stderr, low.stderr
    with pytest.raises(PilothouseError) as err:
        project.sdk("admin").cache.set_threshold(1.5)
    assert err.value.status == 422 and "less than or equal to 1" in err.value.message
    with pytest.raises(PilothouseError) as err:
        project.sdk("developer").cache.set_threshold(0.9)
    assert err.value.status == 403


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"question": "", "cached": CACHED}, "question"),
        ({"question": "   ", "cached": CACHED}, "question"),
        ({"question": CACHED, "cached": 42}, "valid string"),
        ({"question": CACHED}, "cached: Field required"),
        ({"question": "x" * 8001, "cached": CACHED}, "at most 8000 characters"),
        ({"question": CACHED, "cached": CACHED, "extra": 1}, "extra"),
    ],
)
def test_bad_explain_input_is_a_422_naming_the_field(project: Project, body: dict[str, Any], says: str) -> None:
    headers = {"Authorization": f"Bearer {project.keys['developer']}"}
    resp = httpx.post(project.server.url + "/api/cache/explain", json=body, headers=headers, timeout=30)
    assert resp.status_code == 422, resp.text
    assert says in resp.json()["error"]["message"]


def test_explain_needs_the_developer_role_and_stays_in_the_project(project: Project) -> None:
    with pytest.raises(PilothouseError) as err:
        project.sdk("service").cache.explain(ENABLE, ENABLE)
    assert err.value.status == 403
    with pytest.raises(PilothouseError) as err:
        project.sdk("developer").cache.explain(ENABLE, ENABLE, project="default")
    assert err.value.status == 403 and err.value.body["error"]["code"] == "cross_project_forbidden"
    same = project.sdk("developer").cache.explain(ENABLE, ENABLE)
    assert same["similarity"] == pytest.approx(1.0, abs=1e-4) and same["would_hit"] is True


def test_cache_help_lists_the_commands(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pilothouse", "cache", "threshold", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0 and all(word in out.stdout for word in ("show", "set", "clear"))
