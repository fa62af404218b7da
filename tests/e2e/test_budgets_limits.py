"""Budgets, rate limits, max_tokens caps and loop guards end to end: the official `openai` client against
`pilothouse up` with its limit state in Redis (PILOTHOUSE_REDIS_URL), managed through the CLI and the SDK.

The local model costs nothing by default; the configuration prices it at 1,000 USD per 1M tokens (0.1 cent a
token), so a short request with max_tokens 8 costs a few cents and a budget of 10 cents runs out quickly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from typer.testing import CliRunner

from pilothouse import Pilothouse
from pilothouse.cli import common
from pilothouse.cli.main import app
from tests.conftest import REDIS_URL
from tests.e2e import AdminApi, assert_clean_log, only_span
from tests.support.limits import CHAT, delete_prefix, new_prefix, priced_config, require_redis
from tests.support.servers import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.redis]

PRICE = Decimal(1000)  # USD per 1M tokens, input and output
TOKEN = PRICE / 10**6
HELLO = [{"role": "user", "content": "Say hello."}]
runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for the module, its limit state in Redis under a fresh prefix (deleted afterwards)."""
    redis = require_redis()
    prefix = new_prefix()
    root = tmp_path_factory.mktemp("limits")
    config = priced_config(root / "pilothouse.toml", prefix=prefix, price_per_mtok=PRICE, run_max_repeats=3)
    srv = start_server(root / "data", config=config, extra_env={"PILOTHOUSE_REDIS_URL": REDIS_URL})
    yield srv
    srv.stop()
    delete_prefix(redis, prefix)
    redis.close()


@pytest.fixture(scope="module", autouse=True)
def clean_log(server: RunningServer) -> Iterator[None]:
    offset = len(server.log())
    yield
    assert_clean_log(server, offset)


@pytest.fixture
def ph(server: RunningServer) -> Iterator[Pilothouse]:
    with Pilothouse(server.url, server.admin_key) as client:
        yield client


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common.console, "width", 250)


def cli(server: RunningServer, *args: str) -> Any:
    """Run `pilothouse ARGS --json` against the server; returns the parsed output."""
    result = runner.invoke(app, [*args, "--url", server.url, "--api-key", server.admin_key, "--json"])
    assert result.exit_code == 0, f"exit {result.exit_code}\n{result.output}"
    return json.loads(result.stdout)


def new_key(ph: Pilothouse, name: str) -> tuple[str, str]:
    key = ph.create_key(name, role="service")
    return key["id"], key["secret"]


def budget_row(ph: Pilothouse, budget_id: str) -> dict[str, Any]:
    [row] = [b for b in ph.list_budgets() if b["id"] == budget_id]
    return row


def audit(ph: Pilothouse, action: str) -> list[dict[str, Any]]:
    return [e for e in ph.audit_events(limit=1000) if e["action"] == action]


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict), body
    return body


# ------------------------------------------------------------------------------------------------ budgets


def test_hard_budget_refuses_with_a_429_that_names_it(
    server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI], admin_for: Callable[..., AdminApi]
) -> None:
    key_id, secret = new_key(ph, "budgeted")
    budget = cli(server, "budgets", "set", "--key", key_id, "--usd", "0.1", "--period", "day", "--hard")
    assert budget["created"] is True and budget["limit_usd"] == "0.1" and budget["spent_usd"] == "0"
    client = openai_for(server, secret)
    admitted: list[tuple[int, int]] = []  # (input tokens, output tokens) of each call that went through
    refusal: openai.RateLimitError | None = None
    for _ in range(12):
        try:
            completion = client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=8)  # type: ignore[arg-type]
        except openai.RateLimitError as exc:
            refusal = exc
            break
        assert completion.usage is not None
        admitted.append((completion.usage.prompt_tokens, completion.usage.completion_tokens))
    assert refusal is not None, "the budget never refused"
    error = error_of(refusal)
    message = error["message"]
    assert error["code"] == "budget_exceeded" and error["type"] == "rate_limit_error"
    assert f"the daily hard budget of $0.10 for key {key_id} ({budget['id']})" in message
    assert " spent" in message and "resets at" in message and "00:00 UTC" in message
    headers = refusal.response.headers
    assert 0 < int(headers["retry-after"]) <= 86_400 and headers["x-should-retry"] == "false"

    row = cli(server, "budgets", "list")
    [row] = [r for r in row if r["id"] == budget["id"]]
    spent = Decimal(row["spent_usd"])
    worst = (max(i for i, _ in admitted) + 8) * TOKEN  # input tokens + max_tokens, at the price
    assert spent == sum(i + o for i, o in admitted) * TOKEN  # settled at the actual cost of each call
    assert Decimal("0.1") <= spent <= Decimal("0.1") + worst
    assert row["reserved_usd"] == "0" and row["remaining_usd"] == "0" and row["exceeded"] is True

    trace = admin_for(server).trace(headers["x-pilothouse-trace-id"])
    assert trace["status"] == "error" and trace["api_key_id"] == key_id
    guard = only_span(trace, "guard")
    assert guard["status"] == "error" and guard["error"] == message
    assert guard["attributes"]["pilothouse.limits.budget_id"] == budget["id"]
    [event] = [e for e in audit(ph, "budget.refused") if e["details"]["trace_id"] == trace["id"]]
    assert event["target"] == budget["id"] and event["actor"] == key_id
    assert event["details"]["limit_usd"] == "0.1" and Decimal(event["details"]["spent_usd"]) == spent


