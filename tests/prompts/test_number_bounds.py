"""Integers past what the store holds (2^31 and up, 2^63 and up) in paths, query strings and bodies are clear
4xx answers, never a 500 from the database driver, on SQLite and PostgreSQL; the OpenAPI document states the
bounds. In-process application with the fake model (tests/prompts/inprocess.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.prompts.registry.refs import MAX_VERSION, parse_ref
from pilothouse.server.api.audit import MAX_SEQ
from pilothouse.store.engine import Store
from tests.prompts.inprocess import FAKE_MODEL, App, running_app

PROMPT = "bounded"
BIG = 2**63  # 9223372036854775808: the OverflowError of the issue
HUGE = 10**20 - 1  # 99999999999999999999
INT32 = 2**31  # one past a 32-bit INTEGER column: PostgreSQL's own range error
NUMBERS = [BIG, HUGE, INT32]


@pytest.fixture
def app(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    with running_app(store, tmp_path / "data", monkeypatch) as running:
        for i in (1, 2):
            text = (
                f"name: {PROMPT}\nmodel: {FAKE_MODEL}\nmax_tokens: 4\nvariables:\n  q: {{type: string}}\n"
                f"messages:\n  - role: user\n    content: 'v{i} {{{{ q }}}}'\n"
            )
            running.ok("POST", "/api/prompts/push", json={"files": [{"path": f"{PROMPT}.yaml", "content": text}]})
        yield running


def refused_in_body(app: App, method: str, path: str, number: int, field: str, **kwargs: Any) -> None:
    """A body integer past 64 bits is refused at the boundary (400, server/body_guard.py); one that fits in 64
    bits but not in the column is refused by the route's bound (422 naming the field)."""
    if number >= 2**63:
        assert refused(app, method, path, 400, **kwargs)["code"] == "json_number_out_of_range"
    else:
        assert refused(app, method, path, 422, **kwargs)["param"] == field


def refused(app: App, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
    response = app.call(method, path, **kwargs)
    assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
    error: dict[str, Any] = response.json()["error"]
    assert error["message"] and error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    return error


@pytest.mark.parametrize("number", NUMBERS)
def test_audit_after(app: App, number: int) -> None:
    error = refused(app, "GET", "/api/audit", 422, params={"after": str(number)})
    assert error["param"] == "after" and str(MAX_SEQ) in error["message"]
    assert app.ok("GET", "/api/audit", params={"after": str(MAX_SEQ)})["data"] == []


@pytest.mark.parametrize("number", NUMBERS)
def test_version_references_in_paths_and_queries(app: App, number: int) -> None:
    error = refused(app, "GET", f"/api/prompts/{PROMPT}/versions/{number}", 400)
    assert f"versions are numbered from 1 to {MAX_VERSION}" in error["message"]
    assert refused(app, "GET", f"/api/prompts/{PROMPT}/diff", 400, params={"from": "1", "to": str(number)})[
        "param"
    ] == ("to")
    refused(app, "POST", f"/api/prompts/{PROMPT}/render", 400, json={"ref": str(number), "variables": {"q": "x"}})
    refused(app, "GET", f"/api/prompts/{PROMPT}/resolve", 400, params={"ref": str(number)})
    # the largest version number is well-formed: it just does not exist
    missing = refused(app, "GET", f"/api/prompts/{PROMPT}/versions/{MAX_VERSION}", 404)
    assert missing["code"] == "prompt_version_not_found"
    assert app.ok("GET", f"/api/prompts/{PROMPT}/diff", params={"from": "1", "to": "2"})["to_version"] == 2


@pytest.mark.parametrize("number", NUMBERS)
def test_version_numbers_in_bodies(app: App, number: int) -> None:
    label = f"/api/prompts/{PROMPT}/labels/staging"
    refused_in_body(app, "PUT", label, number, "version", json={"version": number})
    error = refused(app, "PUT", label, 400, json={"splits": [{"version": number, "weight": 100}]})
    assert "splits[0]" in error["message"] or error["code"] == "json_number_out_of_range"
    refused_in_body(app, "POST", f"/api/prompts/{PROMPT}/promote", number, "version", json={"version": number})
    canary = f"/api/prompts/{PROMPT}/labels/production/canary"
    for field, body in (
        ("candidate", {"baseline": 1, "candidate": number, "weight": 10}),
        ("baseline", {"baseline": number, "candidate": 2, "weight": 10}),
    ):
        refused_in_body(app, "PUT", canary, number, field, json=body)
    # the ordinary case still works
    assert app.ok("PUT", label, json={"version": 2})["version"] == 2


@pytest.mark.parametrize("number", NUMBERS)
def test_prompt_references_in_the_gateway_and_cost_estimates(app: App, number: int) -> None:
    error = refused(app, "POST", "/api/costs/estimate", 400, json={"prompt": f"{PROMPT}@{number}"})
    assert error["code"] == "invalid_prompt_ref" and error["param"] == "prompt"
    body = {"model": f"prompt:{PROMPT}@{number}", "variables": {"q": "hi"}}
    error = refused(app, "POST", "/v1/chat/completions", 400, json=body)
    assert error["code"] == "invalid_prompt_ref" and error["param"] == "model"
    assert app.ok("POST", "/api/costs/estimate", json={"prompt": f"{PROMPT}@2", "variables": {"q": "hi"}})[
        "prompt"
    ] == {
        "name": PROMPT,
        "version": 2,
    }


@pytest.mark.parametrize("number", NUMBERS)
def test_rate_limit_numbers(app: App, number: int) -> None:
    for field in ("rpm", "tpm", "max_tokens"):
        body = {"scope": "model", "subject": FAKE_MODEL, field: number}
        refused_in_body(app, "POST", "/api/limits", number, field, json=body)


@pytest.mark.parametrize("since", ["1e999", "-1e999", "nan", "inf", "9" * 400 + "d"])
def test_stats_windows_that_are_not_numbers(app: App, since: str) -> None:
    error = refused(app, "GET", f"/api/prompts/{PROMPT}/stats", 400, params={"since": since})
    assert error["param"] == "since" and "finite" in error["message"]


@pytest.mark.parametrize("since", ["99999999999999999999d", str(BIG), str(HUGE)])
def test_stats_windows_out_of_range(app: App, since: str) -> None:
    stats = app.ok("GET", f"/api/prompts/{PROMPT}/stats", params={"since": since})
    assert stats["versions"] == [] or all(v["total"]["calls"] == 0 for v in stats["versions"])


def test_openapi_states_the_bounds(app: App) -> None:
    schemas = app.ok("GET", "/api/openapi.json")["components"]["schemas"]
    assert schemas["PromoteBody"]["properties"]["version"]["maximum"] == MAX_VERSION
    assert schemas["CanarySet"]["properties"]["candidate"]["maximum"] == MAX_VERSION
    label_version = schemas["LabelBody"]["properties"]["version"]
    assert MAX_VERSION in [option.get("maximum") for option in label_version.get("anyOf", [label_version])]
    paths = app.ok("GET", "/api/openapi.json")["paths"]
    (after,) = [p for p in paths["/api/audit"]["get"]["parameters"] if p["name"] == "after"]
    assert after["schema"]["maximum"] == MAX_SEQ


@pytest.mark.parametrize("text", [f"p@{BIG}", f"p@{HUGE}", f"p@{INT32}", "p@0", "p@" + "9" * 5000, "p@٣"])
def test_the_reference_parser_bounds_versions(text: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_ref(text)
    assert parse_ref(f"p@{MAX_VERSION}").version == MAX_VERSION
    assert parse_ref("p@007").version == 7
