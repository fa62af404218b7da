"""`pilothouse cost report` and `pilothouse cost estimate` as a user runs them, against `pilothouse up` with
the local model: calls made with the official `openai` client (some streamed, some through a registered
prompt) show up in the report with their tokens and time to first token, and the estimates count the local
model's input tokens exactly (the same count the gateway bills) and take answer lengths from that history.
The module works in a project of its own on the session server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from openai import OpenAI

from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.tokens import estimate_messages_tokens
from tests.e2e import assert_clean_log
from tests.support.servers import REPO, RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]

LOCAL = "smollm2-135m"
PROMPT = """\
name: cost-greeting
model: smollm2-135m
temperature: 0
max_tokens: 12
variables:
  customer: {type: string}
messages:
  - role: system
    content: You greet customers in one short sentence.
  - role: user
    content: "Say hello to {{ customer }}."
"""
QUESTIONS = ["What is a pilothouse?", "Name a colour.", "Count to three.", "Say yes.", "What is 2 + 2?"]


@dataclass
class Usage:
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)


@dataclass
class Project:
    server: RunningServer
    name: str
    keys: dict[str, str]
    plain: Usage = field(default_factory=Usage)
    """The calls with plain messages (QUESTIONS, in order)."""
    prompted: Usage = field(default_factory=Usage)
    """The calls through the prompt."""

    def cli(self, *args: str, role: str = "developer") -> subprocess.CompletedProcess[str]:
        """`python -m pilothouse ARGS --url ... --api-key ...` in a real process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}
        cmd = [sys.executable, "-m", "pilothouse", *args, "--url", self.server.url, "--api-key", self.keys[role]]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)

    def ok(self, *args: str, role: str = "developer") -> str:
        result = self.cli(*args, role=role)
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def json(self, *args: str, role: str = "developer") -> Any:
        return json.loads(self.ok(*args, "--json", role=role))

    def fails(self, *args: str, role: str = "developer") -> str:
        result = self.cli(*args, role=role)
        assert result.returncode == 1, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        return result.stderr


def messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def chat(client: OpenAI, usage: Usage, *, stream: bool, **body: Any) -> None:
    """One call; records the usage the gateway reported."""
    if stream:
        chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **body))
        final = chunks[-1].usage
    else:
        final = client.chat.completions.create(**body).usage
    assert final is not None
    usage.prompt_tokens.append(final.prompt_tokens)
    usage.completion_tokens.append(final.completion_tokens)


