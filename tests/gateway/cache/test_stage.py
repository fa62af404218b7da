"""The cache stages with the gateway pipeline (the deterministic fake provider, the memory store and the real
MiniLM embedder): hits, misses, bypasses, stream record and replay, the trace, and a failing backend."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from pilothouse.config import CacheSettings, Deployment, ModelEntry, SemanticCacheSettings, Settings
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.cache.entry import CachedAnswer, chunks_from_events
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.stage import CachePlan
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.fake import FakeProvider
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.tracing.model import TraceRecord

Headers = list[tuple[bytes, bytes]]


def make(**cache: Any) -> tuple[Gateway, ResponseCache]:
    settings = Settings(
        include_default_models=False,
        models=[
            ModelEntry(
                name="fake-chat",
                deployments=[
                    Deployment(
                        provider="fake",
                        model="fake-1",
                        input_price_per_mtok=Decimal("2"),
                        output_price_per_mtok=Decimal("8"),
                    )
                ],
            )
        ],
        cache=CacheSettings(enabled=True, bypass_key_ids=["key_nocache"], **cache),
    )
    cache_stage = ResponseCache.from_settings(settings)
    assert cache_stage is not None
    return Gateway(settings, ProviderPool(settings), default_price_book()), cache_stage


def provider(gw: Gateway) -> FakeProvider:
    p = gw.pool.get(gw.catalog["fake-chat"].deployments[0])
    assert isinstance(p, FakeProvider)
    return p


def body(text: str = "hello there", system: str | None = None, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": text})
    return {"model": "fake-chat", "messages": messages, "temperature": 0, **extra}


class Call:
    """One request through the stages, the way the server runs them."""

    def __init__(self, trace: TraceRecord, plan: CachePlan, result: Any) -> None:
        self.trace, self.plan, self.result = trace, plan, result

    @property
    def kinds(self) -> list[str]:
        return [s.kind for s in self.trace.spans]


async def call(
    gw: Gateway, cache: ResponseCache, raw: dict[str, Any], headers: Headers = (), project: str = "p", key: str = "k"
) -> Call:
    trace = TraceRecord(project_id=project, name="chat", api_key_id=key)
    prep = gw.prepare_chat(raw, trace)
    plan, hit = await cache.lookup_request(prep, trace, headers)
    if prep.body.stream:
        events = (
            hit.events(prep.body.include_usage) if hit else cache.record_stream(plan, prep, trace, gw.chat_stream(prep))
        )
        result: Any = [orjson.loads(e[6:]) async for e in events]
        return Call(trace, plan, result)
    result = hit.completion() if hit else await gw.chat(prep)
    prep.span.finish()
    if hit is None:
        await cache.store_completion(plan, prep, trace, result)
    return Call(trace, plan, result)


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_second_identical_call_is_an_exact_hit_with_the_saved_cost() -> None:
    gw, cache = make()
    first = await call(gw, cache, body())
    assert first.plan.headers() == {"x-pilothouse-cache": "miss"}
    llm = first.trace.spans[0]
    assert llm.attributes["pilothouse.cache.status"] == "miss" and llm.attributes["pilothouse.cache.stored"] is True
    assert llm.cost_usd == Decimal(3) * 2 / 10**6 + Decimal(3) * 8 / 10**6

    second = await call(gw, cache, body(user="someone-else"))  # `user` is not part of the key
    assert second.plan.headers() == {"x-pilothouse-cache": "hit", "x-pilothouse-cache-kind": "exact"}
    assert second.kinds == ["cache"]  # no llm span: no provider call
    assert len(provider(gw).calls) == 1
    span = second.trace.spans[0]
    attrs = span.attributes
    assert attrs["pilothouse.cache.kind"] == "exact"
    assert Decimal(attrs["pilothouse.cache_saved_usd"]) == llm.cost_usd
    assert attrs["pilothouse.cache.source_trace_id"] == first.trace.id
    assert attrs["pilothouse.cache.backend"] == "memory"
    assert attrs["gen_ai.request.model"] == "fake-chat" and attrs["gen_ai.request.temperature"] == 0
    assert span.status == "ok" and span.latency_ms is not None and span.cost_usd == 0
    assert span.output["message"]["content"] == "echo: hello there"
    assert second.result == first.result
    assert second.trace.totals() == (0, 0, Decimal(0))


async def test_stream_is_recorded_and_replayed_as_a_stream() -> None:
    gw, cache = make()
    first = await call(gw, cache, body(stream=True))
    assert first.trace.spans[0].attributes["pilothouse.cache.stored"] is True
    second = await call(gw, cache, body(stream=True, stream_options={"include_usage": True}))
    assert second.kinds == ["cache"] and len(provider(gw).calls) == 1
    assert [c for c in second.result if c["choices"]] == first.result  # the same chunks, in order
    assert second.result[-1]["choices"] == [] and second.result[-1]["usage"]["completion_tokens"] == 3
    # a plain request is answered from the recorded stream, assembled
    plain = await call(gw, cache, body())
    assert plain.kinds == ["cache"]
    assert plain.result["object"] == "chat.completion"
    assert plain.result["choices"][0]["message"]["content"] == "echo: hello there"
    assert plain.result["usage"]["prompt_tokens"] == 3


async def test_plain_answer_is_replayed_to_a_streaming_caller() -> None:
    gw, cache = make()
    first = await call(gw, cache, body())
    streamed = await call(gw, cache, body(stream=True))
    assert streamed.kinds == ["cache"]
    assert all(c["object"] == "chat.completion.chunk" for c in streamed.result)
    assert text_of(streamed.result) == first.result["choices"][0]["message"]["content"]
    assert streamed.result[-1]["choices"][0]["finish_reason"] == "stop"


async def test_no_cache_stores_but_does_not_read_and_no_store_does_neither() -> None:
    gw, cache = make()
    no_store = await call(gw, cache, body(), [(b"cache-control", b"no-store")])
    assert no_store.plan.headers() == {"x-pilothouse-cache": "bypass"}
    assert no_store.trace.spans[0].attributes["pilothouse.cache.bypass_reason"] == "no-store"
    assert "pilothouse.cache.stored" not in no_store.trace.spans[0].attributes
    assert (await call(gw, cache, body(), [(b"x-pilothouse-cache", b"no-store")])).kinds == ["llm"]
    assert len(provider(gw).calls) == 2  # nothing was stored

    stored = await call(gw, cache, body(), [(b"cache-control", b"no-cache")])
    assert stored.kinds == ["llm"] and stored.trace.spans[0].attributes["pilothouse.cache.stored"] is True
    again = await call(gw, cache, body(), [(b"cache-control", b"no-cache")])
    assert again.kinds == ["llm"]  # not read
    assert (await call(gw, cache, body())).kinds == ["cache"]
    assert len(provider(gw).calls) == 4


async def test_sampled_requests_need_an_opt_in() -> None:
    gw, cache = make()
    raw = body()
    del raw["temperature"]  # sampled at the provider's default
    for _ in range(2):
        result = await call(gw, cache, raw)
        assert result.kinds == ["llm"] and result.plan.status == "bypass"
    assert result.trace.spans[0].attributes["pilothouse.cache.bypass_reason"] == "sampled"
    forced = [(b"x-pilothouse-cache", b"force")]
    assert (await call(gw, cache, body(temperature=0.8), forced)).kinds == ["llm"]
    assert (await call(gw, cache, body(temperature=0.8), forced)).kinds == ["cache"]
    assert (await call(gw, cache, body(temperature=0.9), forced)).kinds == ["llm"]  # another temperature


async def test_keys_listed_in_settings_bypass_the_cache() -> None:
    gw, cache = make()
    await call(gw, cache, body())
    bypassed = await call(gw, cache, body(), key="key_nocache")
    assert bypassed.kinds == ["llm"] and bypassed.trace.spans[0].attributes["pilothouse.cache.bypass_reason"] == "key"


async def test_projects_do_not_share_entries() -> None:
    gw, cache = make()
    await call(gw, cache, body(), project="a")
    assert (await call(gw, cache, body(), project="b")).kinds == ["llm"]
    assert (await call(gw, cache, body(), project="a")).kinds == ["cache"]


async def test_ttl_header_shortens_the_lifetime() -> None:
    gw, cache = make()
    await call(gw, cache, body(), [(b"x-pilothouse-cache-ttl", b"0.2")])
    assert (await call(gw, cache, body())).kinds == ["cache"]
    await asyncio.sleep(0.3)
    assert (await call(gw, cache, body())).kinds == ["llm"]


async def test_semantic_hit_for_a_paraphrase_and_refusals() -> None:
    gw, cache = make(semantic=SemanticCacheSettings(enabled=True, threshold=0.9))
    first = await call(gw, cache, body("How do I enable dark mode?", system="You are a support bot."))
    assert first.kinds == ["llm"]
    para = await call(gw, cache, body("How can I enable dark mode?", system="You are a support bot."))
    assert para.plan.headers() == {"x-pilothouse-cache": "hit", "x-pilothouse-cache-kind": "semantic"}
    attrs = para.trace.spans[0].attributes
    assert attrs["pilothouse.cache.kind"] == "semantic" and attrs["pilothouse.cache.similarity"] >= 0.9
    assert attrs["pilothouse.cache.matched_text"] == "How do I enable dark mode?"
    assert para.result["choices"][0]["message"]["content"] == "echo: How do I enable dark mode?"

    opposite = await call(gw, cache, body("How do I disable dark mode?", system="You are a support bot."))
    assert opposite.kinds == ["llm"]
    refused = opposite.trace.spans[0].attributes["pilothouse.cache.semantic_refused"]
    assert "opposites" in refused[0]

    other_system = await call(gw, cache, body("How can I enable dark mode?", system="You are a pirate."))
    assert other_system.kinds == ["llm"]  # the context must match exactly
    assert len(provider(gw).calls) == 3


async def test_semantic_cache_is_per_request_when_off_in_settings() -> None:
    gw, cache = make()
    on = [(b"x-pilothouse-cache", b"semantic")]
    await call(gw, cache, body("What is the capital of France?"), on)
    assert (await call(gw, cache, body("What's the capital city of France?"))).kinds == ["llm"]
    assert (await call(gw, cache, body("What is the capital city of France?"), on)).kinds == ["cache"]


class BrokenStore(MemoryCacheStore):
    async def get(self, namespace: str, key: str) -> bytes | None:
        raise ConnectionError("redis went away")

    async def set(self, namespace: str, key: str, value: bytes, ttl_s: float) -> None:
        raise ConnectionError("redis went away")


async def test_a_failing_backend_never_fails_the_request() -> None:
    gw, cache = make()
    cache.store = BrokenStore()
    result = await call(gw, cache, body())
    assert result.result["choices"][0]["message"]["content"] == "echo: hello there"
    attrs = result.trace.spans[0].attributes
    assert attrs["pilothouse.cache.lookup_error"] == "ConnectionError: redis went away"
    assert attrs["pilothouse.cache.store_error"] == "ConnectionError: redis went away"
    assert "pilothouse.cache.stored" not in attrs


def test_error_events_are_not_recorded() -> None:
    ok = b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n'
    assert chunks_from_events([ok]) == [{"choices": [{"delta": {"content": "a"}}]}]
    assert chunks_from_events([ok, b'data: {"error": {"message": "upstream died"}}\n\n']) is None


def test_unreadable_entries_are_misses() -> None:
    assert CachedAnswer.loads(b"not json") is None
    assert CachedAnswer.loads(b'{"v": 99}') is None


def test_cache_off_builds_nothing() -> None:
    assert ResponseCache.from_settings(Settings()) is None


def test_redis_backend_needs_a_url() -> None:
    from pilothouse.config import ConfigError

    with pytest.raises(ConfigError, match="redis_url"):
        ResponseCache.from_settings(Settings(cache=CacheSettings(enabled=True, backend="redis")))


async def test_backend_choice(tmp_path: Any) -> None:
    sqlite = ResponseCache.from_settings(
        Settings(data_dir=tmp_path, cache=CacheSettings(enabled=True, backend="sqlite"))
    )
    assert sqlite is not None and sqlite.store.name == "sqlite"
    assert (tmp_path / "cache.db").exists()
    await sqlite.aclose()
    memory = ResponseCache.from_settings(Settings(cache=CacheSettings(enabled=True)))
    assert memory is not None and memory.store.name == "memory"
    redis = ResponseCache.from_settings(
        Settings(redis_url="redis://127.0.0.1:6379/0", cache=CacheSettings(enabled=True))
    )
    assert redis is not None and redis.store.name == "redis"
    await redis.aclose()


def test_the_memory_backend_holds_the_configured_number_of_vectors() -> None:
    """`cache.semantic.max_entries` and `max_entries_per_partition` bound the memory backend's index too."""
    semantic = SemanticCacheSettings(max_entries=1234, max_entries_per_partition=567)
    built = ResponseCache.from_settings(Settings(cache=CacheSettings(enabled=True, semantic=semantic)))
    assert built is not None
    index = built.store.index  # type: ignore[attr-defined]
    assert (index.max_total, index.max_per_partition) == (1234, 567)
