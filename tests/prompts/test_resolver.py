"""Prompt references in the gateway pipeline (fake provider, real store): rendering, configuration
precedence, trace fields, errors, and the resolver's cache (label moves are seen on the next call)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from pilothouse.config import Deployment, ModelEntry, Settings
from pilothouse.errors import ApiError, InvalidRequest, NotFound, Unprocessable
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.prompts.registry.labels import set_label
from pilothouse.prompts.registry.lookup import get_version, require_prompt
from pilothouse.prompts.registry.push import push_files
from pilothouse.prompts.registry.refs import PromptRef
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.store import prompts as repo
from pilothouse.store.engine import Store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord

PROMPT = """\
name: support-answer
model: fake-chat
temperature: 0
max_tokens: 5
stop: ["END"]
variables:
  question: {type: string}
  tone: {type: string, default: calm}
messages:
  - role: system
    content: Answer in a {{ tone }} tone. (v{{ 1 }})
  - role: user
    content: "{{ question }}"
"""


@pytest.fixture
def setup(store: Store) -> Iterator[tuple[Gateway, str, Store]]:
    settings = Settings(
        include_default_models=False,
        models=[ModelEntry(name="fake-chat", deployments=[Deployment(provider="fake", model="fake-1")])],
    )
    resolver = PromptResolver(store)
    gateway = Gateway(settings, ProviderPool(settings), default_price_book(), resolver)
    with store.begin() as conn:
        project = create_project(conn, "p").id
        push_files(conn, project_id=project, files=[("support-answer.yaml", PROMPT)], actor="k")
        push_files(
            conn, project_id=project, files=[("support-answer.yaml", PROMPT.replace("{{ 1 }}", "{{ 2 }}"))], actor="k"
        )
    yield gateway, project, store
    resolver.close()


def move(store: Store, project: str, version: int, label: str = "production") -> None:
    with store.begin() as conn:
        set_label(
            conn,
            project_id=project,
            prompt_name="support-answer",
            label=label,
            splits=[{"version": version, "weight": 100}],
            actor="k",
            role="admin",
        )


async def call(gateway: Gateway, project: str, **body: Any) -> tuple[TraceRecord, dict[str, Any]]:
    trace = TraceRecord(project_id=project, name="chat")
    prep = gateway.prepare_chat({"model": "prompt:support-answer@production", **body}, trace)
    return trace, {"prep": prep, "result": await gateway.chat(prep)}


async def test_renders_applies_config_and_records_the_version(setup: tuple[Gateway, str, Store]) -> None:
    gateway, project, _ = setup
    extra = [{"role": "user", "content": "and one more thing"}]
    trace, out = await call(gateway, project, variables={"question": "Where?"}, messages=extra, temperature=0.7)
    request = out["prep"].request
    assert request.model == "fake-1"
    assert request.messages == [
        {"role": "system", "content": "Answer in a calm tone. (v1)"},
        {"role": "user", "content": "Where?"},
        {"role": "user", "content": "and one more thing"},
    ]
    assert request.params["temperature"] == 0.7  # the caller's explicit value wins
    assert request.params["max_tokens"] == 5 and request.params["stop"] == ["END"]
    assert (trace.prompt_name, trace.prompt_version, trace.model) == ("support-answer", 1, "fake-chat")
    span = trace.spans[0]
    assert span.attributes["gen_ai.prompt.name"] == "support-answer"
    assert span.attributes["pilothouse.prompt.version"] == 1
    assert span.attributes["pilothouse.prompt.label"] == "production"
    assert span.attributes["gen_ai.request.max_tokens"] == 5
    assert span.input["variables"] == {"question": "Where?", "tone": "calm"}
    assert span.input["messages"][0]["content"] == "Answer in a calm tone. (v1)"
    assert out["result"]["choices"][0]["message"]["content"].startswith("echo:")


async def test_version_and_sha_references(setup: tuple[Gateway, str, Store]) -> None:
    gateway, project, store = setup
    with store.connect() as conn:
        v2 = get_version(conn, project, PromptRef("support-answer", version=2))
    for model in ("prompt:support-answer@2", f"prompt:support-answer@sha:{v2.content_hash[:8]}"):
        trace = TraceRecord(project_id=project, name="chat")
        prep = gateway.prepare_chat({"model": model, "variables": {"question": "q"}, "max_tokens": 3}, trace)
        assert trace.prompt_version == 2 and prep.request.params["max_tokens"] == 3
        assert "pilothouse.prompt.label" not in prep.span.attributes
    trace = TraceRecord(project_id=project, name="chat")
    prep = gateway.prepare_chat(
        {"model": "prompt:support-answer@2", "variables": {"question": "q"}, "max_completion_tokens": 2}, trace
    )
    assert "max_tokens" not in prep.request.params  # max_completion_tokens counts as the caller's choice


@pytest.mark.parametrize(
    ("body", "error", "param", "message"),
    [
        ({"variables": {}}, Unprocessable, "question", "missing required variable 'question'"),
        ({"variables": {"question": 3}}, Unprocessable, "question", "must be a string, got integer"),
        ({"variables": {"question": "q", "x": 1}}, Unprocessable, "x", "unknown variable 'x'"),
        ({"variables": "q"}, Unprocessable, "variables", "'variables' must be an object"),
        ({"variables": {"question": "q"}, "messages": "hi"}, InvalidRequest, "messages", "must be a list"),
        ({"model": "prompt:nope", "variables": {}}, NotFound, "model", "no prompt named 'nope'"),
        ({"model": "prompt:support-answer@qa"}, NotFound, "model", "has no label 'qa'"),
        ({"model": "prompt:Bad@1"}, InvalidRequest, "model", "invalid prompt name"),
    ],
)
async def test_errors(
    setup: tuple[Gateway, str, Store], body: dict[str, Any], error: type[ApiError], param: str, message: str
) -> None:
    gateway, project, _ = setup
    trace = TraceRecord(project_id=project, name="chat")
    with pytest.raises(error, match=message) as caught:
        gateway.prepare_chat({"model": "prompt:support-answer@production", **body}, trace)
    assert caught.value.param == param
    if error is Unprocessable:
        assert caught.value.status == 422 and trace.prompt_version == 1


async def test_prompt_without_a_model(setup: tuple[Gateway, str, Store]) -> None:
    gateway, project, store = setup
    with store.begin() as conn:
        bare = "name: bare\nmessages: [{role: user, content: hi}]\n"
        push_files(conn, project_id=project, files=[("bare.yaml", bare)], actor="k")
    with pytest.raises(InvalidRequest, match="has no model in its configuration"):
        gateway.prepare_chat({"model": "prompt:bare"}, TraceRecord(project_id=project, name="chat"))


def test_gateway_without_registry_refuses_prompt_refs() -> None:
    settings = Settings(include_default_models=False)
    gateway = Gateway(settings, ProviderPool(settings), default_price_book())
    with pytest.raises(InvalidRequest, match="prompt registry"):
        gateway.prepare_chat({"model": "prompt:x"}, TraceRecord(project_id="p", name="chat"))


async def test_label_moves_are_seen_on_the_next_call_and_cached_otherwise(setup: tuple[Gateway, str, Store]) -> None:
    gateway, project, store = setup
    queries: list[str] = []

    def count(*args: Any) -> None:
        queries.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        variables = {"question": "q"}
        assert (await call(gateway, project, variables=variables))[0].prompt_version == 1
        queries.clear()
        assert (await call(gateway, project, variables=variables))[0].prompt_version == 1
        assert queries == []  # cached: no database work
        move(store, project, 2)  # through the registry: this process's cache forgets the label at once
        assert (await call(gateway, project, variables=variables))[0].prompt_version == 2
        move(store, project, 1)
        assert (await call(gateway, project, variables=variables))[0].prompt_version == 1
        # A move this process does not see (another replica) is picked up within the 1 s TTL.
        with store.begin() as conn:
            prompt = require_prompt(conn, project, "support-answer")
            split = [{"version": 2, "weight": 100}]
            repo.put_label(conn, prompt_id=prompt.id, name="production", splits=split, updated_by="other-replica")
        assert (await call(gateway, project, variables=variables))[0].prompt_version == 1
        time.sleep(1.05)
        assert (await call(gateway, project, variables=variables))[0].prompt_version == 2
        # Plain model names never touch the registry.
        queries.clear()
        plain = {"model": "fake-chat", "messages": [{"role": "user", "content": "hi"}]}
        gateway.prepare_chat(plain, TraceRecord(project_id=project, name="chat"))
        assert queries == []
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


async def test_canary_split_is_sticky_per_user(setup: tuple[Gateway, str, Store]) -> None:
    gateway, project, store = setup
    with store.begin() as conn:
        set_label(
            conn,
            project_id=project,
            prompt_name="support-answer",
            label="production",
            splits=[{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
            actor="k",
            role="admin",
        )
    versions = {}
    for i in range(30):
        trace, _ = await call(gateway, project, variables={"question": "q"}, user=f"user-{i}")
        versions[f"user-{i}"] = trace.prompt_version
        again, _ = await call(gateway, project, variables={"question": "q"}, user=f"user-{i}")
        assert again.prompt_version == trace.prompt_version
    assert set(versions.values()) == {1, 2}
