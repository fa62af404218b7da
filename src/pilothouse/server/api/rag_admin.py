"""/api/rag/collections: RAG collections and what goes into them (docs/rag.md).

Reading needs the viewer role, writing the developer role, all in the key's own project (a collection of another
project answers 404, like one that does not exist). Ingestion takes records (`/records`: the Python API's shape)
or documents already loaded and cut into sections by a client (`/documents`: what `pilothouse rag ingest|sync`
sends after reading a folder on its own machine), and removals by source. Both answer with what changed.
Creating, deleting and re-embedding a collection are audit events.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from pilothouse.audit.chain import append_event
from pilothouse.errors import Conflict, InvalidRequest, NotFound
from pilothouse.principal import Principal
from pilothouse.rag.chunking import Section
from pilothouse.rag.collections import (
    CollectionError,
    collection_lock,
    create_collection,
    delete_collection,
    open_index,
    reembed,
)
from pilothouse.rag.embedders import DEFAULT_MODEL
from pilothouse.rag.freshness import stale_documents
from pilothouse.rag.ingest import Ingestor, IngestReport
from pilothouse.rag.loaders import LoadedDocument, LoaderError
from pilothouse.rag.loaders.jsonl import check_metadata
from pilothouse.rag.settings import CollectionSettings, FolderSource
from pilothouse.rag.types import AccessList, CollectionInfo
from pilothouse.server.api.deps import PrincipalDep, StateDep
from pilothouse.server.auth import require_role
from pilothouse.server.state import AppState
from pilothouse.store import rag as repo

router = APIRouter(prefix="/api/rag/collections", tags=["rag"])

NAME = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
MAX_DOCUMENTS = 1000
MAX_TEXT = 2_000_000
AccessName = Annotated[str, Field(min_length=1, max_length=200)]


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_tokens: int = Field(default=200, ge=16, le=4096, description="Chunk size in the model's tokens.")
    overlap_tokens: int = Field(default=40, ge=0, le=2048, description="Tokens consecutive chunks share.")
    injection: Literal["off", "flag", "quarantine"] = Field(
        default="flag", description="What a prompt injection found in a chunk does (docs/rag.md#safety)."
    )
    injection_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    pii: Literal["off", "redact"] = Field(default="off", description="redact: mask personal data before indexing.")
    ttl_days: float | None = Field(default=None, gt=0, le=36500, description="Stale after this many days.")
    hnsw_threshold: int | None = Field(
        default=None, ge=1, le=100_000_000, description="auto index: switch to HNSW above this many chunks."
    )


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME, description="Lowercase letters, digits, '_', '-', '.'.")
    embedding_model: str = Field(default=DEFAULT_MODEL, min_length=1, max_length=200)
    index: Literal["auto", "exact", "hnsw", "milvus"] = "auto"
    index_uri: str | None = Field(default=None, min_length=1, max_length=1000)
    settings: SettingsBody = Field(default_factory=SettingsBody)


class Access(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[AccessName] = Field(default_factory=list, max_length=1000)
    users: list[AccessName] = Field(default_factory=list, max_length=1000)


class RecordsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_DOCUMENTS,
        description="{id, text, title?, metadata?, groups?, users?}; an id already held makes a new version.",
    )
    access: Access = Field(default_factory=Access, description="For records without their own groups or users.")
    remove: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=MAX_DOCUMENTS, description="Sources (record ids) to delete."
    )


class SectionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_TEXT)
    headings: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=20)
    page: int | None = Field(default=None, ge=1)


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=1000)
    title: str | None = Field(default=None, max_length=500)
    sections: list[SectionBody] = Field(max_length=10_000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    groups: list[AccessName] = Field(default_factory=list, max_length=1000)
    users: list[AccessName] = Field(default_factory=list, max_length=1000)
    mtime: float | None = Field(default=None, ge=0, le=1e11, description="The file's modification time.")


class DocumentsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[DocumentBody] = Field(default_factory=list, max_length=MAX_DOCUMENTS)
    access: Access = Field(default_factory=Access, description="For documents without their own groups or users.")
    folder: str | None = Field(
        default=None, min_length=1, max_length=1000, description="The folder they come from, remembered for sync."
    )
    files: bool = Field(
        default=False, description="The sources are file paths (status checks them); implied by `folder`."
    )
    remove: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=100_000, description="Sources to delete (files gone from the folder)."
    )


class ReembedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedding_model: str | None = Field(default=None, min_length=1, max_length=200)


def _find(state: AppState, principal: Principal, name: str) -> CollectionInfo:
    with state.store.connect() as conn:
        found = repo.get_collection(conn, principal.project_id, name)
    if found is None:
        raise NotFound(f"no RAG collection named {name!r} in this project", code="collection_not_found")
    return found


def _summary(state: AppState, collection: CollectionInfo) -> dict[str, Any]:
    with state.store.connect() as conn:
        for summary in repo.list_collections(conn, collection.project_id):
            if summary.info.id == collection.id:
                return summary.to_dict()
    raise NotFound(f"no RAG collection named {collection.name!r} in this project", code="collection_not_found")


def _collection_error(exc: CollectionError) -> Exception:
    if exc.code == "conflict":
        return Conflict(str(exc), code="collection_exists", param=exc.param)
    return InvalidRequest(str(exc), code=exc.code, param=exc.param)


def _audit(state: AppState, principal: Principal, action: str, name: str, details: dict[str, Any]) -> None:
    with state.store.begin() as conn:
        append_event(
            conn,
            actor=principal.key_id,
            action=action,
            target=name,
            project_id=principal.project_id,
            details=details,
        )


@router.get("")
async def list_collections(state: StateDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """The project's collections with their models, settings and counts."""
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        with state.store.connect() as conn:
            return [s.to_dict() for s in repo.list_collections(conn, principal.project_id)]

    return await asyncio.to_thread(read)


