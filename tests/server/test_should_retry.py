"""Every gateway error response says `x-should-retry`: "true" only where the gateway did not retry and another
try may help, so the official SDKs' own retries (2 by default) do not multiply upstream calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.config import Deployment, ModelEntry
from pilothouse.errors import ApiError, InvalidRequest, RateLimited, UpstreamError, UpstreamTimeout
from pilothouse.server.gateway_asgi import should_retry
from tests.support.asgi_app import app_settings, running


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimited("rpm", code="rate_limit_exceeded", headers={"retry-after": "3"}), "true"),
        (RateLimited("never fits", code="rate_limit_exceeded", headers={"x-should-retry": "false"}), "false"),
        (RateLimited("budget", code="budget_exceeded", headers={"x-should-retry": "false"}), "false"),
        (UpstreamError("redis", status=503, code="limits_unavailable"), "true"),
        (UpstreamError("embedding upstream 503", code="upstream_unavailable"), "true"),  # made once, not retried
        (UpstreamError("routed", code="upstream_error", headers={"x-should-retry": "false"}), "false"),
        (UpstreamTimeout("deadline", code="deadline_exceeded", headers={"x-should-retry": "false"}), "false"),
        (InvalidRequest("bad json", code="invalid_json"), "false"),
        (ApiError("bug", status=500, code="internal_error"), "false"),
    ],
)
def test_verdicts(error: ApiError, expected: str) -> None:
    assert should_retry(error) == expected


def test_error_responses_carry_the_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = [ModelEntry(name="m", deployments=[Deployment(provider="fake", model="echo")])]
    with running(app_settings(tmp_path, models), monkeypatch) as (client, _):
        bad = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.headers["x-should-retry"] == "false"
        unknown = client.post(
            "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
        )
        assert unknown.status_code == 404 and unknown.headers["x-should-retry"] == "false"
        anonymous = client.post("/v1/chat/completions", json={}, headers={"authorization": ""})
        assert anonymous.status_code == 401 and anonymous.headers["x-should-retry"] == "false"
        fine = client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert fine.status_code == 200 and "x-should-retry" not in fine.headers
