"""Property: a caller never receives a chunk it may not read, through a query, through RAG chat, or through the
response cache, on the embedded index and on Milvus (milvus-lite), even when the restricted chunk is the best
match for the question.

Each example draws documents with random access lists (groups and users out of small pools, or open to the
project), a caller, and which document the question is copied from (so that document is the best match
whatever its access list). The documents are ingested through the real `Ingestor` into a fresh collection; the
embedding model is a registered bag-of-words hashing embedder (cheap and deterministic; the access filter does
not depend on the model). RAG chat runs the real pipeline with the exact and semantic cache on and a provider
that answers with every message it was sent, so a leaked chunk would show in the answer; each example asks
first as a caller who may read the best chunk and then as the drawn caller, so a shared cache entry would be
found if the cache ignored who asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pilothouse.config import CacheSettings, Deployment, ModelEntry, SemanticCacheSettings, Settings
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.call import GatewayCall
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.base import ChatRequest
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.principal import Principal
from pilothouse.rag.collections import create_collection, open_index
from pilothouse.rag.embedders import register_embedder
from pilothouse.rag.ingest import Ingestor
from pilothouse.rag.querying import RagQueries
from pilothouse.rag.retrieve import Query
from pilothouse.rag.types import AccessList, Identity
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.tracing.model import TraceRecord
from pilothouse.vectors.protocol import FloatArray

MODEL = "test-bow-64"
GROUPS = ("a", "b", "c")
USERS = ("u1", "u2")
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
]
TAG = re.compile(r"\btag(\d+)x\b")


class BagOfWords:
    """A real (if simple) embedder: hashed word counts, unit length."""

    model = MODEL
    dimensions = 64
    max_tokens = 256

    def embed(self, texts: list[str]) -> FloatArray:
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % self.dimensions] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: FloatArray = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
        return unit

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]


register_embedder(MODEL, BagOfWords)

acl_strategy = st.one_of(
    st.just(AccessList()),
    st.builds(
        AccessList.of,
        groups=st.sets(st.sampled_from(GROUPS), max_size=2),
        users=st.sets(st.sampled_from(USERS), max_size=1),
    ),
)
doc_strategy = st.tuples(acl_strategy, st.lists(st.sampled_from(WORDS), min_size=3, max_size=6))
caller_strategy = st.tuples(st.one_of(st.none(), st.sampled_from(USERS)), st.sets(st.sampled_from(GROUPS), max_size=2))


class World:
    """One store, data directory and pipeline per backend, shared by the examples (a collection each)."""

    def __init__(self, tmp: Path, kind: str) -> None:
        self.kind = kind
        self.milvus_uri = str(tmp / "milvus.db") if kind == "milvus" else None
        self.store: Store = open_store(f"sqlite:///{tmp / 'rag.db'}")
        with self.store.begin() as conn:
            self.project = create_project(conn, "acl-property").id
        self.data_dir = tmp / "data"
        self.queries = RagQueries(self.store, self.data_dir)
        deployment = Deployment(provider="fake", model="fake-1", context_window=4096)
        self.settings = Settings(
            include_default_models=False,
            data_dir=tmp,
            cache=CacheSettings(enabled=True, semantic=SemanticCacheSettings(enabled=True)),
            models=[ModelEntry(name="fake-chat", deployments=[deployment])],
        )
        self.gateway = Gateway(self.settings, ProviderPool(self.settings), default_price_book())
        provider: Any = self.gateway.pool.get(deployment)

        async def echo_everything(request: ChatRequest) -> tuple[list[str], str]:
            provider.calls.append(request)
            return " ".join(str(m.get("content")) for m in request.messages).split(), "stop"

        provider._prepare = echo_everything
        self.cache = ResponseCache.from_settings(self.settings)
        self.pipeline = Pipeline(self.gateway, _Sink(), cache=self.cache, rag=self.queries)
        self.principal = Principal("key_1", self.project, "service")
        self.counter = itertools.count()
        self.cache_status: list[str] = []

    def collection(self, docs: list[tuple[AccessList, list[str]]]) -> str:
        name = f"c{next(self.counter)}"
        info = create_collection(
            self.store,
            project_id=self.project,
            name=name,
            embedding_model=MODEL,
            index_kind=self.kind,
            index_uri=self.milvus_uri,
        )
        index = open_index(self.store, info, data_dir=self.data_dir)
        records = [
            {
                "id": f"d{i}",
                "text": f"{' '.join(words)} tag{i}x.",
                "groups": sorted(acl.groups),
                "users": sorted(acl.users),
            }
            for i, (acl, words) in enumerate(docs)
        ]
        Ingestor(self.store, info, index).ingest_records(records)
        index.close()
        return name

    def chat(self, name: str, question: str, user: str | None, groups: set[str]) -> dict[str, Any]:
        identity: dict[str, Any] = {"groups": sorted(groups)}
        if user:
            identity["user"] = user
        body = {
            "model": "fake-chat",
            "temperature": 0,
            "messages": [{"role": "user", "content": question}],
            "rag": {"collection": name, "k": 4, "identity": identity},
        }
        call = GatewayCall(kind="chat", body=body, principal=self.principal, source="sdk")
        outcome = asyncio.run(self.pipeline.run(call))
        assert outcome.error is None, outcome.error
        assert outcome.payload is not None
        self.cache_status.append(outcome.headers.get("x-pilothouse-cache", ""))
        return outcome.payload


class _Sink:
    async def write(self, trace: TraceRecord) -> None:
        return None

    def close(self) -> None:
        return None


def readable(docs: list[tuple[AccessList, list[str]]], identity: Identity) -> set[int]:
    return {i for i, (acl, _) in enumerate(docs) if identity.may_read(acl.tokens())}


def tags_in(text: str) -> set[int]:
    return {int(m) for m in TAG.findall(text)}


@pytest.fixture(scope="module", params=["exact", "milvus"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp(f"acl-{request.param}"), request.param)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=st.lists(doc_strategy, min_size=2, max_size=6),
    caller=caller_strategy,
    best=st.integers(min_value=0, max_value=5),
)
def test_a_caller_never_receives_a_chunk_it_may_not_read(
    world: World, docs: list[tuple[AccessList, list[str]]], caller: tuple[str | None, set[str]], best: int
) -> None:
    best %= len(docs)
    user, groups = caller
    identity = Identity(project_id=world.project, user=user, groups=frozenset(groups))
    allowed = readable(docs, identity)
    name = world.collection(docs)
    question = " ".join(docs[best][1])  # the best match is docs[best], whoever may read it

    # query, in every mode
    for mode in ("dense", "keyword", "hybrid"):
        retrieval = world.queries.run(identity, name, Query(text=question, k=6, mode=mode))
        got = {int(str(h.metadata["_source"])[1:]) for h in retrieval.hits if h.metadata}
        assert got <= allowed
        every_candidate = {h.id for hits in retrieval.candidates.values() for h in hits}
        assert {h.id for h in retrieval.hits} <= every_candidate
        if mode != "keyword" and allowed:
            assert got  # pre-filtering: what the caller may read still comes back

    # RAG chat through the cache: first someone who may read the best document asks, then the caller
    owner_acl = docs[best][0]
    owner_groups = set(sorted(owner_acl.groups)[:1])
    owner_user = sorted(owner_acl.users)[0] if owner_acl.users and not owner_groups else None
    world.chat(name, question, owner_user, owner_groups)
    answer = world.chat(name, question, user, groups)
    text = answer["choices"][0]["message"]["content"]
    assert tags_in(text) <= allowed, f"leaked {tags_in(text) - allowed} to {identity}"
    sources = {c["source"] for c in answer["rag"]["citations"]}
    assert {int(s[1:]) for s in sources if s} <= allowed


def test_the_cache_is_shared_only_by_callers_who_retrieve_the_same_chunks(world: World) -> None:
    docs = [(AccessList.of(groups=["a"]), ["kilo", "lima", "mike"]), (AccessList(), ["oscar", "papa", "golf"])]
    name = world.collection(docs)
    question = "kilo lima mike"
    world.cache_status.clear()
    first = world.chat(name, question, None, {"a"})
    same = world.chat(name, question, "u1", {"a", "c"})  # also reads d0 and d1: the same context, a hit
    other = world.chat(name, question, None, {"b"})  # reads d1 only: its own context, a miss
    assert world.cache_status == ["miss", "hit", "miss"]
    assert tags_in(first["choices"][0]["message"]["content"]) == {0, 1}
    assert same["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    assert tags_in(other["choices"][0]["message"]["content"]) == {1}
