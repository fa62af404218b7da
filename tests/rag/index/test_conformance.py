"""The RagIndex conformance suite: exact, HNSW, auto and Milvus (milvus-lite) pass the same tests.

Adding a backend is one entry in `KINDS`. Results are compared with brute force over the chunks and with
`Filter.matches` (the reference semantics of a filter): a filtered search returns the best k matching chunks,
never fewer because better ones were filtered out.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pilothouse.rag.index import hnsw
from pilothouse.rag.index.factory import forget_rag_index, load_rag_index, open_rag_index
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.types import AccessList, CollectionInfo, Identity, IndexedChunk, IndexKind
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import DimensionMismatch, FloatArray

DIM = 16
KINDS: list[IndexKind] = ["exact", "hnsw", "auto", "milvus"]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One milvus-lite file for the module (each file starts an engine); collections are per test."""
    return str(tmp_path_factory.mktemp("milvus") / "milvus.db")


def collection_for(kind: IndexKind, milvus_uri: str, **settings: Any) -> CollectionInfo:
    return CollectionInfo(
        id=f"c{uuid.uuid4().hex[:12]}",
        project_id="p1",
        name="docs",
        embedding_model="test-model",
        dimensions=DIM,
        index_kind=kind,
        index_uri=milvus_uri if kind == "milvus" else None,
        settings={"hnsw_threshold": 40, **settings},  # auto switches to HNSW inside these tests
    )


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> IndexKind:
    chosen: IndexKind = request.param
    return chosen


@pytest.fixture
def collection(kind: IndexKind, milvus_uri: str) -> CollectionInfo:
    return collection_for(kind, milvus_uri)


@pytest.fixture
def index(collection: CollectionInfo, tmp_path: Path) -> Iterator[RagIndex]:
    made = open_rag_index(collection, data_dir=tmp_path)
    yield made
    forget_rag_index(collection, data_dir=tmp_path)  # a Milvus collection lives in the shared file: drop it


def vec(seed: int) -> FloatArray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def chunks(n: int, seed: int = 0, prefix: str = "c") -> list[IndexedChunk]:
    """Chunks with random vectors, a few words of text and varied metadata (strings, numbers, booleans,
    lists, missing keys, access lists)."""
    rng = np.random.default_rng(seed)
    out = []
    groups = ["a", "b", "c"]
    for i in range(n):
        words = [WORDS[j] for j in rng.choice(len(WORDS), size=3, replace=False)]
        acl = AccessList.of(groups=[groups[i % 3]] if i % 4 else [], users=["u1"] if i % 7 == 0 else [])
        metadata: dict[str, Any] = {"_acl": acl.tokens(), "_document": f"d{i % 5}", "_position": i}
        if i % 2:
            metadata["lang"] = "en" if i % 3 else "de"
        if i % 3 == 0:
            metadata["public"] = bool(i % 2)
        if i % 5 == 0:
            metadata["tags"] = ["x", "y"] if i % 10 else ["y", "z"]
        metadata["rank"] = float(i % 9) if i % 4 else i % 9
        vector = rng.standard_normal(DIM).astype(np.float32) * float(rng.uniform(0.5, 3.0))
        out.append(
            IndexedChunk(id=f"{prefix}{i}", text=" ".join(words) + f" item{i}", vector=vector, metadata=metadata)
        )
    return out


def brute_force(items: list[IndexedChunk], query: FloatArray, k: int, where: Filter | None) -> list[tuple[str, float]]:
    q = query / np.linalg.norm(query)
    scored = []
    for item in items:
        if where is not None and not where.matches(item.metadata):
            continue
        v = np.asarray(item.vector, dtype=np.float64)
        scored.append((item.id, float(v @ q / np.linalg.norm(v))))
    scored.sort(key=lambda pair: -pair[1])
    return scored[:k]


def assert_dense(index: RagIndex, items: list[IndexedChunk], query: FloatArray, k: int, where: Filter | None) -> None:
    found = index.dense(query, k=k, where=where)
    expected = brute_force(items, query, k, where)
    assert [h.id for h in found] == [i for i, _ in expected]
    assert [h.score for h in found] == pytest.approx([s for _, s in expected], abs=1e-4)


