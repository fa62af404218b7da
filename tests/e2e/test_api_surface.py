"""Only health is open: the OpenAPI document and every management route need a key."""

from __future__ import annotations

import httpx
import pytest

from tests.support.servers import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.model]


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/traces", "/api/keys", "/api/audit", "/v1/models"])
def test_everything_but_health_needs_a_key(server: RunningServer, path: str) -> None:
    response = httpx.get(server.url + path, timeout=10)
    assert response.status_code == 401
    assert "API key" in response.json()["error"]["message"]


def test_health_is_open_and_openapi_is_served_with_a_key(server: RunningServer) -> None:
    assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "ok"
    assert httpx.get(server.url + "/readyz", timeout=10).json()["status"] == "ready"
    doc = httpx.get(
        server.url + "/api/openapi.json", headers={"authorization": f"Bearer {server.admin_key}"}, timeout=10
    ).json()
    assert "/api/traces" in doc["paths"] and "/api/keys" in doc["paths"]


def test_unknown_route_is_a_json_404(server: RunningServer) -> None:
    response = httpx.get(server.url + "/nope", timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
