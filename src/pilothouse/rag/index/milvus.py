"""Milvus as a collection's dense index (index kind `milvus`): the same code against a Milvus server
(`http://host:19530`, scale-out) or a milvus-lite file (a local path; tests), named by the collection's
`index_uri`. Needs the `milvus` extra (`pymilvus`, and `milvus-lite` for file URIs).

One Milvus collection per RAG collection (`rag_<collection id>`), cosine metric, session consistency (this
process reads its own writes at once; other replicas within Milvus's staleness bound):
`id` (VARCHAR primary key), `vector` (FLOAT_VECTOR), `text` (VARCHAR), `acl` (ARRAY of VARCHAR: the chunk's
`_acl` tokens), `meta` (JSON: the other metadata, booleans apart) and `bools` (JSON: boolean metadata; see
milvus_filters.py for why). A search passes the filter, access tokens included, as the query's boolean
expression, so Milvus filters inside the search: a chunk the caller may not see never leaves the server.
Hits carry the text and metadata Milvus returns. BM25 runs beside it on the composite's table.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from pilothouse.rag.index.milvus_filters import filter_expression
from pilothouse.rag.index.table import ChunkTable
from pilothouse.rag.types import ACL_KEY, CollectionInfo
from pilothouse.vectors.filters import Filter
from pilothouse.vectors.protocol import FloatArray, VectorHit

try:
    from pymilvus import DataType, MilvusClient  # type: ignore[import-untyped]
except ImportError as missing:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "index kind 'milvus' needs pymilvus: pip install 'pilothouse[milvus]' (milvus-lite too for a file URI)"
    ) from missing

MAX_TEXT_BYTES = 65_535
MAX_ID_LENGTH = 512
MAX_ACL_TOKENS = 4096
MAX_LIMIT = 16_384  # Milvus's largest top-k
_WRITE_BATCH = 1000

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client_for(uri: str) -> Any:
    """One `MilvusClient` per URI for the process (a milvus-lite file can be opened once)."""
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            if "://" not in uri:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            client = MilvusClient(uri)
            _clients[uri] = client
        return client


def collection_name(collection: CollectionInfo) -> str:
    return "rag_" + re.sub(r"[^A-Za-z0-9_]", "_", collection.id)


class MilvusBackend:
    """Dense search in Milvus, written in step with the composite's table (see the module docstring)."""

    kind = "milvus"

    def __init__(self, client: Any, name: str, dim: int) -> None:
        self.client = client
        self.name = name
        self.dim = dim

    @classmethod
    def open(cls, collection: CollectionInfo, table: ChunkTable) -> MilvusBackend:
        if not collection.index_uri:
            raise ValueError(f"collection {collection.name!r} has index kind 'milvus' but no index_uri")
        backend = cls(client_for(collection.index_uri), collection_name(collection), collection.dimensions)
        backend._ensure_collection()
        return backend

    def _ensure_collection(self) -> None:
        if self.client.has_collection(self.name):
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_LENGTH)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_BYTES)
        schema.add_field(
            "acl", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_ACL_TOKENS, max_length=512
        )
        schema.add_field("meta", DataType.JSON)
        schema.add_field("bools", DataType.JSON)
        index_params = self.client.prepare_index_params()
        index_params.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
        self.client.create_collection(self.name, schema=schema, index_params=index_params, consistency_level="Session")

    def written(self, table: ChunkTable, slots: list[int]) -> None:
        rows = [self._row(table, slot) for slot in slots]
        for start in range(0, len(rows), _WRITE_BATCH):
            self.client.upsert(self.name, rows[start : start + _WRITE_BATCH])

    def _row(self, table: ChunkTable, slot: int) -> dict[str, Any]:
        chunk_id = table.ids[slot] or ""
        text = table.texts[slot]
        if len(chunk_id) > MAX_ID_LENGTH:
            raise ValueError(f"chunk id longer than {MAX_ID_LENGTH} characters: {chunk_id[:40]!r}...")
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise ValueError(f"chunk {chunk_id!r} has more than {MAX_TEXT_BYTES} bytes of text; chunk it smaller")
        metadata = table.metadata[slot]
        acl = metadata.get(ACL_KEY, [])
        meta = {k: v for k, v in metadata.items() if k != ACL_KEY and not isinstance(v, bool)}
        bools = {k: v for k, v in metadata.items() if isinstance(v, bool)}
        return {
            "id": chunk_id,
            "vector": table.vectors[slot].tolist(),
            "text": text,
            "acl": [str(token) for token in acl] if isinstance(acl, list | tuple) else [],
            "meta": meta,
            "bools": bools,
        }

    def removed(self, table: ChunkTable, slots: list[int], ids: list[str]) -> None:
        for start in range(0, len(ids), _WRITE_BATCH):
            self.client.delete(self.name, ids=ids[start : start + _WRITE_BATCH])

    def cleared(self, table: ChunkTable) -> None:
        self.drop()
        self._ensure_collection()

    def search(self, table: ChunkTable, query: FloatArray, k: int, where: Filter | None) -> list[VectorHit]:
        expression = filter_expression(where)
        if expression == "false":
            return []
        found = self.client.search(
            self.name,
            data=[query.tolist()],
            limit=min(k, MAX_LIMIT),
            filter=expression,
            output_fields=["text", "acl", "meta", "bools"],
            search_params={"metric_type": "COSINE"},
        )
        hits: list[VectorHit] = []
        for hit in found[0] if found else []:
            entity = hit.get("entity", {})
            metadata: dict[str, Any] = {**(entity.get("meta") or {}), **(entity.get("bools") or {})}
            if entity.get("acl"):
                metadata[ACL_KEY] = list(entity["acl"])
            score = min(1.0, max(-1.0, float(hit["distance"])))
            hits.append(VectorHit(id=str(hit["id"]), score=score, text=entity.get("text", ""), metadata=metadata))
        return hits

    def count(self) -> int:
        """Rows Milvus holds (to check it is in step with the table)."""
        stats = self.client.get_collection_stats(self.name)
        return int(stats.get("row_count", 0))

    def save(self, directory: Path | None) -> None:
        self.client.flush(self.name)

    def close(self) -> None:
        pass

    def drop(self) -> None:
        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)