def test_soft_budget_alerts_once_and_requests_go_on(
    server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI]
) -> None:
    budget = cli(server, "budgets", "set", "--user", "soft-user", "--usd", "0.01", "--period", "month", "--soft")
    client = openai_for(server)
    for _ in range(3):
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=2, user="soft-user")  # type: ignore[arg-type]
    row = budget_row(ph, budget["id"])
    assert row["mode"] == "soft" and Decimal(row["spent_usd"]) > Decimal("0.01")
    events = [e for e in audit(ph, "budget.soft_exceeded") if e["target"] == budget["id"]]
    assert len(events) == 1 and events[0]["details"]["subject"] == "soft-user"
    assert "soft budget exceeded" in server.log()


def test_streams_settle_their_actual_cost_even_when_abandoned(
    server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI], admin_for: Callable[..., AdminApi]
) -> None:
    key_id, secret = new_key(ph, "streamer")
    budget = ph.set_budget("key", key_id, usd=5, period="total")
    client = openai_for(server, secret)
    with client.chat.completions.with_streaming_response.create(
        model=CHAT,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=12,
        stream=True,
    ) as response:
        trace_id = response.headers["x-pilothouse-trace-id"]
        assert list(response.parse())
    whole = admin_for(server).trace(trace_id)
    row = budget_row(ph, budget["id"])
    assert Decimal(row["spent_usd"]) == Decimal(whole["cost_usd"]) > 0 and row["reserved_usd"] == "0"

    long = [{"role": "user", "content": "Count from 1 to 300, one number per line."}]
    with httpx.stream(
        "POST",
        server.base_url + "/chat/completions",
        json={"model": CHAT, "messages": long, "max_tokens": 400, "stream": True},
        headers={"authorization": f"Bearer {secret}"},
        timeout=60,
    ) as stream:
        trace_id = stream.headers["x-pilothouse-trace-id"]
        for _, _line in zip(range(6), stream.iter_lines(), strict=False):
            pass  # read a few events, then hang up
    cut = admin_for(server).trace(trace_id, wait_s=10)
    assert cut["status"] == "error" and 0 < cut["output_tokens"] < 400
    deadline = time.monotonic() + 10
    while budget_row(ph, budget["id"])["reserved_usd"] != "0" and time.monotonic() < deadline:
        time.sleep(0.1)
    row = budget_row(ph, budget["id"])
    assert row["reserved_usd"] == "0"  # settled: the reservation for 400 tokens is gone
    assert Decimal(row["spent_usd"]) == Decimal(whole["cost_usd"]) + Decimal(cut["cost_usd"])


def test_a_new_budget_starts_with_what_was_spent_this_period(
    server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI], admin_for: Callable[..., AdminApi]
) -> None:
    key_id, secret = new_key(ph, "spent-before")
    raw = openai_for(server, secret).chat.completions.with_raw_response.create(
        model=CHAT,
        messages=HELLO,  # type: ignore[arg-type]
        max_tokens=3,
    )
    cost = Decimal(admin_for(server).trace(raw.headers["x-pilothouse-trace-id"])["cost_usd"])
    budget = ph.set_budget("key", key_id, usd=1, period="month")
    assert cost > 0 and Decimal(budget["spent_usd"]) == cost
    assert Decimal(budget["remaining_usd"]) == 1 - cost


# -------------------------------------------------------------------------------------------- rate limits


def test_rpm_limit_answers_429_with_retry_after(
    server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI]
) -> None:
    key_id, secret = new_key(ph, "rpm")
    limit = ph.set_limits("key", key_id, rpm=3)
    client = openai_for(server, secret)
    for _ in range(3):
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1)  # type: ignore[arg-type]
    error = error_of(caught.value)
    assert error["code"] == "rate_limit_exceeded"
    assert (
        f"key {key_id} may make 3 requests per minute" in caught.value.message and limit["id"] in caught.value.message
    )
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60


