"""Retrieval against the store: find the caller's collection, open its index, embed with its model, retrieve.

`RagQueries` is what the HTTP query route and the RAG chat stage share. A collection of another project is
not found (the same answer as one that does not exist). Index searches and embedding are CPU work:
`run_async` does them off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pilothouse.errors import InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.rag.collections import open_index
from pilothouse.rag.embedders import UnknownEmbeddingModel, embedder_for
from pilothouse.rag.rerank import RerankOptions, RunCall, llm_rerank
from pilothouse.rag.retrieve import Query, Retrieval, check_model, retrieve
from pilothouse.rag.types import CollectionInfo, Identity
from pilothouse.store import rag as repo
from pilothouse.store.engine import Store
from pilothouse.tracing.model import TraceSource
from pilothouse.vectors.protocol import FloatArray


class RagQueries:
    """Retrieval over a store's collections, their indexes under `data_dir`."""

    def __init__(self, store: Store, data_dir: Path) -> None:
        self.store = store
        self.data_dir = data_dir
        self.run_call: RunCall | None = None
        """The pipeline's `run`, for rerank calls (set by the pipeline that holds this object)."""

    def collection(self, project_id: str, name: str) -> CollectionInfo:
        with self.store.connect() as conn:
            found = repo.get_collection(conn, project_id, name)
        if found is None:
            raise NotFound(
                f"no collection named {name!r} in this project (`pilothouse rag collections` lists them)",
                param="collection",
            )
        return found

    def run(self, identity: Identity, name: str, query: Query) -> Retrieval:
        """Retrieve from the collection `name` of the identity's project."""
        collection = self.collection(identity.project_id, name)
        query.check()
        check_model(collection, query)
        index = open_index(self.store, collection, data_dir=self.data_dir)
        return retrieve(
            index,
            collection,
            identity,
            query,
            embed=lambda text: _embed(collection, text),
            vectors=lambda ids: self._vectors(collection, ids),
        )

    async def run_async(self, identity: Identity, name: str, query: Query) -> Retrieval:
        return await asyncio.to_thread(self.run, identity, name, query)

    async def rerank(
        self,
        retrieval: Retrieval,
        options: RerankOptions,
        *,
        principal: Principal,
        source: TraceSource,
        trace_id: str | None = None,
        parent_span_id: str | None = None,
    ) -> None:
        """Reorder `retrieval.hits` with a chat model (rag/rerank.py), in place; records what it did."""
        if self.run_call is None:
            raise InvalidRequest("reranking is not available here (no gateway pipeline)", param="rerank")
        done = await llm_rerank(
            self.run_call,
            principal=principal,
            options=options,
            query=retrieval.query.text,
            hits=retrieval.ranked,
            source=source,
            trace_id=trace_id,
            parent_span_id=parent_span_id,
        )
        retrieval.hits = done.hits[: retrieval.query.k]
        retrieval.rerank = {"model": options.model, **done.to_json()}

    def _vectors(self, collection: CollectionInfo, ids: Sequence[str]) -> Mapping[str, FloatArray]:
        with self.store.connect() as conn:
            return {c.id: c.vector for c in repo.get_chunks(conn, collection.id, ids)}


def _embed(collection: CollectionInfo, text: str) -> FloatArray:
    try:
        embedder = embedder_for(collection.embedding_model)
    except UnknownEmbeddingModel as exc:
        raise InvalidRequest(
            f"collection {collection.name!r} is embedded with {collection.embedding_model!r}, which this server "
            "cannot run: pass a query vector computed with it (`vector` and `embedding_model`)",
            code="embedding_model_unavailable",
        ) from exc
    vector: FloatArray = np.asarray(embedder.embed([text])[0], dtype=np.float32)
    return vector