@pytest.fixture(scope="module")
def project(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A fresh project: a prompt pushed, 5 plain calls (2 streamed) and 3 calls through the prompt."""
    offset = len(server.log())
    name = f"costs-{uuid.uuid4().hex[:8]}"
    admin = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=admin, timeout=30) as http:
        assert http.post("/api/projects", json={"name": name}).status_code == 201
        keys = {}
        for role in ("admin", "developer", "viewer"):
            resp = http.post("/api/keys", json={"name": f"{role}-key", "role": role, "project": name})
            assert resp.status_code == 201, resp.text
            keys[role] = resp.json()["secret"]
    keys["owner"] = server.admin_key  # the bootstrap key: an owner, of the default project
    found = Project(server, name, keys)
    folder = tmp_path_factory.mktemp("cost-prompts")
    (folder / "cost-greeting.yaml").write_text(PROMPT)
    found.ok("prompt", "push", str(folder))

    client = OpenAI(base_url=server.base_url, api_key=keys["developer"], max_retries=0, timeout=60.0)
    try:
        for i, question in enumerate(QUESTIONS):
            chat(client, found.plain, stream=i in (1, 3), model=LOCAL, messages=messages(question), max_tokens=8)
        for i, customer in enumerate(["Ada", "Bo", "Cy"]):
            chat(
                client,
                found.prompted,
                stream=i == 0,
                model="prompt:cost-greeting",
                messages=[],
                extra_body={"variables": {"customer": customer}},
            )
    finally:
        client.close()
    yield found
    assert_clean_log(server, offset)


def test_report_by_model_shows_the_calls(project: Project) -> None:
    report = project.json("cost", "report", "--by", "model", "--since", "1h")
    assert [g["group"] for g in report["groups"]] == [LOCAL]
    group = report["groups"][0]
    every = [*project.plain.prompt_tokens, *project.prompted.prompt_tokens]
    answers = [*project.plain.completion_tokens, *project.prompted.completion_tokens]
    assert group["requests"] == 8 and group["errors"] == 0 and group["error_rate"] == 0
    assert group["input_tokens"] == sum(every) and group["output_tokens"] == sum(answers)
    assert group["cost_usd"] == "0" and group["unpriced_calls"] == 0  # the local model is free
    assert group["ttft_ms"]["samples"] == 3 and group["ttft_ms"]["p50"] > 0  # the streamed calls
    latency = group["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
    assert group["llm_calls"] == 8 and group["output_tokens_per_s"] > 0
    assert report["models"][0]["model"] == LOCAL and report["total"]["requests"] == 8

    # piped (a real process's stdout is a pipe): `| grep smollm2-135m` finds the whole row on one line
    table = project.ok("cost", "report", "--by", "model", "--since", "1h")
    lines = table.splitlines()
    assert lines[0].startswith("# Cost by model since ") and lines[1].startswith("group\trequests\terrors\t")
    [row] = [line.split("\t") for line in lines if LOCAL in line]
    assert row[:2] == [LOCAL, "8"] and len(row) == len(lines[1].split("\t"))
    assert any(line.startswith("total\t8\t") for line in lines)


def test_report_by_key_prompt_and_user(project: Project) -> None:
    by_key = project.json("cost", "report", "--by", "key", "--since", "1h")
    assert [(g["name"], g["requests"]) for g in by_key["groups"]] == [("developer-key", 8)]
    by_prompt = project.json("cost", "report", "--by", "prompt", "--since", "1h")
    assert {g["group"]: g["requests"] for g in by_prompt["groups"]} == {"cost-greeting": 3, None: 5}
    table = project.ok("cost", "report", "--by", "prompt")
    assert "# Speed per model" in table.splitlines() and "(none)\t5\t" in table
    later = project.json("cost", "report", "--since", "2099-01-01T00:00:00Z")
    assert later["groups"] == [] and later["total"]["requests"] == 0


def test_report_scope_and_errors(project: Project) -> None:
    assert "needs the 'owner' role" in project.fails("cost", "report", "--project", "all", role="viewer")
    mine = project.json("cost", "report", "--project", project.name, "--since", "1h", role="viewer")
    assert mine["total"]["requests"] == 8  # a key may name its own project
    assert "needs the 'owner' role" in project.fails("cost", "report", "--project", "default", role="viewer")
    # a project's admin reports on its own project only; another one is refused whether it exists or not
    assert "needs the 'owner' role" in project.fails("cost", "report", "--project", "default", role="admin")
    assert "needs the 'owner' role" in project.fails("cost", "report", "--project", "no-such-project", role="admin")
    assert "does not exist" in project.fails("cost", "report", "--project", "no-such-project", role="owner")
    everything = project.json("cost", "report", "--project", "all", "--by", "project", role="owner")
    assert project.name in {g["name"] for g in everything["groups"]}
    theirs = project.json("cost", "report", "--project", project.name, "--since", "1h", role="owner")
    assert theirs["total"]["requests"] == 8
    assert "--by must be one of" in project.fails("cost", "report", "--by", "team")
    assert "'since'" in project.fails("cost", "report", "--since", "last tuesday")


def test_estimate_a_request_file(project: Project, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    lines = [json.dumps({"model": "anything", "messages": messages(q), "max_tokens": 8}) for q in QUESTIONS]
    requests.write_text("\n".join(lines) + "\n\n")
    result = project.json(
        "cost", "estimate", "--file", str(requests), "--model", LOCAL, "--model", "gpt-4o-mini",
        "--output-tokens", "100",
    )  # fmt: skip
    assert result["requests"] == 5 and result["prompt"] is None
    local, mini = result["estimates"]

    # exact: the same count the gateway billed for these very messages
    assert local["input_tokens"]["counting"] == "exact"
    assert local["input_tokens"]["total"] == sum(project.plain.prompt_tokens)
    history = [*project.plain.completion_tokens, *project.prompted.completion_tokens]
    out = local["output_tokens"]
    assert out["source"] == "history" and out["samples"] == 8
    assert out["p50"] == int(np.ceil(np.percentile(history, 50)))
    assert out["p95"] == int(np.ceil(np.percentile(history, 95)))
    assert local["price"]["source"] == "local" and local["cost_usd"]["high"] == "0"

    assert not mini["served"] and mini["input_tokens"]["counting"] == "estimated"
    estimated = sum(estimate_messages_tokens(messages(q)) for q in QUESTIONS)
    assert mini["input_tokens"]["total"] == estimated
    assert mini["output_tokens"]["source"] == "default" and mini["output_tokens"]["low_total"] == 5 * 8  # max_tokens
    price = default_price_book().catalog_price("openai", "gpt-4o-mini")
    assert price is not None and mini["price"]["source"] == "catalog"
    assert Decimal(mini["cost_usd"]["low"]) == (estimated * price.input + 40 * price.output) / 1_000_000
    assert any("priced from the price catalog" in n for n in mini["notes"])

    table = project.ok("cost", "estimate", "--file", str(requests), "--model", LOCAL, "--model", "gpt-4o-mini")
    assert "Estimate for 5 requests" in table and "(exact)" in table and "(estimated)" in table
    assert "gpt-4o-mini: input tokens are estimated (no tokenizer for this model here)" in table


def test_a_large_file_is_sent_in_parts_and_added_up(project: Project, tmp_path: Path) -> None:
    requests = tmp_path / "batch.jsonl"
    repeats = 420  # 2,100 lines: three parts (1,000 + 1,000 + 100)
    lines = [json.dumps({"messages": messages(q), "max_tokens": 8}) for q in QUESTIONS] * repeats
    requests.write_text("\n".join(lines))
    result = project.json("cost", "estimate", "--file", str(requests), "--model", LOCAL, "--model", "gpt-4o-mini")
    assert result["requests"] == 2100
    local, mini = result["estimates"]
    assert local["requests"] == mini["requests"] == 2100
    assert local["input_tokens"]["total"] == repeats * sum(project.plain.prompt_tokens)
    assert mini["input_tokens"]["total"] == repeats * sum(estimate_messages_tokens(messages(q)) for q in QUESTIONS)
    assert mini["output_tokens"]["low_total"] == 2100 * 8
    price = default_price_book().catalog_price("openai", "gpt-4o-mini")
    assert price is not None
    expected = (mini["input_tokens"]["total"] * price.input + 2100 * 8 * price.output) / 1_000_000
    assert Decimal(mini["cost_usd"]["low"]) == expected

    lines[1500] = json.dumps({"messages": "hello"})
    requests.write_text("\n".join(lines))
    assert "requests[1500]" in project.fails("cost", "estimate", "--file", str(requests), "--model", LOCAL)


def test_estimate_a_prompt_uses_its_history(project: Project, tmp_path: Path) -> None:
    result = project.json(
        "cost", "estimate", "--prompt", "cost-greeting", "--var", "customer=Ada", "-n", "1000",
        "--model", LOCAL, "--model", "gpt-4o-mini",
    )  # fmt: skip
    assert result["requests"] == 1000 and result["prompt"] == {"name": "cost-greeting", "version": 1}
    local, mini = result["estimates"]
    assert local["input_tokens"]["total"] == 1000 * project.prompted.prompt_tokens[0]  # Ada's call, counted exactly
    out = local["output_tokens"]
    assert out["source"] == "history" and out["samples"] == 3
    assert out["history"] == f"calls of prompt cost-greeting on {LOCAL}"
    assert out["p50"] == int(np.ceil(np.percentile(project.prompted.completion_tokens, 50)))
    assert out["worst_total"] == 1000 * 12  # the prompt's max_tokens
    assert mini["output_tokens"]["source"] == "default"

    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"customer": "Ada"}))
    own_model = project.json("cost", "estimate", "--prompt", "cost-greeting@1", "--variables", str(variables))
    assert [e["model"] for e in own_model["estimates"]] == [LOCAL]
    assert own_model["estimates"][0]["input_tokens"]["total"] == project.prompted.prompt_tokens[0]
    table = project.ok("cost", "estimate", "--prompt", "cost-greeting", "--var", "customer=Bo", "-n", "10")
    assert "Estimate for 10 calls of prompt cost-greeting@1" in table


def test_estimate_errors(project: Project, tmp_path: Path) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"model": "x", "messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    assert "requests.jsonl:2: not JSON" in project.fails("cost", "estimate", "--file", str(requests))
    assert "either --prompt" in project.fails("cost", "estimate")
    assert "missing required variable 'customer'" in project.fails("cost", "estimate", "--prompt", "cost-greeting")
    assert "-n, --variables and --var apply to --prompt" in project.fails(
        "cost", "estimate", "--file", str(requests), "-n", "3"
    )
    requests.write_text('{"messages": [{"role": "user"}]}\n')
    assert "requests[0]" in project.fails("cost", "estimate", "--file", str(requests), "--model", LOCAL)
