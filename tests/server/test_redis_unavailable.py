"""A server whose Redis goes away (cut, or silently partitioned, through a TCP proxy the test controls) or was
never there: /readyz says not ready and names Redis, the routes that read spend answer 503 with the reason
instead of 500, budgeted calls are refused with 503 (fail closed) within a few seconds, and `pilothouse up`
pointed at a wrong Redis port exits with one line instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from pilothouse.config import Deployment, LimitSettings, ModelEntry
from tests.gateway.limits.test_admission import IN, OUT
from tests.support.asgi_app import app_settings, running
from tests.support.limits import delete_prefix, new_prefix, require_redis
from tests.support.servers import free_port
from tests.support.tcp_proxy import TcpProxy

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
MODELS = [
    ModelEntry(
        name="fake-chat",
        deployments=[
            Deployment(
                provider="fake",
                model="fake-1",
                context_window=4096,
                input_price_per_mtok=IN,
                output_price_per_mtok=OUT,
            )
        ],
    )
]


@pytest.fixture
def proxied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, TcpProxy, str]]:
    """A started server whose Redis is behind a proxy, with a hard budget on its project."""
    client_redis: redis.Redis = require_redis()
    prefix = new_prefix()
    proxy = TcpProxy("127.0.0.1", client_redis.connection_pool.connection_kwargs.get("port", 6379))
    port = proxy.start()
    url = f"redis://127.0.0.1:{port}/0"
    settings = app_settings(tmp_path, MODELS, redis_url=url, limits=LimitSettings(redis_prefix=prefix))
    try:
        with running(settings, monkeypatch) as (client, _):
            budget = {"scope": "project", "subject": "default", "usd": "1", "period": "day", "mode": "hard"}
            assert client.post("/api/budgets", json=budget).status_code == 200
            yield client, proxy, url
    finally:
        proxy.stop()
        delete_prefix(client_redis, prefix)
        client_redis.close()


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json()["error"])


@pytest.mark.parametrize("how", ["cut", "silent partition"])
def test_redis_down_is_reported_and_fails_closed(proxied: tuple[TestClient, TcpProxy, str], how: str) -> None:
    client, proxy, url = proxied
    assert client.get("/readyz").json()["checks"] == {"store": True, "models": True, "limits": True}
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    time.sleep(1.1)  # past the readiness answer kept for a second
    proxy.cut(hold=how == "silent partition")

    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready" and body["checks"] == {"store": True, "models": True, "limits": False}
    assert f"Redis at {url}" in body["error"] and "refused (503)" in body["error"]

    listed = _error(client.get("/api/budgets"), 503)
    assert listed["code"] == "limits_unavailable"
    assert listed["message"].startswith("budget spend cannot be read right now: ")
    assert f"Redis at {url}" in listed["message"]

    started = time.monotonic()
    refused = client.post("/v1/chat/completions", json=CHAT)
    assert time.monotonic() - started < 8  # a bounded wait, not redis-py's default retries
    error = _error(refused, 503)
    assert error["code"] == "limits_unavailable" and f"Redis at {url}" in error["message"]
    assert refused.headers["retry-after"] == "1"

    proxy.restore()
    time.sleep(1.1)
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/budgets").status_code == 200
    assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_the_api_description_declares_the_503(proxied: tuple[TestClient, TcpProxy, str]) -> None:
    client, _, _ = proxied
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "503" in paths["/api/budgets"]["get"]["responses"]
    assert "503" in paths["/api/budgets"]["post"]["responses"]
    assert "Redis" in paths["/v1/chat/completions"]["post"]["responses"]["503"]["description"]


def test_readiness_is_cached_for_a_second(proxied: tuple[TestClient, TcpProxy, str]) -> None:
    client, proxy, _ = proxied
    client.get("/readyz")
    before = proxy.accepted
    for _ in range(20):
        assert client.get("/readyz").status_code == 200
    assert proxy.accepted == before  # no new connection, and at most one ping in the second (pooled)


def test_without_budgets_or_limits_redis_is_not_needed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_redis().close()
    proxy = TcpProxy("127.0.0.1", 6379)
    url = f"redis://127.0.0.1:{proxy.start()}/0"
    settings = app_settings(tmp_path, MODELS, redis_url=url, limits=LimitSettings(redis_prefix=new_prefix()))
    try:
        with running(settings, monkeypatch) as (client, _):
            proxy.cut()
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["limits"] is True
            assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
    finally:
        proxy.stop()


def test_up_with_a_wrong_redis_port_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "pilothouse.toml"
    config.write_text(
        "include_default_models = false\ncanary_check_interval_s = 0\n[local]\npreload = false\n"
        '[[models]]\nname = "fake-chat"\ndeployments = [{provider = "fake", model = "fake"}]\n'
    )
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "PILOTHOUSE_REDIS_URL": url, "PILOTHOUSE_ADMIN_KEY": "ph-test-admin-key-0123456789"}
    env.pop("PILOTHOUSE_CONFIG", None)
    cmd = [sys.executable, "-m", "pilothouse", "up", "--port", str(free_port()), "--data-dir", str(tmp_path / "d")]
    proc = subprocess.run(
        [*cmd, "--config", str(config)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 2, proc.stderr  # the reason, and the server's "Application startup failed. Exiting."
    assert f"cannot reach Redis at {url} (Connection refused): start it or fix PILOTHOUSE_REDIS_URL" in lines[0]
