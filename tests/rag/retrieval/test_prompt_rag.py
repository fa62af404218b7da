"""RAG on a prompt: a version whose configuration carries `rag` is answered through the gateway (a real server,
the bundled local model) from a collection, with citations; the query is the rendered `rag.query` or the last
user message; the call's own `rag` fields override the prompt's; a bad `rag` is refused at push; retrieval runs
as the caller, so access lists hold."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from pilothouse.sdk.client import Pilothouse, PilothouseError
from tests.support.servers import RunningServer

RECORDS = [
    {"id": "keys", "text": "To rotate the production API keys, run the rotate-keys job.", "groups": ["ops"]},
    {"id": "prices", "text": "Enterprise discount: up to thirty percent off the list price.", "groups": ["sales"]},
    {"id": "leave", "text": "Every employee has twenty-five days of paid leave a year."},
]


def prompt_file(name: str, rag: str) -> str:
    return (
        f"name: {name}\nmodel: smollm2-135m\nmax_tokens: 8\ntemperature: 0\n"
        "variables:\n  topic: {type: string}\n  question: {type: string, default: 'What should I do?'}\n"
        f"{rag}"
        "messages:\n  - role: user\n    content: '{{ question }}'\n"
    )


@pytest.fixture(scope="module")
def setup(server: RunningServer) -> dict[str, str]:
    """A collection, and two prompts over it: one retrieving for its `topic` variable, one for the question."""
    collection = f"prompt-rag-{secrets.token_hex(4)}"
    names = {"by_topic": f"rag-topic-{secrets.token_hex(3)}", "by_question": f"rag-question-{secrets.token_hex(3)}"}
    with Pilothouse(server.url, server.admin_key) as ph:
        ph.request("POST", "/api/rag/collections", json={"name": collection, "index": "exact"})
        ph.request("POST", f"/api/rag/collections/{collection}/records", json={"records": RECORDS})
        rag_topic = f"rag:\n  collection: {collection}\n  k: 2\n  query: 'how to {{{{ topic }}}}'\n"
        rag_question = f"rag: {{collection: {collection}, k: 1, mode: dense}}\n"
        files = [
            {"path": f"{names['by_topic']}.yaml", "content": prompt_file(names["by_topic"], rag_topic)},
            {"path": f"{names['by_question']}.yaml", "content": prompt_file(names["by_question"], rag_question)},
        ]
        results = ph.push_prompts(files)
        assert [r["status"] for r in results] == ["created", "created"], results
        for name in names.values():
            ph.request("PUT", f"/api/prompts/{name}/labels/production", json={"version": 1})
    return {"collection": collection, **names}


def key(server: RunningServer, role: str) -> str:
    with Pilothouse(server.url, server.admin_key) as ph:
        return str(ph.create_key(f"prompt-rag-{role}-{secrets.token_hex(3)}", role=role)["secret"])


def chat(server: RunningServer, api_key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {api_key}"},
        timeout=120,
    )


def cited(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [str(c["source"]) for c in response.json()["rag"]["citations"]]


def test_a_prompt_with_rag_answers_with_citations(server: RunningServer, setup: dict[str, str]) -> None:
    service = key(server, "service")
    ops = {"identity": {"groups": ["ops"]}}
    body = {"model": f"prompt:{setup['by_topic']}@production", "variables": {"topic": "rotate the API keys"}}
    answer = chat(server, service, {**body, "rag": ops})
    assert cited(answer)[0] == "keys" and "prices" not in cited(answer)
    assert answer.headers["x-pilothouse-rag-citations"] == str(len(cited(answer)))
    trace = httpx.get(
        f"{server.url}/api/traces/{answer.headers['x-pilothouse-trace-id']}",
        headers={"authorization": f"Bearer {server.admin_key}"},
    ).json()
    assert trace["prompt_name"] == setup["by_topic"] and trace["prompt_version"] == 1
    retrieval = next(s for s in trace["spans"] if s["kind"] == "retrieval")
    assert retrieval["input"]["query"] == "how to rotate the API keys"  # the rendered rag.query
    llm = next(s for s in trace["spans"] if s["kind"] == "llm")
    assert llm["attributes"]["gen_ai.prompt.name"] == setup["by_topic"]
    # no rag.query: the last user message (the caller's own, after the rendered ones); the call overrides k
    question = {"model": f"prompt:{setup['by_question']}@production", "variables": {"topic": "unused"}}
    asked = {**question, "messages": [{"role": "user", "content": "How many days of paid leave do I get?"}]}
    assert cited(chat(server, service, asked)) == ["leave"]
    two = chat(server, service, {**asked, "rag": {"k": 2, **ops}})
    assert len(cited(two)) == 2 and cited(two)[0] == "leave"


def test_access_lists_hold_for_a_prompts_rag(server: RunningServer, setup: dict[str, str]) -> None:
    """The prompt names no identity: a key reads as itself unless it names its end user (service keys), and
    reading past the access lists is an admin's."""
    body = {"model": f"prompt:{setup['by_topic']}@production", "variables": {"topic": "rotate the API keys"}}
    service = key(server, "service")
    assert cited(chat(server, service, body)) == ["leave"]  # the best match is the ops chunk: never sent
    sales = chat(server, service, {**body, "rag": {"identity": {"groups": ["sales"]}}})
    assert "keys" not in cited(sales)
    refused = chat(server, service, {**body, "rag": {"identity": {"all": True}}})
    assert refused.status_code == 403 and "admin" in refused.json()["error"]["message"]
    bad = chat(server, service, {**body, "rag": {"k": 0}})  # the call's fields are checked like a request's
    assert bad.status_code == 400 and "rag.k" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("rag", "message"),
    [
        ("rag: {collection: docs, k: 0}\n", "rag.k"),
        ("rag: {k: 3}\n", "rag.collection"),
        ("rag: {collection: docs, mode: fuzzy}\n", "rag.mode"),
        ("rag: {collection: docs, query: '{{ missing }}'}\n", "'missing'"),
        ("rag: {collection: docs, identity: {groups: [ops]}}\n", "rag.identity"),
        ("rag: {collection: docs, filters: {equals: {_acl: 'g:ops'}}}\n", "rag.filters"),
        ("rag: docs\n", "'rag' must be a mapping"),
    ],
)
def test_a_bad_rag_is_refused_at_push(server: RunningServer, rag: str, message: str) -> None:
    name = f"rag-bad-{secrets.token_hex(3)}"
    with Pilothouse(server.url, server.admin_key) as ph, pytest.raises(PilothouseError) as refused:
        ph.push_prompts([{"path": f"{name}.yaml", "content": prompt_file(name, rag)}])
    assert refused.value.status in (400, 422) and message in refused.value.message
    assert f"{name}.yaml" in refused.value.message


def test_a_bad_rag_is_refused_for_one_version_too(server: RunningServer) -> None:
    name = f"rag-bad-{secrets.token_hex(3)}"
    definition = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "hi"}],
        "rag": {"collection": "docs", "k": 0},
    }
    with Pilothouse(server.url, server.admin_key) as ph, pytest.raises(PilothouseError) as refused:
        ph.create_prompt_version(name, definition)
    assert refused.value.status == 400 and "rag.k" in refused.value.message
    assert refused.value.body["error"]["param"] == "rag"
