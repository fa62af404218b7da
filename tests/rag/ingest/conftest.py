"""Fixtures for ingestion tests: a store with a project, a collection on the real MiniLM model, an embedder
wrapper that counts what it embeds, and a fresh index per collection under a temporary data directory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pilothouse.rag.collections import create_collection, open_index
from pilothouse.rag.embedders import DEFAULT_MODEL, MiniLMTextEmbedder, embedder_for
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.ingest import Ingestor
from pilothouse.rag.settings import CollectionSettings
from pilothouse.rag.types import CollectionInfo
from pilothouse.store.engine import Store, open_store
from pilothouse.store.projects import create_project
from pilothouse.store.rag import ChunkRecord, iter_chunks
from pilothouse.vectors.protocol import FloatArray


@dataclass
class CountingEmbedder:
    """The real MiniLM embedder, recording every text it is asked to embed (one list per call)."""

    inner: MiniLMTextEmbedder
    calls: list[list[str]] = field(default_factory=list)

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def embed(self, texts: list[str]) -> FloatArray:
        self.calls.append(list(texts))
        return self.inner.embed(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


@dataclass
class Rag:
    store: Store
    project_id: str
    data_dir: Path
    embedder: CountingEmbedder

    def collection(self, name: str = "docs", **settings: object) -> CollectionInfo:
        return create_collection(
            self.store,
            project_id=self.project_id,
            name=name,
            index_kind="exact",
            settings=CollectionSettings(**settings),  # type: ignore[arg-type]
        )

    def index(self, collection: CollectionInfo) -> RagIndex:
        return open_index(self.store, collection, data_dir=self.data_dir)

    def store_chunks(self, collection_id: str) -> list[ChunkRecord]:
        with self.store.connect() as conn:
            return list(iter_chunks(conn, collection_id))

    def ingestor(self, collection: CollectionInfo) -> Ingestor:
        return Ingestor(self.store, collection, self.index(collection), embedder=self.embedder)


def _rag(store: Store, tmp_path: Path) -> Rag:
    with store.begin() as conn:
        project = create_project(conn, "rag-tests")
    inner = embedder_for(DEFAULT_MODEL)
    assert isinstance(inner, MiniLMTextEmbedder)
    return Rag(store, project.id, tmp_path / "data", CountingEmbedder(inner))


@pytest.fixture
def rag(store: Store, tmp_path: Path) -> Rag:
    """On SQLite and on PostgreSQL."""
    return _rag(store, tmp_path)


@pytest.fixture
def rag_lite(tmp_path: Path) -> Iterator[Rag]:
    """On SQLite only: for what does not depend on the database."""
    store = open_store(f"sqlite:///{tmp_path / 'rag.db'}")
    yield _rag(store, tmp_path)
    store.dispose()
