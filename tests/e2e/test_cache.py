"""The caches end to end: the official `openai` client against `pilothouse up` with caching on, the local model
(priced, so a hit has a cost to save), and the stored traces read back through /api/traces.

The cross-replica test runs two servers on different ports sharing one Redis (a key prefix of its own) and a
fresh PostgreSQL database: an answer cached by one is a hit on the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import create_engine, text

from tests.conftest import PG_ADMIN_URL, REDIS_URL
from tests.e2e import AdminApi, assert_clean_log, only_span
from tests.support.limits import delete_prefix, new_prefix, require_redis
from tests.support.servers import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.model]

CHAT = "smollm2-priced"
TRACE = "x-pilothouse-trace-id"
CACHE = "x-pilothouse-cache"


def cache_config(path: Path, *, semantic: bool, redis_prefix: str | None = None) -> Path:
    """Caching on; the local chat model under a priced name (local models cost nothing by default)."""
    lines = ["[cache]", "enabled = true"]
    if redis_prefix:
        lines += [f'redis_prefix = "{redis_prefix}cache:"']
    lines += ["", "[cache.semantic]", f"enabled = {str(semantic).lower()}", "threshold = 0.9"]
    if redis_prefix:
        lines += ["", "[limits]", f'redis_prefix = "{redis_prefix}limits:"']
    lines += [
        "",
        "[local]",
        "n_threads = 1",
        "",
        "[[models]]",
        f'name = "{CHAT}"',
        "",
        "[[models.deployments]]",
        'provider = "local"',
        'model = "SmolLM2-135M-Instruct"',
        "context_window = 8192",
        'input_price_per_mtok = "1.5"',
        'output_price_per_mtok = "6"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cache_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("cache-up")
    srv = start_server(root / "data", config=cache_config(root / "pilothouse.toml", semantic=True))
    offset = len(srv.log())
    yield srv
    assert_clean_log(srv, offset)
    srv.stop()


@pytest.fixture
def oai(cache_server: RunningServer, openai_for: Callable[..., OpenAI]) -> OpenAI:
    return openai_for(cache_server)


@pytest.fixture
def api(cache_server: RunningServer, admin_for: Callable[[RunningServer], AdminApi]) -> AdminApi:
    return admin_for(cache_server)


def messages(question: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": f"You answer in one short sentence. Session {uuid.uuid4().hex}."},
        {"role": "user", "content": question},
    ]


def ask(client: OpenAI, msgs: list[ChatCompletionMessageParam], **extra: Any) -> tuple[Any, dict[str, str]]:
    params: dict[str, Any] = {"max_tokens": 12, "temperature": 0, **extra}
    raw = client.chat.completions.with_raw_response.create(model=CHAT, messages=msgs, **params)
    return raw.parse(), dict(raw.headers)


def ask_stream(
    client: OpenAI, msgs: list[ChatCompletionMessageParam], **extra: Any
) -> tuple[str, list[Any], dict[str, str]]:
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT, messages=msgs, max_tokens=12, temperature=0, stream=True, **extra
    )
    chunks = list(raw.parse())
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return content, chunks, dict(raw.headers)


def check_hit(api: AdminApi, headers: dict[str, str], source: dict[str, Any], kind: str = "exact") -> dict[str, Any]:
    """The hit's trace: one `cache` span that saved what the source call cost, and no llm span."""
    assert headers[CACHE] == "hit" and headers[CACHE + "-kind"] == kind
    trace = api.trace(headers[TRACE])
    assert [s["kind"] for s in trace["spans"]] == ["cache"], trace
    span = only_span(trace, "cache")
    attrs = span["attributes"]
    assert attrs["pilothouse.cache.kind"] == kind
    source_llm = only_span(source, "llm")
    assert Decimal(source_llm["cost_usd"]) > 0
    assert Decimal(attrs["pilothouse.cache_saved_usd"]) == Decimal(source_llm["cost_usd"])
    assert attrs["pilothouse.cache.source_trace_id"] == source["id"]
    assert span["status"] == "ok" and trace["status"] == "ok"
    assert Decimal(trace["cost_usd"]) == 0 and trace["model"] == CHAT
    return span


def test_second_identical_call_is_a_hit(oai: OpenAI, api: AdminApi) -> None:
    msgs = messages("Name a primary color.")
    first, h1 = ask(oai, msgs)
    assert h1[CACHE] == "miss"
    source = api.trace(h1[TRACE])
    assert only_span(source, "llm")["attributes"]["pilothouse.cache.stored"] is True

    second, h2 = ask(oai, msgs, user="another-end-user")  # `user` does not change the answer
    span = check_hit(api, h2, source)
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.usage is not None and first.usage is not None
    assert second.usage.completion_tokens == first.usage.completion_tokens
    assert span["output"]["message"]["content"] == first.choices[0].message.content

    _, h3 = ask(oai, msgs, max_tokens=13)  # a parameter that changes the answer: another key
    assert h3[CACHE] == "miss"


def test_stream_is_cached_and_replayed_as_a_stream(oai: OpenAI, api: AdminApi) -> None:
    msgs = messages("Count from one to five.")
    content, chunks, h1 = ask_stream(oai, msgs)
    assert h1[CACHE] == "miss" and content
    source = api.trace(h1[TRACE])

    replay, replay_chunks, h2 = ask_stream(oai, msgs, stream_options={"include_usage": True})
    check_hit(api, h2, source)
    assert replay == content
    assert [c.choices[0].delta.content for c in replay_chunks if c.choices] == [
        c.choices[0].delta.content for c in chunks if c.choices
    ]
    assert replay_chunks[-1].usage is not None and replay_chunks[-1].usage.completion_tokens > 0

    plain, h3 = ask(oai, msgs)  # a non-streaming caller gets the recorded stream assembled
    check_hit(api, h3, source)
    assert plain.choices[0].message.content == content


