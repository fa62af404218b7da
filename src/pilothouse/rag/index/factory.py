"""`open_rag_index`: a collection's `RagIndex`, by its index kind, from its folder under the data directory.

Kinds (`CollectionInfo.index_kind`): `auto` (the default: exact, HNSW above `settings["hnsw_threshold"]`),
`exact`, `hnsw`, `milvus` (`index_uri`: a Milvus server `http://host:19530` or a milvus-lite file path; needs
the `milvus` extra). Embedded files live in `<data_dir>/rag/<collection id>/`.

An opened index is kept for the process: opening it again returns the same object (a query does not re-read
100k chunks from disk) unless another process saved the collection since (the folder's manifest changed), in
which case it is read again. `close()` on it persists; it stays usable.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pilothouse.rag.index.auto import DEFAULT_THRESHOLD, AutoBackend
from pilothouse.rag.index.composite import CompositeRagIndex, DenseBackend
from pilothouse.rag.index.exact import ExactBackend
from pilothouse.rag.index.hnsw import GRAPH_FILE, HnswBackend
from pilothouse.rag.index.protocol import RagIndex
from pilothouse.rag.index.table import CHUNKS_FILE, MANIFEST, VECTORS_FILE, ChunkTable
from pilothouse.rag.types import CollectionInfo

_lock = threading.Lock()
_opened: dict[tuple[Path, str, int], CompositeRagIndex] = {}


def collection_dir(collection: CollectionInfo, data_dir: Path) -> Path:
    return data_dir / "rag" / collection.id


def open_rag_index(collection: CollectionInfo, *, data_dir: Path) -> RagIndex:
    """The collection's index (see the module docstring). Raises ValueError for a bad kind or setting."""
    directory = collection_dir(collection, data_dir).resolve()
    key = (directory, collection.index_kind, collection.dimensions)
    with _lock:
        held = _opened.get(key)
        if held is not None and held.saved_stamp == CompositeRagIndex.stamp_of(directory):
            return held
        index = load_rag_index(collection, data_dir=data_dir)
        _opened[key] = index
        return index


def load_rag_index(collection: CollectionInfo, *, data_dir: Path) -> CompositeRagIndex:
    """A new object reading the collection's files (`open_rag_index` without the process's copy)."""
    directory = collection_dir(collection, data_dir).resolve()
    if collection.dimensions < 1:
        raise ValueError(f"collection {collection.name!r} has no embedding dimensions")
    table = ChunkTable.load(directory, collection.dimensions) or ChunkTable(collection.dimensions)
    backend: DenseBackend
    kind = collection.index_kind
    if kind == "exact":
        backend = ExactBackend()
    elif kind == "hnsw":
        backend = HnswBackend(table, directory)
    elif kind == "auto":
        threshold = collection.settings.get("hnsw_threshold", DEFAULT_THRESHOLD)
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise ValueError(f"hnsw_threshold must be an integer, got {threshold!r}")
        backend = AutoBackend(table, directory, threshold=threshold)
    elif kind == "milvus":
        from pilothouse.rag.index.milvus import MilvusBackend  # optional dependency: the `milvus` extra

        backend = MilvusBackend.open(collection, table)
    else:
        raise ValueError(f"unknown index kind {kind!r}: use auto, exact, hnsw or milvus")
    return CompositeRagIndex(table, backend, directory=directory)


def forget_rag_index(collection: CollectionInfo, *, data_dir: Path) -> None:
    """Drop the process's open copy, the collection's files and its Milvus collection (if any): the
    collection was deleted."""
    directory = collection_dir(collection, data_dir).resolve()
    with _lock:
        held = [_opened.pop(key) for key in [key for key in _opened if key[0] == directory]]
    if not held and collection.index_kind == "milvus":
        held = [load_rag_index(collection, data_dir=data_dir)]
    for index in held:
        index.drop()
    for name in (MANIFEST, VECTORS_FILE, CHUNKS_FILE, GRAPH_FILE):
        (directory / name).unlink(missing_ok=True)
