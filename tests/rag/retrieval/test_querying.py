"""Retrieval over an ingested collection: modes, access lists inside the search, filters, thresholds, MMR,
the model check, and the retrieval span (with the injection flag from ingestion)."""

from __future__ import annotations

import pytest

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.rag.packing import PackItem, pack
from pilothouse.rag.retrieve import Query
from pilothouse.rag.spans import record_retrieval
from pilothouse.rag.types import Identity
from pilothouse.store.engine import Store
from pilothouse.tracing.model import TraceRecord
from pilothouse.vectors.filters import Filter
from tests.rag.retrieval.conftest import Corpus, build_corpus


def documents(corpus: Corpus, identity: Identity, text: str, **options: object) -> list[str]:
    retrieval = corpus.queries.run(identity, "docs", Query(text=text, k=10, **options))  # type: ignore[arg-type]
    return [str((h.metadata or {}).get("_source")) for h in retrieval.hits]


def test_modes_find_the_matching_document(corpus: Corpus) -> None:
    ops = corpus.identity("bob", ("ops",))
    for mode in ("dense", "keyword", "hybrid"):
        assert documents(corpus, ops, "how do I rotate the production API keys", mode=mode)[0] == "ops-keys"


def test_access_lists_filter_inside_the_search(corpus: Corpus) -> None:
    question = "enterprise plan discount off the list price"
    sales = documents(corpus, corpus.identity("sam", ("sales",)), question)
    assert sales[0] == "sales-prices"
    for who in (corpus.identity("bob", ("ops",)), corpus.identity(None), corpus.identity("ana")):
        # the best match is sales-only: never returned, and still k results of what the caller may read
        seen = documents(corpus, who, question)
        assert "sales-prices" not in seen
        assert len(seen) == len(set(seen)) and seen  # the open documents fill the list
    assert "ana-review" in documents(corpus, corpus.identity("ana"), "salary raise performance review")
    assert "ana-review" not in documents(corpus, corpus.identity("bob", ("ops", "sales")), "salary raise review")
    everyone = Identity(project_id=corpus.project_id, sees_all=True)
    assert {"sales-prices", "ana-review", "ops-keys"} <= set(documents(corpus, everyone, "price review keys"))


def test_metadata_filters_and_thresholds(corpus: Corpus) -> None:
    admin = Identity(project_id=corpus.project_id, sees_all=True)
    found = documents(corpus, admin, "policy", where=Filter(equals={"team": "hr"}))
    assert set(found) == {"handbook", "ana-review"}
    recent = documents(corpus, admin, "policy", mode="dense", where=Filter(ranges={"year": (2025, None)}))
    assert set(recent) == {"ops-keys", "sales-prices", "ana-review"}
    strict = corpus.queries.run(admin, "docs", Query(text="rotate API keys", k=10, mode="dense", min_score=0.4))
    assert [h.metadata["_source"] for h in strict.hits if h.metadata] == ["ops-keys"]
    assert strict.below_threshold >= 1


def test_mmr_reorders_with_stored_vectors(corpus: Corpus) -> None:
    admin = Identity(project_id=corpus.project_id, sees_all=True)
    plain = corpus.queries.run(admin, "docs", Query(text="keys price holidays", k=3, mode="dense"))
    diverse = corpus.queries.run(admin, "docs", Query(text="keys price holidays", k=3, mode="dense", mmr_lambda=0.3))
    assert "mmr" in diverse.timings_ms and len(diverse.hits) == 3
    assert {h.id for h in diverse.hits} <= {h.id for h in diverse.fused}
    assert plain.hits[0].id == diverse.hits[0].id  # the most relevant still leads


def test_refusals(corpus: Corpus) -> None:
    me = corpus.identity("bob")
    with pytest.raises(NotFound):
        corpus.queries.run(me, "nope", Query(text="x"))
    with pytest.raises(NotFound):  # another project's identity does not see the collection
        corpus.queries.run(Identity(project_id="other"), "docs", Query(text="x"))
    with pytest.raises(InvalidRequest) as wrong_model:
        corpus.queries.run(me, "docs", Query(text="x", embedding_model="text-embedding-3-small"))
    assert wrong_model.value.code == "embedding_model_mismatch"
    with pytest.raises(InvalidRequest) as wrong_dims:
        corpus.queries.run(me, "docs", Query(text="x", vector=[0.1] * 8, embedding_model="all-MiniLM-L6-v2"))
    assert wrong_dims.value.code == "embedding_model_mismatch"
    with pytest.raises(InvalidRequest, match="k must be"):
        corpus.queries.run(me, "docs", Query(text="x", k=0))


def test_the_injection_flag_shows_in_the_retrieval_span(corpus: Corpus) -> None:
    retrieval = corpus.queries.run(corpus.identity("bob"), "docs", Query(text="when do orders ship", k=3))
    packed = pack(
        [PackItem(h.id, h.text, h.score, h.metadata) for h in retrieval.hits],
        budget=1000,
        count_tokens=lambda t: len(t.split()),
    )
    trace = TraceRecord(project_id=corpus.project_id, name="t")
    span = record_retrieval(trace, retrieval, packed=packed)
    assert span.kind == "retrieval" and span in trace.spans and span.ended_at is not None
    flagged = span.attributes["pilothouse.retrieval.flagged_chunks"]
    shipping = [h.id for h in retrieval.hits if h.metadata and h.metadata.get("_source") == "shipping"]
    assert shipping and flagged[shipping[0]] == ["injection"]
    output = span.output
    assert set(output["candidates"]) == {"dense", "keyword"}
    first = next(c for c in output["candidates"]["dense"] if c["id"] == shipping[0])
    assert first["flags"] == ["injection"] and first["document"].startswith("rdoc_")
    assert output["hits"][0]["sources"]  # each retriever's rank and score
    assert [c["chunk_id"] for c in output["packed"]["citations"]]
    assert span.input["identity"] == {"user": "bob", "groups": []}
    assert span.input["query"] == "when do orders ship"
    assert span.attributes["pilothouse.retrieval.mode"] == "hybrid"


def test_queries_on_both_stores(store: Store, tmp_path_factory: pytest.TempPathFactory) -> None:
    corpus = build_corpus(
        store,
        tmp_path_factory.mktemp("data"),
        records=[
            {"id": "a", "text": "The cafeteria opens at eight.", "groups": ["staff"]},
            {"id": "b", "text": "Visitors sign in at the front desk."},
        ],
    )
    staff = documents(corpus, corpus.identity("x", ("staff",)), "when does the cafeteria open")
    assert staff[0] == "a"
    assert documents(corpus, corpus.identity("y"), "when does the cafeteria open") == ["b"]