def test_no_store_and_no_cache_bypass(oai: OpenAI, api: AdminApi) -> None:
    msgs = messages("Name a large ocean.")
    for _ in range(2):
        _, h = ask(oai, msgs, extra_headers={"Cache-Control": "no-store"})
        assert h[CACHE] == "bypass"
        llm = only_span(api.trace(h[TRACE]), "llm")
        assert llm["attributes"]["pilothouse.cache.bypass_reason"] == "no-store"
    _, h = ask(oai, msgs, extra_headers={"x-pilothouse-cache": "no-store"})
    assert h[CACHE] == "bypass"
    _, h = ask(oai, msgs)
    assert h[CACHE] == "miss"  # nothing was stored by the no-store calls
    _, h = ask(oai, msgs, extra_headers={"Cache-Control": "no-cache"})
    assert h[CACHE] == "bypass"
    assert only_span(api.trace(h[TRACE]), "llm")["attributes"]["pilothouse.cache.stored"] is True
    _, h = ask(oai, msgs)
    assert h[CACHE] == "hit"


def test_sampled_calls_are_not_cached_without_opt_in(oai: OpenAI) -> None:
    msgs = messages("Name a fruit.")
    for _ in range(2):
        raw = oai.chat.completions.with_raw_response.create(model=CHAT, messages=msgs, max_tokens=8, temperature=0.7)
        assert raw.headers[CACHE] == "bypass"
    forced = {"x-pilothouse-cache": "force"}
    raw = oai.chat.completions.with_raw_response.create(
        model=CHAT, messages=msgs, max_tokens=8, temperature=0.7, extra_headers=forced
    )
    assert raw.headers[CACHE] == "miss"
    raw = oai.chat.completions.with_raw_response.create(
        model=CHAT, messages=msgs, max_tokens=8, temperature=0.7, extra_headers=forced
    )
    assert raw.headers[CACHE] == "hit"


def test_semantic_hit_for_a_paraphrase_not_for_its_opposite(oai: OpenAI, api: AdminApi) -> None:
    system = messages("")[0]
    _, h1 = ask(oai, [system, {"role": "user", "content": "How do I enable dark mode?"}])
    assert h1[CACHE] == "miss"
    source = api.trace(h1[TRACE])
    _, h2 = ask(oai, [system, {"role": "user", "content": "How can I enable dark mode?"}])
    span = check_hit(api, h2, source, kind="semantic")
    assert span["attributes"]["pilothouse.cache.similarity"] >= 0.9
    _, h3 = ask(oai, [system, {"role": "user", "content": "How do I disable dark mode?"}])
    assert h3[CACHE] == "miss"
    refused = only_span(api.trace(h3[TRACE]), "llm")["attributes"]["pilothouse.cache.semantic_refused"]
    assert "opposites" in refused[0]


def test_bad_cache_header_is_a_400(oai: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        ask(oai, messages("Hi"), extra_headers={"x-pilothouse-cache": "always"})
    assert "unknown x-pilothouse-cache value 'always'" in str(err.value)


# -- two replicas sharing Redis and PostgreSQL ---------------------------------------------------------


@pytest.fixture(scope="module")
def replicas(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    redis = require_redis()
    name = f"pht_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = pg_url.rsplit("/", 1)[0] + "/" + name
    prefix = new_prefix()
    root = tmp_path_factory.mktemp("cache-replicas")
    config = cache_config(root / "pilothouse.toml", semantic=True, redis_prefix=prefix)
    servers: list[RunningServer] = []
    try:
        for label in ("a", "b"):
            servers.append(
                start_server(
                    root / label,
                    config=config,
                    database_url=database_url,
                    extra_env={"PILOTHOUSE_REDIS_URL": REDIS_URL},
                )
            )
        offsets = [len(s.log()) for s in servers]
        yield servers[0], servers[1]
        for srv, offset in zip(servers, offsets, strict=True):
            assert_clean_log(srv, offset)
    finally:
        for srv in servers:
            srv.stop()
        delete_prefix(redis, prefix)
        redis.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.redis
@pytest.mark.postgres
def test_an_answer_cached_by_one_replica_is_a_hit_on_the_other(
    replicas: tuple[RunningServer, RunningServer],
    openai_for: Callable[..., OpenAI],
    admin_for: Callable[[RunningServer], AdminApi],
) -> None:
    a, b = replicas
    oai_a, oai_b = openai_for(a), openai_for(b)
    api = admin_for(a)  # one database: either replica reads every trace

    msgs = messages("Name a planet.")
    first, h1 = ask(oai_a, msgs)
    assert h1[CACHE] == "miss"
    source = api.trace(h1[TRACE])
    second, h2 = ask(oai_b, msgs)
    span = check_hit(api, h2, source)
    assert span["attributes"]["pilothouse.cache.backend"] == "redis"
    assert second.choices[0].message.content == first.choices[0].message.content

    metal = messages("Name a metal.")
    content, _, h3 = ask_stream(oai_b, metal)  # cached by b as a stream, replayed by a
    assert h3[CACHE] == "miss"
    replay, _, h4 = ask_stream(oai_a, metal)
    check_hit(api, h4, api.trace(h3[TRACE]))
    assert replay == content

    system = messages("")[0]  # the semantic index is shared too
    _, h5 = ask(oai_a, [system, {"role": "user", "content": "What is the capital of France?"}])
    assert h5[CACHE] == "miss"
    _, h6 = ask(oai_b, [system, {"role": "user", "content": "What's the capital city of France?"}])
    check_hit(api, h6, api.trace(h5[TRACE]), kind="semantic")
