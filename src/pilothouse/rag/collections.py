"""Collections: creating one with its fixed embedding model, opening its index in step with the store, and
re-embedding it (a new model, or the same one again) with progress.

The SQL store is the record; the index (`rag/index/`) is derived from it. `open_index` compares the index's
size with the store's indexable chunks and rebuilds it from the store when they differ (a lost or stale index
file, or a write that reached the store but not the index).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pilothouse.rag.embedders import DEFAULT_MODEL, TextEmbedder, embedder_for
from pilothouse.rag.index.factory import forget_rag_index, open_rag_index
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.settings import CollectionSettings
from pilothouse.rag.types import CollectionInfo
from pilothouse.store import rag as repo
from pilothouse.store.engine import Store

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
INDEX_KINDS = ("auto", "exact", "hnsw", "milvus")
REEMBED_BATCH = 256

Progress = Callable[[int, int], None]
"""Called with (done, total) as work advances."""


class CollectionError(ValueError):
    """A collection request that cannot be honoured; `code` names the reason for API errors."""

    def __init__(self, message: str, *, code: str = "invalid_collection", param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@contextmanager
def collection_lock(collection_id: str) -> Iterator[None]:
    """Serialise this process's writers of one collection (ingest, sync, re-embed, delete), so versions and
    the index change in one order."""
    with _locks_guard:
        lock = _locks.setdefault(collection_id, threading.Lock())
    with lock:
        yield


def collection_settings(collection: CollectionInfo) -> CollectionSettings:
    return CollectionSettings.from_json(collection.settings)


def create_collection(
    store: Store,
    *,
    project_id: str,
    name: str,
    embedding_model: str = DEFAULT_MODEL,
    index_kind: str = "auto",
    index_uri: str | None = None,
    settings: CollectionSettings | None = None,
    extra_settings: dict[str, Any] | None = None,
    actor: str | None = None,
) -> CollectionInfo:
    """A new collection embedded with `embedding_model` for good (CollectionError: bad name, model or kind, or
    the name is taken in the project). `extra_settings`: index settings such as `hnsw_threshold`."""
    if not NAME.match(name):
        raise CollectionError(
            f"invalid collection name {name!r}: use 1-100 lowercase letters, digits, '_', '-' or '.'", param="name"
        )
    if index_kind not in INDEX_KINDS:
        raise CollectionError(f"index kind must be one of {', '.join(INDEX_KINDS)}", param="index")
    if index_kind == "milvus" and not index_uri:
        raise CollectionError(
            "a milvus collection needs index_uri (a Milvus URI or a milvus-lite file)", param="index_uri"
        )
    try:
        embedder = embedder_for(embedding_model)
    except ValueError as exc:
        raise CollectionError(str(exc), code="unknown_embedding_model", param="embedding_model") from exc
    raw = {**(extra_settings or {}), **(settings or CollectionSettings()).to_json()}
    with store.begin() as conn:
        if repo.get_collection(conn, project_id, name) is not None:
            raise CollectionError(f"collection {name!r} already exists in this project", code="conflict", param="name")
        return repo.create_collection(
            conn,
            project_id=project_id,
            name=name,
            embedding_model=embedding_model,
            dimensions=embedder.dimensions,
            index_kind=index_kind,
            index_uri=index_uri,
            settings=raw,
            actor=actor,
        )


def open_index(store: Store, collection: CollectionInfo, *, data_dir: Path) -> RagIndex:
    """The collection's index, rebuilt from the store first if it does not hold what the store says it should."""
    index = open_rag_index(collection, data_dir=data_dir)
    with store.connect() as conn:
        expected = repo.count_chunks(conn, collection.id, indexable=True)
        if len(index) != expected:
            index.rebuild(c.indexed() for c in repo.iter_chunks(conn, collection.id, indexable=True))
            index.close()
    return index


def delete_collection(store: Store, collection: CollectionInfo, *, data_dir: Path) -> int:
    """Delete the collection's record and its index files; returns how many chunks it held."""
    with store.begin() as conn:
        removed = repo.delete_collection(conn, collection.id)
    forget_rag_index(collection, data_dir=data_dir)
    return removed


def reembed(
    store: Store,
    collection: CollectionInfo,
    *,
    data_dir: Path,
    embedding_model: str | None = None,
    progress: Progress | None = None,
    embedder: TextEmbedder | None = None,
) -> CollectionInfo:
    """Embed every chunk again with `embedding_model` (default: the collection's own), record the model and
    rebuild the index. Chunks are read and written in batches; the model is switched only when all are done."""
    model = embedding_model or collection.embedding_model
    try:
        chosen = embedder or embedder_for(model)
    except ValueError as exc:
        raise CollectionError(str(exc), code="unknown_embedding_model", param="embedding_model") from exc
    with store.connect() as conn:
        total = repo.count_chunks(conn, collection.id)
        ids = [c.id for c in repo.iter_chunks(conn, collection.id)]
    done = 0
    if progress:
        progress(0, total)
    for start in range(0, len(ids), REEMBED_BATCH):
        with store.connect() as conn:
            batch = repo.get_chunks(conn, collection.id, ids[start : start + REEMBED_BATCH])
        vectors = np.asarray(chosen.embed([c.text for c in batch]), dtype=np.float32)
        with store.begin() as conn:
            repo.update_vectors(conn, {c.id: vectors[i] for i, c in enumerate(batch)})
        done += len(batch)
        if progress:
            progress(done, total)
    with store.begin() as conn:
        repo.set_embedding_model(conn, collection.id, embedding_model=model, dimensions=chosen.dimensions)
        updated = repo.get_collection_by_id(conn, collection.id)
    assert updated is not None
    if updated.dimensions != collection.dimensions:
        forget_rag_index(collection, data_dir=data_dir)
    index = open_rag_index(updated, data_dir=data_dir)
    with store.connect() as conn:
        index.rebuild(c.indexed() for c in repo.iter_chunks(conn, collection.id, indexable=True))
    index.close()
    return updated