FILTERS = [
    None,
    Filter(),
    Filter(equals={"lang": "en"}),
    Filter(equals={"public": True}),
    Filter(equals={"public": False}),
    Filter(equals={"rank": 3}),  # matches 3 and 3.0
    Filter(equals={"rank": True}),  # a boolean never equals a number
    Filter(one_of={"lang": frozenset({"de", "fr"}), "_document": frozenset({"d1", "d2", "d3"})}),
    Filter(any_of={"tags": frozenset({"x"})}),
    Filter(any_of={"tags": frozenset({"z", "q"})}),
    Filter(ranges={"rank": (2.0, 5.5)}),
    Filter(ranges={"rank": (None, 1)}),
    Filter(ranges={"public": (0, 1)}),  # never a boolean
    Filter(ranges={"lang": (0, None)}),  # never a string
    Filter(equals={"missing": "x"}),
    Identity("p1", groups=frozenset({"a"})).acl_filter(),
    Identity("p1", user="u1").acl_filter(),
    Identity("p1", groups=frozenset({"b", "c"})).acl_filter(Filter(ranges={"rank": (1, 6)}, equals={"lang": "en"})),
]


def test_empty_index(index: RagIndex) -> None:
    assert len(index) == 0
    assert index.dense(vec(1), k=5) == []
    assert index.keyword("alpha", k=5) == []
    assert index.remove(["nothing"]) == 0
    assert index.kind in {"exact", "hnsw", "milvus"}


def test_dense_search_is_brute_force_with_filter_semantics(index: RagIndex) -> None:
    items = chunks(120, seed=3)
    index.upsert(items)
    assert len(index) == 120
    for where in FILTERS:
        for trial in range(3):
            assert_dense(index, items, vec(100 + trial) * (trial + 1), 7, where)
        assert_dense(index, items, vec(200), 500, where)  # k beyond the matches: every match, best first


def test_keyword_search_filters_inside_the_search(index: RagIndex) -> None:
    items = chunks(90, seed=4)
    index.upsert(items)
    for where, word in itertools.product(FILTERS, ("alpha", "sigma beta")):
        terms = set(word.split())
        expected = {i.id for i in items if terms & set(i.text.split()) and (where is None or where.matches(i.metadata))}
        found = index.keyword(word, k=200, where=where)
        assert {h.id for h in found} == expected
        assert all(h.score > 0 for h in found)
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
        top = index.keyword(word, k=3, where=where)
        assert [h.id for h in top] == [h.id for h in found[:3]] or [h.score for h in top] == pytest.approx(
            [h.score for h in found[:3]]
        )


def test_keyword_scores_rank_rarer_terms_higher(index: RagIndex) -> None:
    index.upsert(
        [
            IndexedChunk("common", "the report covers budgets", vec(1), {"_acl": ["*"]}),
            IndexedChunk("rare", "the report covers zanzibar budgets", vec(2), {"_acl": ["*"]}),
            *[IndexedChunk(f"f{i}", f"budgets and filler text {i}", vec(10 + i), {"_acl": ["*"]}) for i in range(8)],
        ]
    )
    found = index.keyword("zanzibar budgets", k=3)
    assert found[0].id == "rare" and found[0].text == "the report covers zanzibar budgets"
    assert index.keyword("the and of", k=3) == []  # stop words only
    assert index.keyword("unknownword", k=3) == []
    assert index.keyword("   ", k=3) == []


def test_a_filter_still_returns_k_when_the_best_matches_are_hidden(index: RagIndex) -> None:
    d = vec(7)
    hidden = [IndexedChunk(f"b{i}", "secret plan", d + 0.01 * vec(50 + i), {"_acl": ["g:b"]}) for i in range(30)]
    visible = [IndexedChunk(f"a{i}", "open plan", vec(80 + i), {"_acl": ["g:a"]}) for i in range(30)]
    index.upsert(hidden + visible)
    a_only = Identity("p1", groups=frozenset({"a"})).acl_filter()
    found = index.dense(d, k=10, where=a_only)
    assert len(found) == 10 and all(h.id.startswith("a") for h in found)
    assert_dense(index, hidden + visible, d, 10, a_only)
    words = index.keyword("plan secret", k=10, where=a_only)
    assert len(words) == 10 and all(h.id.startswith("a") for h in words)
    assert index.dense(d, k=5, where=Identity("p1", groups=frozenset({"c"})).acl_filter()) == []


