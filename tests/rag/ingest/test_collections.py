"""Collections: the model is fixed and re-embedding switches it with progress; the index is rebuilt from the
store when it does not hold what the store says; bad names and settings are refused with the reason."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from pilothouse.rag.collections import CollectionError, create_collection, open_index, reembed
from pilothouse.rag.embedders import MiniLMTextEmbedder, embedder_for, register_embedder
from pilothouse.rag.index.factory import collection_dir, forget_rag_index
from pilothouse.rag.settings import CollectionSettings
from pilothouse.store import rag as repo
from pilothouse.vectors.protocol import FloatArray
from tests.rag.ingest.conftest import Rag


class Reversed(MiniLMTextEmbedder):
    """Another "model": MiniLM's vectors with the dimensions reversed (so every stored vector changes)."""

    model = "minilm-reversed"

    def embed(self, texts: list[str]) -> FloatArray:
        return np.ascontiguousarray(super().embed(texts)[:, ::-1])


def test_reembed_switches_the_model_with_progress(rag_lite: Rag) -> None:
    rag = rag_lite
    register_embedder(Reversed.model, Reversed)
    collection = rag.collection()
    rag.ingestor(collection).ingest_records([{"id": f"r{i}", "text": f"Fact number {i} about tea."} for i in range(5)])
    seen: list[tuple[int, int]] = []
    updated = reembed(
        rag.store,
        collection,
        data_dir=rag.data_dir,
        embedding_model=Reversed.model,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert updated.embedding_model == Reversed.model and seen[0] == (0, 5) and seen[-1] == (5, 5)
    with rag.store.connect() as conn:
        chunk = next(repo.iter_chunks(conn, collection.id))
    assert np.allclose(chunk.vector, embedder_for(Reversed.model).embed([chunk.text])[0], atol=1e-5)
    index = rag.index(updated)
    query = embedder_for(Reversed.model).embed(["Fact number 3 about tea."])[0]
    assert index.dense(query, k=1)[0].metadata["_source"] == "r3"  # type: ignore[index]
    with pytest.raises(CollectionError, match="unknown embedding model"):
        reembed(rag.store, updated, data_dir=rag.data_dir, embedding_model="nope")


def test_a_lost_index_is_rebuilt_from_the_store(rag_lite: Rag) -> None:
    rag = rag_lite
    collection = rag.collection()
    ingestor = rag.ingestor(collection)
    ingestor.ingest_records([{"id": "a", "text": "Alpha."}, {"id": "b", "text": "Beta."}])
    forget_rag_index(collection, data_dir=rag.data_dir)
    shutil.rmtree(collection_dir(collection, rag.data_dir), ignore_errors=True)
    index = open_index(rag.store, collection, data_dir=rag.data_dir)
    assert len(index) == 2 and {h.id for h in index.keyword("beta", k=2)} == {
        c.id for c in rag.store_chunks(collection.id) if c.text == "Beta."
    }


def test_bad_names_and_settings_are_refused(rag_lite: Rag) -> None:
    rag = rag_lite
    with pytest.raises(CollectionError, match="invalid collection name"):
        create_collection(rag.store, project_id=rag.project_id, name="Bad Name")
    with pytest.raises(CollectionError, match="needs index_uri"):
        create_collection(rag.store, project_id=rag.project_id, name="m", index_kind="milvus")
    with pytest.raises(ValueError, match="overlap"):
        CollectionSettings(chunk_tokens=32, overlap_tokens=20)
    rag.collection("dup")
    with pytest.raises(CollectionError, match="already exists"):
        rag.collection("dup")