def test_tpm_limit_counts_max_tokens(server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI]) -> None:
    key_id, secret = new_key(ph, "tpm")
    ph.set_limits("key", key_id, tpm=200)
    client = openai_for(server, secret)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=500)  # type: ignore[arg-type]
    assert "may use 200 tokens per minute" in caught.value.message and "can never fit" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=4)  # type: ignore[arg-type]


def test_max_tokens_cap_refuses_above_and_fills_in_when_absent(
    server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI], admin_for: Callable[..., AdminApi]
) -> None:
    key_id, secret = new_key(ph, "capped")
    limit = cli(server, "limits", "set", "--key", key_id, "--max-tokens", "5")
    client = openai_for(server, secret)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=50)  # type: ignore[arg-type]
    assert error_of(caught.value)["code"] == "max_tokens_above_cap" and "cap of 5" in caught.value.message
    assert [e for e in audit(ph, "limits.max_tokens_refused") if e["target"] == limit["id"]]
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=HELLO)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.usage is not None and completion.usage.completion_tokens <= 5
    span = only_span(admin_for(server).trace(raw.headers["x-pilothouse-trace-id"]), "llm")
    assert span["attributes"]["pilothouse.limits.max_tokens_cap"] == 5


# -------------------------------------------------------------------------------------------- loop guards


def test_a_looping_run_is_stopped(server: RunningServer, ph: Pilothouse, openai_for: Callable[..., OpenAI]) -> None:
    client = openai_for(server)
    run = {"x-pilothouse-run-id": f"agent-{time.time_ns()}"}
    for _ in range(3):  # limits.run_max_repeats = 3 in this server's configuration
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1, extra_headers=run)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=CHAT, messages=HELLO, max_tokens=1, extra_headers=run)  # type: ignore[arg-type]
    assert error_of(caught.value)["code"] == "loop_detected"
    assert "already made this identical call 3 times" in caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"
    events = [e for e in audit(ph, "loop_guard.refused") if e["target"] == run["x-pilothouse-run-id"]]
    assert len(events) == 1 and events[0]["details"]["kind"] == "repeats"

    capped = {"x-pilothouse-run-id": f"capped-{time.time_ns()}", "x-pilothouse-run-max-calls": "2"}
    for i in range(2):
        msgs = [{"role": "user", "content": f"Step {i}."}]
        client.chat.completions.create(model=CHAT, messages=msgs, max_tokens=1, extra_headers=capped)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        msgs = [{"role": "user", "content": "Step 2."}]
        client.chat.completions.create(model=CHAT, messages=msgs, max_tokens=1, extra_headers=capped)  # type: ignore[arg-type]
    assert error_of(caught.value)["code"] == "run_limit_exceeded" and "2 calls of its cap of 2" in caught.value.message


# ------------------------------------------------------------------------------------------- management


def test_management_is_admin_only_and_audited(server: RunningServer, ph: Pilothouse) -> None:
    key_id, secret = new_key(ph, "not-admin")
    with Pilothouse(server.url, secret) as service:
        with pytest.raises(Exception, match="403"):
            service.set_budget("key", key_id, usd=1)
        with pytest.raises(Exception, match="403"):
            service.set_limits("key", key_id, rpm=1)
    budget = cli(server, "budgets", "set", "--project", "default", "--usd", "100", "--period", "month", "--soft")
    again = cli(server, "budgets", "set", "--project", "default", "--usd", "200", "--period", "month", "--soft")
    assert again["id"] == budget["id"] and again["created"] is False and again["limit_usd"] == "200"
    limit = cli(server, "limits", "set", "--model", CHAT, "--rpm", "100000")
    assert next(r for r in cli(server, "limits", "list") if r["id"] == limit["id"])["rpm"] == 100000
    cli(server, "budgets", "delete", budget["id"])
    cli(server, "limits", "delete", limit["id"])
    assert budget["id"] not in [b["id"] for b in ph.list_budgets()]
    assert limit["id"] not in [lim["id"] for lim in ph.list_limits()]
    actions = {(e["action"], e["target"]) for e in ph.audit_events(limit=1000)}
    assert {("budget.set", budget["id"]), ("budget.delete", budget["id"])} <= actions
    assert {("limits.set", limit["id"]), ("limits.delete", limit["id"])} <= actions
    result = runner.invoke(app, ["budgets", "set", "--usd", "1", "--url", server.url, "--api-key", server.admin_key])
    assert result.exit_code == 2 and "give exactly one of" in result.output