def test_hnsw_graph_path_keeps_k_matches_under_a_filter(
    index: RagIndex, kind: IndexKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The graph's oversampling (not the exact fallback) also returns k matches, the right ones here."""
    monkeypatch.setattr(hnsw, "EXACT_BELOW_ROWS", 0)
    monkeypatch.setattr(hnsw, "EXACT_BELOW_SHARE", 0.0)
    items = chunks(300, seed=9)
    index.upsert(items)
    where = Filter(equals={"lang": "de"})  # about a sixth of the chunks
    overlap = 0
    for trial in range(5):
        found = index.dense(vec(300 + trial), k=8, where=where)
        assert len(found) == 8 and all(where.matches(h.metadata) for h in found)
        expected = brute_force(items, vec(300 + trial), 8, where)
        overlap += len({h.id for h in found} & {i for i, _ in expected})
    assert overlap >= 34  # of 40: approximate on the graph (usually all 40), exact elsewhere


def test_hits_carry_text_and_metadata(index: RagIndex) -> None:
    meta = {"_acl": ["g:a", "u:bob"], "_source": "docs/a.md", "_headings": ["Intro", "Setup"], "_position": 2}
    meta |= {"_indexed_at": 1_700_000_000.5, "_flags": ["injection"], "public": True, "n": 3}
    index.upsert([IndexedChunk("x", "install the agent", vec(1), meta)])
    for hit in (index.dense(vec(1), k=1)[0], index.keyword("agent", k=1)[0]):
        assert (hit.id, hit.text) == ("x", "install the agent")
        assert dict(hit.metadata or {}) == meta
    assert index.dense(vec(1), k=1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_upsert_replaces_a_chunk_in_both_indexes(index: RagIndex) -> None:
    index.upsert([IndexedChunk("x", "old words here", vec(1), {"_acl": ["*"], "v": 1})])
    index.upsert([IndexedChunk("y", "other text", vec(2), {"_acl": ["*"]})])
    index.upsert([IndexedChunk("x", "brand new content", vec(3), {"_acl": ["g:a"], "v": 2})])
    assert len(index) == 2
    assert index.keyword("old", k=5) == []
    assert [h.id for h in index.keyword("brand", k=5)] == ["x"]
    top = index.dense(vec(3), k=1)[0]
    assert (top.id, dict(top.metadata or {})["v"]) == ("x", 2)
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert index.dense(vec(3), k=5, where=Filter(equals={"v": 1})) == []
    assert [h.id for h in index.dense(vec(1), k=5, where=Identity("p1").acl_filter())] == ["y"]


def test_a_repeated_id_in_one_batch_keeps_the_last(index: RagIndex) -> None:
    index.upsert(
        [
            IndexedChunk("x", "first version", vec(1), {"_acl": ["*"]}),
            IndexedChunk("x", "second version", vec(2), {"_acl": ["*"]}),
        ]
    )
    assert len(index) == 1
    assert [h.text for h in index.dense(vec(2), k=5)] == ["second version"]


def test_removed_chunks_leave_both_indexes(index: RagIndex) -> None:
    items = chunks(80, seed=5)
    index.upsert(items)
    gone = {f"c{i}" for i in range(0, 80, 3)}
    assert index.remove([*sorted(gone), "never-added", "c0"]) == len(gone)
    assert len(index) == 80 - len(gone)
    kept = [i for i in items if i.id not in gone]
    for trial in range(3):
        assert_dense(index, kept, vec(400 + trial), 20, None)
    assert not gone & {h.id for h in index.keyword("alpha beta gamma delta", k=100)}
    assert index.remove(sorted(gone)) == 0
    index.upsert(items[:3])  # freed slots are reused
    assert len(index) == 80 - len(gone) + 1
    assert_dense(index, [*kept, items[0]], vec(450), 30, None)


def test_auto_switches_to_hnsw_as_the_collection_grows(tmp_path: Path) -> None:
    index = open_rag_index(collection_for("auto", "", hnsw_threshold=50), data_dir=tmp_path)
    items = chunks(60, seed=6)
    index.upsert(items[:49])
    assert index.kind == "exact"
    index.upsert(items[49:])
    assert index.kind == "hnsw"
    assert_dense(index, items, vec(500), 10, None)
    index.remove([f"c{i}" for i in range(40)])  # 20 left: below half the threshold
    assert index.kind == "exact"
    assert_dense(index, items[40:], vec(501), 10, None)


def test_persisted_and_reopened(collection: CollectionInfo, tmp_path: Path) -> None:
    items = chunks(70, seed=7)
    first = open_rag_index(collection, data_dir=tmp_path)
    first.upsert(items)
    first.remove(["c5", "c6"])
    first.close()
    assert open_rag_index(collection, data_dir=tmp_path) is first  # the process keeps one copy
    again = load_rag_index(collection, data_dir=tmp_path)  # read from disk
    assert (len(again), again.kind) == (68, first.kind)
    kept = [i for i in items if i.id not in {"c5", "c6"}]
    assert_dense(again, kept, vec(600), 10, Identity("p1", groups=frozenset({"a"})).acl_filter())
    assert [h.id for h in again.keyword("alpha", k=50)] == [h.id for h in first.keyword("alpha", k=50)]
    again.upsert(items[5:6])
    again.close()  # another writer saved: the next open reads the files again
    reopened = open_rag_index(collection, data_dir=tmp_path)
    assert reopened is not first and len(reopened) == 69
    forget_rag_index(collection, data_dir=tmp_path)


def test_a_missing_or_damaged_index_opens_empty_and_rebuilds(collection: CollectionInfo, tmp_path: Path) -> None:
    items = chunks(30, seed=8)
    first = open_rag_index(collection, data_dir=tmp_path)
    first.upsert(items)
    first.close()
    folder = tmp_path / "rag" / collection.id
    (folder / "chunks.jsonl").write_text("not json\n")
    damaged = load_rag_index(collection, data_dir=tmp_path)
    assert len(damaged) == 0  # the store's chunk count differs: ingestion calls rebuild
    damaged.rebuild(iter(items))
    assert len(damaged) == 30
    assert_dense(damaged, items, vec(700), 5, None)
    forget_rag_index(collection, data_dir=tmp_path)


def test_rebuild_replaces_everything(index: RagIndex) -> None:
    index.upsert(chunks(40, seed=10, prefix="old"))
    fresh = chunks(25, seed=11, prefix="new")
    index.rebuild(iter(fresh))
    assert len(index) == 25
    assert_dense(index, fresh, vec(800), 30, None)
    assert all(h.id.startswith("new") for h in index.keyword("alpha beta", k=100))


def test_bad_vectors_and_k_are_clear_errors(index: RagIndex) -> None:
    index.upsert([IndexedChunk("ok", "text", vec(1), {"_acl": ["*"]})])
    with pytest.raises(DimensionMismatch, match="dimension 8 does not fit an index of dimension 16"):
        index.upsert([IndexedChunk("a", "t", vec(2), {}), IndexedChunk("b", "t", np.ones(8, np.float32), {})])
    bad = vec(3).copy()
    bad[0] = math.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.upsert([IndexedChunk("nan", "t", bad, {})])
    assert len(index) == 1  # nothing of a refused batch was written
    with pytest.raises(DimensionMismatch):
        index.dense(np.ones(32, np.float32), k=1)
    with pytest.raises(ValueError, match="k"):
        index.dense(vec(1), k=0)
    with pytest.raises(ValueError, match="k"):
        index.keyword("text", k=0)


def test_unknown_kind_and_bad_settings_are_refused(tmp_path: Path) -> None:
    base = collection_for("auto", "")
    with pytest.raises(ValueError, match="hnsw_threshold"):
        open_rag_index(CollectionInfo(**{**_fields(base), "settings": {"hnsw_threshold": "many"}}), data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown index kind"):
        open_rag_index(CollectionInfo(**{**_fields(base), "index_kind": "faiss"}), data_dir=tmp_path)
    with pytest.raises(ValueError, match="index_uri"):
        open_rag_index(CollectionInfo(**{**_fields(base), "index_kind": "milvus", "id": "m1"}), data_dir=tmp_path)


def _fields(info: CollectionInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__slots__}
