"""The OpenAPI document says what the server does: every error status a route can answer, the gateway
endpoints, the constraints routes check in code; and a 405 always names the allowed methods.

(The schema-driven fuzz test, test_api_fuzz.py, checks the server against the whole document; these are the
specific cases it found, kept as fast regressions.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from pilothouse.config import Deployment, ModelEntry
from tests.support.asgi_app import app_settings, running

MODELS = [ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake")])]
HEALTH = {"/healthz", "/readyz"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    with pytest.MonkeyPatch.context() as env:
        settings = app_settings(tmp_path_factory.mktemp("openapi"), MODELS)
        with running(settings, env) as (client, _app):
            resp = client.get("/api/openapi.json")
            assert resp.status_code == 200, resp.text
            yield client, resp.json()


@pytest.fixture
def client(served: tuple[TestClient, dict[str, Any]]) -> TestClient:
    return served[0]


@pytest.fixture
def document(served: tuple[TestClient, dict[str, Any]]) -> dict[str, Any]:
    return served[1]


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _parameter(document: dict[str, Any], path: str, method: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in document["paths"][path][method]["parameters"] if p["name"] == name)
    return found


def _valid(schema: dict[str, Any], value: Any, document: dict[str, Any]) -> bool:
    resolver = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(resolver).is_valid(value)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/v1/embeddings", "POST"),
        ("DELETE", "/api/keys", "GET, POST"),
        ("PUT", "/api/prompts/x/labels/y/protect", "POST, DELETE"),
        ("OPTIONS", "/api/traces", "GET"),
    ],
)
def test_405_names_every_method_the_path_serves(client: TestClient, method: str, path: str, allow: str) -> None:
    resp = client.request(method, path)
    assert resp.status_code == 405, resp.text
    assert resp.headers["allow"] == allow
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_the_gateway_endpoints_are_documented(document: dict[str, Any]) -> None:
    chat = document["paths"]["/v1/chat/completions"]["post"]
    embeddings = document["paths"]["/v1/embeddings"]["post"]
    assert {"200", "400", "401", "403", "404", "408", "413", "422", "429", "502", "503", "504"} <= set(
        chat["responses"]
    )
    assert {"200", "400", "401", "404", "413"} <= set(embeddings["responses"])
    chat_schema = chat["requestBody"]["content"]["application/json"]["schema"]
    ok = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "metadata": {}}
    assert _valid(chat_schema, ok, document)
    for bad in (
        {"model": "fake-chat"},
        {"model": "fake-chat", "messages": []},
        {"model": "fake-chat", "messages": [{"role": "tool", "content": "x"}]},  # no tool_call_id
        {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "n": 2},
        {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": 1}},
    ):
        assert not _valid(chat_schema, bad, document), bad
    embeddings_schema = embeddings["requestBody"]["content"]["application/json"]["schema"]
    assert _valid(embeddings_schema, {"model": "m", "input": ["a", "b"]}, document)
    assert not _valid(embeddings_schema, {"model": "m", "input": ""}, document)
    assert not _valid(embeddings_schema, {"model": "m", "input": [1, 2]}, document)


def test_every_operation_declares_its_errors_with_the_error_body(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        if path in HEALTH:
            assert "security" not in operation
            continue
        assert operation["security"] == [{"apiKey": []}], (method, path)
        assert {"401", "403"} <= set(responses), (method, path)
        if method in {"post", "put", "patch", "delete"}:
            assert {"400", "408", "413"} <= set(responses), (method, path)
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    assert "authorization" not in str(document["paths"]["/api/keys"]["get"].get("parameters", [])).lower()


def test_readyz_declares_its_503(document: dict[str, Any]) -> None:
    responses = document["paths"]["/readyz"]["get"]["responses"]
    assert responses["503"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Readiness"}


@pytest.mark.parametrize(
    ("path", "method", "name", "url", "good", "bad"),
    [
        ("/api/prompts/{name}", "get", "name", "/api/prompts/{}", "support.reply", "Support Reply"),
        ("/api/prompts/{name}/versions/{ref}", "get", "ref", "/api/prompts/p/versions/{}", "sha:3f9c1a", "0"),
        ("/api/prompts/{name}/labels/{label}", "put", "label", "/api/prompts/p/labels/{}", "staging", "0staging"),
        ("/api/traces", "get", "since", "/api/traces?since={}", "2024-05-01T10:00:00Z", ""),
        ("/api/costs/report", "get", "since", "/api/costs/report?since={}", "7d", "seven days"),
        ("/api/costs/report", "get", "by", "/api/costs/report?by={}", "model", "colour"),
    ],
)
def test_parameters_state_what_the_route_checks(
    client: TestClient, document: dict[str, Any], path: str, method: str, name: str, url: str, good: str, bad: str
) -> None:
    """A value the document allows gets past the route's own check; one it refuses, the route refuses."""
    schema = _parameter(document, path, method, name)["schema"]
    body = {"version": 1} if method == "put" else None
    assert _valid(schema, good, document)
    assert client.request(method, url.format(good), json=body).status_code not in (400, 422)
    assert not _valid(schema, bad, document)
    assert client.request(method, url.format(bad), json=body).status_code in (400, 422)


def test_exactly_one_of_rules_are_in_the_body_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    label = schemas["LabelBody"]
    assert _valid(label, {"version": 2}, document)
    assert not _valid(label, {"version": 2, "splits": [{"version": 1, "weight": 100}]}, document)
    assert not _valid(label, {}, document)
    score = schemas["ScoreCreate"]
    assert not _valid(score, {"trace_id": "t", "name": "n"}, document)
    limits = schemas["LimitSet"]
    assert not _valid(limits, {"scope": "model", "subject": "fake-chat"}, document)
    assert not _valid(limits, {"scope": "key", "subject": "k", "rpm": 5, "project": "p"}, document)


def test_readyz_answers_503_in_the_documented_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running(app_settings(tmp_path, MODELS), monkeypatch) as (client, app):
        app.api.state.pilothouse.models_ready = False
        resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "not ready", "checks": {"store": True, "models": False}}
