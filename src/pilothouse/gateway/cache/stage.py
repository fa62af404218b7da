"""The cache stages of the chat pipeline: lookup (after admission, before routing) and store (after it).

`ResponseCache.plan` reads the request's cache headers and decides; `lookup` tries the exact cache, then the
semantic one, and on a hit replaces the request's `llm` span with a `cache` span that records the cost the
original call had (`pilothouse.cache_saved_usd`); `store` / `record` keep a plain answer / the chunks of a
streamed one. A failing cache backend never fails a request: the lookup counts as a miss, the store is
skipped, both are logged and marked on the span (`pilothouse.cache.lookup_error` / `store_error`).

Every lookup that could go semantic records what it decided (`pilothouse.cache.semantic.threshold`,
`.semantic.score`, `pilothouse.cache.contrast.decision`, `.contrast.reason`, `.contrast.kind`) on the `llm`
span of a miss, from which a hit's `cache` span takes them. The threshold is the project's own where one is set
(thresholds.py), else `cache.semantic.threshold`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pilothouse.config import ConfigError, Settings
from pilothouse.gateway.cache.entry import CachedAnswer, chunks_from_events
from pilothouse.gateway.cache.keys import context_hash, exact_key_material, is_sampled, last_user_text
from pilothouse.gateway.cache.memory import MemoryCacheStore
from pilothouse.gateway.cache.policy import CACHE_HEADER, Decision, decide, parse_directives
from pilothouse.gateway.cache.privacy import CaptureModes, is_sealed, seal, unseal
from pilothouse.gateway.cache.redis_store import RedisCacheStore
from pilothouse.gateway.cache.semantic import Embed, SemanticCache, SemanticLookup
from pilothouse.gateway.cache.sqlite_store import SQLiteCacheStore
from pilothouse.gateway.cache.store import CacheStore, VectorMatch
from pilothouse.gateway.cache.thresholds import ThresholdOverrides
from pilothouse.gateway.prepared import Prepared
from pilothouse.store.engine import Store
from pilothouse.tracing.capture import CaptureMode
from pilothouse.tracing.model import TraceRecord
from pilothouse.vectors import FloatArray

log = logging.getLogger("pilothouse.cache")

_NOT_COPIED = frozenset({"gen_ai.provider.name", "pilothouse.deployment.model"})


@dataclass(slots=True)
class CachePlan:
    """What this request does with the cache, and what happened."""

    decision: Decision
    namespace: str
    key: str
    text: str | None = None  # the last user message, when the semantic cache applies
    partition: str | None = None
    vector: FloatArray | None = None
    status: str = "miss"  # hit | miss | bypass
    kind: str | None = None  # exact | semantic, on a hit
    capture: CaptureMode = "full"  # the project's content capture: what the stores may keep (privacy.py)
    seal_key: bytes = b""  # opens and seals this request's entry (privacy.py)

    def headers(self) -> dict[str, str]:
        found = {CACHE_HEADER: self.status}
        if self.kind:
            found[CACHE_HEADER + "-kind"] = self.kind
        return found


def _request_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None, str | None]:
    cache_control = directives = ttl = None
    for name, value in headers:
        if name == b"cache-control":
            cache_control = value.decode("latin-1")
        elif name == b"x-pilothouse-cache":
            directives = value.decode("latin-1")
        elif name == b"x-pilothouse-cache-ttl":
            ttl = value.decode("latin-1")
    return cache_control, directives, ttl


def _record_semantic(attrs: dict[str, Any], found: SemanticLookup) -> None:
    """What a semantic lookup found and decided, on the span (see the module's docstring)."""
    if found.score is not None:
        attrs["pilothouse.cache.semantic.score"] = round(found.score, 6)
    attrs["pilothouse.cache.contrast.decision"] = found.decision
    refusal = found.refusal
    if refusal is not None:
        attrs["pilothouse.cache.contrast.reason"] = refusal.reason
        attrs["pilothouse.cache.contrast.kind"] = refusal.kind
    if found.refused:
        attrs["pilothouse.cache.semantic_refused"] = found.refused


def _llm_cost(trace: TraceRecord) -> Decimal | None:
    """What the request's upstream calls cost (None when no price was known for any)."""
    costs = [s.cost_usd for s in trace.spans if s.kind == "llm"]
    known = [c for c in costs if c is not None]
    return sum(known, Decimal(0)) if known else None


class ResponseCache:
    def __init__(
        self,
        settings: Settings,
        store: CacheStore,
        embed: Embed | None = None,
        thresholds: ThresholdOverrides | None = None,
        modes: CaptureModes | None = None,
    ) -> None:
        self.settings = settings
        self.config = settings.cache
        self.store = store
        self.semantic = SemanticCache(settings.cache.semantic, store, embed)
        self.thresholds = thresholds  # None: every project uses cache.semantic.threshold
        self.modes = modes or CaptureModes(None, capture_content=settings.capture_content)
        """Each project's content capture: what of its questions and answers the store may keep."""

    @classmethod
    def from_settings(cls, settings: Settings, database: Store | None = None) -> ResponseCache | None:
        """The configured cache, or None when `cache.enabled` is off. With the `database`, projects' own
        thresholds apply (read every `limits.definitions_ttl_s` at most)."""
        config = settings.cache
        if not config.enabled:
            return None
        backend = config.backend
        if backend == "auto":
            backend = "redis" if settings.redis_url else "memory"
        store: CacheStore
        if backend == "redis":
            if not settings.redis_url:
                raise ConfigError("cache.backend = 'redis' needs redis_url (PILOTHOUSE_REDIS_URL)")
            store = RedisCacheStore.from_url(
                settings.redis_url,
                prefix=config.redis_prefix,
                retention_s=config.ttl_s,
                max_vectors_per_partition=config.semantic.max_entries_per_partition,
                max_vectors=config.semantic.max_entries,
                sync_batch=config.semantic.sync_batch,
            )
        elif backend == "sqlite":
            store = SQLiteCacheStore(
                settings.data_dir / "cache.db",
                max_entries=config.max_entries,
                max_vectors_per_partition=config.semantic.max_entries_per_partition,
                max_vectors=config.semantic.max_entries,
                sync_batch=config.semantic.sync_batch,
            )
        else:
            store = MemoryCacheStore(
                max_entries=config.max_entries,
                max_bytes=config.max_bytes,
                max_vectors_per_partition=config.semantic.max_entries_per_partition,
                max_vectors=config.semantic.max_entries,
            )
        thresholds = None if database is None else ThresholdOverrides(database, settings.limits.definitions_ttl_s)
        modes = CaptureModes(database, capture_content=settings.capture_content)
        return cls(settings, store, thresholds=thresholds, modes=modes)

    async def threshold(self, project_id: str) -> float:
        """The similarity threshold of the project's semantic lookups: its own, else the configured one."""
        own = None if self.thresholds is None else await self.thresholds.get(project_id)
        return self.config.semantic.threshold if own is None else own

    async def warm(self) -> None:
        """Load the embedding model at start when the semantic cache is on for every request."""
        if self.config.semantic.enabled:
            await self.semantic.vector("warm up")

    async def aclose(self) -> None:
        if self.thresholds is not None:
            await self.thresholds.aclose()
        await self.store.aclose()

    # -- decide -----------------------------------------------------------------------------------
    def plan(
        self, prep: Prepared, trace: TraceRecord, headers: Iterable[tuple[bytes, bytes]], *, policies: str = ""
    ) -> CachePlan:
        """Read the cache headers (a malformed one is a 400) and decide what this request does. `policies`: the
        guard policy versions applied (`name@version,...`); answers kept under other versions never match."""
        directives = parse_directives(*_request_headers(headers))
        body = prep.body
        params = {**body.params, "pilothouse.guard_policies": policies} if policies else body.params
        decision = decide(self.config, directives, key_id=trace.api_key_id, sampled=is_sampled(body.params))
        namespace = trace.project_id
        if not (decision.read or decision.write):
            prep.span.attributes["pilothouse.cache.status"] = "bypass"
            prep.span.attributes["pilothouse.cache.bypass_reason"] = decision.reason
            return CachePlan(decision, namespace, "", status="bypass")
        model = body.model  # the public name asked for (a context-window fallback is the same question)
        key, seal_key = exact_key_material(model, body.messages, params)
        plan = CachePlan(decision, namespace, key, capture=self.modes.mode(namespace), seal_key=seal_key)
        plan.status = "miss" if decision.read else "bypass"
        if decision.semantic and plan.capture != "off":  # off: no question text to compare with is kept
            text = last_user_text(body.messages)
            if text is not None and text.strip():
                plan.text = text
                plan.partition = f"{namespace}:{context_hash(model, body.messages, params)}"
        prep.span.attributes["pilothouse.cache.status"] = plan.status
        if not decision.read:
            prep.span.attributes["pilothouse.cache.bypass_reason"] = "no-cache"
        return plan

    # -- lookup -----------------------------------------------------------------------------------
    async def lookup_request(
        self, prep: Prepared, trace: TraceRecord, headers: Iterable[tuple[bytes, bytes]], *, policies: str = ""
    ) -> tuple[CachePlan, CachedAnswer | None]:
        """The cache lookup stage: plan, then look up (see `plan` and `lookup`)."""
        plan = self.plan(prep, trace, headers, policies=policies)
        return plan, await self.lookup(plan, prep, trace)

    async def lookup(self, plan: CachePlan, prep: Prepared, trace: TraceRecord) -> CachedAnswer | None:
        """The cached answer, recorded on the trace as a `cache` span; None on a miss."""
        if not plan.decision.read:
            return None
        started = time.time()
        match: VectorMatch | None = None
        attrs = prep.span.attributes
        try:
            raw = await self.store.get(plan.namespace, plan.key)
            if plan.partition is not None and plan.text is not None:
                threshold = await self.threshold(plan.namespace)
                attrs["pilothouse.cache.semantic.threshold"] = threshold
                if raw is not None:
                    attrs["pilothouse.cache.contrast.decision"] = "not_checked"  # an exact hit
                else:
                    found = await self.semantic.lookup(plan.namespace, plan.partition, plan.text, threshold=threshold)
                    plan.vector = found.vector
                    raw, match = found.value, found.match
                    _record_semantic(attrs, found)
        except Exception as exc:  # the cache is an optimisation: a failing backend is a miss
            log.warning("cache lookup failed (%s): %s", self.store.name, exc)
            prep.span.attributes["pilothouse.cache.lookup_error"] = f"{type(exc).__name__}: {exc}"
            return None
        if raw is not None and is_sealed(raw):
            raw = unseal(raw, plan.seal_key)
        answer = CachedAnswer.loads(raw) if raw is not None else None
        if answer is None:
            return None
        plan.status, plan.kind = "hit", "semantic" if match is not None else "exact"
        self._record_hit(plan, prep, trace, answer, match, started)
        return answer

    def _record_hit(
        self,
        plan: CachePlan,
        prep: Prepared,
        trace: TraceRecord,
        answer: CachedAnswer,
        match: VectorMatch | None,
        started: float,
    ) -> None:
        llm = prep.span
        if llm in trace.spans:
            trace.spans.remove(llm)  # no provider call was made
        span = trace.span("cache", f"cache hit {prep.entry.name}")
        span.started_at = started
        span.model = prep.entry.name
        span.cost_usd = Decimal(0)
        attrs = span.attributes
        attrs.update({k: v for k, v in llm.attributes.items() if k not in _NOT_COPIED})
        attrs["pilothouse.cache.status"] = "hit"
        attrs["pilothouse.cache.kind"] = plan.kind
        attrs["pilothouse.cache.backend"] = self.store.name
        attrs["pilothouse.cache.key"] = plan.key
        attrs["pilothouse.cache.source_trace_id"] = answer.trace_id
        attrs["pilothouse.cache.age_s"] = round(max(0.0, started - answer.created_at), 3)
        if answer.cost_usd is not None:
            attrs["pilothouse.cache_saved_usd"] = str(answer.cost_usd)
        else:
            attrs["pilothouse.cost.unknown"] = True
        usage = answer.usage
        attrs["pilothouse.cache.saved_input_tokens"] = usage.get("prompt_tokens")
        attrs["pilothouse.cache.saved_output_tokens"] = usage.get("completion_tokens")
        if match is not None:
            attrs["pilothouse.cache.similarity"] = round(match.score, 6)
            attrs["pilothouse.cache.matched_key"] = match.key
            if self.settings.capture_content:
                attrs["pilothouse.cache.matched_text"] = match.text
        if self.settings.capture_content:
            span.input = llm.input
            span.output = {"message": answer.message()}
        span.finish()

    # -- store ------------------------------------------------------------------------------------
    async def store_completion(self, plan: CachePlan, prep: Prepared, trace: TraceRecord, body: dict[str, Any]) -> None:
        """Keep a plain call's answer."""
        if not plan.decision.write:
            return
        answer = CachedAnswer(
            model=prep.entry.name, usage=dict(body.get("usage") or {}), cost_usd=_llm_cost(trace), trace_id=trace.id
        )
        answer.body = body
        await self._put(plan, prep, answer)

    async def record_stream(
        self, plan: CachePlan, prep: Prepared, trace: TraceRecord, events: AsyncGenerator[bytes, None]
    ) -> AsyncGenerator[bytes, None]:
        """Relay a stream's events; once it ended well, keep its chunks."""
        recorded: list[bytes] = []
        try:
            async for event in events:
                recorded.append(event)
                yield event
        finally:
            await events.aclose()
        span = prep.span
        chunks = chunks_from_events(recorded) if span.status == "ok" and span.ended_at is not None else None
        if not chunks:
            return
        usage = {
            "prompt_tokens": span.input_tokens,
            "completion_tokens": span.output_tokens,
            "total_tokens": (span.input_tokens or 0) + (span.output_tokens or 0),
        }
        answer = CachedAnswer(model=prep.entry.name, usage=usage, cost_usd=_llm_cost(trace), trace_id=trace.id)
        answer.chunks = chunks
        await self._put(plan, prep, answer)

    async def _put(self, plan: CachePlan, prep: Prepared, answer: CachedAnswer) -> None:
        raw = answer.dumps()
        attrs = prep.span.attributes
        if len(raw) > self.config.max_entry_bytes:
            attrs["pilothouse.cache.stored"] = False
            attrs["pilothouse.cache.skipped"] = f"entry of {len(raw)} bytes > max_entry_bytes"
            return
        ttl = plan.decision.ttl_s
        try:
            readable = await self._readable(plan, answer)
            if not readable:
                raw = seal(raw, plan.seal_key)
            writes = [self.store.set(plan.namespace, plan.key, raw, ttl)]
            if readable and plan.partition is not None and plan.text is not None:
                vector = plan.vector if plan.vector is not None else await self.semantic.vector(plan.text)
                if vector is not None:
                    writes.append(self.semantic.add(plan.partition, plan.key, plan.text, vector, time.time() + ttl))
            await asyncio.gather(*writes)
        except Exception as exc:
            log.warning("cache store failed (%s): %s", self.store.name, exc)
            attrs["pilothouse.cache.store_error"] = f"{type(exc).__name__}: {exc}"
            return
        attrs["pilothouse.cache.stored"] = True
        if not readable:
            attrs["pilothouse.cache.sealed"] = True

    async def _readable(self, plan: CachePlan, answer: CachedAnswer) -> bool:
        """Whether the entry may be kept readable, with the question in the semantic index (privacy.py):
        capture `full`; `redacted` when the PII and secrets scanners find nothing in question and answer."""
        if plan.capture == "full":
            return True
        if plan.capture == "off":
            return False
        message = answer.message()
        indexed = plan.text if plan.partition is not None else None  # the question goes in the index
        content = message.get("content")
        texts: list[str] = [indexed or "", content if isinstance(content, str) else ""]
        for call in message.get("tool_calls") or []:
            arguments = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            texts.append(arguments if isinstance(arguments, str) else "")
        return await asyncio.to_thread(self.modes.clean, texts)
