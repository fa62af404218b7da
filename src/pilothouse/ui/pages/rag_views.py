"""What the RAG pages show, read through the functions the `/api/rag/collections` routes call.

- `collection_rows`: the project's collections (`store.rag.list_collections`, as `GET /api/rag/collections`)
  with their stale counts (`rag.freshness.stale_documents`, as `GET .../{name}/stale`).
- `document_page`: one page of a collection's documents (`store.rag.list_documents`, as `GET .../documents`),
  each with its freshness (`rag.freshness.stale_among`, the check the stale route runs) and access list.

Both are blocking store reads: pages call them in a thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from pilothouse.errors import NotFound
from pilothouse.principal import Principal
from pilothouse.rag.freshness import StaleDocument, stale_among, stale_documents
from pilothouse.rag.settings import CollectionSettings
from pilothouse.rag.types import CollectionInfo
from pilothouse.store import rag as repo
from pilothouse.store.engine import Store

PAGE_SIZE = 50
StaleFilter = Literal["all", "stale", "fresh"]


@dataclass(frozen=True, slots=True)
class CollectionRow:
    """A collection as the list shows it."""

    summary: repo.CollectionSummary
    stale: int


@dataclass(frozen=True, slots=True)
class DocumentView:
    """A document with its freshness: `stale` is None when it is fresh, else the reason (missing, changed, ttl)."""

    row: repo.DocumentRow
    stale: str | None
    age_s: float

    @property
    def access(self) -> str:
        """Who may read it: the whole project, or its groups and users."""
        return "project" if self.row.acl.is_open() else "restricted"


@dataclass(frozen=True, slots=True)
class DocumentPage:
    """One page of documents, the counts behind it and where the next page starts."""

    collection: repo.CollectionSummary
    documents: list[DocumentView]
    matching: int
    """Documents matching the filters (over all pages)."""
    stale_total: int
    """Stale documents of the whole collection (with the same file check)."""
    page: int
    pages: int


def find_collection(store: Store, principal: Principal, name: str) -> repo.CollectionSummary:
    """The collection `name` of the principal's project with its counts (404 like the API otherwise)."""
    with store.connect() as conn:
        for summary in repo.list_collections(conn, principal.project_id):
            if summary.info.name == name:
                return summary
    raise NotFound(f"no RAG collection named {name!r} in this project", code="collection_not_found")


def _stale(store: Store, collection: CollectionInfo, check_files: bool) -> list[StaleDocument]:
    return stale_documents(store, collection, check_files=check_files)


def collection_rows(store: Store, principal: Principal) -> list[CollectionRow]:
    """The project's collections with counts and how many documents are stale (TTL only, as the API's default)."""
    with store.connect() as conn:
        summaries = repo.list_collections(conn, principal.project_id)
    return [CollectionRow(s, len(_stale(store, s.info, check_files=False))) for s in summaries]


def document_page(
    store: Store,
    principal: Principal,
    name: str,
    *,
    page: int = 1,
    prefix: str | None = None,
    status: str | None = None,
    stale: StaleFilter = "all",
    check_files: bool = False,
    now: float | None = None,
) -> DocumentPage:
    """Page `page` (1-based) of the collection's documents by source, filtered as the documents route filters
    (`prefix`, `status`) and by freshness."""
    summary = find_collection(store, principal, name)
    with store.connect() as conn:
        rows = repo.list_documents(conn, summary.info.id, status=status, prefix=prefix or None)
    at = time.time() if now is None else now
    settings = CollectionSettings.from_json(summary.info.settings)
    stale_by_id = {s.document.id: s for s in stale_among(rows, settings, now=at, check_files=check_files)}
    views = [
        DocumentView(
            r,
            stale_by_id[r.id].reason if r.id in stale_by_id else None,
            max(0.0, at - r.indexed_at),
        )
        for r in rows
    ]
    if stale == "stale":
        views = [v for v in views if v.stale is not None]
    elif stale == "fresh":
        views = [v for v in views if v.stale is None]
    whole = status is None and not prefix  # the stale count is the whole collection's, as the stale route's
    stale_total = len(stale_by_id) if whole else len(_stale(store, summary.info, check_files))
    pages = max(1, -(-len(views) // PAGE_SIZE))
    start = (page - 1) * PAGE_SIZE
    return DocumentPage(summary, views[start : start + PAGE_SIZE], len(views), stale_total, page, pages)