@router.post("", status_code=201)
async def create(body: CreateBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """A new collection; its embedding model is fixed (a query with another model is refused)."""
    require_role(principal, "developer")
    raw = body.settings.model_dump()
    threshold = raw.pop("hnsw_threshold")

    def write() -> dict[str, Any]:
        try:
            settings = CollectionSettings(**raw)
            created = create_collection(
                state.store,
                project_id=principal.project_id,
                name=body.name,
                embedding_model=body.embedding_model,
                index_kind=body.index,
                index_uri=body.index_uri,
                settings=settings,
                extra_settings={"hnsw_threshold": threshold} if threshold is not None else None,
                actor=principal.key_id,
            )
        except CollectionError as exc:
            raise _collection_error(exc) from None
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="invalid_settings", param="settings") from None
        _audit(state, principal, "rag.collection.create", body.name, {"embedding_model": body.embedding_model})
        return _summary(state, created)

    return await asyncio.to_thread(write)


@router.get("/{name}")
async def show(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """A collection with its counts and generation (which goes up on every change of its contents)."""
    require_role(principal, "viewer")
    return await asyncio.to_thread(lambda: _summary(state, _find(state, principal, name)))


@router.delete("/{name}")
async def delete(name: str, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Delete a collection, its documents, chunks and index files."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        collection = _find(state, principal, name)
        with collection_lock(collection.id):
            removed = delete_collection(state.store, collection, data_dir=state.settings.data_dir)
        _audit(state, principal, "rag.collection.delete", name, {"chunks": removed})
        return {"name": name, "deleted": True, "chunks": removed}

    return await asyncio.to_thread(write)


@router.get("/{name}/documents")
async def documents(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    prefix: Annotated[str | None, Query(max_length=1000, description="Only sources starting with this.")] = None,
    status: Annotated[Literal["active", "quarantined"] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The collection's documents by source: version, hash, access list, flags, freshness fields."""
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        collection = _find(state, principal, name)
        with state.store.connect() as conn:
            return [d.to_dict() for d in repo.list_documents(conn, collection.id, status=status, prefix=prefix)]

    return await asyncio.to_thread(read)


@router.get("/{name}/stale")
async def stale(
    name: str,
    state: StateDep,
    principal: PrincipalDep,
    files: Annotated[bool, Query(description="Also check source files on the server's own disk.")] = False,
) -> list[dict[str, Any]]:
    """Stale documents: TTL passed, and with `files`, source files changed or missing on the server's disk
    (`pilothouse rag status` checks files on the machine that holds them)."""
    require_role(principal, "viewer")

    def read() -> list[dict[str, Any]]:
        collection = _find(state, principal, name)
        return [s.to_dict() for s in stale_documents(state.store, collection, check_files=files)]

    return await asyncio.to_thread(read)


def _ingest(state: AppState, collection: CollectionInfo, work: Any) -> dict[str, Any]:
    with collection_lock(collection.id):
        index = open_index(state.store, collection, data_dir=state.settings.data_dir)
        try:
            ingestor = Ingestor(state.store, collection, index)
        except ValueError as exc:
            raise InvalidRequest(str(exc), code="embedding_model_unavailable") from None
        try:
            report: IngestReport = work(ingestor)
        except LoaderError as exc:
            raise InvalidRequest(str(exc), code="invalid_document") from None
    return report.to_dict()


@router.post("/{name}/records")
async def ingest_records(name: str, body: RecordsBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Add or update records (each a document under its `id`; unchanged ones are not re-embedded) and delete
    the sources in `remove`. Answers with what changed."""
    require_role(principal, "developer")
    access = AccessList.of(body.access.groups, body.access.users)

    def work(ingestor: Ingestor) -> IngestReport:
        report = ingestor.ingest_records(body.records, acl=access)
        removed = ingestor.remove_sources(body.remove)
        report.removed += removed.removed
        return report

    return await asyncio.to_thread(lambda: _ingest(state, _find(state, principal, name), work))


@router.post("/{name}/documents")
async def ingest_documents(name: str, body: DocumentsBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Add or update documents a client loaded (sections with their headings), and delete the sources in
    `remove`; `folder` is remembered with the access list for `pilothouse rag sync`."""
    require_role(principal, "developer")
    access = AccessList.of(body.access.groups, body.access.users)
    loaded: list[tuple[LoadedDocument, float | None]] = []
    for number, doc in enumerate(body.documents):
        try:
            check_metadata(doc.metadata, source=doc.source)
        except LoaderError as exc:
            raise InvalidRequest(str(exc), code="invalid_document", param=f"documents.{number}.metadata") from None
        sections = tuple(Section(s.text, tuple(s.headings), s.page) for s in doc.sections if s.text.strip())
        document = LoadedDocument(
            doc.source, sections, doc.title, dict(doc.metadata), tuple(doc.groups), tuple(doc.users)
        )
        loaded.append((document, doc.mtime))
    folder = FolderSource(body.folder, access) if body.folder else None

    def work(ingestor: Ingestor) -> IngestReport:
        kind: Literal["file", "record"] = "file" if body.folder or body.files else "record"
        report = ingestor.ingest_loaded(loaded, acl=access, kind=kind, folder=folder)
        removed = ingestor.remove_sources(body.remove)
        report.removed += removed.removed
        return report

    return await asyncio.to_thread(lambda: _ingest(state, _find(state, principal, name), work))


@router.post("/{name}/reembed")
async def reembed_collection(name: str, body: ReembedBody, state: StateDep, principal: PrincipalDep) -> dict[str, Any]:
    """Embed every chunk again (with `embedding_model`, default the collection's own) and rebuild the index."""
    require_role(principal, "developer")

    def write() -> dict[str, Any]:
        collection = _find(state, principal, name)
        with collection_lock(collection.id):
            try:
                updated = reembed(
                    state.store, collection, data_dir=state.settings.data_dir, embedding_model=body.embedding_model
                )
            except CollectionError as exc:
                raise _collection_error(exc) from None
        details = {"from": collection.embedding_model, "to": updated.embedding_model}
        _audit(state, principal, "rag.collection.reembed", name, details)
        return _summary(state, updated)

    return await asyncio.to_thread(write)
